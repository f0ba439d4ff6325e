"""The tier review job: reviews, ends of grace periods and of manual assignments."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine

from allegiance.config import get_settings
from allegiance.db import write_session
from allegiance.order.service import memberships
from allegiance.program.service import load_program
from allegiance.tier import repository, service


def review_due(engine: Engine, tenant_id: str, now: datetime) -> int:
    """Handle every tier state with something due as of ``now``, in locked batches."""
    batch = get_settings().job_batch_size
    handled = 0
    while True:
        with write_session(engine) as session:
            program = load_program(session, tenant_id=tenant_id)
            if program is None or program.program.tiers is None:
                return handled
            due = repository.due_states(session, tenant_id, now, batch, skip_locked=True)
            plans = memberships(
                session,
                tenant_id=tenant_id,
                program=program,
                member_ids=[s.owner_id for s in due if s.owner_type == "member"],
                now=now,
            )
            for state in due:
                plan = plans.get(state.owner_id) if state.owner_type == "member" else None
                service.review_state(
                    session,
                    tenant_id=tenant_id,
                    program=program,
                    state=state,
                    now=now,
                    floor=plan.tier_floor if plan else None,
                )
        handled += len(due)
        if len(due) < batch:
            return handled
