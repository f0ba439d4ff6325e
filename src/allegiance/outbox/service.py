"""Domain events: written in the same transaction as the change that caused them.

Envelope: ``{id, type, created_at, tenant_id, data}``; new types are additive. Delivery to
webhooks and e-mail reads this table (at-least-once, in id order).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from allegiance.kit.ids import new_id
from allegiance.outbox import repository


def event_row(tenant_id: str, type_: str, data: dict[str, Any], now: datetime) -> dict[str, Any]:
    return {
        "event_id": new_id("evt"),
        "tenant_id": tenant_id,
        "type": type_,
        "created_at": now,
        "data": data,
        "dispatched_at": None,
    }


def emit(
    session: Session, *, tenant_id: str, type_: str, data: dict[str, Any], now: datetime
) -> None:
    repository.insert_events(session, [event_row(tenant_id, type_, data, now)])


def emit_many(session: Session, rows: list[dict[str, Any]]) -> None:
    repository.insert_events(session, rows)


def envelope(event: Any) -> dict[str, Any]:
    return {
        "id": event.event_id,
        "type": event.type,
        "created_at": event.created_at.isoformat(),
        "tenant_id": event.tenant_id,
        "data": event.data,
    }


def list_events(
    session: Session, *, tenant_id: str, type_: str | None, limit: int, after_id: int | None
) -> list[Any]:
    return repository.list_events(session, tenant_id, type_, limit, after_id)
