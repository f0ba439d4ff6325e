"""SQL for analytics reads (read-only)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from allegiance.ledger.models import Transfer


def partner_point_sums(
    session: Session, tenant_id: str, start: datetime, end: datetime
) -> dict[tuple[str, str, str], int]:
    """Σ amount per (partner, wallet, code) of partner-stamped transfers in [start, end).

    Codes: ``earn`` (issued at a partner), ``reverse`` (taken back by its refunds), ``spend``
    (redeemed at a partner), ``return`` (a cancelled redemption's points given back). Served by
    the (tenant, partner, effective_at) index.
    """
    rows = session.execute(
        select(Transfer.partner, Transfer.wallet, Transfer.code, func.sum(Transfer.amount_minor))
        .where(
            Transfer.tenant_id == tenant_id,
            Transfer.partner.is_not(None),
            Transfer.effective_at >= start,
            Transfer.effective_at < end,
            Transfer.code.in_(("earn", "reverse", "spend", "return")),
        )
        .group_by(Transfer.partner, Transfer.wallet, Transfer.code)
    )
    return {(str(r[0]), r[1], r[2]): int(r[3] or 0) for r in rows}
