"""Retention: delete old rows of a log-like table in bounded batches (docs/operations.md)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Engine, delete, select, tuple_

from allegiance.db import write_session
from allegiance.kit.orm import Base


def cutoff(now: datetime, days: float) -> datetime | None:
    """Rows older than this go; None (keep everything) when ``days`` is 0 or less."""
    return now - timedelta(days=days) if days > 0 else None


def delete_in_batches(
    engine: Engine,
    model: type[Base],
    key: Sequence[Any],
    conditions: Sequence[ColumnElement[bool]],
    *,
    batch: int,
    max_batches: int,
) -> int:
    """Delete the rows matching ``conditions``, ``batch`` keys (oldest key first) per
    transaction, at most ``max_batches`` transactions per call: a large backlog is worked off
    over several job rounds without one long transaction. Returns the rows deleted."""
    deleted = 0
    for _ in range(max_batches):
        keys = select(*key).where(*conditions).order_by(*key).limit(batch)
        target = key[0] if len(key) == 1 else tuple_(*key)
        with write_session(engine) as session:
            result = session.execute(
                delete(model)
                .where(target.in_(keys.scalar_subquery() if len(key) == 1 else keys))
                .execution_options(synchronize_session=False)
            )
            count = int(getattr(result, "rowcount", 0) or 0)
        deleted += count
        if count < batch:
            break
    return deleted
