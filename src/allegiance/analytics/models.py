"""Indexes the program's measurements read through (docs/analytics.md).

Analytics owns no table; it reads the ledger, orders and members by time. These indexes let
the period aggregates range-scan instead of reading whole tables.
"""

from __future__ import annotations

from sqlalchemy import Index

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
# the same with a brand filter; orders without a brand are left out of it (cheaper booking)
ix_orders_brand_placed = Index(
    "ix_orders_brand_placed",
    Order.tenant_id,
    Order.brand,
    Order.placed_at,
    postgresql_include=["member_id", "status", "total_minor", "refunded_minor"],
    postgresql_where=Order.brand.is_not(None),
)
# activation (members enrolled in the period) and cohort sizes (first order in the period)
ix_members_enrolled = Index("ix_members_enrolled", Member.tenant_id, Member.enrolled_at)
ix_members_first_order = Index("ix_members_first_order", Member.tenant_id, Member.first_order_at)
