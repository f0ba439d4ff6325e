from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Date, Float, Index, Integer, SmallInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from allegiance.kit.orm import Base, JSONType, UTCDateTime


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
    # how the churn risk was judged (own_interval | p_alive | population_interval) and the
    # gap in days it was compared with (none for p_alive)
    churn_reason: Mapped[str | None] = mapped_column(String(40), nullable=True)
    churn_threshold_days: Mapped[float | None] = mapped_column(Float, nullable=True)
    expected_spend_minor: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class ClvModel(Base):
    """The tenant's fitted CLV model (BG/NBD + Gamma-Gamma) and the scoring run's lease.

    One row per tenant: a refit replaces the parameters. The row also exists before any fit,
    to hold when members were last scored (RFM and churn need no model)."""

    __tablename__ = "clv_models"

    tenant_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    fitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    calibration_end: Mapped[date | None] = mapped_column(Date, nullable=True)
    time_unit: Mapped[str] = mapped_column(String(10), default="week")
    horizon: Mapped[float] = mapped_column(Float, default=52.0)
    discount_rate: Mapped[float] = mapped_column(Float, default=0.0)  # annual fraction
    # BG/NBD
    r: Mapped[float | None] = mapped_column(Float, nullable=True)
    alpha: Mapped[float | None] = mapped_column(Float, nullable=True)
    a: Mapped[float | None] = mapped_column(Float, nullable=True)
    b: Mapped[float | None] = mapped_column(Float, nullable=True)
    bgnbd_log_likelihood: Mapped[float | None] = mapped_column(Float, nullable=True)
    # Gamma-Gamma, spend in the program currency's major unit
    p: Mapped[float | None] = mapped_column(Float, nullable=True)
    q: Mapped[float | None] = mapped_column(Float, nullable=True)
    gamma: Mapped[float | None] = mapped_column(Float, nullable=True)
    gamma_gamma_log_likelihood: Mapped[float | None] = mapped_column(Float, nullable=True)
    customers: Mapped[int] = mapped_column(Integer, default=0)
    repeat_buyers: Mapped[int] = mapped_column(Integer, default=0)
    summary: Mapped[dict] = mapped_column(JSONType, default=dict)
    # scoring: when members were last scored, and a lease so one worker scores at a time
    scored_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    scoring_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


# the at-risk list reads members by risk, highest value first
Index("ix_member_scores_risk", MemberScore.tenant_id, MemberScore.churn_risk, MemberScore.clv_minor)
