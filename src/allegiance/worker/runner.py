"""Runs every due job for every tenant; used by `jobs run`, `worker` and `serve`."""

from __future__ import annotations

import logging
import threading
import time
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
    webhook leaves within about ``webhook_poll_seconds`` of its event. Only tenants with
    something to do are visited (two indexed queries find them)."""
    from allegiance.outbox.tasks import dispatch, tenants_with_pending
    from allegiance.webhook.tasks import deliver_due, tenants_with_due

    handled = 0
    for tid in sorted(tenants_with_pending(engine) | tenants_with_due(engine, now)):
        handled += dispatch(engine, tid, now)
        handled += deliver_due(engine, tid, now)
    return handled


def background_loop(stop: threading.Event) -> None:
    """``serve``'s jobs: every job each ``jobs_interval_seconds``, the outbox and webhook
    deliveries each ``webhook_poll_seconds`` in between."""
    settings = get_settings()
    tick = min(settings.jobs_interval_seconds, settings.webhook_poll_seconds)
    next_round = time.monotonic() + settings.jobs_interval_seconds
    while not stop.wait(tick):
        try:
            if time.monotonic() >= next_round:
                run_all(get_engine(), utcnow())
                next_round = time.monotonic() + settings.jobs_interval_seconds
            else:
                run_frequent(get_engine(), utcnow())
        except Exception:  # keep the loop alive; the next round retries
            log.exception("periodic jobs failed")
