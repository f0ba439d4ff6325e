"""Badges a member holds (one row per badge level reached) and challenge progress per member.

A badge without levels has ``level`` ``""``. A challenge's progress row is unique per
(tenant, member, challenge): its ``completed_at`` is set once, under the member's row lock.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from allegiance.kit.orm import Base, JSONType, UTCDateTime


class MemberBadge(Base):
    __tablename__ = "member_badges"

    tenant_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    member_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    badge: Mapped[str] = mapped_column(String(64), primary_key=True)
    level: Mapped[str] = mapped_column(String(64), primary_key=True)
    rank: Mapped[int] = mapped_column(Integer)  # 1-based level position (1 without levels)
    source_type: Mapped[str] = mapped_column(String(20))  # order | event | challenge
    source_id: Mapped[str] = mapped_column(String(255))
    awarded_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ChallengeProgress(Base):
    __tablename__ = "challenge_progress"

    tenant_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    member_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    challenge: Mapped[str] = mapped_column(String(64), primary_key=True)
    steps: Mapped[dict[str, Any]] = mapped_column(JSONType)  # step key -> count
    streak_current: Mapped[int] = mapped_column(Integer)
    streak_best: Mapped[int] = mapped_column(Integer)
    # ordinal of the last period with a qualifying activity (weeks or months since year 1)
    streak_last: Mapped[int | None] = mapped_column(Integer, nullable=True)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
