"""Coupons and their uses by orders."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from allegiance.kit.orm import Base, JSONType, UTCDateTime


class Coupon(Base):
    __tablename__ = "coupons"

    tenant_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    code: Mapped[str] = mapped_column(String(64), primary_key=True)  # stored upper-case
    kind: Mapped[str] = mapped_column(String(20))  # reward | batch | rule | gift_card
    member_id: Mapped[str | None] = mapped_column(String(255), nullable=True)  # bound to
    spec: Mapped[dict] = mapped_column(JSONType)  # the DiscountSpec as issued
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    max_uses: Mapped[int] = mapped_column(Integer)
    uses: Mapped[int] = mapped_column(Integer)
    balance_minor: Mapped[int | None] = mapped_column(BigInteger, nullable=True)  # gift cards
    status: Mapped[str] = mapped_column(String(20))  # active | used | void
    source_type: Mapped[str] = mapped_column(String(20))  # redemption | batch | rule | api
    source_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class CouponUse(Base):
    __tablename__ = "coupon_uses"

    tenant_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    order_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    used_at: Mapped[datetime] = mapped_column(UTCDateTime)
    released_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


Index("ix_coupons_source", Coupon.tenant_id, Coupon.source_type, Coupon.source_id)
Index("ix_coupons_member", Coupon.tenant_id, Coupon.member_id)
Index("ix_coupon_uses_order", CouponUse.tenant_id, CouponUse.order_id)
