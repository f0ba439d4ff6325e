"""SQL for automations: runs (claimed with SKIP LOCKED), occasions, and the reads triggers
need (members by date, lifetime points, order position, expiring lots)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select, tuple_
from sqlalchemy.orm import Session

from allegiance.automation.models import AutomationMark, AutomationRun
from allegiance.coupon.models import Coupon
from allegiance.db import dialect_insert, is_postgres
from allegiance.ledger.models import Lot, Transfer
from allegiance.member.models import Member
from allegiance.order.models import Order


def insert_run(session: Session, row: dict[str, Any]) -> bool:
    """Insert a run unless one exists for its trigger or its guard period (any unique key:
    ``ON CONFLICT DO NOTHING`` without a target). True when inserted."""
    stmt = dialect_insert(session)(AutomationRun).values(**row).on_conflict_do_nothing()
    return bool(getattr(session.execute(stmt), "rowcount", 0))


def claim_due(session: Session, tenant_id: str, now: datetime, limit: int) -> list[AutomationRun]:
    stmt = (
        select(AutomationRun)
        .where(
            AutomationRun.tenant_id == tenant_id,
            AutomationRun.status == "pending",
            AutomationRun.due_at <= now,
        )
        .order_by(AutomationRun.due_at, AutomationRun.id)
        .limit(limit)
    )
    if is_postgres(session):
        stmt = stmt.with_for_update(skip_locked=True)
    return list(session.scalars(stmt))


def runs_page(
    session: Session,
    tenant_id: str,
    *,
    automation_key: str | None,
    member_id: str | None,
    status: str | None,
    before_id: int | None,
    limit: int,
) -> list[AutomationRun]:
    stmt = select(AutomationRun).where(AutomationRun.tenant_id == tenant_id)
    if automation_key:
        stmt = stmt.where(AutomationRun.automation_key == automation_key)
    if member_id:
        stmt = stmt.where(AutomationRun.member_id == member_id)
    if status:
        stmt = stmt.where(AutomationRun.status == status)
    if before_id is not None:
        stmt = stmt.where(AutomationRun.id < before_id)
    return list(session.scalars(stmt.order_by(AutomationRun.id.desc()).limit(limit)))


def trigger_keys_of_member(
    session: Session, tenant_id: str, automation_key: str, member_id: str, limit: int
) -> list[str]:
    return list(
        session.scalars(
            select(AutomationRun.trigger_key)
            .where(
                AutomationRun.tenant_id == tenant_id,
                AutomationRun.automation_key == automation_key,
                AutomationRun.member_id == member_id,
            )
            .limit(limit)
        )
    )


def add_mark(session: Session, tenant_id: str, kind: str, key: str, now: datetime) -> bool:
    stmt = (
        dialect_insert(session)(AutomationMark)
        .values(tenant_id=tenant_id, kind=kind, key=key, created_at=now)
        .on_conflict_do_nothing()
    )
    return bool(getattr(session.execute(stmt), "rowcount", 0))


def has_mark(session: Session, tenant_id: str, kind: str, key: str) -> bool:
    return session.get(AutomationMark, (tenant_id, kind, key)) is not None


def get_member(session: Session, tenant_id: str, member_id: str) -> Member | None:
    return session.get(Member, (tenant_id, member_id))


def members_on_days(
    session: Session,
    tenant_id: str,
    *,
    column: str,
    month_days: Sequence[str],
    after_id: str | None,
    limit: int,
) -> list[Member]:
    """Members whose ``birthdate`` or ``enrolled_at`` (UTC) falls on one of ``month_days``
    ("MM-DD"), in member id order after ``after_id``."""
    col = Member.birthdate if column == "birthdate" else Member.enrolled_at
    if is_postgres(session):
        if column == "birthdate":
            day = func.to_char(col, "MM-DD")
        else:
            day = func.to_char(func.timezone("UTC", col), "MM-DD")
    else:
        day = func.strftime("%m-%d", col)
    stmt = select(Member).where(
        Member.tenant_id == tenant_id,
        Member.erased_at.is_(None),
        col.is_not(None),
        day.in_(list(month_days)),
    )
    if after_id is not None:
        stmt = stmt.where(Member.member_id > after_id)
    return list(session.scalars(stmt.order_by(Member.member_id).limit(limit)))


def members_page(
    session: Session, tenant_id: str, after_id: str | None, limit: int
) -> list[Member]:
    stmt = select(Member).where(Member.tenant_id == tenant_id, Member.erased_at.is_(None))
    if after_id is not None:
        stmt = stmt.where(Member.member_id > after_id)
    return list(session.scalars(stmt.order_by(Member.member_id).limit(limit)))


def lifetime_earned(session: Session, tenant_id: str, member_id: str, wallet: str) -> int:
    """Points the member ever earned in the wallet (minor units): every ``earn`` credit,
    pending or posted, before any spending, expiry or refund."""
    total = session.scalar(
        select(func.coalesce(func.sum(Transfer.amount_minor), 0)).where(
            Transfer.tenant_id == tenant_id,
            Transfer.member_id == member_id,
            Transfer.wallet == wallet,
            Transfer.code == "earn",
            Transfer.phase.in_(("pending", "posted")),
        )
    )
    return int(total or 0)


def order_position(session: Session, tenant_id: str, member_id: str, order_id: str) -> int | None:
    """Which of the member's completed orders this is (1 = first), by placing time."""
    this = session.get(Order, (tenant_id, order_id))
    if this is None or this.member_id != member_id:
        return None
    earlier = session.scalar(
        select(func.count())
        .select_from(Order)
        .where(
            Order.tenant_id == tenant_id,
            Order.member_id == member_id,
            Order.status == "completed",
            or_(
                Order.placed_at < this.placed_at,
                and_(Order.placed_at == this.placed_at, Order.order_id < order_id),
            ),
        )
    )
    return int(earlier or 0) + 1


