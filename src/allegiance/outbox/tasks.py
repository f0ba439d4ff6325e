"""The outbox dispatcher: hands each new domain event to every consumer exactly once."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine

from allegiance.config import get_settings
from allegiance.db import read_session, write_session
from allegiance.kit import retention
from allegiance.outbox import repository
from allegiance.outbox.consumers import consumers
from allegiance.outbox.models import OutboxEvent


def tenants_with_pending(engine: Engine) -> set[str]:
    """Tenants with undispatched events (at most a batch of them)."""
    with read_session(engine) as session:
        return set(repository.tenants_with_pending(session, get_settings().job_batch_size))


def dispatch(engine: Engine, tenant_id: str, now: datetime) -> int:
    """Dispatch the tenant's pending events in id order, a bounded batch per transaction.

    A consumer failing rolls the batch back; the events stay pending and the next run retries
    them (consumers must therefore be idempotent per event id)."""
    batch = get_settings().job_batch_size
    with read_session(engine) as session:
        # most rounds find nothing: no write transaction then
        if not repository.has_pending(session, tenant_id):
            return 0
    handled = 0
    readers = consumers()
    while True:
        with write_session(engine) as session:
            events = repository.claim_pending(session, tenant_id, batch)
            for event in events:
                for consume in readers:
                    consume(session, event, now)
                event.dispatched_at = now
        handled += len(events)
        if len(events) < batch:
            return handled


def prune_dispatched(engine: Engine, tenant_id: str, now: datetime) -> int:
    """Delete the tenant's events dispatched more than ``outbox_retention_days`` ago."""
    settings = get_settings()
    before = retention.cutoff(now, settings.outbox_retention_days)
    if before is None:
        return 0
    return retention.delete_in_batches(
        engine,
        OutboxEvent,
        [OutboxEvent.id],
        [OutboxEvent.dispatched_at < before, OutboxEvent.tenant_id == tenant_id],
        batch=settings.job_batch_size,
        max_batches=settings.job_max_batches,
    )
