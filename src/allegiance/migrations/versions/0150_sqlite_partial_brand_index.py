"""orders brand index: partial on SQLite too

Revision ID: 0150
Revises: 0140
Create Date: 2026-11-24 14:00:00.000000

0090 made ``ix_orders_brand_placed`` cover only orders with a brand on Postgres; on SQLite it
held every order, so every booking paid for one more index entry. SQLite supports partial
indexes and uses this one for ``brand = ?``. Postgres is unchanged.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0150"
down_revision = "0140"
branch_labels = None
depends_on = None

COLUMNS = ["tenant_id", "brand", "placed_at"]


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    op.drop_index("ix_orders_brand_placed", table_name="orders")
    op.create_index(
        "ix_orders_brand_placed",
        "orders",
        COLUMNS,
        unique=False,
        sqlite_where=sa.text("brand IS NOT NULL"),
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    op.drop_index("ix_orders_brand_placed", table_name="orders")
    op.create_index("ix_orders_brand_placed", "orders", COLUMNS, unique=False)
