"""Subscriptions to paid plans, and the payments (or trial) that opened each period.

A member has at most one live subscription (status ``active``) at a time; the member row lock
serialises the writes that decide it. A renewal extends the live subscription; a payment after
it ended starts a new one, so each row is one unbroken stretch of membership.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from allegiance.kit.orm import Base, BigIntPK, UTCDateTime


class Subscription(Base):
    __tablename__ = "subscriptions"
    __table_args__ = (UniqueConstraint("tenant_id", "subscription_id"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(String(40))
    subscription_id: Mapped[str] = mapped_column(String(40))
    member_id: Mapped[str] = mapped_column(String(255))
    plan: Mapped[str] = mapped_column(String(64))
    # active (until current_period_end) | cancelled (ended early) | expired (ran out)
    status: Mapped[str] = mapped_column(String(20))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    trial_ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # calendar anchor of the paid periods (month and year periods keep its day of month)
    anchor_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    current_period_end: Mapped[datetime] = mapped_column(UTCDateTime)
    cancel_at_period_end: Mapped[bool] = mapped_column(Boolean, default=False)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    cancel_reason: Mapped[str | None] = mapped_column(String(500), nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # the renewal_due notice of the current period was written
    renewal_notified: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class SubscriptionPayment(Base):
    """One paid period (or the trial), keyed by the shop's charge id."""

    __tablename__ = "subscription_payments"

    tenant_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    payment_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    subscription_id: Mapped[str] = mapped_column(String(40))
    member_id: Mapped[str] = mapped_column(String(255))
    plan: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(10))  # payment | trial
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    paid_at: Mapped[datetime] = mapped_column(UTCDateTime)
    period_start: Mapped[datetime] = mapped_column(UTCDateTime)
    period_end: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


Index("ix_subscriptions_member", Subscription.tenant_id, Subscription.member_id)
Index(
    "ix_subscriptions_due",
    Subscription.tenant_id,
    Subscription.status,
    Subscription.current_period_end,
)
Index(
    "ix_subscription_payments_member",
    SubscriptionPayment.tenant_id,
    SubscriptionPayment.member_id,
    SubscriptionPayment.plan,
)
Index(
    "ix_subscription_payments_subscription",
    SubscriptionPayment.tenant_id,
    SubscriptionPayment.subscription_id,
)
