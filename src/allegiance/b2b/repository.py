"""SQL for B2B accounts."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from allegiance.b2b.models import Account
from allegiance.db import dialect_insert, is_postgres
from allegiance.member.models import Member


def get(session: Session, tenant_id: str, account_id: str, *, lock: bool = False) -> Account | None:
    stmt = select(Account).where(Account.tenant_id == tenant_id, Account.account_id == account_id)
    if lock and is_postgres(session):
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    return session.execute(stmt).scalar_one_or_none()


def upsert(session: Session, values: dict[str, Any], update_fields: Sequence[str]) -> Account:
    ins = dialect_insert(session)
    stmt = ins(Account).values(**values)
    stmt = stmt.on_conflict_do_update(
        index_elements=["tenant_id", "account_id"],
        set_={f: stmt.excluded[f] for f in update_fields},
    )
    session.execute(stmt)
    found = get(session, values["tenant_id"], values["account_id"], lock=True)
    assert found is not None
    return found


def accounts_by_id(
    session: Session, tenant_id: str, account_ids: Sequence[str], *, lock: bool
) -> dict[str, Account]:
    """The accounts among ``account_ids`` that exist, row-locked in id order when ``lock``."""
    ids = sorted({a for a in account_ids if a})
    if not ids:
        return {}
    stmt = (
        select(Account)
        .where(Account.tenant_id == tenant_id, Account.account_id.in_(ids))
        .order_by(Account.account_id)
    )
    if lock and is_postgres(session):
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    return {a.account_id: a for a in session.execute(stmt).scalars()}


def members_of(session: Session, tenant_id: str, account_id: str, limit: int) -> list[Member]:
    stmt = (
        select(Member)
        .where(Member.tenant_id == tenant_id, Member.account_id == account_id)
        .order_by(Member.member_id)
        .limit(limit)
    )
    return list(session.execute(stmt).scalars())


def set_link(
    session: Session,
    tenant_id: str,
    member_id: str,
    account_id: str | None,
    role: str | None,
    now: datetime,
) -> None:
    session.execute(
        update(Member)
        .where(Member.tenant_id == tenant_id, Member.member_id == member_id)
        .values(account_id=account_id, account_role=role, updated_at=now)
        .execution_options(synchronize_session=False)
    )


def set_activity(
    session: Session, tenant_id: str, account_id: str, last_activity_at: datetime | None,
    settle_at: datetime | None,
) -> None:  # fmt: skip
    session.execute(
        update(Account)
        .where(Account.tenant_id == tenant_id, Account.account_id == account_id)
        .values(last_activity_at=last_activity_at, settle_at=settle_at)
        .execution_options(synchronize_session=False)
    )


def due_for_settlement(
    session: Session, tenant_id: str, now: datetime, limit: int, *, skip_locked: bool
) -> list[Account]:
    stmt = (
        select(Account)
        .where(Account.tenant_id == tenant_id, Account.settle_at <= now)
        .order_by(Account.settle_at)
        .limit(limit)
    )
    if is_postgres(session):
        stmt = stmt.with_for_update(skip_locked=skip_locked)
    return list(session.execute(stmt).scalars())
