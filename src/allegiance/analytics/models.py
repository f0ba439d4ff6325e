"""Indexes the program's measurements read through, and the one table analytics keeps
(docs/analytics.md).

Analytics reads the ledger, orders and members by time; these indexes let the period
aggregates range-scan instead of reading whole tables. ``member_months`` is a derived,
exact index of which calendar months each member ordered in, written with the orders.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from allegiance.kit.orm import Base, UTCDateTime
from allegiance.ledger.models import Transfer
from allegiance.member.models import Member
from allegiance.order.models import Order

# period flows per code (issued, redeemed, expired), the balance change after a date and their
# member filters: on Postgres the columns they read ride in the index (index-only scans)
ix_transfers_code_time = Index(
    "ix_transfers_code_time",
    Transfer.tenant_id,
    Transfer.code,
    Transfer.effective_at,
    postgresql_include=[
        "wallet",
        "amount_minor",
        "member_id",
        "phase",
        "debit_account_id",
        "credit_account_id",
    ],
)
# revenue, customers and cohorts over a period (index-only on Postgres)
ix_orders_placed = Index(
    "ix_orders_placed",
    Order.tenant_id,
    Order.placed_at,
    postgresql_include=["member_id", "status", "total_minor", "refunded_minor"],
)
# the same with a brand filter; orders without a brand are left out of it (cheaper booking;
# on SQLite too since migration 0150)
ix_orders_brand_placed = Index(
    "ix_orders_brand_placed",
    Order.tenant_id,
    Order.brand,
    Order.placed_at,
    postgresql_include=["member_id", "status", "total_minor", "refunded_minor"],
    postgresql_where=Order.brand.is_not(None),
    sqlite_where=Order.brand.is_not(None),
)
# activation (members enrolled in the period) and cohort sizes (first order in the period)
ix_members_enrolled = Index("ix_members_enrolled", Member.tenant_id, Member.enrolled_at)
ix_members_first_order = Index("ix_members_first_order", Member.tenant_id, Member.first_order_at)


class MemberMonth(Base):
    """A member ordered (an order not cancelled) in this calendar month of the program's time
    zone. Carries the member's first-order time, so the cohort matrix reads one table."""

    __tablename__ = "member_months"
    # SQLite: the rows live in the primary key's tree (no separate rowid table and key index)
    __table_args__ = {"sqlite_with_rowid": False}

    tenant_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    member_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    month: Mapped[int] = mapped_column(Integer, primary_key=True)  # YYYYMM, local
    first_order_at: Mapped[datetime] = mapped_column(UTCDateTime)


class MemberMonthsState(Base):
    """Which time zone a tenant's ``member_months`` are exact for (null: being rebuilt; the
    cohort matrix then counts from the orders)."""

    __tablename__ = "member_months_state"

    tenant_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    timezone: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # the time zone the job is rebuilding for, and the last member id it rebuilt
    building: Mapped[str | None] = mapped_column(String(64), nullable=True)
    cursor: Mapped[str | None] = mapped_column(String(255), nullable=True)
    # when the time zone last changed (the rebuild waits for bookings still in flight)
    changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


# the cohort matrix: months in range, cohort from first_order_at (index-only on Postgres)
ix_member_months_month = Index(
    "ix_member_months_month",
    MemberMonth.tenant_id,
    MemberMonth.month,
    MemberMonth.first_order_at,
    MemberMonth.member_id,
)
