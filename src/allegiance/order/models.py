from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from allegiance.kit.orm import Base, JSONType, UTCDateTime


class Order(Base):
    __tablename__ = "orders"

    tenant_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    order_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    member_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    # the B2B account whose pooled wallet the order earned into (null: the member's own)
    account_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    placed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    currency: Mapped[str] = mapped_column(String(3))
    subtotal_minor: Mapped[int] = mapped_column(BigInteger)
    total_minor: Mapped[int] = mapped_column(BigInteger)
    refunded_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    status: Mapped[str] = mapped_column(String(20))  # completed | cancelled
    program_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    payload: Mapped[dict] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    partner: Mapped[str | None] = mapped_column(String(64), nullable=True)  # who booked it
    # what automatic promotions gave the order: [{promotion, amount, usage}] (null: none)
    promotions: Mapped[list | None] = mapped_column(JSONType, nullable=True)
    # the payload's ``brand`` as a column, so analytics filter by it through an index
    brand: Mapped[str | None] = mapped_column(String(100), nullable=True)


class Refund(Base):
    __tablename__ = "refunds"

    tenant_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    refund_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    order_id: Mapped[str] = mapped_column(String(255))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    payload: Mapped[dict] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Event(Base):
    __tablename__ = "events"

    tenant_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    type: Mapped[str] = mapped_column(String(100))
    member_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    properties: Mapped[dict] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


Index("ix_orders_member", Order.tenant_id, Order.member_id, Order.placed_at)
Index("ix_refunds_order", Refund.tenant_id, Refund.order_id)
Index("ix_events_member", Event.tenant_id, Event.member_id, Event.occurred_at)
