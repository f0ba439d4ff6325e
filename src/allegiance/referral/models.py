"""Referral codes (one per member) and referrals (one per referee).

A referral is ``pending`` from the referee's enrollment until its first order, then
``qualified`` (the order met the program's condition; the hold runs until ``convert_at``) or
``rejected``; a qualified referral becomes ``converted`` (the referrer is credited) or
``voided`` (the order was refunded or cancelled inside the hold). A referral refused at
enrollment is ``rejected`` at once; ``reason`` says why.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from allegiance.kit.orm import Base, BigIntPK, UTCDateTime


class ReferralCode(Base):
    __tablename__ = "referral_codes"
    __table_args__ = (UniqueConstraint("tenant_id", "code", name="uq_referral_codes_code"),)

    tenant_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    member_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    code: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Referral(Base):
    __tablename__ = "referrals"
    __table_args__ = (UniqueConstraint("tenant_id", "referee_id", name="uq_referrals_referee"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(String(40))
    referee_id: Mapped[str] = mapped_column(String(255))
    referrer_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    code: Mapped[str] = mapped_column(String(100))
    # pending | rejected | qualified | converted | voided
    status: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str | None] = mapped_column(String(40), nullable=True)
    order_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    referee_wallet: Mapped[str | None] = mapped_column(String(64), nullable=True)
    referee_points_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    referrer_wallet: Mapped[str | None] = mapped_column(String(64), nullable=True)
    referrer_points_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    qualified_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    convert_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    converted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    voided_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


Index("ix_referrals_referrer", Referral.tenant_id, Referral.referrer_id, Referral.created_at)
Index("ix_referrals_due", Referral.tenant_id, Referral.status, Referral.convert_at)
Index("ix_referrals_order", Referral.tenant_id, Referral.order_id)
