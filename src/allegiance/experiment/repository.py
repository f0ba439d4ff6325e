"""SQL for experiment results (read-only)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from allegiance.ledger.models import Transfer
from allegiance.member.models import Member
from allegiance.order.models import Order


def members_enrolled_before(
    session: Session, tenant_id: str, end: datetime, *, chunk: int, limit: int
) -> Iterator[list[Member]]:
    """Members enrolled before ``end``, in member-id order, ``chunk`` at a time; stops after
    ``limit`` rows (the caller checks whether the population was cut)."""
    after = ""
    seen = 0
    while seen < limit:
        rows = list(
            session.scalars(
                select(Member)
                .where(
                    Member.tenant_id == tenant_id,
                    Member.member_id > after,
                    Member.enrolled_at < end,
                )
                .order_by(Member.member_id)
                .limit(min(chunk, limit - seen))
            )
        )
        if not rows:
            return
        seen += len(rows)
        after = rows[-1].member_id
        yield rows


def count_members_enrolled_before(session: Session, tenant_id: str, end: datetime) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(Member)
            .where(Member.tenant_id == tenant_id, Member.enrolled_at < end)
        )
        or 0
    )


def order_sums(
    session: Session, tenant_id: str, start: datetime, end: datetime
) -> dict[str, tuple[int, int]]:
    """Member id -> (orders, net revenue in minor units: total − refunded) of the member's
    orders placed in [start, end); cancelled orders do not count."""
    rows = session.execute(
        select(
            Order.member_id,
            func.count(),
            func.sum(Order.total_minor - Order.refunded_minor),
        )
        .where(
            Order.tenant_id == tenant_id,
            Order.member_id.is_not(None),
            Order.status != "cancelled",
            Order.placed_at >= start,
            Order.placed_at < end,
        )
        .group_by(Order.member_id)
    )
    return {str(r[0]): (int(r[1]), int(r[2] or 0)) for r in rows}


def issued_sums(
    session: Session, tenant_id: str, start: datetime, end: datetime
) -> dict[tuple[str, str], int]:
    """(member id, wallet) -> points issued in [start, end) net of reversals (``earn`` −
    ``reverse`` transfers by effective time), in minor units of the wallet."""
    signed = case((Transfer.code == "earn", Transfer.amount_minor), else_=-Transfer.amount_minor)
    rows = session.execute(
        select(Transfer.member_id, Transfer.wallet, func.sum(signed))
        .where(
            Transfer.tenant_id == tenant_id,
            Transfer.member_id.is_not(None),
            Transfer.code.in_(("earn", "reverse")),
            Transfer.effective_at >= start,
            Transfer.effective_at < end,
        )
        .group_by(Transfer.member_id, Transfer.wallet)
    )
    return {(str(r[0]), r[1]): int(r[2] or 0) for r in rows}
