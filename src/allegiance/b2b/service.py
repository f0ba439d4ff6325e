"""B2B accounts: companies whose buyers (members) order for them.

A pooled account holds the wallets and the tier of its buyers: their orders and events earn
into the account's wallets and count toward the account's tier; any buyer sees the account
balance and may redeem from it. A buyer's redemption above the account's approval threshold
waits for an account admin (see ``allegiance.redemption``). Points a member earned before
joining stay in the member's own wallets.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from allegiance.b2b import repository
from allegiance.b2b.models import Account
from allegiance.b2b.schemas import AccountUpsert
from allegiance.errors import NotFound, invalid
from allegiance.kit.money import decimal_places, number, to_minor
from allegiance.ledger import service as ledger
from allegiance.member import enrolment
from allegiance.member import repository as members
from allegiance.member.models import Member
from allegiance.program.compiled import CompiledProgram
from allegiance.program.service import load_program
from allegiance.tier import service as tiers
from allegiance.tier.repository import Owner

ACCOUNT_ID_MAX = 255
MEMBERS_SHOWN = 1000


@dataclass(frozen=True)
class Holder:
    """Who holds a member's wallets and tier: the member, or its pooled account."""

    owner: Owner
    account: Account | None  # the member's account (pooled or not), for CEL and views

    @property
    def pooled(self) -> bool:
        return self.owner[0] == "account"

    @property
    def owner_type(self) -> str:
        return self.owner[0]

    @property
    def owner_id(self) -> str:
        return self.owner[1]


def check_account_id(account_id: str) -> None:
    if not account_id or len(account_id) > ACCOUNT_ID_MAX or account_id.strip() != account_id:
        raise invalid(["path", "account_id"], "account id must be 1-255 characters, no padding")


def holders(
    session: Session, *, tenant_id: str, members_: list[Member], lock: bool
) -> dict[str, Holder]:
    """Holder per member id. With ``lock`` the accounts are row-locked (in id order), which
    serialises every write to a pooled wallet the way the member lock does for a member's."""
    ids = [m.account_id for m in members_ if m.account_id]
    accounts = repository.accounts_by_id(session, tenant_id, ids, lock=lock) if ids else {}
    result: dict[str, Holder] = {}
    for m in members_:
        account = accounts.get(m.account_id) if m.account_id else None
        if account is not None and account.pooled:
            result[m.member_id] = Holder(("account", account.account_id), account)
        else:
            result[m.member_id] = Holder(("member", m.member_id), account)
    return result


def holder_of(session: Session, *, tenant_id: str, member: Member, lock: bool = False) -> Holder:
    return holders(session, tenant_id=tenant_id, members_=[member], lock=lock)[member.member_id]


def account_context(account: Account | None) -> dict[str, Any]:
    """The account as CEL sees it (``account.group == 'wholesale'``)."""
    if account is None:
        return {"id": "", "name": "", "group": "", "pooled": False, "attributes": {}}
    return {
        "id": account.account_id,
        "name": account.name,
        "group": account.group_key or "",
        "pooled": bool(account.pooled),
        "attributes": dict(account.attributes or {}),
    }


