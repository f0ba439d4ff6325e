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
from allegiance.experiment.assignment import allowed
from allegiance.kit.clock import as_utc, period_key
from allegiance.kit.expression import Scope, compile_expression
from allegiance.kit.money import currency_exponent, decimal_places, money_str, number, to_minor
from allegiance.ledger import service as ledger
from allegiance.member import repository as members
from allegiance.order import service as orders
from allegiance.outbox import service as outbox
from allegiance.program.compiled import CompiledProgram
from allegiance.program.schema import Reward
from allegiance.redemption import issue, repository
from allegiance.redemption.models import Redemption
from allegiance.redemption.schemas import FulfilmentUpdate, RedemptionCreate


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
    """Spend points on a reward: hold them, issue the reward, then spend the held points
    (two-phase; a failure in between rolls the whole request back). A buyer's redemption
    above its pooled account's threshold stops after the hold until an admin decides.
    ``partner``: redeemed at that coalition partner (stamped on the spend for settlement)."""
    reward = find_reward(program, body.reward)
    if members.get(session, tenant_id, member_id) is None:
        raise NotFound(f"member {member_id!r} not found", code="member_not_found")
    if not _available(reward, now):
        raise Conflict(f"reward {reward.key!r} is not available now", code="reward_unavailable")
    member = orders.lock_members(
        session, tenant_id=tenant_id, program=program, member_ids=[member_id], now=now
    )[member_id]
    holder = orders.lock_holders(
        session, tenant_id=tenant_id, program=program, members_=[member], now=now
    )[member_id]
    if not _eligible(session, tenant_id, program, reward, member, now):
        raise Forbidden(
            f"member {member_id!r} is not eligible for reward {reward.key!r}", code="not_eligible"
        )
    wallet_key = reward.wallet or program.program.default_wallet
    wallet = program.program.wallets[wallet_key]
    quantity = body.quantity
    if reward.type == "cashback":
        points = _cashback_points(reward, body, wallet.precision)
        quantity = 1
    else:
        if body.points is not None:
            raise invalid(["body", "points"], "only cashback rewards take points")
        points = reward.unit_cost * Decimal(quantity)
    if reward.type == "physical" and reward.shipping is not False and not body.shipping_address:
        raise invalid(["body", "shipping_address"], "a physical reward needs a shipping address")
    points_minor = to_minor(points, wallet.precision)
    usage = earning.load_usage(
        session,
        tenant_id=tenant_id,
        keys=_usage_keys(program, reward, member_id, now),
        lock=True,
    )
    _check_limits(program, reward, usage, member_id, now, quantity)
    account = holder.account
    needs_approval = (
        holder.pooled
        and account is not None
        and member.account_role != "admin"
        and account.approval_threshold_minor is not None
        and points_minor > account.approval_threshold_minor
    )
    # a redemption that waits for approval holds its points; one that completes now spends
    # them, in the same transaction that issues the reward (a failure rolls both back)
    move = ledger.hold if needs_approval else ledger.spend
    hold = move(
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
        **({} if needs_approval else {"reason": f"reward {reward.key}", "partner": partner}),
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
        "quantity": quantity,
        "wallet": wallet_key,
        "points_minor": points_minor,
        "status": "awaiting_approval" if needs_approval else "completed",
        "held_lots": [[lot_id, amount] for lot_id, amount in hold.lots],
        "ledger_account_id": hold.account_id,
        "approval_expires_at": None,
        "decided_at": None,
        "decided_by": None,
        "decision_note": None,
        "partner": partner,
        "issued": {},
        "fulfilment": None,
        "shipping_address": body.shipping_address.model_dump(exclude_none=True)
        if body.shipping_address
        else None,
        "tracking": None,
        "perk": None,
        "perk_until": None,
        "cancelled_at": None,
        "created_at": now,
        "updated_at": now,
    }
    if needs_approval:
        assert account is not None
        row["approval_expires_at"] = now + timedelta(hours=account.approval_timeout_hours)
    _count(usage, program, reward, member_id, now, quantity, points_minor)
    earning.save_usage(session, tenant_id=tenant_id, usage=usage)
    repository.insert_redemption(session, row)
    redemption = repository.get(session, tenant_id, body.id)
    assert redemption is not None
    if not needs_approval:
        _issue(session, tenant_id, program, reward, redemption, now)
    _emit(session, tenant_id, program, redemption, now)
    return view(session, tenant_id=tenant_id, program=program, redemption=redemption, holder=holder)


