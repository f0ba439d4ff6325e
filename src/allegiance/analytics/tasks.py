"""Jobs of analytics: keeping the member months of the cohort matrix exact
(docs/analytics.md#cohorts)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine

from allegiance.analytics import activity
from allegiance.analytics.models import MemberMonthsState
from allegiance.config import get_settings
from allegiance.db import write_session
from allegiance.program.service import load_program


def rebuild_member_months(engine: Engine, tenant_id: str, now: datetime) -> int:
    """The ``member_months`` job: when the tenant's months are not exact for the program's time
    zone (after the migration, or a time zone change), rebuild them from the orders, one batch
    of members per transaction under their row locks, at most ``job_max_batches`` per round;
    the last batch marks the table exact. Returns the members rebuilt."""
    settings = get_settings()
    handled = 0
    for _ in range(settings.job_max_batches):
        with write_session(engine) as session:
            compiled = load_program(session, tenant_id=tenant_id)
            if compiled is None:
                return handled
            timezone = compiled.program.timezone
            state = activity.state_of(session, tenant_id, lock=True)
            if state is None:
                state = MemberMonthsState(tenant_id=tenant_id)
                session.add(state)
            if state.timezone == timezone:
                return handled
            if state.building != timezone:
                if state.changed_at is not None and now < state.changed_at + activity.SETTLE:
                    return handled
                state.building, state.cursor = timezone, None
            done = activity.rebuild_batch(
                session, tenant_id, timezone, state.cursor, settings.job_batch_size
            )
            handled += len(done)
            if len(done) < settings.job_batch_size:
                state.timezone, state.building, state.cursor = timezone, None, None
                return handled
            state.cursor = done[-1]
    return handled
