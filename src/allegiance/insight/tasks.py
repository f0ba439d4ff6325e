"""Periodic jobs: refit the CLV model weekly, rescore members daily (bounded batches)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Engine

from allegiance.config import get_settings
from allegiance.db import read_session, write_session
from allegiance.insight import repository, service
from allegiance.program.service import load_program


def refit_models(engine: Engine, tenant_id: str, now: datetime) -> int:
    """Refit the tenant's CLV model when it is older than ``ALLEGIANCE_CLV_REFIT_DAYS``
    (tenants that never fitted one are skipped). Returns 1 when it refitted."""
    with write_session(engine) as session:
        program = load_program(session, tenant_id=tenant_id)
        if program is None:
            return 0
        return int(service.refit_due(session, tenant_id=tenant_id, program=program, now=now))


def score_members(engine: Engine, tenant_id: str, now: datetime, *, force: bool = False) -> int:
    """Recompute every member's scores when the last run is older than
    ``ALLEGIANCE_INSIGHT_SCORE_INTERVAL_HOURS`` (or ``force``): one read of the purchase
    histories, then writes in batches of ``ALLEGIANCE_JOB_BATCH_SIZE`` members, one
    transaction each. A lease on the tenant's model row keeps other workers out meanwhile.
    Returns the number of members scored."""
    settings = get_settings()
    with write_session(engine) as session:
        program = load_program(session, tenant_id=tenant_id)
        if program is None:
            return 0
        due_before = (
            now + timedelta(seconds=1)
            if force
            else now - timedelta(hours=settings.insight_score_interval_hours)
        )
        lease_until = now + timedelta(seconds=settings.insight_lease_seconds)
        if not repository.claim_scoring(session, tenant_id, now, lease_until, due_before):
            return 0
    with read_session(engine) as session:
        model = repository.get_model(session, tenant_id)
        time_unit = model.time_unit if model is not None else "week"
        histories = service.load_histories(
            session, tenant_id=tenant_id, tz=program.tz, until=now, time_unit=time_unit
        )
    scored = (
        service.compute_scores(histories, model=model, program=program, now=now)
        if histories is not None
        else []
    )
    batch = settings.job_batch_size
    for start in range(0, len(scored), batch):
        with write_session(engine) as session:
            service.store_scores(
                session, tenant_id=tenant_id, scored=scored[start : start + batch], now=now
            )
    with write_session(engine) as session:
        repository.delete_scores_before(session, tenant_id, now)
        repository.finish_scoring(session, tenant_id, now)
    return len(scored)
