"""The tier review job: reviews, ends of grace periods and of manual assignments."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from allegiance.order.service import memberships
from allegiance.program.compiled import CompiledProgram
from allegiance.tier import repository, service
from allegiance.tier.repository import StateRow
from allegiance.worker.batches import run_batches


def review_due(engine: Engine, tenant_id: str, now: datetime) -> int:
    """Handle every tier state with something due as of ``now``, in locked batches."""

    def due(session: Session, program: CompiledProgram, limit: int) -> list[StateRow]:
        return repository.due_states(session, tenant_id, now, limit, skip_locked=True)

    def handle(session: Session, program: CompiledProgram, states: Sequence[StateRow]) -> None:
        plans = memberships(
            session,
            tenant_id=tenant_id,
            program=program,
            member_ids=[s.owner_id for s in states if s.owner_type == "member"],
            now=now,
        )
        for state in states:
            plan = plans.get(state.owner_id) if state.owner_type == "member" else None
            service.review_state(
                session,
                tenant_id=tenant_id,
                program=program,
                state=state,
                now=now,
                floor=plan.tier_floor if plan else None,
            )

    return run_batches(
        engine, tenant_id, due=due, handle=handle, applies=lambda p: p.program.tiers is not None
    )
