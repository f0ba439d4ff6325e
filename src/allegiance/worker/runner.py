"""Runs every due job for every tenant; used by `jobs run`, `worker` and `serve`."""

from __future__ import annotations

import logging
import threading
from datetime import datetime

from sqlalchemy import Engine, select

from allegiance.config import get_settings
from allegiance.db import get_engine, read_session
from allegiance.kit.clock import utcnow
from allegiance.tenant.models import Tenant
from allegiance.worker.schedule import jobs

log = logging.getLogger("allegiance.worker")


def run_all(engine: Engine, now: datetime, tenant_id: str | None = None) -> dict[str, int]:
    """Run each job once for each tenant (or one tenant) as of ``now``; returns counts."""
    with read_session(engine) as session:
        tenants = [tenant_id] if tenant_id else list(session.scalars(select(Tenant.id)))
    counts: dict[str, int] = {}
    for job in jobs():
        total = 0
        for tid in tenants:
            total += job.run(engine, tid, now)
        counts[job.name] = total
    return counts


def run_frequent(engine: Engine, now: datetime) -> int:
    """Between full rounds: hand new events over and send due webhook deliveries, so a
    webhook leaves within about ``webhook_poll_seconds`` of its event."""
    from allegiance.outbox.tasks import dispatch
    from allegiance.webhook.tasks import deliver_due

    with read_session(engine) as session:
        tenants = list(session.scalars(select(Tenant.id)))
    handled = 0
    for tid in tenants:
        handled += dispatch(engine, tid, now)
        handled += deliver_due(engine, tid, now)
    return handled


def background_loop(stop: threading.Event) -> None:
    settings = get_settings()
    while not stop.wait(settings.jobs_interval_seconds):
        try:
            run_all(get_engine(), utcnow())
        except Exception:  # keep the loop alive; the next round retries
            log.exception("periodic jobs failed")
