"""The segment refresh job: re-evaluates members whose evaluation is stale."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine

from allegiance.config import get_settings
from allegiance.db import read_session, write_session
from allegiance.program.service import load_program
from allegiance.segment import service


def refresh(engine: Engine, tenant_id: str, now: datetime) -> int:
    """Re-evaluate, in batches of ``segment_batch_size`` (one transaction each), every member
    evaluated more than ``segment_refresh_hours`` ago or under an older program version, so
    that time-based conditions (recency) and program changes take effect without new
    activity. Returns how many members were evaluated."""
    with read_session(engine) as session:
        program = load_program(session, tenant_id=tenant_id)
        if program is None or not service.job_applies(
            session, tenant_id=tenant_id, program=program
        ):
            return 0
    batch = get_settings().segment_batch_size
    handled = 0
    while True:
        with write_session(engine) as session:
            program = load_program(session, tenant_id=tenant_id)
            if program is None:
                return handled
            count = service.refresh_due(
                session, tenant_id=tenant_id, program=program, now=now, limit=batch
            )
        handled += count
        if count < batch:
            return handled
