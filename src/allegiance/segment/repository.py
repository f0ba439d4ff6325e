"""SQL for segments: memberships, evaluation checks, and the history affinity reads."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from types import SimpleNamespace
from typing import Any, cast

from sqlalchemy import Table, and_, bindparam, delete, func, or_, select, tuple_
from sqlalchemy.orm import Session

from allegiance.db import bulk_insert, dialect_insert, is_postgres
from allegiance.insight.models import MemberScore
from allegiance.member.models import Member
from allegiance.order.models import Event, Order
from allegiance.segment.models import SegmentCheck, SegmentMembership

_MEMBERSHIPS = cast(Table, SegmentMembership.__table__)
_MEMBERS = cast(Table, Member.__table__)
_ORDERS = cast(Table, Order.__table__)
_EVENTS = cast(Table, Event.__table__)

# statements built once: the booking path runs them for every order
_MEMBERSHIPS_OF = select(
    _MEMBERSHIPS.c.member_id, _MEMBERSHIPS.c.segment_key, _MEMBERSHIPS.c.entered_at
).where(
    _MEMBERSHIPS.c.tenant_id == bindparam("tid"),
    _MEMBERSHIPS.c.member_id.in_(bindparam("ids", expanding=True)),
)


def memberships_of(
    session: Session, tenant_id: str, member_ids: Sequence[str]
) -> dict[str, dict[str, datetime]]:
    """Segment key -> entered_at, per member (members in no segment are absent)."""
    found: dict[str, dict[str, datetime]] = {}
    ids = sorted(set(member_ids))
    conn = session.connection()
    for start in range(0, len(ids), 500):
        rows = conn.execute(_MEMBERSHIPS_OF, {"tid": tenant_id, "ids": ids[start : start + 500]})
        for member_id, key, entered_at in rows:
            found.setdefault(member_id, {})[key] = entered_at
    return found


_SCORES = cast(Table, MemberScore.__table__)
_SCORES_OF = select(
    _SCORES.c.member_id,
    _SCORES.c.clv_minor,
    _SCORES.c.expected_purchases,
    _SCORES.c.p_alive,
    _SCORES.c.churn_risk,
    _SCORES.c.rfm_segment,
).where(
    _SCORES.c.tenant_id == bindparam("tid"),
    _SCORES.c.member_id.in_(bindparam("ids", expanding=True)),
)


def scores_of(session: Session, tenant_id: str, member_ids: Sequence[str]) -> dict[str, Any]:
    """The model scores segments use, per scored member (the columns of ``member_scores``
    that ``insight.repository.scores_for`` returns, read without ORM objects: this runs in
    every booking of a tenant whose segments use scores)."""
    ids = sorted(set(member_ids))
    found: dict[str, Any] = {}
    conn = session.connection()
    for start in range(0, len(ids), 500):
        for row in conn.execute(_SCORES_OF, {"tid": tenant_id, "ids": ids[start : start + 500]}):
            found[row.member_id] = row
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


_LOAD_MEMBERS = (
    select(*_MEMBERS.c)
    .where(
        _MEMBERS.c.tenant_id == bindparam("tid"),
        _MEMBERS.c.member_id.in_(bindparam("ids", expanding=True)),
    )
    .order_by(_MEMBERS.c.member_id)
)


def load_members(session: Session, tenant_id: str, member_ids: Sequence[str]) -> list[Member]:
    """The members as stored now (re-read: stats may have been updated in this transaction),
    as plain objects with the model's attributes (no ORM state)."""
    ids = sorted(set(member_ids))
    found: list[Member] = []
    conn = session.connection()
    for start in range(0, len(ids), 500):
        rows = conn.execute(_LOAD_MEMBERS, {"tid": tenant_id, "ids": ids[start : start + 500]})
        found.extend(cast(Member, SimpleNamespace(**row._mapping)) for row in rows)
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


def _ranked(table: Table, *, time: str, key: str, value: str, extra: Any) -> Any:
    """Each member's latest rows in a window, at most ``:cap`` per member."""
    rank = (
        func.row_number()
        .over(partition_by=table.c.member_id, order_by=(table.c[time].desc(), table.c[key]))
        .label("rank")
    )
    inner = (
        select(table.c.member_id, table.c[value].label("value"), rank)
        .where(
            table.c.tenant_id == bindparam("tid"),
            table.c.member_id.in_(bindparam("ids", expanding=True)),
            table.c[time] >= bindparam("since"),
            table.c[time] <= bindparam("until"),
            extra,
        )
        .subquery()
    )
    return select(inner.c.member_id, inner.c.value).where(inner.c.rank <= bindparam("cap"))


_RECENT_ORDERS = _ranked(
    _ORDERS, time="placed_at", key="order_id", value="payload",
    extra=_ORDERS.c.status == "completed",
)  # fmt: skip
_RECENT_EVENTS = _ranked(
    _EVENTS, time="occurred_at", key="event_id", value="properties",
    extra=_EVENTS.c.type == bindparam("type"),
)  # fmt: skip


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
    ids = sorted(set(member_ids))
    found: list[tuple[str, dict[str, Any]]] = []
    for start in range(0, len(ids), 500):
        rows = session.connection().execute(
            _RECENT_ORDERS,
            {"tid": tenant_id, "ids": ids[start : start + 500], "since": since, "until": until,
             "cap": per_member},
        )  # fmt: skip
        found.extend((r[0], r[1]) for r in rows)
    return found


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
    ids = sorted(set(member_ids))
    found: list[tuple[str, dict[str, Any]]] = []
    for start in range(0, len(ids), 500):
        rows = session.connection().execute(
            _RECENT_EVENTS,
            {"tid": tenant_id, "ids": ids[start : start + 500], "type": type_, "since": since,
             "until": until, "cap": per_member},
        )  # fmt: skip
        found.extend((r[0], r[1]) for r in rows)
    return found