def _available(reward: Reward, now: datetime) -> bool:
    if not reward.enabled:
        return False
    if reward.starts_at and now < as_utc(reward.starts_at):
        return False
    return not (reward.ends_at and now >= as_utc(reward.ends_at))


def _eligible(
    session: Session,
    tenant_id: str,
    program: CompiledProgram,
    reward: Reward,
    member: Any,
    now: datetime,
    context: dict[str, Any] | None = None,
) -> bool:
    if reward.eligible is None and reward.experiment is None:
        return True
    if context is None:
        context = _conditions(session, tenant_id, program, member, now)
    if not allowed(reward.experiment, context):
        return False  # tied to experiment variants the member is not in (or the holdout)
    return reward.eligible is None or Scope(context).test(compile_expression(reward.eligible))


def _conditions(
    session: Session, tenant_id: str, program: CompiledProgram, member: Any, now: datetime
) -> dict[str, Any]:
    context = orders.conditions_context(
        session,
        tenant_id=tenant_id,
        program=program,
        member=member,
        exponent=currency_exponent(program.currency),
        now=now,
    )
    context["now"] = now
    return context


def _cashback_points(reward: Reward, body: RedemptionCreate, precision: int) -> Decimal:
    if body.points is None:
        raise invalid(["body", "points"], "say how many points to turn into money")
    if decimal_places(body.points) > precision:
        raise invalid(["body", "points"], f"has more than {precision} decimal places")
    step = reward.unit_cost
    if body.points % step != 0:
        raise invalid(["body", "points"], f"must be a multiple of {step}")
    return body.points


def _issue(
    session: Session,
    tenant_id: str,
    program: CompiledProgram,
    reward: Reward,
    redemption: Redemption,
    now: datetime,
) -> None:
    """Give the member the reward (the points are spent, or held and about to be)."""
    redemption.issued = issue.issue(
        session, tenant_id=tenant_id, program=program, reward=reward, redemption=redemption,
        now=now,
    )  # fmt: skip
    if reward.type in ("physical", "experience"):
        redemption.fulfilment = "pending"
    if reward.type == "access":
        assert reward.days is not None
        redemption.perk = reward.perk
        redemption.perk_until = now + timedelta(days=reward.days)
    redemption.updated_at = now
    session.flush()


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
    orders.lock_members(
        session,
        tenant_id=tenant_id,
        program=program,
        member_ids=[redemption.member_id],
        now=now,
    )
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
        reward = next((r for r in program.program.rewards if r.key == redemption.reward), None)
        if reward is None:
            raise Conflict(
                f"reward {redemption.reward!r} is no longer in the program; reject instead",
                code="reward_unavailable",
            )
        redemption.status = "completed"
        _issue(session, tenant_id, program, reward, redemption, now)
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
    else:
        _release(session, tenant_id, program, redemption, now)
        redemption.status = "rejected"
    redemption.decided_at = now
    redemption.decided_by = approver_id
    redemption.decision_note = note
    redemption.updated_at = now
    session.flush()
    _emit(session, tenant_id, program, redemption, now)
    return view(session, tenant_id=tenant_id, program=program, redemption=redemption)


def _release(
    session: Session,
    tenant_id: str,
    program: CompiledProgram,
    redemption: Redemption,
    now: datetime,
) -> None:
    _give_back(session, tenant_id, program, redemption, now, from_account="held")


def _give_back(
    session: Session,
    tenant_id: str,
    program: CompiledProgram,
    redemption: Redemption,
    now: datetime,
    *,
    from_account: str,
) -> None:
    """Points back into the lots they came from (``release`` of held points, ``return`` of
    spent ones), and the stock and limits the redemption took."""
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
        from_account=from_account,
        code="release" if from_account == "held" else "return",
        partner=None if from_account == "held" else redemption.partner,
    )
    _give_back_usage(session, tenant_id, program, redemption)


