"""secrets as text: room for their encrypted form (ALLEGIANCE_SECRET_KEYS)

Revision ID: 0130
Revises: 0120
Create Date: 2026-11-24 09:45:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0130"
down_revision = "0120"
branch_labels = None
depends_on = None

COLUMNS = [
    ("webhook_endpoints", "secret", 200, False),
    ("webhook_endpoints", "previous_secret", 200, True),
    ("integrations", "webhook_secret", 500, True),
    ("email_keys", "secret", 100, False),
]


def upgrade() -> None:
    for table, column, length, nullable in COLUMNS:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column(
                column,
                existing_type=sa.String(length=length),
                type_=sa.Text(),
                existing_nullable=nullable,
            )


def downgrade() -> None:
    for table, column, length, nullable in COLUMNS:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column(
                column,
                existing_type=sa.Text(),
                type_=sa.String(length=length),
                existing_nullable=nullable,
            )
