"""SQL for segments: memberships, evaluation checks, and the history affinity reads."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, tuple_
from sqlalchemy.orm import Session

from allegiance.db import bulk_insert, dialect_insert, is_postgres
from allegiance.member.models import Member
from allegiance.order.models import Event, Order
from allegiance.segment.models import SegmentCheck, SegmentMembership


def memberships_of(
    session: Session, tenant_id: str, member_ids: Sequence[str]
) -> dict[str, dict[str, datetime]]:
    """Segment key -> entered_at, per member (members in no segment are absent)."""
    found: dict[str, dict[str, datetime]] = {}
    ids = sorted(set(member_ids))
    for start in range(0, len(ids), 500):
        rows = session.execute(
            select(
                SegmentMembership.member_id,
                SegmentMembership.segment_key,
                SegmentMembership.entered_at,
            ).where(
                SegmentMembership.tenant_id == tenant_id,
                SegmentMembership.member_id.in_(ids[start : start + 500]),
            )
        )
        for member_id, key, entered_at in rows:
            found.setdefault(member_id, {})[key] = entered_at
    return found


def insert_memberships(session: Session, rows: list[dict[str, Any]]) -> None:
    if rows:
        bulk_insert(
            session,
            SegmentMembership.__table__,
            rows,
            skip_conflicts_on=("tenant_id", "segment_key", "member_id"),
        )


def delete_memberships(session: Session, tenant_id: str, pairs: list[tuple[str, str]]) -> None:
    """Remove (segment key, member id) pairs."""
    for start in range(0, len(pairs), 500):
        session.execute(
            delete(SegmentMembership).where(
                SegmentMembership.tenant_id == tenant_id,
                tuple_(SegmentMembership.segment_key, SegmentMembership.member_id).in_(
                    pairs[start : start + 500]
                ),
            )
        )


def any_membership(session: Session, tenant_id: str) -> bool:
    return (
        session.execute(
            select(SegmentMembership.member_id)
            .where(SegmentMembership.tenant_id == tenant_id)
            .limit(1)
        ).first()
        is not None
    )


def counts(session: Session, tenant_id: str) -> dict[str, int]:
    rows = session.execute(
        select(SegmentMembership.segment_key, func.count())
        .where(SegmentMembership.tenant_id == tenant_id)
        .group_by(SegmentMembership.segment_key)
    )
    return {key: int(n) for key, n in rows}


def members_page(
    session: Session, tenant_id: str, segment_key: str, limit: int, after: str | None
) -> list[tuple[str, datetime]]:
    """(member id, entered_at) in member id order, after ``after``."""
    stmt = select(SegmentMembership.member_id, SegmentMembership.entered_at).where(
        SegmentMembership.tenant_id == tenant_id, SegmentMembership.segment_key == segment_key
    )
    if after is not None:
        stmt = stmt.where(SegmentMembership.member_id > after)
    rows = session.execute(stmt.order_by(SegmentMembership.member_id).limit(limit))
    return [(r[0], r[1]) for r in rows]


def load_members(session: Session, tenant_id: str, member_ids: Sequence[str]) -> list[Member]:
    """The members as stored now (re-read: stats may have been updated in this transaction)."""
    ids = sorted(set(member_ids))
    found: list[Member] = []
    for start in range(0, len(ids), 500):
        stmt = (
            select(Member)
            .where(Member.tenant_id == tenant_id, Member.member_id.in_(ids[start : start + 500]))
            .order_by(Member.member_id)
            .execution_options(populate_existing=True)
        )
        found.extend(session.scalars(stmt))
    return found


def due_for_check(
    session: Session, tenant_id: str, *, stale_before: datetime, version: int, limit: int
) -> list[str]:
    """Members never evaluated, evaluated before ``stale_before`` or under another program
    version; locked with SKIP LOCKED on Postgres (a member being booked is skipped: its
    booking evaluates it)."""
    stmt = (
        select(Member.member_id)
        .outerjoin(
            SegmentCheck,
            and_(
                SegmentCheck.tenant_id == Member.tenant_id,
                SegmentCheck.member_id == Member.member_id,
            ),
        )
        .where(
            Member.tenant_id == tenant_id,
            or_(
                SegmentCheck.member_id.is_(None),
                SegmentCheck.checked_at <= stale_before,
                SegmentCheck.program_version != version,
            ),
        )
        .order_by(Member.member_id)
        .limit(limit)
    )
    if is_postgres(session):
        stmt = stmt.with_for_update(of=Member, skip_locked=True)
    return list(session.scalars(stmt))


def mark_checked(
    session: Session, tenant_id: str, member_ids: Sequence[str], now: datetime, version: int
) -> None:
    if not member_ids:
        return
    insert = dialect_insert(session)
    stmt = insert(SegmentCheck).values(
        [
            {
                "tenant_id": tenant_id,
                "member_id": m,
                "checked_at": now,
                "program_version": version,
            }
            for m in member_ids
        ]
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["tenant_id", "member_id"],
        set_={"checked_at": stmt.excluded.checked_at, "program_version": version},
    )
    session.execute(stmt)


def recent_order_payloads(
    session: Session,
    tenant_id: str,
    member_ids: Sequence[str],
    *,
    since: datetime,
    until: datetime,
    per_member: int,
) -> list[tuple[str, dict[str, Any]]]:
    """(member id, payload) of each member's latest completed orders in the window, at most
    ``per_member`` each."""
    rank = (
        func.row_number()
        .over(partition_by=Order.member_id, order_by=(Order.placed_at.desc(), Order.order_id))
        .label("rank")
    )
    inner = (
        select(Order.member_id, Order.payload, rank)
        .where(
            Order.tenant_id == tenant_id,
            Order.member_id.in_(sorted(set(member_ids))),
            Order.status == "completed",
            Order.placed_at >= since,
            Order.placed_at <= until,
        )
        .subquery()
    )
    rows = session.execute(
        select(inner.c.member_id, inner.c.payload).where(inner.c.rank <= per_member)
    )
    return [(r[0], r[1]) for r in rows]


def recent_events(
    session: Session,
    tenant_id: str,
    member_ids: Sequence[str],
    *,
    type_: str,
    since: datetime,
    until: datetime,
    per_member: int,
) -> list[tuple[str, dict[str, Any]]]:
    """(member id, properties) of each member's latest events of a type in the window."""
    rank = (
        func.row_number()
        .over(partition_by=Event.member_id, order_by=(Event.occurred_at.desc(), Event.event_id))
        .label("rank")
    )
    inner = (
        select(Event.member_id, Event.properties, rank)
        .where(
            Event.tenant_id == tenant_id,
            Event.member_id.in_(sorted(set(member_ids))),
            Event.type == type_,
            Event.occurred_at >= since,
            Event.occurred_at <= until,
        )
        .subquery()
    )
    rows = session.execute(
        select(inner.c.member_id, inner.c.properties).where(inner.c.rank <= per_member)
    )
    return [(r[0], r[1]) for r in rows]
