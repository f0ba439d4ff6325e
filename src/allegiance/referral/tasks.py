"""Referral job: convert qualified referrals whose hold is over (credit the referrer)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine

from allegiance.config import get_settings
from allegiance.db import read_session, write_session
from allegiance.referral import service


def convert_due(engine: Engine, tenant_id: str, now: datetime) -> int:
    """One short transaction per referral: the referrer's member lock, then the referral row
    with SKIP LOCKED on Postgres, so several workers never convert one referral twice."""
    batch = get_settings().job_batch_size
    converted = 0
    while True:
        with read_session(engine) as session:
            due = service.due(session, tenant_id=tenant_id, now=now, limit=batch)
        handled = 0
        for referral_id, referrer_id in due:
            with write_session(engine) as session:
                if service.convert(
                    session,
                    tenant_id=tenant_id,
                    referral_id=referral_id,
                    referrer_id=referrer_id,
                    now=now,
                ):
                    handled += 1
        converted += handled
        if len(due) < batch or handled == 0:
            return converted