def _give_back_usage(
    session: Session, tenant_id: str, program: CompiledProgram, redemption: Redemption
) -> None:
    """Free the stock and the limits a redemption took (rejected, expired or cancelled)."""
    reward = next((r for r in program.program.rewards if r.key == redemption.reward), None)
    if reward is not None:
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
        "coupon": (r.issued or {}).get("coupon"),
        "issued": r.issued or {},
        "fulfilment": r.fulfilment,
        "tracking": r.tracking,
        "shipping_address": r.shipping_address,
        "perk": None
        if r.perk is None
        else {"perk": r.perk, "until": r.perk_until.isoformat() if r.perk_until else None},
        "cancelled_at": r.cancelled_at.isoformat() if r.cancelled_at else None,
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


# ---- fulfilment and cancellation ---------------------------------------------------------

_NEXT = {
    "pending": {"shipped", "delivered", "cancelled"},
    "shipped": {"delivered", "cancelled"},
    "delivered": set(),
    "cancelled": set(),
}


def update_fulfilment(
    session: Session,
    *,
    tenant_id: str,
    program: CompiledProgram,
    redemption_id: str,
    update: FulfilmentUpdate,
    now: datetime,
) -> dict[str, Any]:
    """Move a redemption's fulfilment (pending → shipped → delivered), or cancel it: the
    points go back to the lots they came from and what it gave is taken back. Asking for the
    state it is already in answers it again (retries are safe)."""
    found = repository.get(session, tenant_id, redemption_id)
    if found is None:
        raise NotFound(f"redemption {redemption_id!r} not found", code="redemption_not_found")
    orders.lock_members(
        session, tenant_id=tenant_id, program=program, member_ids=[found.member_id], now=now
    )
    if found.account_id:
        accounts_repo.accounts_by_id(session, tenant_id, [found.account_id], lock=True)
    redemption = repository.get(session, tenant_id, redemption_id, lock=True)
    assert redemption is not None
    current = redemption.fulfilment or ("cancelled" if redemption.cancelled_at else None)
    if redemption.status != "completed" and redemption.cancelled_at is None:
        raise Conflict(
            f"redemption {redemption_id!r} is {redemption.status}", code="redemption_not_completed"
        )
    if current == update.fulfilment:
        return view(session, tenant_id=tenant_id, program=program, redemption=redemption)
    if update.fulfilment != "cancelled" and current is None:
        raise Conflict(
            f"a {redemption.reward_type} reward has no shipping to track",
            code="not_fulfilled",
        )
    if current is not None and update.fulfilment not in _NEXT[current]:
        raise Conflict(
            f"redemption {redemption_id!r} is {current}; it cannot become {update.fulfilment}",
            code="invalid_fulfilment",
        )
    if update.fulfilment == "cancelled":
        _cancel(session, tenant_id, program, redemption, now)
    redemption.fulfilment = update.fulfilment if current is not None else None
    if update.tracking is not None:
        redemption.tracking = update.tracking
    if update.note is not None:
        redemption.decision_note = update.note
    redemption.updated_at = now
    session.flush()
    return view(session, tenant_id=tenant_id, program=program, redemption=redemption)


def _cancel(
    session: Session,
    tenant_id: str,
    program: CompiledProgram,
    redemption: Redemption,
    now: datetime,
) -> None:
    issue.revoke(session, tenant_id=tenant_id, program=program, redemption=redemption, now=now)
    _give_back(session, tenant_id, program, redemption, now, from_account="redeemed")
    redemption.status = "cancelled"
    redemption.cancelled_at = now
    redemption.perk_until = min(redemption.perk_until, now) if redemption.perk_until else None
    outbox.emit(
        session,
        tenant_id=tenant_id,
        type_="redemption.cancelled",
        data={
            "redemption_id": redemption.redemption_id,
            "member_id": redemption.member_id,
            "reward": redemption.reward,
        },
        now=now,
    )


# ---- the catalog as a member sees it -------------------------------------------------------


