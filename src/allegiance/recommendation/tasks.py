"""The recommendation model job: rebuilds a tenant's item-similarity table when stale."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine

from allegiance.db import read_session, write_session
from allegiance.recommendation import service


def rebuild_stale(engine: Engine, tenant_id: str, now: datetime) -> int:
    """Rebuild the tenant's model when it is older than ``recommendation_refresh_hours`` (or
    missing); returns the number of products in the new model (0 when nothing was done)."""
    with read_session(engine) as session:
        if not service.model_is_stale(session, tenant_id=tenant_id, now=now):
            return 0
    with write_session(engine) as session:
        return service.rebuild(session, tenant_id=tenant_id, now=now)
