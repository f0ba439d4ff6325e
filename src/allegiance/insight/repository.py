"""SQL for member scores and the tenant's CLV model."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from allegiance.insight.models import ClvModel, MemberScore
from allegiance.order.models import Order


def scores_for(session: Session, tenant_id: str, member_ids: list[str]) -> dict[str, MemberScore]:
    """The stored scores of these members (members never scored are absent)."""
    if not member_ids:
        return {}
    rows = session.scalars(
        select(MemberScore).where(
            MemberScore.tenant_id == tenant_id, MemberScore.member_id.in_(member_ids)
        )
    )
    return {r.member_id: r for r in rows}


def purchases(
    session: Session, tenant_id: str, until: datetime, chunk: int
) -> Iterator[tuple[str, datetime, int]]:
    """(member id, placed at, value net of refunds) of every member order placed up to
    ``until`` that was neither cancelled nor refunded in full, streamed ``chunk`` rows at a
    time."""
    net = Order.total_minor - Order.refunded_minor
    query = (
        select(Order.member_id, Order.placed_at, net)
        .where(
            Order.tenant_id == tenant_id,
            Order.member_id.is_not(None),
            Order.status == "completed",
            Order.placed_at <= until,
            net > 0,
        )
        .execution_options(yield_per=chunk)
    )
    for member_id, placed_at, value in session.execute(query):
        yield str(member_id), placed_at, int(value)


def member_purchases(
    session: Session, tenant_id: str, member_id: str, until: datetime, limit: int
) -> list[tuple[datetime, int]]:
    """One member's purchases (as in ``purchases``), oldest first, at most ``limit``."""
    net = Order.total_minor - Order.refunded_minor
    rows = session.execute(
        select(Order.placed_at, net)
        .where(
            Order.tenant_id == tenant_id,
            Order.member_id == member_id,
            Order.status == "completed",
            Order.placed_at <= until,
            net > 0,
        )
        .order_by(Order.placed_at)
        .limit(limit)
    )
    return [(placed_at, int(value)) for placed_at, value in rows]


def get_model(session: Session, tenant_id: str) -> ClvModel | None:
    return session.get(ClvModel, tenant_id)


def model_for_update(session: Session, tenant_id: str) -> ClvModel:
    """The tenant's model row, locked; created when missing (concurrent creators of the
    same row are fine: the insert does nothing when the row exists)."""
    values = {
        "tenant_id": tenant_id,
        "time_unit": "week",
        "horizon": 52.0,
        "discount_rate": 0.0,
        "customers": 0,
        "repeat_buyers": 0,
        "summary": {},
    }
    if session.get_bind().dialect.name == "postgresql":
        session.execute(pg_insert(ClvModel).values(**values).on_conflict_do_nothing())
    else:
        session.execute(sqlite_insert(ClvModel).values(**values).on_conflict_do_nothing())
    found = session.get(ClvModel, tenant_id, with_for_update=True, populate_existing=True)
    assert found is not None
    return found


def claim_scoring(
    session: Session, tenant_id: str, now: datetime, lease_until: datetime, due_before: datetime
) -> bool:
    """Take the tenant's scoring lease when members were last scored before ``due_before``
    (or never) and no other run holds the lease. True when this run got it."""
    model_for_update(session, tenant_id)
    result = session.execute(
        update(ClvModel)
        .where(
            ClvModel.tenant_id == tenant_id,
            or_(ClvModel.scored_at.is_(None), ClvModel.scored_at < due_before),
            or_(ClvModel.scoring_until.is_(None), ClvModel.scoring_until < now),
        )
        .values(scoring_until=lease_until)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0))


def finish_scoring(session: Session, tenant_id: str, scored_at: datetime) -> None:
    session.execute(
        update(ClvModel)
        .where(ClvModel.tenant_id == tenant_id)
        .values(scored_at=scored_at, scoring_until=None)
        .execution_options(synchronize_session=False)
    )


def delete_scores_before(session: Session, tenant_id: str, computed_before: datetime) -> int:
    """Drop the scores of members the latest run did not score (no purchases any more)."""
    result = session.execute(
        delete(MemberScore).where(
            MemberScore.tenant_id == tenant_id, MemberScore.computed_at < computed_before
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)


def at_risk_page(
    session: Session,
    tenant_id: str,
    *,
    levels: tuple[str, ...],
    min_value_minor: int | None,
    after: tuple[int, str] | None,
    limit: int,
) -> list[MemberScore]:
    """At-risk members, highest CLV first (members without a CLV count as 0), then by id.
    ``after`` is the (value, member id) the previous page ended at."""
    value = func.coalesce(MemberScore.clv_minor, 0)
    query = select(MemberScore).where(
        MemberScore.tenant_id == tenant_id, MemberScore.churn_risk.in_(levels)
    )
    if min_value_minor is not None:
        query = query.where(value >= min_value_minor)
    if after is not None:
        query = query.where(
            or_(value < after[0], and_(value == after[0], MemberScore.member_id > after[1]))
        )
    return list(session.scalars(query.order_by(value.desc(), MemberScore.member_id).limit(limit)))
