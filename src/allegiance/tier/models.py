"""Tier tables: qualifying facts, the current state per holder, and the history of changes.

A holder is a member, or a B2B account whose wallet is pooled (``owner_type`` member|account).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from allegiance.kit.orm import Base, BigIntPK, UTCDateTime


class TierFact(Base):
    """What one order, refund or event adds to a holder's tier metrics (net of refunds)."""

    __tablename__ = "tier_facts"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(String(40))
    owner_type: Mapped[str] = mapped_column(String(20))
    owner_id: Mapped[str] = mapped_column(String(255))
    # when the fact counts: a refund counts at its order's placed_at, so windows net it out
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    source_type: Mapped[str] = mapped_column(String(20))
    source_id: Mapped[str] = mapped_column(String(255))
    spend_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    orders: Mapped[int] = mapped_column(Integer, default=0)
    points_minor: Mapped[int] = mapped_column(BigInteger, default=0)


class TierState(Base):
    __tablename__ = "tier_states"

    tenant_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    owner_type: Mapped[str] = mapped_column(String(20), primary_key=True)
    owner_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    # the tier the metric earned, under the downgrade policy
    achieved_key: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # manual assignment: a floor, until manual_until (open-ended when null)
    manual_key: Mapped[str | None] = mapped_column(String(64), nullable=True)
    manual_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    manual_reason: Mapped[str | None] = mapped_column(String(500), nullable=True)
    # the tier last shown (effective) and since when: history and events compare with it
    shown_key: Mapped[str | None] = mapped_column(String(64), nullable=True)
    shown_since: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # with reset_at_review the metric counts from the last review
    period_start: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    next_review_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    downgrade_to: Mapped[str | None] = mapped_column(String(64), nullable=True)
    downgrade_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # earliest of next_review_at, downgrade_at and manual_until: what the review job looks at
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class TierChange(Base):
    __tablename__ = "tier_history"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(String(40))
    owner_type: Mapped[str] = mapped_column(String(20))
    owner_id: Mapped[str] = mapped_column(String(255))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    from_key: Mapped[str | None] = mapped_column(String(64), nullable=True)
    to_key: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # qualified | review | grace_ended | refund | manual | manual_ended | requalified ...
    reason: Mapped[str] = mapped_column(String(40))
    value: Mapped[str | None] = mapped_column(String(40), nullable=True)
    source_id: Mapped[str | None] = mapped_column(String(255), nullable=True)


Index(
    "ix_tier_facts_owner", TierFact.tenant_id, TierFact.owner_type, TierFact.owner_id, TierFact.at
)
Index("ix_tier_states_due", TierState.tenant_id, TierState.due_at)
Index("ix_tier_history_owner", TierChange.tenant_id, TierChange.owner_type, TierChange.owner_id)
