from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from allegiance.kit.orm import Base, BigIntPK, JSONType, UTCDateTime


class OutboxEvent(Base):
    __tablename__ = "outbox_events"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(40), unique=True)
    tenant_id: Mapped[str] = mapped_column(String(40))
    type: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    data: Mapped[dict] = mapped_column(JSONType)
    dispatched_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


Index("ix_outbox_pending", OutboxEvent.dispatched_at, OutboxEvent.id)
Index("ix_outbox_tenant_type", OutboxEvent.tenant_id, OutboxEvent.type)
