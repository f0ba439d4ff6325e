"""SQL for tiers: facts (metric contributions), states and history."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, func, select, tuple_, update
from sqlalchemy.orm import Session

from allegiance.db import bulk_insert, is_postgres
from allegiance.tier.models import TierChange, TierFact, TierState

Owner = tuple[str, str]  # (owner_type, owner_id)


@dataclass(slots=True)
class StateRow:
    """A holder's tier state as plain data (a ``tier_states`` row): bookings change many of
    them in memory and write them back in one statement."""

    tenant_id: str
    owner_type: str
    owner_id: str
    achieved_key: str | None = None
    manual_key: str | None = None
    manual_until: datetime | None = None
    manual_reason: str | None = None
    shown_key: str | None = None
    shown_since: datetime | None = None
    period_start: datetime | None = None
    next_review_at: datetime | None = None
    downgrade_to: str | None = None
    downgrade_at: datetime | None = None
    due_at: datetime | None = None
    updated_at: datetime | None = None


def load_states(
    session: Session, tenant_id: str, owners: Sequence[Owner], *, lock: bool
) -> dict[Owner, StateRow]:
    """States of the holders (row-locked with ``lock`` on Postgres)."""
    if not owners:
        return {}
    found: dict[Owner, StateRow] = {}
    keys = sorted(set(owners))
    conn = session.connection()
    for start in range(0, len(keys), 500):
        stmt = (
            select(_STATES)
            .where(
                _STATES.c.tenant_id == tenant_id,
                tuple_(_STATES.c.owner_type, _STATES.c.owner_id).in_(keys[start : start + 500]),
            )
            .order_by(_STATES.c.owner_type, _STATES.c.owner_id)
        )
        if lock and is_postgres(session):
            stmt = stmt.with_for_update()
        for row in conn.execute(stmt):
            state = StateRow(**row._mapping)
            found[(state.owner_type, state.owner_id)] = state
    return found


_STATES = cast(Table, TierState.__table__)
_STATE_COLUMNS = tuple(c.key for c in TierState.__table__.columns)
_KEY_COLUMNS = ("tenant_id", "owner_type", "owner_id")
_UPDATE_STATE = (
    update(_STATES)
    .where(
        _STATES.c.tenant_id == bindparam("k_tenant_id"),
        _STATES.c.owner_type == bindparam("k_owner_type"),
        _STATES.c.owner_id == bindparam("k_owner_id"),
    )
    .values({c: bindparam(c) for c in _STATE_COLUMNS if c not in _KEY_COLUMNS})
)


def save_states(session: Session, new: Sequence[StateRow], changed: Sequence[StateRow]) -> None:
    """Insert new states and update changed ones, each kind in one statement. A holder's
    state is only written under its holder's lock (member or account row), so two writers
    never insert the same state."""
    if new:
        bulk_insert(
            session,
            TierState.__table__,
            [{c: getattr(s, c) for c in _STATE_COLUMNS} for s in new],
            skip_conflicts_on=_KEY_COLUMNS,
        )
    if changed:
        session.connection().execute(
            _UPDATE_STATE,
            [
                {
                    **{c: getattr(s, c) for c in _STATE_COLUMNS if c not in _KEY_COLUMNS},
                    **{f"k_{c}": getattr(s, c) for c in _KEY_COLUMNS},
                }
                for s in changed
            ],
        )


def sum_facts(
    session: Session,
    tenant_id: str,
    owners: Sequence[Owner],
    since: datetime | None,
    until: datetime | None = None,
) -> dict[Owner, tuple[int, int, int]]:
    """(spend, orders, points) per holder over facts in [since, until] (open ends when None)."""
    if not owners:
        return {}
    stmt = select(
        TierFact.owner_type,
        TierFact.owner_id,
        func.coalesce(func.sum(TierFact.spend_minor), 0),
        func.coalesce(func.sum(TierFact.orders), 0),
        func.coalesce(func.sum(TierFact.points_minor), 0),
    ).where(
        TierFact.tenant_id == tenant_id,
        tuple_(TierFact.owner_type, TierFact.owner_id).in_(sorted(set(owners))),
    )
    if since is not None:
        stmt = stmt.where(TierFact.at >= since)
    if until is not None:
        stmt = stmt.where(TierFact.at <= until)
    stmt = stmt.group_by(TierFact.owner_type, TierFact.owner_id)
    return {(r[0], r[1]): (int(r[2]), int(r[3]), int(r[4])) for r in session.execute(stmt)}


def facts_since(
    session: Session, tenant_id: str, owners: Sequence[Owner], since: datetime
) -> list[Any]:
    """Facts at or after ``since``: the rows a moving window may still count."""
    if not owners:
        return []
    stmt = (
        select(
            TierFact.owner_type,
            TierFact.owner_id,
            TierFact.at,
            TierFact.spend_minor,
            TierFact.orders,
            TierFact.points_minor,
        )
        .where(
            TierFact.tenant_id == tenant_id,
            tuple_(TierFact.owner_type, TierFact.owner_id).in_(sorted(set(owners))),
            TierFact.at >= since,
        )
        .order_by(TierFact.at)
    )
    return list(session.execute(stmt))


def insert_facts(session: Session, rows: list[dict[str, Any]]) -> None:
    if rows:
        bulk_insert(session, TierFact.__table__, rows)


def insert_history(session: Session, rows: list[dict[str, Any]]) -> None:
    if rows:
        bulk_insert(session, TierChange.__table__, rows)


def history(
    session: Session, tenant_id: str, owner: Owner, *, limit: int, before_id: int | None
) -> list[TierChange]:
    stmt = select(TierChange).where(
        TierChange.tenant_id == tenant_id,
        TierChange.owner_type == owner[0],
        TierChange.owner_id == owner[1],
    )
    if before_id is not None:
        stmt = stmt.where(TierChange.id < before_id)
    return list(session.execute(stmt.order_by(TierChange.id.desc()).limit(limit)).scalars())


def due_states(
    session: Session, tenant_id: str, now: datetime, limit: int, *, skip_locked: bool
) -> list[StateRow]:
    """States with a review, a scheduled downgrade or a manual end due, locked for the job."""
    stmt = (
        select(_STATES)
        .where(_STATES.c.tenant_id == tenant_id, _STATES.c.due_at <= now)
        .order_by(_STATES.c.due_at)
        .limit(limit)
    )
    if is_postgres(session):
        stmt = stmt.with_for_update(skip_locked=skip_locked)
    return [StateRow(**row._mapping) for row in session.connection().execute(stmt)]
