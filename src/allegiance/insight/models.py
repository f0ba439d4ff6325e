from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Float, Integer, SmallInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from allegiance.kit.orm import Base, UTCDateTime


class MemberScore(Base):
    """The latest computed scores of one member; rewritten by the scoring job and on demand.
    Segments and conditions read it; it is derived data and can be rebuilt at any time."""

    __tablename__ = "member_scores"

    tenant_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    member_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    orders_count: Mapped[int] = mapped_column(Integer, default=0)
    first_order_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_order_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    recency_days: Mapped[int | None] = mapped_column(Integer, nullable=True)
    monetary_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    aov_minor: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    rfm_r: Mapped[int | None] = mapped_column(SmallInteger, nullable=True)
    rfm_f: Mapped[int | None] = mapped_column(SmallInteger, nullable=True)
    rfm_m: Mapped[int | None] = mapped_column(SmallInteger, nullable=True)
    rfm_segment: Mapped[str | None] = mapped_column(String(40), nullable=True)
    expected_purchases: Mapped[float | None] = mapped_column(Float, nullable=True)
    clv_minor: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    p_alive: Mapped[float | None] = mapped_column(Float, nullable=True)
    churn_risk: Mapped[str | None] = mapped_column(String(20), nullable=True)
