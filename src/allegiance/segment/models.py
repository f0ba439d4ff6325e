from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from allegiance.kit.orm import Base, UTCDateTime


class SegmentMembership(Base):
    """A member is in a segment from ``entered_at`` until the row is deleted (it left)."""

    __tablename__ = "segment_memberships"

    tenant_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    segment_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    member_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    entered_at: Mapped[datetime] = mapped_column(UTCDateTime)


class SegmentCheck(Base):
    """When a member's segments were last evaluated, and against which program version; the
    refresh job re-evaluates members whose check is old or was made under another version."""

    __tablename__ = "segment_checks"

    tenant_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    member_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    checked_at: Mapped[datetime] = mapped_column(UTCDateTime)
    program_version: Mapped[int] = mapped_column(Integer)


Index("ix_segment_memberships_member", SegmentMembership.tenant_id, SegmentMembership.member_id)
