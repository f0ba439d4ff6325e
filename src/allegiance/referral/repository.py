"""SQL for referral codes and referrals."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from allegiance.db import dialect_insert, is_postgres
from allegiance.referral.models import Referral, ReferralCode

COUNTED = ("pending", "qualified", "converted")  # statuses that use up the monthly cap


def _lock(stmt: Any, session: Session, *, skip_locked: bool = False) -> Any:
    if is_postgres(session):
        return stmt.with_for_update(skip_locked=skip_locked).execution_options(
            populate_existing=True
        )
    return stmt


def code_of(session: Session, tenant_id: str, member_id: str) -> str | None:
    return session.scalar(
        select(ReferralCode.code).where(
            ReferralCode.tenant_id == tenant_id, ReferralCode.member_id == member_id
        )
    )


def owner_of_code(session: Session, tenant_id: str, code: str, *, lock: bool) -> str | None:
    """The member whose code this is; ``lock`` serialises the referrals of one referrer."""
    stmt = select(ReferralCode.member_id).where(
        ReferralCode.tenant_id == tenant_id, ReferralCode.code == code
    )
    return session.scalar(_lock(stmt, session) if lock else stmt)


def insert_code(session: Session, tenant_id: str, member_id: str, code: str, now: datetime) -> None:
    """Insert unless the member already has a code or the code is taken."""
    stmt = (
        dialect_insert(session)(ReferralCode)
        .values(tenant_id=tenant_id, member_id=member_id, code=code, created_at=now)
        .on_conflict_do_nothing()
    )
    session.execute(stmt)


def of_referee(
    session: Session, tenant_id: str, referee_id: str, *, lock: bool = False
) -> Referral | None:
    stmt = select(Referral).where(
        Referral.tenant_id == tenant_id, Referral.referee_id == referee_id
    )
    return session.scalar(_lock(stmt, session) if lock else stmt)


def insert_if_new(session: Session, row: dict[str, Any]) -> bool:
    """One referral per referee: False when a concurrent enrollment recorded it first."""
    stmt = (
        dialect_insert(session)(Referral)
        .values(**row)
        .on_conflict_do_nothing(index_elements=["tenant_id", "referee_id"])
        .returning(Referral.id)
    )
    return session.execute(stmt).first() is not None


def counted_since(session: Session, tenant_id: str, referrer_id: str, since: datetime) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(Referral)
            .where(
                Referral.tenant_id == tenant_id,
                Referral.referrer_id == referrer_id,
                Referral.created_at >= since,
                Referral.status.in_(COUNTED),
            )
        )
        or 0
    )


def pending_of(session: Session, tenant_id: str, referee_ids: Sequence[str]) -> list[Referral]:
    """Pending referrals of these referees (locked; the caller holds the members' locks)."""
    if not referee_ids:
        return []
    stmt = select(Referral).where(
        Referral.tenant_id == tenant_id,
        Referral.referee_id.in_(sorted(set(referee_ids))),
        Referral.status == "pending",
    )
    return list(session.scalars(_lock(stmt, session)))


def qualified_by_order(session: Session, tenant_id: str, order_id: str) -> Referral | None:
    stmt = select(Referral).where(
        Referral.tenant_id == tenant_id,
        Referral.order_id == order_id,
        Referral.status == "qualified",
    )
    return session.scalar(_lock(stmt, session))


def due(session: Session, tenant_id: str, now: datetime, limit: int) -> list[tuple[int, str]]:
    """(id, referrer) of qualified referrals whose hold is over, oldest first (no lock)."""
    rows = session.execute(
        select(Referral.id, Referral.referrer_id)
        .where(
            Referral.tenant_id == tenant_id,
            Referral.status == "qualified",
            Referral.convert_at <= now,
        )
        .order_by(Referral.convert_at, Referral.id)
        .limit(limit)
    )
    return [(r.id, r.referrer_id or "") for r in rows]


def lock_due(session: Session, tenant_id: str, referral_id: int, now: datetime) -> Referral | None:
    """The referral if it is still due, row-locked (SKIP LOCKED: another worker has it)."""
    stmt = select(Referral).where(
        Referral.tenant_id == tenant_id,
        Referral.id == referral_id,
        Referral.status == "qualified",
        Referral.convert_at <= now,
    )
    return session.scalar(_lock(stmt, session, skip_locked=True))


def of_referrer_page(
    session: Session,
    tenant_id: str,
    referrer_id: str,
    *,
    status: str | None,
    before_id: int | None,
    limit: int,
) -> list[Referral]:
    stmt = select(Referral).where(
        Referral.tenant_id == tenant_id, Referral.referrer_id == referrer_id
    )
    if status is not None:
        stmt = stmt.where(Referral.status == status)
    if before_id is not None:
        stmt = stmt.where(Referral.id < before_id)
    return list(session.scalars(stmt.order_by(Referral.id.desc()).limit(limit)))


def stats_of_referrer(
    session: Session, tenant_id: str, referrer_id: str
) -> list[tuple[str, str | None, int, int]]:
    """(status, referrer wallet, count, referrer points) grouped."""
    rows = session.execute(
        select(
            Referral.status,
            Referral.referrer_wallet,
            func.count(),
            func.coalesce(func.sum(Referral.referrer_points_minor), 0),
        )
        .where(Referral.tenant_id == tenant_id, Referral.referrer_id == referrer_id)
        .group_by(Referral.status, Referral.referrer_wallet)
    )
    return [(r[0], r[1], int(r[2]), int(r[3])) for r in rows]
