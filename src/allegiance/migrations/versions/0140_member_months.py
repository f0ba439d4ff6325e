"""member months: which calendar months each member ordered in (the cohort matrix)

Revision ID: 0140
Revises: 0130
Create Date: 2026-11-24 13:00:00.000000

The table starts empty: the ``member_months`` job fills it per tenant in batches (in the
program's time zone, which SQL cannot apply the same way on SQLite), and until it has
finished the cohort matrix counts from the orders as before.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import allegiance.kit.orm

revision = "0140"
down_revision = "0130"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "member_months",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("member_id", sa.String(length=255), nullable=False),
        sa.Column("month", sa.Integer(), nullable=False),
        sa.Column("first_order_at", allegiance.kit.orm.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "member_id", "month"),
        sqlite_with_rowid=False,
    )
    op.create_index(
        "ix_member_months_month",
        "member_months",
        ["tenant_id", "month", "first_order_at", "member_id"],
        unique=False,
    )
    op.create_table(
        "member_months_state",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=True),
        sa.Column("building", sa.String(length=64), nullable=True),
        sa.Column("cursor", sa.String(length=255), nullable=True),
        sa.Column("changed_at", allegiance.kit.orm.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("tenant_id"),
    )


def downgrade() -> None:
    op.drop_table("member_months_state")
    op.drop_index("ix_member_months_month", table_name="member_months")
    op.drop_table("member_months")
