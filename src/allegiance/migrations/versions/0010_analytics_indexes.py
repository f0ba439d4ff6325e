"""analytics indexes: period scans of transfers, orders and members

Revision ID: 0010
Revises: 0002
Create Date: 2026-11-24 06:36:45.464124
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("ledger_transfers", schema=None) as batch_op:
        batch_op.create_index(
            "ix_transfers_code_time",
            ["tenant_id", "code", "effective_at"],
            unique=False,
            postgresql_include=[
                "wallet",
                "amount_minor",
                "member_id",
                "phase",
                "debit_account_id",
                "credit_account_id",
            ],
        )

    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.create_index("ix_members_enrolled", ["tenant_id", "enrolled_at"], unique=False)
        batch_op.create_index(
            "ix_members_first_order", ["tenant_id", "first_order_at"], unique=False
        )

    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.create_index(
            "ix_orders_placed",
            ["tenant_id", "placed_at"],
            unique=False,
            postgresql_include=["member_id", "status", "total_minor", "refunded_minor"],
        )


def downgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_orders_placed",
            postgresql_include=["member_id", "status", "total_minor", "refunded_minor"],
        )

    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.drop_index("ix_members_first_order")
        batch_op.drop_index("ix_members_enrolled")

    with op.batch_alter_table("ledger_transfers", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_transfers_code_time",
            postgresql_include=[
                "wallet",
                "amount_minor",
                "member_id",
                "phase",
                "debit_account_id",
                "credit_account_id",
            ],
        )
