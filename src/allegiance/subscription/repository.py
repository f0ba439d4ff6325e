"""SQL for subscriptions and their payments."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from allegiance.db import is_postgres
from allegiance.subscription.models import Subscription, SubscriptionPayment


def _lock(stmt: Any, session: Session, *, lock: bool, skip_locked: bool = False) -> Any:
    if lock and is_postgres(session):
        # re-read under the lock: an object loaded earlier in this session must not be reused
        return stmt.with_for_update(skip_locked=skip_locked).execution_options(
            populate_existing=True
        )
    return stmt


def live(
    session: Session, tenant_id: str, member_id: str, *, lock: bool = False
) -> Subscription | None:
    """The member's subscription with status ``active`` (at most one), whatever its dates."""
    stmt = (
        select(Subscription)
        .where(
            Subscription.tenant_id == tenant_id,
            Subscription.member_id == member_id,
            Subscription.status == "active",
        )
        .order_by(Subscription.id.desc())
        .limit(1)
    )
    return session.execute(_lock(stmt, session, lock=lock)).scalar_one_or_none()


def live_of_members(
    session: Session, tenant_id: str, member_ids: Sequence[str]
) -> list[Subscription]:
    ids = sorted(set(member_ids))
    found: list[Subscription] = []
    for start in range(0, len(ids), 500):
        stmt = select(Subscription).where(
            Subscription.tenant_id == tenant_id,
            Subscription.member_id.in_(ids[start : start + 500]),
            Subscription.status == "active",
        )
        found.extend(session.scalars(stmt))
    return found


def get(
    session: Session, tenant_id: str, subscription_id: str, *, lock: bool = False
) -> Subscription | None:
    stmt = select(Subscription).where(
        Subscription.tenant_id == tenant_id, Subscription.subscription_id == subscription_id
    )
    return session.execute(_lock(stmt, session, lock=lock)).scalar_one_or_none()


def last_end(session: Session, tenant_id: str, member_id: str) -> datetime | None:
    """When the member's latest ended subscription ended."""
    stmt = select(func.max(Subscription.ended_at)).where(
        Subscription.tenant_id == tenant_id, Subscription.member_id == member_id
    )
    return session.execute(stmt).scalar_one_or_none()


def trial_taken(session: Session, tenant_id: str, member_id: str, plan: str) -> bool:
    stmt = (
        select(SubscriptionPayment.payment_id)
        .where(
            SubscriptionPayment.tenant_id == tenant_id,
            SubscriptionPayment.member_id == member_id,
            SubscriptionPayment.plan == plan,
            SubscriptionPayment.kind == "trial",
        )
        .limit(1)
    )
    return session.execute(stmt).first() is not None


def insert(session: Session, values: dict[str, Any]) -> Subscription:
    subscription = Subscription(**values)
    session.add(subscription)
    session.flush()
    return subscription


def update(session: Session, subscription: Subscription, **values: Any) -> None:
    for name, value in values.items():
        setattr(subscription, name, value)
    session.flush()


def insert_payment(session: Session, values: dict[str, Any]) -> SubscriptionPayment:
    """Insert one payment; a duplicate payment id fails with an integrity error (the
    idempotency layer then finds the response of the request that booked it)."""
    payment = SubscriptionPayment(**values)
    session.add(payment)
    session.flush()
    return payment


def page_of_member(
    session: Session, tenant_id: str, member_id: str, before_id: int | None, limit: int
) -> list[Subscription]:
    """The member's subscriptions, newest first."""
    stmt = select(Subscription).where(
        Subscription.tenant_id == tenant_id, Subscription.member_id == member_id
    )
    if before_id is not None:
        stmt = stmt.where(Subscription.id < before_id)
    return list(session.scalars(stmt.order_by(Subscription.id.desc()).limit(limit)))


def payments_of(
    session: Session, tenant_id: str, subscription_ids: Sequence[str]
) -> list[SubscriptionPayment]:
    if not subscription_ids:
        return []
    stmt = (
        select(SubscriptionPayment)
        .where(
            SubscriptionPayment.tenant_id == tenant_id,
            SubscriptionPayment.subscription_id.in_(list(subscription_ids)),
        )
        .order_by(SubscriptionPayment.period_start, SubscriptionPayment.payment_id)
    )
    return list(session.scalars(stmt))


def due_to_expire(
    session: Session, tenant_id: str, now: datetime, limit: int
) -> list[Subscription]:
    """Live subscriptions whose period is over, row-locked with SKIP LOCKED on Postgres so
    that several workers take disjoint batches."""
    stmt = (
        select(Subscription)
        .where(
            Subscription.tenant_id == tenant_id,
            Subscription.status == "active",
            Subscription.current_period_end <= now,
        )
        .order_by(Subscription.current_period_end, Subscription.id)
        .limit(limit)
    )
    return list(session.scalars(_lock(stmt, session, lock=True, skip_locked=True)))


def due_for_notice(
    session: Session, tenant_id: str, plan: str, now: datetime, until: datetime, limit: int
) -> list[Subscription]:
    """Live, not cancelled subscriptions of ``plan`` ending in (now, until] whose renewal
    notice was not written yet (SKIP LOCKED on Postgres)."""
    stmt = (
        select(Subscription)
        .where(
            Subscription.tenant_id == tenant_id,
            Subscription.status == "active",
            Subscription.plan == plan,
            Subscription.current_period_end > now,
            Subscription.current_period_end <= until,
            Subscription.cancel_at_period_end.is_(False),
            Subscription.renewal_notified.is_(False),
        )
        .order_by(Subscription.current_period_end, Subscription.id)
        .limit(limit)
    )
    return list(session.scalars(_lock(stmt, session, lock=True, skip_locked=True)))
