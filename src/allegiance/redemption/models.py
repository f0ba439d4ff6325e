"""Redemptions: points spent on a reward, possibly waiting for a B2B account admin."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from allegiance.kit.orm import Base, JSONType, UTCDateTime


class Redemption(Base):
    __tablename__ = "redemptions"

    tenant_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    redemption_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    member_id: Mapped[str] = mapped_column(String(255))
    # the wallet's holder: the member, or a pooled B2B account
    owner_type: Mapped[str] = mapped_column(String(20))
    owner_id: Mapped[str] = mapped_column(String(255))
    account_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    reward: Mapped[str] = mapped_column(String(64))
    reward_type: Mapped[str] = mapped_column(String(30))
    quantity: Mapped[int] = mapped_column(Integer)
    wallet: Mapped[str] = mapped_column(String(64))
    points_minor: Mapped[int] = mapped_column(BigInteger)
    # awaiting_approval | completed | rejected | expired
    status: Mapped[str] = mapped_column(String(20))
    # the lots a hold took points from: [[lot id, amount], ...] (given back on release)
    held_lots: Mapped[list] = mapped_column(JSONType, default=list)
    ledger_account_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    approval_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    decided_by: Mapped[str | None] = mapped_column(String(255), nullable=True)
    decision_note: Mapped[str | None] = mapped_column(String(500), nullable=True)
    partner: Mapped[str | None] = mapped_column(String(64), nullable=True)  # redeemed at
    # what was issued: {"coupon": {...}, "credit": {...}, "value": "40.00", ...}
    issued: Mapped[dict] = mapped_column(JSONType, default=dict)
    # physical and experience rewards: pending | shipped | delivered | cancelled
    fulfilment: Mapped[str | None] = mapped_column(String(20), nullable=True)
    shipping_address: Mapped[dict | None] = mapped_column(JSONType, nullable=True)
    tracking: Mapped[str | None] = mapped_column(String(200), nullable=True)
    # access rewards: the perk the member holds until perk_until
    perk: Mapped[str | None] = mapped_column(String(100), nullable=True)
    perk_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


Index(
    "ix_redemptions_waiting",
    Redemption.tenant_id,
    Redemption.status,
    Redemption.approval_expires_at,
)
Index("ix_redemptions_account", Redemption.tenant_id, Redemption.account_id, Redemption.status)
Index("ix_redemptions_member", Redemption.tenant_id, Redemption.member_id)
Index("ix_redemptions_perks", Redemption.tenant_id, Redemption.member_id, Redemption.perk_until)
