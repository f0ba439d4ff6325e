from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Boolean, Date, Index, Integer, String, false, true
from sqlalchemy.orm import Mapped, mapped_column

from allegiance.kit.orm import Base, JSONType, UTCDateTime


class Member(Base):
    __tablename__ = "members"

    tenant_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    member_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    email: Mapped[str | None] = mapped_column(String(320), nullable=True)
    name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    phone: Mapped[str | None] = mapped_column(String(50), nullable=True)
    birthdate: Mapped[date | None] = mapped_column(Date, nullable=True)
    locale: Mapped[str | None] = mapped_column(String(20), nullable=True)
    tags: Mapped[list] = mapped_column(JSONType, default=list)
    attributes: Mapped[dict] = mapped_column(JSONType, default=dict)
    account_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    account_role: Mapped[str | None] = mapped_column(String(10), nullable=True)  # admin | buyer
    referral_code: Mapped[str | None] = mapped_column(String(100), nullable=True)
    enrolled_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    erased_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # activity and purchase statistics (kept net of refunds)
    last_activity_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    orders_count: Mapped[int] = mapped_column(Integer, default=0)
    spend_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    first_order_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_order_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # earliest moment a lot of this member activates or expires; settling is skipped before it
    settle_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # consent: transactional mail (account notices) unless withdrawn; marketing only when given
    email_consent: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    email_consent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    marketing_consent: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    marketing_consent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


Index("ix_members_email", Member.tenant_id, Member.email)