def member_rewards(
    session: Session, *, tenant_id: str, program: CompiledProgram, member_id: str, now: datetime
) -> dict[str, Any]:
    """Every enabled reward with whether this member may redeem it now, can afford it, and
    how much of its stock and limits is left (``GET /v1/members/{id}/rewards``)."""
    member = members.get(session, tenant_id, member_id)
    if member is None:
        raise NotFound(f"member {member_id!r} not found", code="member_not_found")
    return {"data": catalog(session, tenant_id=tenant_id, program=program, member=member, now=now)}


def catalog(
    session: Session, *, tenant_id: str, program: CompiledProgram, member: Any, now: datetime
) -> list[dict[str, Any]]:
    rewards = [r for r in program.program.rewards if r.enabled]
    if not rewards:
        return []
    context = _conditions(session, tenant_id, program, member, now)
    holder = b2b.holder_of(session, tenant_id=tenant_id, member=member)
    balances = ledger.account_balances(session, tenant_id, holder.owner_id, holder.owner_type)
    keys = [k for r in rewards for k in _usage_keys(program, r, member.member_id, now)]
    usage = earning.load_usage(session, tenant_id=tenant_id, keys=keys, lock=False)
    result: list[dict[str, Any]] = []
    for reward in rewards:
        wallet_key = reward.wallet or program.program.default_wallet
        wallet = program.program.wallets[wallet_key]
        balance = balances.get(wallet_key, (0, 0))[0]
        cost_minor = to_minor(reward.unit_cost, wallet.precision)
        scope = f"reward:{reward.key}"
        used_total, _ = usage.get(scope, "", "all")
        reasons: list[str] = []
        available = _available(reward, now)
        if not available:
            reasons.append("reward_unavailable")
        eligible = _eligible(session, tenant_id, program, reward, member, now, context)
        if not eligible:
            reasons.append("not_eligible")
        stock_left = None if reward.stock is None else max(reward.stock - used_total, 0)
        if stock_left == 0:
            reasons.append("out_of_stock")
        limits: dict[str, Any] = {}
        if reward.limit is not None:
            if reward.limit.per_member is not None:
                period = period_key(reward.limit.period, now, program.tz)
                used, _ = usage.get(scope, member.member_id, period)
                left = max(reward.limit.per_member - used, 0)
                limits["per_member"] = {
                    "limit": reward.limit.per_member,
                    "period": reward.limit.period,
                    "used": used,
                    "remaining": left,
                }
                if left == 0:
                    reasons.append("limit_exceeded")
            if reward.limit.total is not None:
                left = max(reward.limit.total - used_total, 0)
                limits["total"] = {"limit": reward.limit.total, "remaining": left}
                if left == 0 and "limit_exceeded" not in reasons:
                    reasons.append("limit_exceeded")
        affordable = balance >= cost_minor
        if not affordable:
            reasons.append("insufficient_points")
        entry: dict[str, Any] = {
            "key": reward.key,
            "name": reward.name or reward.key,
            "description": reward.description,
            "type": reward.type,
            "wallet": wallet_key,
            "cost": number(cost_minor, wallet.precision),
            "value": None if reward.value is None else str(reward.value),
            "eligible": eligible and available,
            "affordable": affordable,
            "redeemable": not reasons,
            "reasons": reasons,
            "stock_left": stock_left,
            "limits": limits,
            "max_quantity": _max_quantity(balance, cost_minor, stock_left, limits),
        }
        if reward.type == "cashback":
            entry["max_points"] = number(balance - balance % cost_minor, wallet.precision)
            entry["max_value"] = money_str(
                issue.cashback_value(program, reward, balance - balance % cost_minor),
                currency_exponent(program.currency),
            )
        result.append(entry)
    return result


def _max_quantity(
    balance: int, cost_minor: int, stock_left: int | None, limits: dict[str, Any]
) -> int:
    most = balance // cost_minor if cost_minor > 0 else 0
    if stock_left is not None:
        most = min(most, stock_left)
    for limit in limits.values():
        most = min(most, limit["remaining"])
    return max(min(most, 1000), 0)


def active_perks(
    session: Session, *, tenant_id: str, member_ids: list[str], now: datetime
) -> dict[str, list[str]]:
    """Perks members hold from ``access`` rewards, per member."""
    return repository.active_perks(session, tenant_id, member_ids, now)