def expiring_groups(
    session: Session,
    tenant_id: str,
    *,
    wallet: str | None,
    start: datetime,
    end: datetime,
    after: tuple[str, str, datetime] | None,
    limit: int,
) -> list[tuple[str, str, datetime, int]]:
    """(member id, wallet, expires_at, points) of active lots expiring in (start, end],
    grouped, in key order after ``after``."""
    stmt = select(Lot.member_id, Lot.wallet, Lot.expires_at, func.sum(Lot.remaining_minor)).where(
        Lot.tenant_id == tenant_id,
        Lot.status == "active",
        Lot.remaining_minor > 0,
        Lot.expires_at > start,
        Lot.expires_at <= end,
    )
    if wallet is not None:
        stmt = stmt.where(Lot.wallet == wallet)
    if after is not None:
        stmt = stmt.where(tuple_(Lot.member_id, Lot.wallet, Lot.expires_at) > tuple_(*after))
    stmt = (
        stmt.group_by(Lot.member_id, Lot.wallet, Lot.expires_at)
        .order_by(Lot.member_id, Lot.wallet, Lot.expires_at)
        .limit(limit)
    )
    rows = session.execute(stmt).all()
    return [(r[0], r[1], _aware(r[2]), int(r[3])) for r in rows]


def _aware(value: Any) -> datetime:
    from datetime import UTC

    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def transfer_exists(session: Session, tenant_id: str, idem_key: str) -> bool:
    return (
        session.scalar(
            select(Transfer.id).where(
                Transfer.tenant_id == tenant_id, Transfer.idem_key == idem_key
            )
        )
        is not None
    )


def coupons_of_source(session: Session, tenant_id: str, source_id: str) -> list[Coupon]:
    return list(
        session.scalars(
            select(Coupon).where(
                Coupon.tenant_id == tenant_id,
                Coupon.source_type == "automation",
                Coupon.source_id == source_id,
            )
        )
    )
