from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from allegiance.kit.orm import Base, BigIntPK, JSONType, UTCDateTime


class AutomationRun(Base):
    """One run of an automation for one trigger instance (an event id, a member's birthday in
    a year...). The unique keys make triggering idempotent and enforce guards under
    concurrency: a second insert for the same trigger or guard period is skipped."""

    __tablename__ = "automation_runs"
    __table_args__ = (
        UniqueConstraint("tenant_id", "automation_key", "trigger_key"),
        UniqueConstraint("tenant_id", "automation_key", "guard_key"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(String(40))
    automation_key: Mapped[str] = mapped_column(String(64))
    trigger_key: Mapped[str] = mapped_column(String(400))
    guard_key: Mapped[str | None] = mapped_column(String(400), nullable=True)
    member_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    # what fired it: {type, id, data} (the event, or the scheduled occasion)
    trigger: Mapped[dict] = mapped_column(JSONType)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(10))  # pending | done | skipped | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    result: Mapped[list | None] = mapped_column(JSONType, nullable=True)  # per action
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


Index("ix_automation_runs_due", AutomationRun.tenant_id, AutomationRun.status, AutomationRun.due_at)
Index("ix_automation_runs_member", AutomationRun.tenant_id, AutomationRun.member_id)


class AutomationMark(Base):
    """Occasions already announced (a member's birthday in a year), so that a scheduled
    job run twice on the same day emits ``member.birthday`` once."""

    __tablename__ = "automation_marks"

    tenant_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    kind: Mapped[str] = mapped_column(String(40), primary_key=True)
    key: Mapped[str] = mapped_column(String(400), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
