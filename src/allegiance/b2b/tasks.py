"""Pooled account wallets: activate matured pending points and expire due lots."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine

from allegiance.b2b import repository
from allegiance.config import get_settings
from allegiance.db import write_session
from allegiance.ledger import service as ledger
from allegiance.program.service import load_program


def settle_due_accounts(engine: Engine, tenant_id: str, now: datetime) -> int:
    batch = get_settings().job_batch_size
    handled = 0
    while True:
        with write_session(engine) as session:
            program = load_program(session, tenant_id=tenant_id)
            if program is None:
                return handled
            due = repository.due_for_settlement(session, tenant_id, now, batch, skip_locked=True)
            for account in due:
                settle_at = ledger.settle_member(
                    session,
                    tenant_id=tenant_id,
                    program=program.program,
                    member_id=account.account_id,
                    last_activity_at=account.last_activity_at,
                    now=now,
                    owner_type="account",
                )
                repository.set_activity(
                    session, tenant_id, account.account_id, account.last_activity_at, settle_at
                )
        handled += len(due)
        if len(due) < batch:
            return handled
