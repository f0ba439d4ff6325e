"""integration cancellations: orders a platform cancelled before they were booked

Revision ID: 0120
Revises: 0090
Create Date: 2026-11-24 09:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import allegiance.kit.orm

revision = "0120"
down_revision = "0090"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "integration_cancellations",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("order_id", sa.String(length=255), nullable=False),
        sa.Column("platform", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column("received_at", allegiance.kit.orm.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "order_id"),
    )


def downgrade() -> None:
    op.drop_table("integration_cancellations")
