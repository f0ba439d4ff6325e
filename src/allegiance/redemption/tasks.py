"""Redemptions waiting for approval past their window are released."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from allegiance.program.compiled import CompiledProgram
from allegiance.redemption import repository, service
from allegiance.worker.batches import run_batches


def expire_approvals(engine: Engine, tenant_id: str, now: datetime) -> int:
    def due(
        session: Session, program: CompiledProgram, limit: int
    ) -> list[tuple[str, str, str | None]]:
        return [
            (r.redemption_id, r.member_id, r.account_id)
            for r in repository.timed_out(session, tenant_id, now, limit)
        ]

    def handle(
        session: Session, program: CompiledProgram, items: Sequence[tuple[str, str, str | None]]
    ) -> None:
        for redemption_id, member_id, account_id in items:
            service.expire_waiting(
                session,
                tenant_id=tenant_id,
                program=program,
                redemption_id=redemption_id,
                member_id=member_id,
                account_id=account_id,
                now=now,
            )

    return run_batches(engine, tenant_id, due=due, handle=handle)
