"""B2B accounts: a company whose buyers order for it. Membership is ``members.account_id``
with ``members.account_role`` (admin | buyer)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from allegiance.kit.orm import Base, JSONType, UTCDateTime


class Account(Base):
    __tablename__ = "accounts"

    tenant_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    group_key: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # pooled: buyers' orders earn into the account's wallets and qualify the account's tier
    pooled: Mapped[bool] = mapped_column(Boolean, default=False)
    # a buyer's redemption above this many points (minor units of the reward's wallet)
    # waits for an account admin; null: no approval needed
    approval_threshold_minor: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    approval_timeout_hours: Mapped[int] = mapped_column(Integer, default=72)
    attributes: Mapped[dict] = mapped_column(JSONType, default=dict)
    # the pooled wallet's activity and next lot moment, as members have them
    last_activity_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    settle_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
