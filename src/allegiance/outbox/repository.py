"""SQL for the outbox."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from allegiance.db import bulk_insert, is_postgres
from allegiance.outbox.models import OutboxEvent


def insert_events(session: Session, rows: list[dict[str, Any]]) -> None:
    if rows:
        bulk_insert(session, OutboxEvent.__table__, rows)


def list_events(
    session: Session, tenant_id: str, type_: str | None, limit: int, after_id: int | None
) -> list[OutboxEvent]:
    stmt = select(OutboxEvent).where(OutboxEvent.tenant_id == tenant_id)
    if type_:
        stmt = stmt.where(OutboxEvent.type == type_)
    if after_id is not None:
        stmt = stmt.where(OutboxEvent.id > after_id)
    return list(session.scalars(stmt.order_by(OutboxEvent.id).limit(limit)))


def has_pending(session: Session, tenant_id: str) -> bool:
    stmt = (
        select(OutboxEvent.id)
        .where(OutboxEvent.dispatched_at.is_(None), OutboxEvent.tenant_id == tenant_id)
        .limit(1)
    )
    return session.scalar(stmt) is not None


def tenants_with_pending(session: Session, limit: int) -> list[str]:
    stmt = (
        select(OutboxEvent.tenant_id)
        .where(OutboxEvent.dispatched_at.is_(None))
        .distinct()
        .limit(limit)
    )
    return list(session.scalars(stmt))


def claim_pending(session: Session, tenant_id: str, limit: int) -> list[OutboxEvent]:
    """The tenant's oldest undispatched events, row-locked with SKIP LOCKED on Postgres so
    several workers dispatch disjoint batches (SQLite has one writer at a time)."""
    stmt = (
        select(OutboxEvent)
        .where(OutboxEvent.dispatched_at.is_(None), OutboxEvent.tenant_id == tenant_id)
        .order_by(OutboxEvent.id)
        .limit(limit)
    )
    if is_postgres(session):
        stmt = stmt.with_for_update(skip_locked=True)
    return list(session.scalars(stmt))