def upsert_account(
    session: Session,
    *,
    tenant_id: str,
    account_id: str,
    data: AccountUpsert,
    now: datetime,
) -> bool:
    """Create or replace an account's settings (and, when given, its member list)."""
    check_account_id(account_id)
    program = load_program(session, tenant_id=tenant_id)
    threshold_minor = None
    if data.approval_threshold is not None:
        precision = (
            program.program.wallets[program.program.default_wallet].precision if (program) else 0
        )
        if decimal_places(data.approval_threshold) > precision:
            raise invalid(
                ["body", "approval_threshold"],
                f"has more than {precision} decimal places (the points wallet's precision)",
            )
        threshold_minor = to_minor(data.approval_threshold, precision)
    existing = repository.get(session, tenant_id, account_id, lock=True)
    values = {
        "tenant_id": tenant_id,
        "account_id": account_id,
        "name": data.name,
        "group_key": data.group,
        "pooled": data.pooled,
        "approval_threshold_minor": threshold_minor,
        "approval_timeout_hours": data.approval_timeout_hours,
        "attributes": data.attributes,
        "created_at": now,
        "updated_at": now,
    }
    repository.upsert(
        session,
        values,
        update_fields=[
            "name", "group_key", "pooled", "approval_threshold_minor",
            "approval_timeout_hours", "attributes", "updated_at",
        ],
    )  # fmt: skip
    if data.members is not None:
        seen: set[str] = set()
        for index, link in enumerate(data.members):
            if link.member_id in seen:
                raise invalid(["body", "members", index, "member_id"], "listed twice")
            seen.add(link.member_id)
        current = {
            m.member_id for m in repository.members_of(session, tenant_id, account_id, 100_000)
        }
        enrolment.ensure_enrolled(session, tenant_id, sorted(seen), now)
        for link in data.members:
            repository.set_link(session, tenant_id, link.member_id, account_id, link.role, now)
        for member_id in sorted(current - seen):
            repository.set_link(session, tenant_id, member_id, None, None, now)
    return existing is None


def link_member(
    session: Session,
    *,
    tenant_id: str,
    account_id: str,
    member_id: str,
    role: str | None,
    now: datetime,
) -> None:
    """Add a member to an account with a role, or (``role`` None) take it out."""
    get_account(session, tenant_id=tenant_id, account_id=account_id)
    member = members.get(session, tenant_id, member_id, lock=True)
    if member is None:
        raise NotFound(f"member {member_id!r} not found", code="member_not_found")
    if role is None:
        if member.account_id != account_id:
            raise NotFound(
                f"member {member_id!r} is not in account {account_id!r}",
                code="account_member_not_found",
            )
        repository.set_link(session, tenant_id, member_id, None, None, now)
    else:
        repository.set_link(session, tenant_id, member_id, account_id, role, now)


def get_account(session: Session, *, tenant_id: str, account_id: str) -> Account:
    account = repository.get(session, tenant_id, account_id)
    if account is None:
        raise NotFound(f"account {account_id!r} not found", code="account_not_found")
    return account


def account_view(
    session: Session, *, tenant_id: str, account_id: str, now: datetime
) -> dict[str, Any]:
    account = get_account(session, tenant_id=tenant_id, account_id=account_id)
    compiled = load_program(session, tenant_id=tenant_id)
    view = account_summary(session, tenant_id=tenant_id, account=account, program=compiled, now=now)
    view["members"] = [
        {"member_id": m.member_id, "role": m.account_role or "buyer"}
        for m in repository.members_of(session, tenant_id, account_id, MEMBERS_SHOWN)
    ]
    return view


def account_summary(
    session: Session,
    *,
    tenant_id: str,
    account: Account,
    program: CompiledProgram | None,
    now: datetime,
) -> dict[str, Any]:
    """The account as a member or an admin sees it; balances and tier when pooled."""
    precision = program.program.wallets[program.program.default_wallet].precision if program else 0
    view: dict[str, Any] = {
        "account_id": account.account_id,
        "name": account.name,
        "group": account.group_key,
        "pooled": bool(account.pooled),
        "approval_threshold": None
        if account.approval_threshold_minor is None
        else number(account.approval_threshold_minor, precision),
        "approval_timeout_hours": account.approval_timeout_hours,
        "attributes": account.attributes or {},
        "balances": None,
        "tier": None,
        "created_at": account.created_at.isoformat(),
        "updated_at": account.updated_at.isoformat(),
    }
    if account.pooled:
        view["balances"] = ledger.balances_view(
            session,
            tenant_id=tenant_id,
            program=program.program if program else None,
            member_id=account.account_id,
            last_activity_at=account.last_activity_at,
            now=now,
            owner_type="account",
        )
        view["tier"] = tiers.tier_view(
            session,
            tenant_id=tenant_id,
            program=program,
            owner=("account", account.account_id),
            now=now,
        )
    return view
