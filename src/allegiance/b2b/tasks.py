"""Pooled account wallets: activate matured pending points and expire due lots."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from allegiance.b2b import repository
from allegiance.b2b.models import Account
from allegiance.ledger import service as ledger
from allegiance.program.compiled import CompiledProgram
from allegiance.worker.batches import run_batches


def settle_due_accounts(engine: Engine, tenant_id: str, now: datetime) -> int:
    def due(session: Session, program: CompiledProgram, limit: int) -> list[Account]:
        return repository.due_for_settlement(session, tenant_id, now, limit, skip_locked=True)

    def handle(session: Session, program: CompiledProgram, accounts: Sequence[Account]) -> None:
        for account in accounts:
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

    return run_batches(engine, tenant_id, due=due, handle=handle)
