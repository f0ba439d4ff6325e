"""Subscription jobs: announce renewals ahead of the period end, expire what ran out."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine

from allegiance.config import get_settings
from allegiance.db import read_session, write_session
from allegiance.program.service import load_program
from allegiance.subscription import service


def notify_renewals(engine: Engine, tenant_id: str, now: datetime) -> int:
    """One ``subscription.renewal_due`` per subscription and period, in batches (SKIP LOCKED
    on Postgres, so several workers never announce the same period twice)."""
    batch = get_settings().job_batch_size
    with read_session(engine) as session:
        compiled = load_program(session, tenant_id=tenant_id)
    if compiled is None:
        return 0
    sent = 0
    for plan in compiled.program.plans:
        if plan.renewal_notice_days <= 0:
            continue
        while True:
            with write_session(engine) as session:
                handled = service.announce_renewals(
                    session,
                    tenant_id=tenant_id,
                    program=compiled.program,
                    plan=plan,
                    now=now,
                    limit=batch,
                )
            sent += handled
            if handled < batch:
                break
    return sent


def expire_subscriptions(engine: Engine, tenant_id: str, now: datetime) -> int:
    """Expire every live subscription whose period ended by ``now``."""
    batch = get_settings().job_batch_size
    expired = 0
    while True:
        with write_session(engine) as session:
            handled = service.expire_due(session, tenant_id=tenant_id, now=now, limit=batch)
        expired += handled
        if handled < batch:
            return expired
