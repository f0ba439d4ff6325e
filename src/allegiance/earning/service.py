"""Use cases around the earning engine: counters and evaluation with stored usage."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from allegiance.earning import repository
from allegiance.earning.engine import UsageBook
from allegiance.program.schema import Program


def prepare_counters(session: Session, *, tenant_id: str, program: Program) -> None:
    """Create tenant-wide counters for totals and budgets, so bookings can row-lock them."""
    scopes = [f"rule:{r.key}" for r in program.rules if r.budget or (r.limit and r.limit.total)]
    scopes += [f"campaign:{c.key}" for c in program.campaigns if c.budget]
    # reward stock and total limits: the counter row is locked by every redemption
    scopes += [
        f"reward:{r.key}"
        for r in program.rewards
        if r.stock is not None or (r.limit and r.limit.total)
    ]
    scopes += [f"promotion:{p.key}" for p in program.promotions if p.limit and p.limit.total]
    repository.ensure_totals(session, tenant_id, scopes)


def load_usage(
    session: Session, *, tenant_id: str, keys: Sequence[tuple[str, str, str]], lock: bool
) -> UsageBook:
    return UsageBook(counters=repository.load(session, tenant_id, keys, lock=lock))


def save_usage(session: Session, *, tenant_id: str, usage: UsageBook) -> None:
    repository.add(session, tenant_id, usage.changes)
    usage.changes = {}
