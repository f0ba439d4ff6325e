"""SQL for sweepstake draws and entries."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from allegiance.db import dialect_insert, is_postgres
from allegiance.sweepstakes.models import SweepstakeDraw, SweepstakeEntry


def draw_of(
    session: Session, tenant_id: str, sweepstake: str, *, lock: bool = False
) -> SweepstakeDraw | None:
    stmt = select(SweepstakeDraw).where(
        SweepstakeDraw.tenant_id == tenant_id, SweepstakeDraw.sweepstake == sweepstake
    )
    if lock and is_postgres(session):
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    return session.scalar(stmt)


def insert_draw_if_new(session: Session, row: dict[str, Any]) -> None:
    """The first writer's seed wins; a concurrent opener keeps it."""
    session.execute(
        dialect_insert(session)(SweepstakeDraw)
        .values(**row)
        .on_conflict_do_nothing(index_elements=["tenant_id", "sweepstake"])
    )


def insert_entries(session: Session, rows: list[dict[str, Any]]) -> int:
    """Insert entries, skipping ids already there; the number inserted."""
    if not rows:
        return 0
    result = session.execute(
        dialect_insert(session)(SweepstakeEntry)
        .values(rows)
        .on_conflict_do_nothing(index_elements=["tenant_id", "sweepstake", "entry_id"])
        .returning(SweepstakeEntry.entry_id)
    )
    return len(result.all())


def count_entries(
    session: Session,
    tenant_id: str,
    sweepstake: str,
    *,
    member_id: str | None = None,
    source: str | None = None,
) -> int:
    stmt = (
        select(func.count())
        .select_from(SweepstakeEntry)
        .where(SweepstakeEntry.tenant_id == tenant_id, SweepstakeEntry.sweepstake == sweepstake)
    )
    if member_id is not None:
        stmt = stmt.where(SweepstakeEntry.member_id == member_id)
    if source is not None:
        stmt = stmt.where(SweepstakeEntry.source == source)
    return int(session.scalar(stmt) or 0)


def entries_of(session: Session, tenant_id: str, sweepstake: str) -> list[tuple[str, str]]:
    """(entry id, member id) of every entry; the caller sorts by the ids' bytes."""
    rows = session.execute(
        select(SweepstakeEntry.entry_id, SweepstakeEntry.member_id).where(
            SweepstakeEntry.tenant_id == tenant_id, SweepstakeEntry.sweepstake == sweepstake
        )
    )
    return [(r[0], r[1]) for r in rows]
