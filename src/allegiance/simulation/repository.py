"""SQL the simulator reads from its own throwaway database (read-only)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from allegiance.ledger.models import LedgerAccount, Transfer
from allegiance.member.models import Member
from allegiance.order.models import Order
from allegiance.tier.models import TierState


def code_sums(
    session: Session, tenant_id: str, start: datetime, end: datetime
) -> dict[tuple[str, str], int]:
    """(wallet, code) -> Σ amount of member transfers effective in [start, end)."""
    rows = session.execute(
        select(Transfer.wallet, Transfer.code, func.sum(Transfer.amount_minor))
        .where(
            Transfer.tenant_id == tenant_id,
            Transfer.effective_at >= start,
            Transfer.effective_at < end,
            Transfer.code.in_(("earn", "reverse", "spend", "return", "expire")),
        )
        .group_by(Transfer.wallet, Transfer.code)
    )
    return {(r[0], r[1]): int(r[2] or 0) for r in rows}


def outstanding(session: Session, tenant_id: str) -> dict[str, tuple[int, int]]:
    """Wallet -> (active, pending) held by members and accounts now, in minor units."""
    rows = session.execute(
        select(
            LedgerAccount.wallet,
            func.sum(LedgerAccount.posted_minor),
            func.sum(LedgerAccount.pending_minor),
        )
        .where(LedgerAccount.tenant_id == tenant_id, LedgerAccount.owner_type != "system")
        .group_by(LedgerAccount.wallet)
    )
    return {r[0]: (int(r[1] or 0), int(r[2] or 0)) for r in rows}


def order_totals(
    session: Session, tenant_id: str, start: datetime, end: datetime
) -> tuple[int, int]:
    """(orders, Σ total in minor units) of the orders placed in [start, end)."""
    row = session.execute(
        select(func.count(), func.sum(Order.total_minor)).where(
            Order.tenant_id == tenant_id,
            Order.placed_at >= start,
            Order.placed_at < end,
            Order.status != "cancelled",
        )
    ).one()
    return int(row[0]), int(row[1] or 0)


def tier_counts(session: Session, tenant_id: str) -> dict[str, int]:
    """Tier key -> members showing it now ("" for members without a tier)."""
    rows = session.execute(
        select(TierState.shown_key, func.count())
        .where(TierState.tenant_id == tenant_id, TierState.owner_type == "member")
        .group_by(TierState.shown_key)
    )
    found = {(r[0] or ""): int(r[1]) for r in rows}
    members = int(
        session.scalar(
            select(func.count()).select_from(Member).where(Member.tenant_id == tenant_id)
        )
        or 0
    )
    without = members - sum(found.values())
    if without > 0:
        found[""] = found.get("", 0) + without
    return found


def redeemers(
    session: Session, tenant_id: str, wallet: str, min_active: int, *, limit: int
) -> list[tuple[str, int]]:
    """(member id, active balance) of members holding at least ``min_active`` in ``wallet``."""
    rows = session.execute(
        select(LedgerAccount.owner_id, LedgerAccount.posted_minor)
        .where(
            LedgerAccount.tenant_id == tenant_id,
            LedgerAccount.owner_type == "member",
            LedgerAccount.wallet == wallet,
            LedgerAccount.posted_minor >= min_active,
        )
        .order_by(LedgerAccount.owner_id)
        .limit(limit)
    )
    return [(str(r[0]), int(r[1])) for r in rows]
