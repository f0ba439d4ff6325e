"""A sweepstake's draw state (seed, commitment, result) and its entries.

The seed is generated when entries open and stays secret until the draw; its SHA-256
(``commitment``) is public from the start. Entries are one row each, keyed by entry id.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from allegiance.kit.orm import Base, JSONType, UTCDateTime


class SweepstakeDraw(Base):
    __tablename__ = "sweepstake_draws"

    tenant_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    sweepstake: Mapped[str] = mapped_column(String(64), primary_key=True)
    seed: Mapped[str] = mapped_column(String(64))  # hex; secret until drawn_at
    commitment: Mapped[str] = mapped_column(String(64))  # sha256(seed) hex
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime)
    drawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    check_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # N at the draw, so a later program change does not alter the published data
    winners_count: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # [{"entry_id", "member_id", "prize"}] in draw order, once drawn
    winners: Mapped[Any] = mapped_column(JSONType, nullable=True)


class SweepstakeEntry(Base):
    __tablename__ = "sweepstake_entries"

    tenant_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    sweepstake: Mapped[str] = mapped_column(String(64), primary_key=True)
    entry_id: Mapped[str] = mapped_column(String(300), primary_key=True)
    member_id: Mapped[str] = mapped_column(String(255))
    source: Mapped[str] = mapped_column(String(10))  # event | purchase
    source_id: Mapped[str] = mapped_column(String(255))
    points_minor: Mapped[int] = mapped_column(BigInteger, default=0)  # paid for this entry
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


Index(
    "ix_sweepstake_entries_member",
    SweepstakeEntry.tenant_id,
    SweepstakeEntry.sweepstake,
    SweepstakeEntry.member_id,
)
