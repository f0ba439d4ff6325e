"""Redeeming rewards with points, and the B2B approval flow.

A redemption spends ``cost × quantity`` points of the reward's wallet. A member of a pooled
B2B account spends from the account's wallet. When such a buyer (not an account admin)
asks for more points than the account's approval threshold, the points are held (phase one
of a two-phase spend: they leave the wallet into the ``held`` system account) until an
account admin approves (the held points are spent) or rejects, or the approval times out
(the points go back to the lots they came from). Stock and limits count a waiting
redemption and free its share when it is rejected or times out.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from allegiance.b2b import repository as accounts_repo
from allegiance.b2b import service as b2b
from allegiance.b2b.service import Holder
from allegiance.earning import service as earning
from allegiance.earning.engine import UsageBook
from allegiance.errors import Conflict, Forbidden, NotFound, invalid
from allegiance.kit.clock import as_utc, period_key
from allegiance.kit.expression import Scope
from allegiance.kit.money import currency_exponent, number, to_minor
from allegiance.ledger import service as ledger
from allegiance.member import repository as members
from allegiance.order import service as orders
from allegiance.outbox import service as outbox
from allegiance.program.compiled import CompiledProgram
from allegiance.program.schema import Reward
from allegiance.redemption import repository
from allegiance.redemption.models import Redemption
from allegiance.redemption.schemas import RedemptionCreate
from allegiance.tier import service as tiers


def find_reward(program: CompiledProgram, key: str) -> Reward:
    for reward in program.program.rewards:
        if reward.key == key:
            return reward
    known = ", ".join(r.key for r in program.program.rewards[:20]) or "none"
    raise invalid(["body", "reward"], f"unknown reward {key!r}; rewards: {known}")


def _usage_keys(
    program: CompiledProgram, reward: Reward, member_id: str, at: datetime
) -> list[tuple[str, str, str]]:
    scope = f"reward:{reward.key}"
    keys: list[tuple[str, str, str]] = []
    if reward.stock is not None or (reward.limit and reward.limit.total):
        keys.append((scope, "", "all"))
    if reward.limit and reward.limit.per_member:
        keys.append((scope, member_id, period_key(reward.limit.period, at, program.tz)))
    return keys


def _count(
    usage: UsageBook, program: CompiledProgram, reward: Reward, member_id: str, at: datetime,
    quantity: int, points_minor: int,
) -> None:  # fmt: skip
    for scope, who, period in _usage_keys(program, reward, member_id, at):
        usage.add(scope, who, period, quantity, points_minor)


def redeem(
    session: Session,
    *,
    tenant_id: str,
    program: CompiledProgram,
    member_id: str,
    body: RedemptionCreate,
    now: datetime,
    partner: str | None = None,
) -> dict[str, Any]:
    """Spend points on a reward, or hold them for an account admin's approval. ``partner``:
    redeemed at that coalition partner (stamped on the spend for its settlement)."""
    reward = find_reward(program, body.reward)
    if members.get(session, tenant_id, member_id) is None:
        raise NotFound(f"member {member_id!r} not found", code="member_not_found")
    if (
        not reward.enabled
        or (reward.starts_at and now < as_utc(reward.starts_at))
        or (reward.ends_at and now >= as_utc(reward.ends_at))
    ):
        raise Conflict(f"reward {reward.key!r} is not available now", code="reward_unavailable")
    member = orders.lock_members(
        session, tenant_id=tenant_id, program=program, member_ids=[member_id], now=now
    )[member_id]
    holder = orders.lock_holders(
        session, tenant_id=tenant_id, program=program, members_=[member], now=now
    )[member_id]
    exponent = currency_exponent(program.currency)
    if reward.eligible is not None:
        from allegiance.kit.expression import compile_expression

        held = tiers.current(
            session, tenant_id=tenant_id, program=program, owner=holder.owner, at=now
        )
        context = {
            "member": orders.member_context(member, exponent, held=held),
            "account": b2b.account_context(holder.account),
            "now": now,
        }
        if not Scope(context).test(compile_expression(reward.eligible)):
            raise Forbidden(
                f"member {member_id!r} is not eligible for reward {reward.key!r}",
                code="not_eligible",
            )
    wallet_key = reward.wallet or program.program.default_wallet
    wallet = program.program.wallets[wallet_key]
    points_minor = to_minor(reward.cost * Decimal(body.quantity), wallet.precision)
    usage = earning.load_usage(
        session,
        tenant_id=tenant_id,
        keys=_usage_keys(program, reward, member_id, now),
        lock=True,
    )
    _check_limits(program, reward, usage, member_id, now, body.quantity)
    account = holder.account
    needs_approval = (
        holder.pooled
        and account is not None
        and member.account_role != "admin"
        and account.approval_threshold_minor is not None
        and points_minor > account.approval_threshold_minor
    )
    row: dict[str, Any] = {
        "tenant_id": tenant_id,
        "redemption_id": body.id,
        "member_id": member_id,
        "owner_type": holder.owner_type,
        "owner_id": holder.owner_id,
        "account_id": account.account_id if account is not None else None,
        "reward": reward.key,
        "reward_type": reward.type,
        "quantity": body.quantity,
        "wallet": wallet_key,
        "points_minor": points_minor,
        "status": "completed",
        "held_lots": [],
        "ledger_account_id": None,
        "approval_expires_at": None,
        "decided_at": None,
        "decided_by": None,
        "decision_note": None,
        "partner": partner,
        "created_at": now,
        "updated_at": now,
    }
    if needs_approval:
        assert account is not None
        hold = ledger.hold(
            session,
            tenant_id=tenant_id,
            wallet=wallet_key,
            owner_type=holder.owner_type,
            owner_id=holder.owner_id,
            member_id=member_id,
            amount_minor=points_minor,
            source_type="redemption",
            source_id=body.id,
            now=now,
        )
        row.update(
            status="awaiting_approval",
            held_lots=[[lot_id, amount] for lot_id, amount in hold.lots],
            ledger_account_id=hold.account_id,
            approval_expires_at=now + timedelta(hours=account.approval_timeout_hours),
        )
    else:
        row["ledger_account_id"] = ledger.debit(
            session,
            tenant_id=tenant_id,
            member_id=member_id,
            wallet=wallet_key,
            amount_minor=points_minor,
            code="spend",
            source_type="redemption",
            source_id=body.id,
            idem_key=f"redemption/{body.id}/spend",
            now=now,
            reason=f"reward {reward.key}",
            owner_type=holder.owner_type,
            owner_id=holder.owner_id,
            partner=partner,
        )
    _count(usage, program, reward, member_id, now, body.quantity, points_minor)
    earning.save_usage(session, tenant_id=tenant_id, usage=usage)
    repository.insert_redemption(session, row)
    redemption = repository.get(session, tenant_id, body.id)
    assert redemption is not None
    _emit(session, tenant_id, program, redemption, now)
    return view(session, tenant_id=tenant_id, program=program, redemption=redemption, holder=holder)


def _check_limits(
    program: CompiledProgram,
    reward: Reward,
    usage: UsageBook,
    member_id: str,
    now: datetime,
    quantity: int,
) -> None:
    scope = f"reward:{reward.key}"
    used_total, _ = usage.get(scope, "", "all")
    if reward.stock is not None and used_total + quantity > reward.stock:
        raise Conflict(
            f"reward {reward.key!r} has {max(reward.stock - used_total, 0)} left",
            code="out_of_stock",
        )
    limit = reward.limit
    if limit is None:
        return
    if limit.total is not None and used_total + quantity > limit.total:
        raise Conflict(f"reward {reward.key!r} reached its total limit", code="limit_exceeded")
    if limit.per_member is not None:
        used, _ = usage.get(scope, member_id, period_key(limit.period, now, program.tz))
        if used + quantity > limit.per_member:
            raise Conflict(
                f"member {member_id!r} may redeem {reward.key!r} {limit.per_member} times per "
                f"{limit.period}; {used} used",
                code="limit_exceeded",
            )


def decide(
    session: Session,
    *,
    tenant_id: str,
    program: CompiledProgram,
    redemption_id: str,
    approve: bool,
    approver_id: str | None,
    note: str | None,
    approver_required: bool,
    now: datetime,
) -> dict[str, Any]:
    """An account admin approves (points spent) or rejects (points released) a redemption."""
    redemption = repository.get(session, tenant_id, redemption_id)
    if redemption is None:
        raise NotFound(f"redemption {redemption_id!r} not found", code="redemption_not_found")
    if approver_id is None and approver_required:
        raise invalid(["body", "approver_id"], "the account admin who decides is required")
    if approver_id is not None:
        approver = members.get(session, tenant_id, approver_id)
        if (
            approver is None
            or approver.account_id != redemption.account_id
            or approver.account_role != "admin"
        ):
            raise Forbidden(
                f"{approver_id!r} is not an admin of account {redemption.account_id!r}",
                code="not_account_admin",
            )
    # the same lock order as a booking: member, then account, then the redemption
    member = orders.lock_members(
        session,
        tenant_id=tenant_id,
        program=program,
        member_ids=[redemption.member_id],
        now=now,
    )[redemption.member_id]
    if redemption.account_id:
        accounts_repo.accounts_by_id(session, tenant_id, [redemption.account_id], lock=True)
    redemption = repository.get(session, tenant_id, redemption_id, lock=True)
    assert redemption is not None
    wanted = "completed" if approve else "rejected"
    if redemption.status == wanted and redemption.decided_at is not None:
        return view(session, tenant_id=tenant_id, program=program, redemption=redemption)
    if redemption.status != "awaiting_approval":
        raise Conflict(
            f"redemption {redemption_id!r} is {redemption.status}, not awaiting approval",
            code="redemption_not_pending",
            status_now=redemption.status,
        )
    expires = redemption.approval_expires_at
    if expires is not None and expires <= now:
        raise Conflict(
            f"the approval window of redemption {redemption_id!r} closed at {expires.isoformat()}",
            code="approval_expired",
        )
    if approve:
        ledger.post_hold(
            session,
            tenant_id=tenant_id,
            wallet=redemption.wallet,
            member_id=redemption.member_id,
            amount_minor=redemption.points_minor,
            source_type="redemption",
            source_id=redemption.redemption_id,
            now=now,
            partner=redemption.partner,
        )
        redemption.status = "completed"
    else:
        _release(session, tenant_id, program, redemption, now)
        redemption.status = "rejected"
    redemption.decided_at = now
    redemption.decided_by = approver_id
    redemption.decision_note = note
    redemption.updated_at = now
    session.flush()
    _emit(session, tenant_id, program, redemption, now)
    del member
    return view(session, tenant_id=tenant_id, program=program, redemption=redemption)


def _release(
    session: Session,
    tenant_id: str,
    program: CompiledProgram,
    redemption: Redemption,
    now: datetime,
) -> None:
    assert redemption.ledger_account_id is not None
    ledger.release_hold(
        session,
        tenant_id=tenant_id,
        wallet=redemption.wallet,
        account_id=redemption.ledger_account_id,
        member_id=redemption.member_id,
        lots=[(int(lot_id), int(amount)) for lot_id, amount in redemption.held_lots],
        source_type="redemption",
        source_id=redemption.redemption_id,
        now=now,
    )
    reward = next((r for r in program.program.rewards if r.key == redemption.reward), None)
    if reward is not None:
        # free the stock and the limits the waiting redemption took
        usage = UsageBook()
        _count(
            usage, program, reward, redemption.member_id, redemption.created_at,
            -redemption.quantity, -redemption.points_minor,
        )  # fmt: skip
        earning.save_usage(session, tenant_id=tenant_id, usage=usage)


def expire_waiting(
    session: Session, *, tenant_id: str, program: CompiledProgram, redemption_id: str,
    member_id: str, account_id: str | None, now: datetime,
) -> bool:  # fmt: skip
    """The approval window closed: release the held points. Locks in the order a decision
    does (member, account, redemption) and re-checks under the lock."""
    orders.lock_members(
        session, tenant_id=tenant_id, program=program, member_ids=[member_id], now=now
    )
    if account_id:
        accounts_repo.accounts_by_id(session, tenant_id, [account_id], lock=True)
    redemption = repository.get(session, tenant_id, redemption_id, lock=True)
    if (
        redemption is None
        or redemption.status != "awaiting_approval"
        or redemption.approval_expires_at is None
        or redemption.approval_expires_at > now
    ):
        return False  # decided meanwhile, or another worker took it
    _release(session, tenant_id, program, redemption, now)
    redemption.status = "expired"
    redemption.decided_at = now
    redemption.updated_at = now
    session.flush()
    _emit(session, tenant_id, program, redemption, now)
    return True


_EVENTS = {
    "completed": "reward.redeemed",
    "awaiting_approval": "redemption.approval_requested",
    "rejected": "redemption.rejected",
    "expired": "redemption.expired",
}


def _emit(
    session: Session, tenant_id: str, program: CompiledProgram, r: Redemption, now: datetime
) -> None:
    precision = (
        program.program.wallets[r.wallet].precision if r.wallet in (program.program.wallets) else 0
    )
    outbox.emit(
        session,
        tenant_id=tenant_id,
        type_=_EVENTS[r.status],
        data={
            "redemption_id": r.redemption_id,
            "member_id": r.member_id,
            "account_id": r.account_id,
            "reward": r.reward,
            "quantity": r.quantity,
            "wallet": r.wallet,
            "points": number(r.points_minor, precision),
            "status": r.status,
        },
        now=now,
    )


def view(
    session: Session,
    *,
    tenant_id: str,
    program: CompiledProgram,
    redemption: Redemption,
    holder: Holder | None = None,
) -> dict[str, Any]:
    r = redemption
    wallet = program.program.wallets.get(r.wallet)
    precision = wallet.precision if wallet else 0
    owner = (r.owner_type, r.owner_id)
    return {
        "redemption_id": r.redemption_id,
        "member_id": r.member_id,
        "account_id": r.account_id,
        "reward": r.reward,
        "type": r.reward_type,
        "quantity": r.quantity,
        "wallet": r.wallet,
        "points_spent": number(r.points_minor, precision),
        "status": r.status,
        "approval": None
        if r.approval_expires_at is None
        else {
            "required": True,
            "expires_at": r.approval_expires_at.isoformat(),
            "decided_at": r.decided_at.isoformat() if r.decided_at else None,
            "decided_by": r.decided_by,
            "note": r.decision_note,
        },
        "coupon": None,
        "partner": r.partner,
        "created_at": r.created_at.isoformat(),
        "balances": orders.balances(
            session, tenant_id=tenant_id, program=program, member_id=r.member_id, owner=owner
        ),
    }


def get_redemption(
    session: Session,
    *,
    tenant_id: str,
    program: CompiledProgram,
    redemption_id: str,
    partner: str | None = None,
) -> dict[str, Any]:
    """One redemption; a partner key sees only those made at its partner."""
    redemption = repository.get(session, tenant_id, redemption_id)
    if redemption is None or (partner is not None and redemption.partner != partner):
        raise NotFound(f"redemption {redemption_id!r} not found", code="redemption_not_found")
    return view(session, tenant_id=tenant_id, program=program, redemption=redemption)


def account_redemptions(
    session: Session,
    *,
    tenant_id: str,
    program: CompiledProgram,
    account_id: str,
    status: str | None,
    limit: int,
) -> dict[str, Any]:
    b2b.get_account(session, tenant_id=tenant_id, account_id=account_id)
    rows = repository.of_account(session, tenant_id, account_id, status, limit)
    return {
        "data": [view(session, tenant_id=tenant_id, program=program, redemption=r) for r in rows],
        "next_cursor": None,
    }
