"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-24 01:06:32.538366
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import allegiance.kit.orm

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "events",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("event_id", sa.String(length=255), nullable=False),
        sa.Column("type", sa.String(length=100), nullable=False),
        sa.Column("member_id", sa.String(length=255), nullable=True),
        sa.Column("occurred_at", allegiance.kit.orm.UTCDateTime(timezone=True), nullable=False),
        sa.Column(
            "properties",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", allegiance.kit.orm.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "event_id"),
    )
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.create_index(
            "ix_events_member", ["tenant_id", "member_id", "occurred_at"], unique=False
        )

    op.create_table(
        "idempotency_records",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column(
            "response",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", allegiance.kit.orm.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "kind", "key"),
    )
    op.create_table(
        "ledger_accounts",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("wallet", sa.String(length=64), nullable=False),
        sa.Column("owner_type", sa.String(length=20), nullable=False),
        sa.Column("owner_id", sa.String(length=255), nullable=False),
        sa.Column("posted_minor", sa.BigInteger(), nullable=False),
        sa.Column("pending_minor", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("tenant_id", "owner_type", "owner_id", "wallet"),
    )
    op.create_table(
        "ledger_lots",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("wallet", sa.String(length=64), nullable=False),
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("member_id", sa.String(length=255), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("remaining_minor", sa.BigInteger(), nullable=False),
        sa.Column("available_at", allegiance.kit.orm.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", allegiance.kit.orm.UTCDateTime(timezone=True), nullable=True),
        sa.Column("order_id", sa.String(length=255), nullable=True),
        sa.Column("transfer_id", sa.BigInteger(), nullable=True),
        sa.Column("rule", sa.String(length=64), nullable=True),
        sa.Column("notified_at", allegiance.kit.orm.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", allegiance.kit.orm.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("ledger_lots", schema=None) as batch_op:
        batch_op.create_index("ix_lots_account", ["account_id", "status"], unique=False)
        batch_op.create_index(
            "ix_lots_expiry_due", ["tenant_id", "status", "expires_at"], unique=False
        )

    op.create_table(
        "ledger_transfers",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("wallet", sa.String(length=64), nullable=False),
        sa.Column("debit_account_id", sa.BigInteger(), nullable=False),
        sa.Column("credit_account_id", sa.BigInteger(), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("code", sa.String(length=20), nullable=False),
        sa.Column("phase", sa.String(length=10), nullable=False),
        sa.Column("pending_id", sa.BigInteger(), nullable=True),
        sa.Column("member_id", sa.String(length=255), nullable=True),
        sa.Column("order_id", sa.String(length=255), nullable=True),
        sa.Column("source_type", sa.String(length=20), nullable=False),
        sa.Column("source_id", sa.String(length=255), nullable=False),
        sa.Column("rule", sa.String(length=64), nullable=True),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column("lot_id", sa.BigInteger(), nullable=True),
        sa.Column("idem_key", sa.String(length=400), nullable=False),
        sa.Column("effective_at", allegiance.kit.orm.UTCDateTime(timezone=True), nullable=False),
        sa.Column("partner", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("tenant_id", "idem_key"),
    )
    with op.batch_alter_table("ledger_transfers", schema=None) as batch_op:
        batch_op.create_index("ix_transfers_member", ["tenant_id", "member_id", "id"], unique=False)
        batch_op.create_index("ix_transfers_order", ["tenant_id", "order_id"], unique=False)
        batch_op.create_index(
            "ix_transfers_partner",
            ["tenant_id", "partner", "effective_at"],
            unique=False,
            postgresql_where=sa.text("partner IS NOT NULL"),
            sqlite_where=sa.text("partner IS NOT NULL"),
        )

    op.create_table(
        "members",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("member_id", sa.String(length=255), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("phone", sa.String(length=50), nullable=True),
        sa.Column("birthdate", sa.Date(), nullable=True),
        sa.Column("locale", sa.String(length=20), nullable=True),
        sa.Column(
            "tags",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "attributes",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("account_id", sa.String(length=255), nullable=True),
        sa.Column("account_role", sa.String(length=10), nullable=True),
        sa.Column("referral_code", sa.String(length=100), nullable=True),
        sa.Column("enrolled_at", allegiance.kit.orm.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_at", allegiance.kit.orm.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", allegiance.kit.orm.UTCDateTime(timezone=True), nullable=False),
        sa.Column("erased_at", allegiance.kit.orm.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_activity_at", allegiance.kit.orm.UTCDateTime(timezone=True), nullable=True),
        sa.Column("orders_count", sa.Integer(), nullable=False),
        sa.Column("spend_minor", sa.BigInteger(), nullable=False),
        sa.Column("first_order_at", allegiance.kit.orm.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_order_at", allegiance.kit.orm.UTCDateTime(timezone=True), nullable=True),
        sa.Column("settle_at", allegiance.kit.orm.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("tenant_id", "member_id"),
    )
    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.create_index("ix_members_email", ["tenant_id", "email"], unique=False)

    op.create_table(
        "orders",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("order_id", sa.String(length=255), nullable=False),
        sa.Column("member_id", sa.String(length=255), nullable=True),
        sa.Column("account_id", sa.String(length=255), nullable=True),
        sa.Column("placed_at", allegiance.kit.orm.UTCDateTime(timezone=True), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("subtotal_minor", sa.BigInteger(), nullable=False),
        sa.Column("total_minor", sa.BigInteger(), nullable=False),
        sa.Column("refunded_minor", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("program_version", sa.Integer(), nullable=True),
        sa.Column(
            "payload",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", allegiance.kit.orm.UTCDateTime(timezone=True), nullable=False),
        sa.Column("partner", sa.String(length=64), nullable=True),
        sa.Column(
            "promotions",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.PrimaryKeyConstraint("tenant_id", "order_id"),
    )
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.create_index(
            "ix_orders_member", ["tenant_id", "member_id", "placed_at"], unique=False
        )

    op.create_table(
        "outbox_events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("event_id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("type", sa.String(length=100), nullable=False),
        sa.Column("created_at", allegiance.kit.orm.UTCDateTime(timezone=True), nullable=False),
        sa.Column(
            "data",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("dispatched_at", allegiance.kit.orm.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("event_id"),
    )
    with op.batch_alter_table("outbox_events", schema=None) as batch_op:
        batch_op.create_index("ix_outbox_pending", ["dispatched_at", "id"], unique=False)
        batch_op.create_index("ix_outbox_tenant_type", ["tenant_id", "type"], unique=False)

    op.create_table(
        "refunds",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("refund_id", sa.String(length=255), nullable=False),
        sa.Column("order_id", sa.String(length=255), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column(
            "payload",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", allegiance.kit.orm.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "refund_id"),
    )
    with op.batch_alter_table("refunds", schema=None) as batch_op:
        batch_op.create_index("ix_refunds_order", ["tenant_id", "order_id"], unique=False)

    op.create_table(
        "rule_usage",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("scope", sa.String(length=80), nullable=False),
        sa.Column("member_id", sa.String(length=255), nullable=False),
        sa.Column("period_key", sa.String(length=20), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "scope", "member_id", "period_key"),
    )
    op.create_table(
        "tenants",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("program_version", sa.Integer(), nullable=True),
        sa.Column("created_at", allegiance.kit.orm.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("prefix", sa.String(length=24), nullable=False),
        sa.Column("scope", sa.String(length=20), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("created_at", allegiance.kit.orm.UTCDateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", allegiance.kit.orm.UTCDateTime(timezone=True), nullable=True),
        sa.Column("partner", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key_hash"),
    )
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.create_index("ix_api_keys_tenant", ["tenant_id"], unique=False)

    op.create_table(
        "program_versions",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column(
            "document",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", allegiance.kit.orm.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("tenant_id", "version"),
    )
    op.create_table(
        "subscriptions",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("subscription_id", sa.String(length=40), nullable=False),
        sa.Column("member_id", sa.String(length=255), nullable=False),
        sa.Column("plan", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("started_at", allegiance.kit.orm.UTCDateTime(timezone=True), nullable=False),
        sa.Column("trial_ends_at", allegiance.kit.orm.UTCDateTime(timezone=True), nullable=True),
        sa.Column("anchor_at", allegiance.kit.orm.UTCDateTime(timezone=True), nullable=True),
        sa.Column(
            "current_period_end", allegiance.kit.orm.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column("cancel_at_period_end", sa.Boolean(), nullable=False),
        sa.Column("cancelled_at", allegiance.kit.orm.UTCDateTime(timezone=True), nullable=True),
        sa.Column("cancel_reason", sa.String(length=500), nullable=True),
        sa.Column("ended_at", allegiance.kit.orm.UTCDateTime(timezone=True), nullable=True),
        sa.Column("renewal_notified", sa.Boolean(), nullable=False),
        sa.Column("created_at", allegiance.kit.orm.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", allegiance.kit.orm.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("tenant_id", "subscription_id"),
    )
    with op.batch_alter_table("subscriptions", schema=None) as batch_op:
        batch_op.create_index("ix_subscriptions_member", ["tenant_id", "member_id"], unique=False)
        batch_op.create_index(
            "ix_subscriptions_due", ["tenant_id", "status", "current_period_end"], unique=False
        )

    op.create_table(
        "subscription_payments",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("payment_id", sa.String(length=255), nullable=False),
        sa.Column("subscription_id", sa.String(length=40), nullable=False),
        sa.Column("member_id", sa.String(length=255), nullable=False),
        sa.Column("plan", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("paid_at", allegiance.kit.orm.UTCDateTime(timezone=True), nullable=False),
        sa.Column("period_start", allegiance.kit.orm.UTCDateTime(timezone=True), nullable=False),
        sa.Column("period_end", allegiance.kit.orm.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_at", allegiance.kit.orm.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "payment_id"),
    )
    with op.batch_alter_table("subscription_payments", schema=None) as batch_op:
        batch_op.create_index(
            "ix_subscription_payments_member", ["tenant_id", "member_id", "plan"], unique=False
        )
        batch_op.create_index(
            "ix_subscription_payments_subscription",
            ["tenant_id", "subscription_id"],
            unique=False,
        )

    op.create_table(
        "tier_facts",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("owner_type", sa.String(length=20), nullable=False),
        sa.Column("owner_id", sa.String(length=255), nullable=False),
        sa.Column("at", allegiance.kit.orm.UTCDateTime(timezone=True), nullable=False),
        sa.Column("source_type", sa.String(length=20), nullable=False),
        sa.Column("source_id", sa.String(length=255), nullable=False),
        sa.Column("spend_minor", sa.BigInteger(), nullable=False),
        sa.Column("orders", sa.Integer(), nullable=False),
        sa.Column("points_minor", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("tier_facts", schema=None) as batch_op:
        batch_op.create_index(
            "ix_tier_facts_owner", ["tenant_id", "owner_type", "owner_id", "at"], unique=False
        )

    op.create_table(
        "tier_history",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("owner_type", sa.String(length=20), nullable=False),
        sa.Column("owner_id", sa.String(length=255), nullable=False),
        sa.Column("at", allegiance.kit.orm.UTCDateTime(timezone=True), nullable=False),
        sa.Column("from_key", sa.String(length=64), nullable=True),
        sa.Column("to_key", sa.String(length=64), nullable=True),
        sa.Column("reason", sa.String(length=40), nullable=False),
        sa.Column("value", sa.String(length=40), nullable=True),
        sa.Column("source_id", sa.String(length=255), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("tier_history", schema=None) as batch_op:
        batch_op.create_index(
            "ix_tier_history_owner", ["tenant_id", "owner_type", "owner_id"], unique=False
        )

    op.create_table(
        "tier_states",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("owner_type", sa.String(length=20), nullable=False),
        sa.Column("owner_id", sa.String(length=255), nullable=False),
        sa.Column("achieved_key", sa.String(length=64), nullable=True),
        sa.Column("manual_key", sa.String(length=64), nullable=True),
        sa.Column("manual_until", allegiance.kit.orm.UTCDateTime(timezone=True), nullable=True),
        sa.Column("manual_reason", sa.String(length=500), nullable=True),
        sa.Column("shown_key", sa.String(length=64), nullable=True),
        sa.Column("shown_since", allegiance.kit.orm.UTCDateTime(timezone=True), nullable=True),
        sa.Column("period_start", allegiance.kit.orm.UTCDateTime(timezone=True), nullable=True),
        sa.Column("next_review_at", allegiance.kit.orm.UTCDateTime(timezone=True), nullable=True),
        sa.Column("downgrade_to", sa.String(length=64), nullable=True),
        sa.Column("downgrade_at", allegiance.kit.orm.UTCDateTime(timezone=True), nullable=True),
        sa.Column("due_at", allegiance.kit.orm.UTCDateTime(timezone=True), nullable=True),
        sa.Column("updated_at", allegiance.kit.orm.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "owner_type", "owner_id"),
    )
    with op.batch_alter_table("tier_states", schema=None) as batch_op:
        batch_op.create_index("ix_tier_states_due", ["tenant_id", "due_at"], unique=False)

    op.create_table(
        "accounts",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.String(length=255), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("group_key", sa.String(length=64), nullable=True),
        sa.Column("pooled", sa.Boolean(), nullable=False),
        sa.Column("approval_threshold_minor", sa.BigInteger(), nullable=True),
        sa.Column("approval_timeout_hours", sa.Integer(), nullable=False),
        sa.Column(
            "attributes",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("last_activity_at", allegiance.kit.orm.UTCDateTime(timezone=True), nullable=True),
        sa.Column("settle_at", allegiance.kit.orm.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", allegiance.kit.orm.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", allegiance.kit.orm.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "account_id"),
    )

    op.create_table(
        "redemptions",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("redemption_id", sa.String(length=255), nullable=False),
        sa.Column("member_id", sa.String(length=255), nullable=False),
        sa.Column("owner_type", sa.String(length=20), nullable=False),
        sa.Column("owner_id", sa.String(length=255), nullable=False),
        sa.Column("account_id", sa.String(length=255), nullable=True),
        sa.Column("reward", sa.String(length=64), nullable=False),
        sa.Column("reward_type", sa.String(length=30), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("wallet", sa.String(length=64), nullable=False),
        sa.Column("points_minor", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column(
            "held_lots",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("ledger_account_id", sa.BigInteger(), nullable=True),
        sa.Column(
            "approval_expires_at", allegiance.kit.orm.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column("decided_at", allegiance.kit.orm.UTCDateTime(timezone=True), nullable=True),
        sa.Column("decided_by", sa.String(length=255), nullable=True),
        sa.Column("decision_note", sa.String(length=500), nullable=True),
        sa.Column("partner", sa.String(length=64), nullable=True),
        sa.Column(
            "issued",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("fulfilment", sa.String(length=20), nullable=True),
        sa.Column(
            "shipping_address",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("tracking", sa.String(length=200), nullable=True),
        sa.Column("perk", sa.String(length=100), nullable=True),
        sa.Column("perk_until", allegiance.kit.orm.UTCDateTime(timezone=True), nullable=True),
        sa.Column("cancelled_at", allegiance.kit.orm.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", allegiance.kit.orm.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", allegiance.kit.orm.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "redemption_id"),
    )
    with op.batch_alter_table("redemptions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_redemptions_account", ["tenant_id", "account_id", "status"], unique=False
        )
        batch_op.create_index("ix_redemptions_member", ["tenant_id", "member_id"], unique=False)
        batch_op.create_index(
            "ix_redemptions_perks", ["tenant_id", "member_id", "perk_until"], unique=False
        )
        batch_op.create_index(
            "ix_redemptions_waiting", ["tenant_id", "status", "approval_expires_at"], unique=False
        )

    op.create_table(
        "referral_codes",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("member_id", sa.String(length=255), nullable=False),
        sa.Column("code", sa.String(length=100), nullable=False),
        sa.Column("created_at", allegiance.kit.orm.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "member_id"),
        sa.UniqueConstraint("tenant_id", "code", name="uq_referral_codes_code"),
    )
    op.create_table(
        "referrals",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("referee_id", sa.String(length=255), nullable=False),
        sa.Column("referrer_id", sa.String(length=255), nullable=True),
        sa.Column("code", sa.String(length=100), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.String(length=40), nullable=True),
        sa.Column("order_id", sa.String(length=255), nullable=True),
        sa.Column("referee_wallet", sa.String(length=64), nullable=True),
        sa.Column("referee_points_minor", sa.BigInteger(), nullable=False),
        sa.Column("referrer_wallet", sa.String(length=64), nullable=True),
        sa.Column("referrer_points_minor", sa.BigInteger(), nullable=False),
        sa.Column("qualified_at", allegiance.kit.orm.UTCDateTime(timezone=True), nullable=True),
        sa.Column("convert_at", allegiance.kit.orm.UTCDateTime(timezone=True), nullable=True),
        sa.Column("converted_at", allegiance.kit.orm.UTCDateTime(timezone=True), nullable=True),
        sa.Column("voided_at", allegiance.kit.orm.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", allegiance.kit.orm.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", allegiance.kit.orm.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("tenant_id", "referee_id", name="uq_referrals_referee"),
    )
    with op.batch_alter_table("referrals", schema=None) as batch_op:
        batch_op.create_index(
            "ix_referrals_referrer", ["tenant_id", "referrer_id", "created_at"], unique=False
        )
        batch_op.create_index(
            "ix_referrals_due", ["tenant_id", "status", "convert_at"], unique=False
        )
        batch_op.create_index("ix_referrals_order", ["tenant_id", "order_id"], unique=False)

    op.create_table(
        "coupon_uses",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("order_id", sa.String(length=255), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("used_at", allegiance.kit.orm.UTCDateTime(timezone=True), nullable=False),
        sa.Column("released_at", allegiance.kit.orm.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("tenant_id", "code", "order_id"),
    )
    with op.batch_alter_table("coupon_uses", schema=None) as batch_op:
        batch_op.create_index("ix_coupon_uses_order", ["tenant_id", "order_id"], unique=False)

    op.create_table(
        "coupons",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("member_id", sa.String(length=255), nullable=True),
        sa.Column(
            "spec",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("starts_at", allegiance.kit.orm.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", allegiance.kit.orm.UTCDateTime(timezone=True), nullable=True),
        sa.Column("max_uses", sa.Integer(), nullable=False),
        sa.Column("uses", sa.Integer(), nullable=False),
        sa.Column("balance_minor", sa.BigInteger(), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("source_type", sa.String(length=20), nullable=False),
        sa.Column("source_id", sa.String(length=255), nullable=True),
        sa.Column("created_at", allegiance.kit.orm.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "code"),
    )
    with op.batch_alter_table("coupons", schema=None) as batch_op:
        batch_op.create_index("ix_coupons_member", ["tenant_id", "member_id"], unique=False)
        batch_op.create_index(
            "ix_coupons_source", ["tenant_id", "source_type", "source_id"], unique=False
        )

    op.create_table(
        "member_badges",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("member_id", sa.String(length=255), nullable=False),
        sa.Column("badge", sa.String(length=64), nullable=False),
        sa.Column("level", sa.String(length=64), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("source_type", sa.String(length=20), nullable=False),
        sa.Column("source_id", sa.String(length=255), nullable=False),
        sa.Column("awarded_at", allegiance.kit.orm.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "member_id", "badge", "level"),
    )
    op.create_table(
        "challenge_progress",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("member_id", sa.String(length=255), nullable=False),
        sa.Column("challenge", sa.String(length=64), nullable=False),
        sa.Column(
            "steps",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("streak_current", sa.Integer(), nullable=False),
        sa.Column("streak_best", sa.Integer(), nullable=False),
        sa.Column("streak_last", sa.Integer(), nullable=True),
        sa.Column("completed_at", allegiance.kit.orm.UTCDateTime(timezone=True), nullable=True),
        sa.Column("updated_at", allegiance.kit.orm.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "member_id", "challenge"),
    )

    op.create_table(
        "sweepstake_draws",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("sweepstake", sa.String(length=64), nullable=False),
        sa.Column("seed", sa.String(length=64), nullable=False),
        sa.Column("commitment", sa.String(length=64), nullable=False),
        sa.Column("opened_at", allegiance.kit.orm.UTCDateTime(timezone=True), nullable=False),
        sa.Column("drawn_at", allegiance.kit.orm.UTCDateTime(timezone=True), nullable=True),
        sa.Column("check_hash", sa.String(length=64), nullable=True),
        sa.Column("winners_count", sa.Integer(), nullable=True),
        sa.Column(
            "winners",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.PrimaryKeyConstraint("tenant_id", "sweepstake"),
    )
    op.create_table(
        "sweepstake_entries",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("sweepstake", sa.String(length=64), nullable=False),
        sa.Column("entry_id", sa.String(length=300), nullable=False),
        sa.Column("member_id", sa.String(length=255), nullable=False),
        sa.Column("source", sa.String(length=10), nullable=False),
        sa.Column("source_id", sa.String(length=255), nullable=False),
        sa.Column("points_minor", sa.BigInteger(), nullable=False),
        sa.Column("created_at", allegiance.kit.orm.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "sweepstake", "entry_id"),
    )
    with op.batch_alter_table("sweepstake_entries", schema=None) as batch_op:
        batch_op.create_index(
            "ix_sweepstake_entries_member", ["tenant_id", "sweepstake", "member_id"], unique=False
        )

    op.create_table(
        "poll_votes",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("poll_key", sa.String(length=64), nullable=False),
        sa.Column("member_id", sa.String(length=255), nullable=False),
        sa.Column("option", sa.String(length=64), nullable=False),
        sa.Column("created_at", allegiance.kit.orm.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", allegiance.kit.orm.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "poll_key", "member_id"),
    )
    op.create_table(
        "quiz_attempts",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("quiz_key", sa.String(length=64), nullable=False),
        sa.Column("attempt_id", sa.String(length=255), nullable=False),
        sa.Column("member_id", sa.String(length=255), nullable=False),
        sa.Column(
            "answers",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("passed", sa.Boolean(), nullable=False),
        sa.Column("wallet", sa.String(length=64), nullable=True),
        sa.Column("reward_minor", sa.BigInteger(), nullable=False),
        sa.Column("created_at", allegiance.kit.orm.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("tenant_id", "quiz_key", "attempt_id", name="uq_quiz_attempts_id"),
    )
    with op.batch_alter_table("quiz_attempts", schema=None) as batch_op:
        batch_op.create_index(
            "ix_quiz_attempts_member", ["tenant_id", "quiz_key", "member_id"], unique=False
        )

    op.create_table(
        "survey_responses",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("survey_key", sa.String(length=64), nullable=False),
        sa.Column("member_id", sa.String(length=255), nullable=False),
        sa.Column("period", sa.String(length=20), nullable=False),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("tier", sa.String(length=64), nullable=True),
        sa.Column(
            "tags",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("wallet", sa.String(length=64), nullable=True),
        sa.Column("reward_minor", sa.BigInteger(), nullable=False),
        sa.Column("created_at", allegiance.kit.orm.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint(
            "tenant_id", "survey_key", "member_id", "period", name="uq_survey_responses_period"
        ),
    )
    with op.batch_alter_table("survey_responses", schema=None) as batch_op:
        batch_op.create_index(
            "ix_survey_responses_time", ["tenant_id", "survey_key", "created_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("survey_responses", schema=None) as batch_op:
        batch_op.drop_index("ix_survey_responses_time")

    op.drop_table("survey_responses")
    with op.batch_alter_table("quiz_attempts", schema=None) as batch_op:
        batch_op.drop_index("ix_quiz_attempts_member")

    op.drop_table("quiz_attempts")
    op.drop_table("poll_votes")
    with op.batch_alter_table("sweepstake_entries", schema=None) as batch_op:
        batch_op.drop_index("ix_sweepstake_entries_member")

    op.drop_table("sweepstake_entries")
    op.drop_table("sweepstake_draws")
    op.drop_table("challenge_progress")
    op.drop_table("member_badges")
    with op.batch_alter_table("coupons", schema=None) as batch_op:
        batch_op.drop_index("ix_coupons_source")
        batch_op.drop_index("ix_coupons_member")

    op.drop_table("coupons")
    with op.batch_alter_table("coupon_uses", schema=None) as batch_op:
        batch_op.drop_index("ix_coupon_uses_order")

    op.drop_table("coupon_uses")
    with op.batch_alter_table("referrals", schema=None) as batch_op:
        batch_op.drop_index("ix_referrals_order")
        batch_op.drop_index("ix_referrals_due")
        batch_op.drop_index("ix_referrals_referrer")

    op.drop_table("referrals")
    op.drop_table("referral_codes")
    with op.batch_alter_table("redemptions", schema=None) as batch_op:
        batch_op.drop_index("ix_redemptions_waiting")
        batch_op.drop_index("ix_redemptions_perks")
        batch_op.drop_index("ix_redemptions_member")
        batch_op.drop_index("ix_redemptions_account")

    op.drop_table("redemptions")
    op.drop_table("accounts")
    with op.batch_alter_table("tier_states", schema=None) as batch_op:
        batch_op.drop_index("ix_tier_states_due")

    op.drop_table("tier_states")
    with op.batch_alter_table("tier_history", schema=None) as batch_op:
        batch_op.drop_index("ix_tier_history_owner")

    op.drop_table("tier_history")
    with op.batch_alter_table("tier_facts", schema=None) as batch_op:
        batch_op.drop_index("ix_tier_facts_owner")

    op.drop_table("tier_facts")

    with op.batch_alter_table("subscription_payments", schema=None) as batch_op:
        batch_op.drop_index("ix_subscription_payments_subscription")
        batch_op.drop_index("ix_subscription_payments_member")

    op.drop_table("subscription_payments")
    with op.batch_alter_table("subscriptions", schema=None) as batch_op:
        batch_op.drop_index("ix_subscriptions_due")
        batch_op.drop_index("ix_subscriptions_member")

    op.drop_table("subscriptions")

    op.drop_table("program_versions")
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_index("ix_api_keys_tenant")

    op.drop_table("api_keys")
    op.drop_table("tenants")
    op.drop_table("rule_usage")
    with op.batch_alter_table("refunds", schema=None) as batch_op:
        batch_op.drop_index("ix_refunds_order")

    op.drop_table("refunds")
    with op.batch_alter_table("outbox_events", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_tenant_type")
        batch_op.drop_index("ix_outbox_pending")

    op.drop_table("outbox_events")
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index("ix_orders_member")

    op.drop_table("orders")
    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.drop_index("ix_members_email")

    op.drop_table("members")
    with op.batch_alter_table("ledger_transfers", schema=None) as batch_op:
        batch_op.drop_index("ix_transfers_partner")
        batch_op.drop_index("ix_transfers_order")
        batch_op.drop_index("ix_transfers_member")

    op.drop_table("ledger_transfers")
    with op.batch_alter_table("ledger_lots", schema=None) as batch_op:
        batch_op.drop_index("ix_lots_expiry_due")
        batch_op.drop_index("ix_lots_account")

    op.drop_table("ledger_lots")
    op.drop_table("ledger_accounts")
    op.drop_table("idempotency_records")
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index("ix_events_member")

    op.drop_table("events")
