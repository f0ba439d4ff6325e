"""SQL for redemptions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from allegiance.db import is_postgres
from allegiance.redemption.models import Redemption


def insert_redemption(session: Session, row: dict[str, Any]) -> None:
    session.execute(insert(Redemption).values(**row))


def get(
    session: Session, tenant_id: str, redemption_id: str, *, lock: bool = False
) -> Redemption | None:
    stmt = select(Redemption).where(
        Redemption.tenant_id == tenant_id, Redemption.redemption_id == redemption_id
    )
    if lock and is_postgres(session):
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    return session.execute(stmt).scalar_one_or_none()


def of_account(
    session: Session, tenant_id: str, account_id: str, status: str | None, limit: int
) -> list[Redemption]:
    stmt = select(Redemption).where(
        Redemption.tenant_id == tenant_id, Redemption.account_id == account_id
    )
    if status:
        stmt = stmt.where(Redemption.status == status)
    return list(session.execute(stmt.order_by(Redemption.created_at.desc()).limit(limit)).scalars())


def of_member(session: Session, tenant_id: str, member_id: str, limit: int) -> list[Redemption]:
    stmt = (
        select(Redemption)
        .where(Redemption.tenant_id == tenant_id, Redemption.member_id == member_id)
        .order_by(Redemption.created_at.desc())
        .limit(limit)
    )
    return list(session.execute(stmt).scalars())


def timed_out(session: Session, tenant_id: str, now: datetime, limit: int) -> list[Redemption]:
    """Waiting redemptions past their window (not locked: the caller locks member first)."""
    stmt = (
        select(Redemption)
        .where(
            Redemption.tenant_id == tenant_id,
            Redemption.status == "awaiting_approval",
            Redemption.approval_expires_at <= now,
        )
        .order_by(Redemption.approval_expires_at)
        .limit(limit)
    )
    return list(session.execute(stmt).scalars())


def active_perks(
    session: Session, tenant_id: str, member_ids: list[str], now: datetime
) -> dict[str, list[str]]:
    if not member_ids:
        return {}
    rows = session.execute(
        select(Redemption.member_id, Redemption.perk)
        .where(
            Redemption.tenant_id == tenant_id,
            Redemption.member_id.in_(sorted(set(member_ids))),
            Redemption.perk_until > now,
            Redemption.status == "completed",
        )
        .order_by(Redemption.member_id, Redemption.perk)
    )
    found: dict[str, list[str]] = {}
    for member_id, perk in rows:
        perks = found.setdefault(member_id, [])
        if perk and perk not in perks:
            perks.append(perk)
    return found


def erase_addresses(session: Session, tenant_id: str, member_id: str) -> None:
    """GDPR erasure: shipping addresses are personal data; the redemptions stay."""
    session.execute(
        update(Redemption)
        .where(
            Redemption.tenant_id == tenant_id,
            Redemption.member_id == member_id,
            Redemption.shipping_address.is_not(None),
        )
        .values(shipping_address=None)
        .execution_options(synchronize_session=False)
    )
