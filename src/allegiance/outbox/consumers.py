"""Who reads the outbox: each consumer sees every event once, inside the dispatching
transaction, so what it writes (webhook deliveries, automation runs) commits together with
the event's ``dispatched_at`` — nothing is lost, nothing is handed over twice."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy.orm import Session

from allegiance.outbox.models import OutboxEvent

Consumer = Callable[[Session, OutboxEvent, datetime], None]


def consumers() -> list[Consumer]:
    """Every consumer, in the order they see an event."""
    from allegiance.automation.service import on_event as automations
    from allegiance.webhook.service import fan_out

    return [
        fan_out,  # webhook deliveries
        automations,  # automation runs (trigger events, n-th orders, milestones)
    ]
