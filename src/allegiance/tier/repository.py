"""SQL for tiers: facts (metric contributions), states and history."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, tuple_
from sqlalchemy.orm import Session

from allegiance.db import bulk_insert, dialect_insert, is_postgres
from allegiance.tier.models import TierChange, TierFact, TierState

Owner = tuple[str, str]  # (owner_type, owner_id)


def load_states(
    session: Session, tenant_id: str, owners: Sequence[Owner], *, lock: bool
) -> dict[Owner, TierState]:
    if not owners:
        return {}
    stmt = (
        select(TierState)
        .where(
            TierState.tenant_id == tenant_id,
            tuple_(TierState.owner_type, TierState.owner_id).in_(sorted(set(owners))),
        )
        .order_by(TierState.owner_type, TierState.owner_id)
    )
    if lock and is_postgres(session):
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    return {(s.owner_type, s.owner_id): s for s in session.execute(stmt).scalars()}


def add_state(session: Session, state: TierState) -> TierState:
    """Insert a new state row; a concurrent insert of the same holder wins and is re-read."""
    ins = dialect_insert(session)
    values = {c.key: getattr(state, c.key) for c in TierState.__table__.columns}
    session.execute(
        ins(TierState)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["tenant_id", "owner_type", "owner_id"])
    )
    found = load_states(session, state.tenant_id, [(state.owner_type, state.owner_id)], lock=True)
    return found[(state.owner_type, state.owner_id)]


def sum_facts(
    session: Session,
    tenant_id: str,
    owners: Sequence[Owner],
    since: datetime | None,
    until: datetime | None = None,
) -> dict[Owner, tuple[int, int, int]]:
    """(spend, orders, points) per holder over facts in [since, until] (open ends when None)."""
    if not owners:
        return {}
    stmt = select(
        TierFact.owner_type,
        TierFact.owner_id,
        func.coalesce(func.sum(TierFact.spend_minor), 0),
        func.coalesce(func.sum(TierFact.orders), 0),
        func.coalesce(func.sum(TierFact.points_minor), 0),
    ).where(
        TierFact.tenant_id == tenant_id,
        tuple_(TierFact.owner_type, TierFact.owner_id).in_(sorted(set(owners))),
    )
    if since is not None:
        stmt = stmt.where(TierFact.at >= since)
    if until is not None:
        stmt = stmt.where(TierFact.at <= until)
    stmt = stmt.group_by(TierFact.owner_type, TierFact.owner_id)
    return {(r[0], r[1]): (int(r[2]), int(r[3]), int(r[4])) for r in session.execute(stmt)}


def facts_since(
    session: Session, tenant_id: str, owners: Sequence[Owner], since: datetime
) -> list[Any]:
    """Facts at or after ``since``: the rows a moving window may still count."""
    if not owners:
        return []
    stmt = (
        select(
            TierFact.owner_type,
            TierFact.owner_id,
            TierFact.at,
            TierFact.spend_minor,
            TierFact.orders,
            TierFact.points_minor,
        )
        .where(
            TierFact.tenant_id == tenant_id,
            tuple_(TierFact.owner_type, TierFact.owner_id).in_(sorted(set(owners))),
            TierFact.at >= since,
        )
        .order_by(TierFact.at)
    )
    return list(session.execute(stmt))


def insert_facts(session: Session, rows: list[dict[str, Any]]) -> None:
    if rows:
        bulk_insert(session, TierFact.__table__, rows)


def insert_history(session: Session, rows: list[dict[str, Any]]) -> None:
    if rows:
        bulk_insert(session, TierChange.__table__, rows)


def history(
    session: Session, tenant_id: str, owner: Owner, *, limit: int, before_id: int | None
) -> list[TierChange]:
    stmt = select(TierChange).where(
        TierChange.tenant_id == tenant_id,
        TierChange.owner_type == owner[0],
        TierChange.owner_id == owner[1],
    )
    if before_id is not None:
        stmt = stmt.where(TierChange.id < before_id)
    return list(session.execute(stmt.order_by(TierChange.id.desc()).limit(limit)).scalars())


def due_states(
    session: Session, tenant_id: str, now: datetime, limit: int, *, skip_locked: bool
) -> list[TierState]:
    """States with a review, a scheduled downgrade or a manual end due, locked for the job."""
    stmt = (
        select(TierState)
        .where(TierState.tenant_id == tenant_id, TierState.due_at <= now)
        .order_by(TierState.due_at)
        .limit(limit)
    )
    if is_postgres(session):
        stmt = stmt.with_for_update(skip_locked=skip_locked)
    return list(session.execute(stmt).scalars())
