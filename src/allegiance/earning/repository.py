"""SQL for rule usage counters (limits and budgets)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from allegiance.db import dialect_insert, is_postgres
from allegiance.earning.models import RuleUsage


def load(
    session: Session, tenant_id: str, keys: Sequence[tuple[str, str, str]], *, lock: bool
) -> dict[tuple[str, str, str], list[int]]:
    """Counters for the keys; row-locked on Postgres when ``lock`` (in key order)."""
    unique = sorted(set(keys))
    if not unique:
        return {}
    result: dict[tuple[str, str, str], list[int]] = {}
    groups: dict[tuple[str, str], list[str]] = {}
    for scope, member_id, period in unique:
        groups.setdefault((scope, period), []).append(member_id)
    for (scope, period), member_ids in sorted(groups.items()):
        for start in range(0, len(member_ids), 500):
            stmt = (
                select(RuleUsage.member_id, RuleUsage.count, RuleUsage.amount_minor)
                .where(
                    RuleUsage.tenant_id == tenant_id,
                    RuleUsage.scope == scope,
                    RuleUsage.period_key == period,
                    RuleUsage.member_id.in_(member_ids[start : start + 500]),
                )
                .order_by(RuleUsage.member_id)
            )
            if lock and is_postgres(session):
                stmt = stmt.with_for_update()
            for row in session.execute(stmt):
                result[(scope, row[0], period)] = [int(row[1]), int(row[2])]
    return result


def add(session: Session, tenant_id: str, changes: dict[tuple[str, str, str], list[int]]) -> None:
    """Add the deltas to the counters (insert missing rows)."""
    if not changes:
        return
    ins = dialect_insert(session)
    stmt = ins(RuleUsage)
    stmt = stmt.on_conflict_do_update(
        index_elements=["tenant_id", "scope", "member_id", "period_key"],
        set_={
            "count": RuleUsage.count + stmt.excluded.count,
            "amount_minor": RuleUsage.amount_minor + stmt.excluded.amount_minor,
        },
    )
    rows = [
        {
            "tenant_id": tenant_id,
            "scope": s,
            "member_id": m,
            "period_key": p,
            "count": v[0],
            "amount_minor": v[1],
        }
        for (s, m, p), v in sorted(changes.items())
    ]
    for start in range(0, len(rows), 500):
        session.execute(stmt, rows[start : start + 500])


def ensure_totals(session: Session, tenant_id: str, scopes: Sequence[str]) -> None:
    """Create the tenant-wide counter rows up front so that they can always be row-locked."""
    if not scopes:
        return
    ins = dialect_insert(session)
    stmt = ins(RuleUsage).on_conflict_do_nothing(
        index_elements=["tenant_id", "scope", "member_id", "period_key"]
    )
    session.execute(
        stmt,
        [
            {
                "tenant_id": tenant_id,
                "scope": s,
                "member_id": "",
                "period_key": "all",
                "count": 0,
                "amount_minor": 0,
            }
            for s in sorted(set(scopes))
        ],
    )
