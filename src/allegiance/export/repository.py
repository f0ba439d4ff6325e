"""SQL of exports: keyset pages (``WHERE key > :after ORDER BY key LIMIT :n``) so that a
page costs the same at the end of a large table as at its start and memory stays bounded."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, select
from sqlalchemy.orm import Session, aliased

from allegiance.ledger.models import LedgerAccount, Transfer
from allegiance.member.models import Member
from allegiance.order.models import Order
from allegiance.tier.models import TierState

_MEMBERS = cast(Table, Member.__table__)
_ORDERS = cast(Table, Order.__table__)
_TRANSFERS = cast(Table, Transfer.__table__)
_ACCOUNTS = cast(Table, LedgerAccount.__table__)
_TIERS = cast(Table, TierState.__table__)


def member_page(
    session: Session,
    tenant_id: str,
    *,
    after: str | None,
    limit: int,
    since: datetime | None,
    until: datetime | None,
) -> list[Any]:
    """Members (every column of the table) in id order after ``after``; the window is on
    ``enrolled_at``."""
    stmt = select(*_MEMBERS.c).where(_MEMBERS.c.tenant_id == tenant_id)
    if after is not None:
        stmt = stmt.where(_MEMBERS.c.member_id > after)
    if since is not None:
        stmt = stmt.where(_MEMBERS.c.enrolled_at >= since)
    if until is not None:
        stmt = stmt.where(_MEMBERS.c.enrolled_at < until)
    stmt = stmt.order_by(_MEMBERS.c.member_id).limit(limit)
    return list(session.connection().execute(stmt))


def member_balances(
    session: Session, tenant_id: str, member_ids: Sequence[str]
) -> dict[str, dict[str, tuple[int, int]]]:
    """member id -> wallet -> (posted, pending) in minor units, for the members' own accounts."""
    result: dict[str, dict[str, tuple[int, int]]] = {}
    if not member_ids:
        return result
    rows = session.connection().execute(
        select(
            _ACCOUNTS.c.owner_id,
            _ACCOUNTS.c.wallet,
            _ACCOUNTS.c.posted_minor,
            _ACCOUNTS.c.pending_minor,
        ).where(
            _ACCOUNTS.c.tenant_id == tenant_id,
            _ACCOUNTS.c.owner_type == "member",
            _ACCOUNTS.c.owner_id.in_(list(member_ids)),
        )
    )
    for owner_id, wallet, posted, pending in rows:
        result.setdefault(owner_id, {})[wallet] = (int(posted), int(pending))
    return result


def member_tiers(session: Session, tenant_id: str, member_ids: Sequence[str]) -> dict[str, str]:
    """member id -> the tier the member is shown (members with a tier state only)."""
    if not member_ids:
        return {}
    rows = session.connection().execute(
        select(_TIERS.c.owner_id, _TIERS.c.shown_key).where(
            _TIERS.c.tenant_id == tenant_id,
            _TIERS.c.owner_type == "member",
            _TIERS.c.owner_id.in_(list(member_ids)),
        )
    )
    return {owner_id: key for owner_id, key in rows if key is not None}


def transfer_page(
    session: Session,
    tenant_id: str,
    *,
    after: int | None,
    limit: int,
    since: datetime | None,
    until: datetime | None,
) -> list[Any]:
    """Transfers in id order after ``after`` with both accounts' owners; the window is on
    ``effective_at``."""
    debit = aliased(_ACCOUNTS, name="debit")
    credit = aliased(_ACCOUNTS, name="credit")
    t = _TRANSFERS
    stmt = (
        select(
            *t.c,
            debit.c.owner_type.label("debit_owner_type"),
            debit.c.owner_id.label("debit_owner_id"),
            credit.c.owner_type.label("credit_owner_type"),
            credit.c.owner_id.label("credit_owner_id"),
        )
        .join(debit, debit.c.id == t.c.debit_account_id)
        .join(credit, credit.c.id == t.c.credit_account_id)
        .where(t.c.tenant_id == tenant_id)
    )
    if after is not None:
        stmt = stmt.where(t.c.id > after)
    if since is not None:
        stmt = stmt.where(t.c.effective_at >= since)
    if until is not None:
        stmt = stmt.where(t.c.effective_at < until)
    stmt = stmt.order_by(t.c.id).limit(limit)
    return list(session.connection().execute(stmt))


def order_page(
    session: Session,
    tenant_id: str,
    *,
    after: str | None,
    limit: int,
    since: datetime | None,
    until: datetime | None,
) -> list[Any]:
    """Orders in id order after ``after``, with the member's erasure time; the window is on
    ``placed_at``."""
    m = _MEMBERS
    o = _ORDERS
    stmt = (
        select(*o.c, m.c.erased_at.label("member_erased_at"))
        .outerjoin(m, (m.c.tenant_id == o.c.tenant_id) & (m.c.member_id == o.c.member_id))
        .where(o.c.tenant_id == tenant_id)
    )
    if after is not None:
        stmt = stmt.where(o.c.order_id > after)
    if since is not None:
        stmt = stmt.where(o.c.placed_at >= since)
    if until is not None:
        stmt = stmt.where(o.c.placed_at < until)
    stmt = stmt.order_by(o.c.order_id).limit(limit)
    return list(session.connection().execute(stmt))
