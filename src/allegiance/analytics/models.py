"""Indexes the program's measurements read through (docs/analytics.md).

Analytics owns no table; it reads the ledger, orders and members by time. These indexes let
the period aggregates range-scan instead of reading whole tables.
"""

from __future__ import annotations

from sqlalchemy import Index

from allegiance.ledger.models import Transfer
from allegiance.member.models import Member
from allegiance.order.models import Order

# period flows per code (issued, redeemed, expired) and the balance change after a date;
# on Postgres the amount rides in the index, so the sums are index-only scans
ix_transfers_code_time = Index(
    "ix_transfers_code_time",
    Transfer.tenant_id,
    Transfer.wallet,
    Transfer.code,
    Transfer.effective_at,
    postgresql_include=["amount_minor"],
)
# revenue, customers and cohorts over a period
ix_orders_placed = Index("ix_orders_placed", Order.tenant_id, Order.placed_at)
# activation (members enrolled in the period) and cohort sizes (first order in the period)
ix_members_enrolled = Index("ix_members_enrolled", Member.tenant_id, Member.enrolled_at)
ix_members_first_order = Index("ix_members_first_order", Member.tenant_id, Member.first_order_at)
