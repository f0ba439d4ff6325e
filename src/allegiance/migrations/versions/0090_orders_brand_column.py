"""orders brand column: the payload's brand, indexed for the analytics brand filter

Revision ID: 0090
Revises: 0070
Create Date: 2026-11-24 07:53:59.398959
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import allegiance.kit.orm

revision = "0090"
down_revision = "0070"
branch_labels = None
depends_on = None

INCLUDE = ["member_id", "status", "total_minor", "refunded_minor"]


def upgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("brand", sa.String(length=100), nullable=True))

    # existing orders: the brand their payload carries (a string; anything else stays null)
    orders = sa.table(
        "orders",
        sa.column("brand", sa.String(100)),
        sa.column("payload", allegiance.kit.orm.JSONType),
    )
    brand = orders.c.payload["brand"]
    if op.get_bind().dialect.name == "postgresql":
        is_string = sa.func.jsonb_typeof(brand) == "string"
    else:
        is_string = sa.func.json_type(orders.c.payload, "$.brand") == "text"
    op.execute(sa.update(orders).where(is_string).values(brand=brand.as_string()))

    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.create_index(
            "ix_orders_brand_placed",
            ["tenant_id", "brand", "placed_at"],
            unique=False,
            postgresql_include=INCLUDE,
            postgresql_where=sa.text("brand IS NOT NULL"),
        )


def downgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_orders_brand_placed",
            postgresql_include=INCLUDE,
            postgresql_where=sa.text("brand IS NOT NULL"),
        )
        batch_op.drop_column("brand")
