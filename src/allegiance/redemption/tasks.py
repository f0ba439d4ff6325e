"""Redemptions waiting for approval past their window are released."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine

from allegiance.config import get_settings
from allegiance.db import write_session
from allegiance.program.service import load_program
from allegiance.redemption import repository, service


def expire_approvals(engine: Engine, tenant_id: str, now: datetime) -> int:
    batch = get_settings().job_batch_size
    handled = 0
    while True:
        with write_session(engine) as session:
            program = load_program(session, tenant_id=tenant_id)
            if program is None:
                return handled
            due = [
                (r.redemption_id, r.member_id, r.account_id)
                for r in repository.timed_out(session, tenant_id, now, batch)
            ]
            for redemption_id, member_id, account_id in due:
                service.expire_waiting(
                    session,
                    tenant_id=tenant_id,
                    program=program,
                    redemption_id=redemption_id,
                    member_id=member_id,
                    account_id=account_id,
                    now=now,
                )
        handled += len(due)
        if len(due) < batch:
            return handled
