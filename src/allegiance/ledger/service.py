"""Every write to the ledger goes through here.

Conventions: amounts are integer minor units (points × 10^precision). A transfer moves an
amount from a debit account to a credit account. Member accounts cache their posted (active)
and pending balances; system accounts per tenant×wallet (``issued``, ``redeemed``, ``expired``,
``adjustments``) take the other side. Two-phase credits: an ``earn`` transfer in phase
``pending`` is later posted by an ``activate`` transfer or (partly) voided by a ``reverse``
transfer in phase ``void``. Callers hold the member's row lock (see member.repository), so a
member's ledger operations are serialised; debits still check the balance in the write itself.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from allegiance.errors import InsufficientPoints
from allegiance.kit.clock import end_of_month, end_of_year, zone
from allegiance.kit.money import number
from allegiance.ledger import repository
from allegiance.ledger.models import Lot
from allegiance.program.schema import Program, Wallet


@dataclass
class Credit:
    member_id: str
    wallet: str
    amount_minor: int
    code: str  # earn | adjust
    source_type: str
    source_id: str
    idem_key: str
    available_at: datetime
    effective_at: datetime
    order_id: str | None = None
    rule: str | None = None
    reason: str | None = None
    expires_at: datetime | None = None  # explicit expiry (manual credits); else wallet policy
    # the wallet's holder when it is not the member: a B2B account with a pooled wallet
    owner_type: str = "member"
    owner_id: str | None = None

    @property
    def holder(self) -> str:
        return self.owner_id if self.owner_id is not None else self.member_id

    partner: str | None = None  # an earning funded by this coalition partner, not the program


@dataclass
class Booked:
    """What a booking did, for the response's effects."""

    posted: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    pending: dict[str, int] = field(default_factory=lambda: defaultdict(int))


def expiry_for(wallet: Wallet, timezone: str, activated_at: datetime) -> datetime | None:
    """When a lot that becomes usable at ``activated_at`` expires under the wallet's policy."""
    mode = wallet.expiry.mode
    if mode == "rolling_days":
        assert wallet.expiry.days is not None
        return activated_at + timedelta(days=wallet.expiry.days)
    if mode == "end_of_month":
        return end_of_month(activated_at, zone(timezone))
    if mode == "end_of_year":
        return end_of_year(activated_at, zone(timezone))
    return None  # never, or inactivity_days (decided per member, not per lot)


def credit(
    session: Session, *, tenant_id: str, program: Program, credits: list[Credit], now: datetime
) -> Booked:
    """Book credits (earnings, manual credits): pending until ``available_at``, else active."""
    booked = Booked()
    if not credits:
        return booked
    by_wallet: dict[tuple[str, str], list[Credit]] = defaultdict(list)
    for c in credits:
        by_wallet[(c.wallet, c.owner_type)].append(c)
    deltas: dict[int, tuple[int, int]] = {}
    # rows as tuples in the repository's column order (an import books ~100,000 at once)
    transfer_rows: list[tuple[Any, ...]] = []
    lot_rows: list[tuple[Any, ...]] = []
    debt_netting: list[tuple[int, int]] = []  # (account id, amount) of active credits
    for (wallet_key, owner_type), items in sorted(by_wallet.items()):
        wallet = program.wallets[wallet_key]
        issued = repository.system_account(
            session, tenant_id, wallet_key, "issued" if items[0].code == "earn" else "adjustments"
        )
        accounts = repository.ensure_accounts(
            session, tenant_id, wallet_key, owner_type, [c.holder for c in items]
        )
        expired_account: int | None = None  # looked up once per wallet, when needed
        expiries: dict[datetime, datetime | None] = {}  # the wallet's policy, per activation
        for c in items:
            if c.amount_minor <= 0:
                continue
            source = issued
            if c.code != "earn":
                source = repository.system_account(session, tenant_id, wallet_key, "adjustments")
            elif c.partner:
                source = repository.system_account(
                    session, tenant_id, wallet_key, partner_account(c.partner)
                )
            account = accounts[c.holder]
            is_pending = c.available_at > now
            expires = c.expires_at
            if expires is None and not is_pending:
                if c.available_at in expiries:
                    expires = expiries[c.available_at]
                else:
                    expires = expiries[c.available_at] = expiry_for(
                        wallet, program.timezone, c.available_at
                    )
            # history older than its own expiry (an import): earned and expired in one go
            expired_already = not is_pending and expires is not None and expires <= now
            posted, pending = deltas.get(account, (0, 0))
            if expired_already:
                pass  # the balance does not change: in and out at once
            elif is_pending:
                deltas[account] = (posted, pending + c.amount_minor)
                booked.pending[wallet_key] += c.amount_minor
            else:
                deltas[account] = (posted + c.amount_minor, pending)
                booked.posted[wallet_key] += c.amount_minor
                debt_netting.append((account, c.amount_minor))
            transfer_rows.append(
                (
                    tenant_id, wallet_key, source, account, c.amount_minor, c.code,
                    "pending" if is_pending else "posted", None, c.member_id, c.order_id,
                    c.source_type, c.source_id, c.rule, c.reason, None, c.idem_key,
                    c.effective_at, c.partner,
                )
            )  # fmt: skip
            if expired_already:
                assert expires is not None
                if expired_account is None:
                    expired_account = repository.system_account(
                        session, tenant_id, wallet_key, "expired"
                    )
                transfer_rows.append(
                    (
                        tenant_id, wallet_key, account, expired_account, c.amount_minor,
                        "expire", "posted", None, c.member_id, c.order_id, "expiry", c.idem_key,
                        c.rule, None, None, f"expire/{c.idem_key}", expires, None,
                    )
                )  # fmt: skip
            lot_rows.append(
                (
                    tenant_id, wallet_key, account, c.member_id,
                    "closed" if expired_already else ("pending" if is_pending else "active"),
                    c.amount_minor, 0 if expired_already else c.amount_minor, c.available_at,
                    expires, c.order_id, c.rule, None, c.effective_at,
                )
            )  # fmt: skip
    # the lot points at its transfer (a later activation or void names the transfer)
    transfer_ids = repository.insert_transfer_values(session, transfer_rows)
    earn_ids = [
        transfer_id
        for row, transfer_id in zip(transfer_rows, transfer_ids, strict=True)
        if row[_CODE] != "expire"
    ]
    repository.insert_lot_values(
        session, [(*row, transfer_id) for row, transfer_id in zip(lot_rows, earn_ids, strict=True)]
    )
    repository.add_balances(session, deltas)
    if debt_netting:
        _net_debt(session, {a for a, _ in debt_netting})
    return booked


_CODE = repository.TRANSFER_COLUMNS.index("code")


def _net_debt(session: Session, account_ids: set[int]) -> None:
    """Offset debt lots (negative, from unlimited reversals) with active credit lots."""
    for account_id in sorted(repository.accounts_in_debt(session, list(account_ids))):
        debts = repository.debt_lots(session, account_id)
        if not debts:
            continue
        lots = repository.open_lots(session, account_id, status="active")
        updates: list[dict[str, Any]] = []
        for debt in debts:
            owed = -debt.remaining_minor
            for lot in lots:
                if owed == 0:
                    break
                take = min(owed, lot.remaining_minor)
                if take <= 0:
                    continue
                lot.remaining_minor -= take
                owed -= take
                updates.append(_lot_row(lot))
            debt.remaining_minor = -owed
            if owed == 0:
                debt.status = "closed"
            updates.append(_lot_row(debt))
        repository.update_lots(session, _dedupe(updates))


def debit(
    session: Session,
    *,
    tenant_id: str,
    member_id: str,
    wallet: str,
    amount_minor: int,
    code: str,
    source_type: str,
    source_id: str,
    idem_key: str,
    now: datetime,
    reason: str | None = None,
    counter: str = "redeemed",
    owner_type: str = "member",
    owner_id: str | None = None,
    partner: str | None = None,
) -> int:
    """Spend active points earliest-expiry first; InsufficientPoints if the balance is short.

    ``owner_type``/``owner_id`` name the holder when it is not the member (a pooled B2B
    account); ``member_id`` is then the member who spends. ``partner`` stamps a spend made at
    a coalition partner (for its settlement).
    """
    holder = owner_id if owner_id is not None else member_id
    account = repository.ensure_accounts(session, tenant_id, wallet, owner_type, [holder])[holder]
    if not repository.debit_if_enough(session, account, amount_minor):
        raise InsufficientPoints(
            f"the {wallet} balance is lower than {amount_minor} minor units",
            errors=[{"loc": ["body", "amount"], "msg": "more than the active balance"}],
        )
    _consume_lots(session, account, amount_minor)
    repository.insert_transfers(
        session,
        [
            {
                "tenant_id": tenant_id,
                "wallet": wallet,
                "debit_account_id": account,
                "credit_account_id": repository.system_account(session, tenant_id, wallet, counter),
                "amount_minor": amount_minor,
                "code": code,
                "phase": "posted",
                "pending_id": None,
                "member_id": member_id,
                "order_id": None,
                "source_type": source_type,
                "source_id": source_id,
                "rule": None,
                "reason": reason,
                "lot_id": None,
                "idem_key": idem_key,
                "effective_at": now,
                "partner": partner,
            }
        ],
    )
    return account


@dataclass
class Hold:
    """Points taken out of a wallet and parked in the ``held`` system account, waiting for a
    decision: ``post_hold`` spends them, ``release_hold`` puts them back into the lots they
    came from."""

    account_id: int
    amount_minor: int
    lots: list[tuple[int, int]]  # (lot id, amount taken)


def hold(
    session: Session,
    *,
    tenant_id: str,
    wallet: str,
    owner_type: str,
    owner_id: str,
    member_id: str | None,
    amount_minor: int,
    source_type: str,
    source_id: str,
    now: datetime,
) -> Hold:
    """Reserve points (phase one of a two-phase spend) into ``held``. InsufficientPoints
    when short."""
    return _take(
        session, tenant_id, wallet, owner_type, owner_id, member_id, amount_minor,
        source_type, source_id, now, to_account="held", code="hold",
    )  # fmt: skip


def spend(
    session: Session,
    *,
    tenant_id: str,
    wallet: str,
    owner_type: str,
    owner_id: str,
    member_id: str | None,
    amount_minor: int,
    source_type: str,
    source_id: str,
    now: datetime,
    reason: str | None = None,
    partner: str | None = None,
) -> Hold:
    """Spend points earliest-expiry first (one ``spend`` transfer) and say which lots they
    came from, so a cancellation can give them back (``release_hold`` from ``redeemed``)."""
    return _take(
        session, tenant_id, wallet, owner_type, owner_id, member_id, amount_minor,
        source_type, source_id, now, to_account="redeemed", code="spend", reason=reason,
        partner=partner,
    )  # fmt: skip


def _take(
    session: Session,
    tenant_id: str,
    wallet: str,
    owner_type: str,
    owner_id: str,
    member_id: str | None,
    amount_minor: int,
    source_type: str,
    source_id: str,
    now: datetime,
    *,
    to_account: str,
    code: str,
    reason: str | None = None,
    partner: str | None = None,
) -> Hold:
    """Move active points out of a holder's wallet into a system account, checked inside the
    write, lots earliest-expiry first; returns the lots taken."""
    account = repository.ensure_accounts(session, tenant_id, wallet, owner_type, [owner_id])[
        owner_id
    ]
    if not repository.debit_if_enough(session, account, amount_minor):
        raise InsufficientPoints(
            f"the {wallet} balance is lower than {amount_minor} minor units",
            errors=[{"loc": ["body", "quantity"], "msg": "costs more than the active balance"}],
        )
    taken = _take_lots(session, account, amount_minor)
    target = repository.system_account(session, tenant_id, wallet, to_account)
    repository.insert_transfers(
        session,
        [
            _transfer(
                tenant_id,
                wallet,
                account,
                target,
                amount_minor,
                code,
                "posted",
                member_id,
                None,
                source_type,
                source_id,
                f"{source_type}/{source_id}/{code}",
                now,
                reason=reason,
                partner=partner,
            )
        ],
    )
    return Hold(account_id=account, amount_minor=amount_minor, lots=taken)


def post_hold(
    session: Session,
    *,
    tenant_id: str,
    wallet: str,
    member_id: str | None,
    amount_minor: int,
    source_type: str,
    source_id: str,
    now: datetime,
    partner: str | None = None,
) -> None:
    """Phase two: the held points are spent (``held`` → ``redeemed``); ``partner`` stamps a
    spend made at a coalition partner."""
    held = repository.system_account(session, tenant_id, wallet, "held")
    redeemed = repository.system_account(session, tenant_id, wallet, "redeemed")
    repository.insert_transfers(
        session,
        [
            _transfer(
                tenant_id,
                wallet,
                held,
                redeemed,
                amount_minor,
                "spend",
                "posted",
                member_id,
                None,
                source_type,
                source_id,
                f"{source_type}/{source_id}/spend",
                now,
                partner=partner,
            )
        ],
    )


def release_hold(
    session: Session,
    *,
    tenant_id: str,
    wallet: str,
    account_id: int,
    member_id: str | None,
    lots: list[tuple[int, int]],
    source_type: str,
    source_id: str,
    now: datetime,
    from_account: str = "held",
    code: str = "release",
    partner: str | None = None,
) -> int:
    """Phase two, the other way: held points go back into the lots they came from. A lot
    that expired meanwhile gets its share back and loses it at once (an ``expire`` transfer):
    a hold never extends a lot's life. Returns what is usable again."""
    held = repository.system_account(session, tenant_id, wallet, "held")
    by_id = {lot.id: lot for lot in repository.lots_by_id(session, [lot_id for lot_id, _ in lots])}
    total = sum(amount for _, amount in lots)
    transfers = [
        _transfer(
            tenant_id,
            wallet,
            held,
            account_id,
            total,
            code,
            "posted",
            member_id,
            None,
            source_type,
            source_id,
            f"{source_type}/{source_id}/{code}",
            now,
            partner=partner,
        )
    ]
    updates: list[dict[str, Any]] = []
    usable = 0
    expired_amount = 0
    for lot_id, amount in lots:
        lot = by_id[lot_id]
        if lot.expires_at is not None and lot.expires_at <= now:
            expired_amount += amount
            continue
        lot.remaining_minor += amount
        lot.status = "active"
        updates.append(_lot_row(lot))
        usable += amount
    if expired_amount:
        transfers.append(
            _transfer(
                tenant_id,
                wallet,
                account_id,
                repository.system_account(session, tenant_id, wallet, "expired"),
                expired_amount,
                "expire",
                "posted",
                member_id,
                None,
                source_type,
                source_id,
                f"{source_type}/{source_id}/{code}-expired",
                now,
            )
        )
    repository.update_lots(session, _dedupe(updates))
    repository.insert_transfers(session, transfers)
    repository.add_balances(session, {account_id: (usable, 0)})
    return usable


def _take_lots(session: Session, account_id: int, amount_minor: int) -> list[tuple[int, int]]:
    """Take from active lots earliest-expiry first; returns what came from which lot."""
    left = amount_minor
    taken: list[tuple[int, int]] = []
    updates: list[dict[str, Any]] = []
    for lot in repository.open_lots(session, account_id, status="active"):
        if left == 0:
            break
        if lot.remaining_minor <= 0:
            continue
        take = min(left, lot.remaining_minor)
        lot.remaining_minor -= take
        if lot.remaining_minor == 0:
            lot.status = "closed"
        left -= take
        taken.append((lot.id, take))
        updates.append(_lot_row(lot))
    repository.update_lots(session, updates)
    if left:
        raise AssertionError("the balance covered the hold but the lots did not")
    return taken


def _consume_lots(
    session: Session, account_id: int, amount_minor: int, first: list[Lot] | None = None
) -> int:
    """Take ``amount_minor`` from active lots (``first`` before the rest); returns the shortfall."""
    left = amount_minor
    updates: list[dict[str, Any]] = []
    seen: set[int] = set()
    queue = list(first or []) + repository.open_lots(session, account_id, status="active")
    for lot in queue:
        if left == 0:
            break
        if lot.id in seen or lot.status != "active" or lot.remaining_minor <= 0:
            continue
        seen.add(lot.id)
        take = min(left, lot.remaining_minor)
        lot.remaining_minor -= take
        if lot.remaining_minor == 0:
            lot.status = "closed"
        left -= take
        updates.append(_lot_row(lot))
    repository.update_lots(session, updates)
    return left


def reverse_order_points(
    session: Session,
    *,
    tenant_id: str,
    program: Program,
    member_id: str,
    order_id: str,
    wallet: str,
    amount_minor: int,
    source_type: str,
    source_id: str,
    now: datetime,
    owner_type: str = "member",
    owner_id: str | None = None,
) -> tuple[int, int]:
    """Reverse up to ``amount_minor`` of an order's points under the refund policy.

    Pending points of the order are voided first, then active points are taken back
    (the order's own lots first, then earliest-expiry). Points go back to the account that
    funded the order's earning (``issued``, or a partner's). Returns (voided, reversed active).
    """
    policy = program.refund_policy
    holder = owner_id if owner_id is not None else member_id
    account = repository.ensure_accounts(session, tenant_id, wallet, owner_type, [holder])[holder]
    funder = repository.order_earn_source(session, tenant_id, order_id, wallet)
    partner = funder[1] if funder else None
    issued = (
        funder[0] if funder else repository.system_account(session, tenant_id, wallet, "issued")
    )
    left = amount_minor
    transfers: list[dict[str, Any]] = []
    lot_updates: list[dict[str, Any]] = []
    voided = 0
    for lot in repository.open_lots(session, account, status="pending", order_id=order_id):
        if left == 0:
            break
        take = min(left, lot.remaining_minor)
        if take <= 0:
            continue
        lot.remaining_minor -= take
        if lot.remaining_minor == 0:
            lot.status = "closed"
        lot_updates.append(_lot_row(lot))
        transfers.append(
            _transfer(
                tenant_id,
                wallet,
                issued,
                account,
                take,
                "reverse",
                "void",
                member_id,
                order_id,
                source_type,
                source_id,
                f"{source_type}/{source_id}/void/{lot.id}",
                now,
                pending_id=lot.transfer_id,
                lot_id=lot.id,
                rule=lot.rule,
                partner=partner,
            )
        )
        voided += take
        left -= take
    repository.update_lots(session, lot_updates)
    reversed_active = 0
    if left > 0 and policy != "only_pending":
        posted, _ = repository.account_balance(session, account, lock=True)
        take = left if policy == "unlimited" else max(0, min(left, posted))
        if take > 0:
            own = repository.open_lots(session, account, status="active", order_id=order_id)
            shortfall = _consume_lots(session, account, take, first=own)
            if shortfall > 0:
                # only ``unlimited`` gets here: the balance goes below zero as a debt lot
                repository.insert_lots(
                    session,
                    [
                        {
                            "tenant_id": tenant_id,
                            "wallet": wallet,
                            "account_id": account,
                            "member_id": member_id,
                            "status": "active",
                            "amount_minor": -shortfall,
                            "remaining_minor": -shortfall,
                            "available_at": now,
                            "expires_at": None,
                            "order_id": order_id,
                            "transfer_id": None,
                            "rule": None,
                            "notified_at": None,
                            "created_at": now,
                        }
                    ],
                )
            transfers.append(
                _transfer(
                    tenant_id,
                    wallet,
                    account,
                    issued,
                    take,
                    "reverse",
                    "posted",
                    member_id,
                    order_id,
                    source_type,
                    source_id,
                    f"{source_type}/{source_id}/reverse/{wallet}",
                    now,
                    partner=partner,
                )
            )
            reversed_active = take
    repository.insert_transfers(session, transfers)
    repository.add_balances(session, {account: (-reversed_active, -voided)})
    return voided, reversed_active


def settle_member(
    session: Session,
    *,
    tenant_id: str,
    program: Program,
    member_id: str,
    last_activity_at: datetime | None,
    now: datetime,
    owner_type: str = "member",
) -> datetime | None:
    """Activate matured pending lots and expire due lots of one holder, as of ``now``.

    Returns the next moment something is due for this holder (for ``settle_at``). The holder
    is a member, or with ``owner_type="account"`` a B2B account with a pooled wallet.
    """
    accounts = repository.member_accounts(session, tenant_id, member_id, owner_type=owner_type)
    if not accounts:
        return None
    by_id = {a.id: a for a in accounts}
    deltas: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    transfers: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    activated_accounts: set[int] = set()
    due = repository.due_lots(session, list(by_id), now)
    # a lot activates from the account its earning came from (issued, a partner's)
    funders = repository.transfer_sources(
        session, [lot.transfer_id for lot in due if lot.status == "pending" and lot.transfer_id]
    )
    for lot in due:
        account = by_id[lot.account_id]
        wallet = program.wallets.get(account.wallet)
        if lot.status == "pending":
            amount = lot.remaining_minor
            lot.status = "active" if amount > 0 else "closed"
            row = _lot_row(lot)
            if wallet is not None and lot.expires_at is None:
                lot.expires_at = expiry_for(wallet, program.timezone, lot.available_at)
                row["expires_at"] = lot.expires_at
            updates.append(row)
            if amount > 0:
                funder = funders.get(lot.transfer_id) if lot.transfer_id else None
                issued = (
                    funder[0]
                    if funder
                    else repository.system_account(session, tenant_id, account.wallet, "issued")
                )
                transfers.append(
                    _transfer(
                        tenant_id,
                        account.wallet,
                        issued,
                        account.id,
                        amount,
                        "activate",
                        "posted",
                        member_id,
                        lot.order_id,
                        "job",
                        f"lot-{lot.id}",
                        f"lot/{lot.id}/activate",
                        lot.available_at,
                        pending_id=lot.transfer_id,
                        lot_id=lot.id,
                        rule=lot.rule,
                        partner=funder[1] if funder else None,
                    )
                )
                deltas[account.id][0] += amount
                deltas[account.id][1] -= amount
                activated_accounts.add(account.id)
            if lot.expires_at is not None and lot.expires_at <= now and amount > 0:
                _expire_lot(session, tenant_id, member_id, account, lot, transfers, updates, deltas)
        else:
            _expire_lot(session, tenant_id, member_id, account, lot, transfers, updates, deltas)
    # inactivity expiry: everything left expires once the member has been idle long enough
    for account in accounts:
        wallet = program.wallets.get(account.wallet)
        if wallet is None or wallet.expiry.mode != "inactivity_days" or last_activity_at is None:
            continue
        assert wallet.expiry.days is not None
        deadline = last_activity_at + timedelta(days=wallet.expiry.days)
        if deadline <= now:
            for lot in repository.open_lots(session, account.id, status="active"):
                if any(u["lid"] == lot.id for u in updates):
                    continue
                _expire_lot(
                    session,
                    tenant_id,
                    member_id,
                    account,
                    lot,
                    transfers,
                    updates,
                    deltas,
                    at=deadline,
                )
    repository.update_lots(session, _dedupe(updates))
    repository.insert_transfers(session, transfers)
    repository.add_balances(session, {k: (v[0], v[1]) for k, v in deltas.items()})
    if activated_accounts:
        _net_debt(session, activated_accounts)
    _emit_settled(session, tenant_id, program, member_id, owner_type, transfers, now)
    return next_due(session, program, list(by_id), accounts, last_activity_at)


_SETTLED_EVENTS = {"activate": "points.activated", "expire": "points.expired"}


def _emit_settled(
    session: Session,
    tenant_id: str,
    program: Program,
    owner_id: str,
    owner_type: str,
    transfers: list[dict[str, Any]],
    now: datetime,
) -> None:
    """``points.activated`` / ``points.expired``: one event per wallet and kind for this
    settlement, in its transaction."""
    from allegiance.outbox import service as outbox

    totals: dict[tuple[str, str], int] = defaultdict(int)
    for t in transfers:
        if t["code"] in _SETTLED_EVENTS:
            totals[(_SETTLED_EVENTS[t["code"]], t["wallet"])] += t["amount_minor"]
    events = []
    for (type_, wallet_key), amount in sorted(totals.items()):
        wallet = program.wallets.get(wallet_key)
        data = {
            ("account_id" if owner_type == "account" else "member_id"): owner_id,
            "wallet": wallet_key,
            "amount": number(amount, wallet.precision if wallet else 0),
        }
        events.append(outbox.event_row(tenant_id, type_, data, now))
    outbox.emit_many(session, events)


def inactivity_deadline(program: Program, last_activity_at: datetime | None) -> datetime | None:
    """When an idle member's points expire under ``inactivity_days`` wallets (the earliest)."""
    if last_activity_at is None:
        return None
    deadlines = [
        last_activity_at + timedelta(days=wallet.expiry.days)
        for wallet in program.wallets.values()
        if wallet.expiry.mode == "inactivity_days" and wallet.expiry.days
    ]
    return min(deadlines) if deadlines else None


def next_due(
    session: Session,
    program: Program,
    account_ids: list[int],
    accounts: list[Any],
    last_activity_at: datetime | None,
) -> datetime | None:
    moment = repository.next_lot_moment(session, account_ids)
    for account in accounts:
        wallet = program.wallets.get(account.wallet)
        if (
            wallet is not None
            and wallet.expiry.mode == "inactivity_days"
            and last_activity_at is not None
            and wallet.expiry.days is not None
        ):
            deadline = last_activity_at + timedelta(days=wallet.expiry.days)
            moment = deadline if moment is None else min(moment, deadline)
    return moment


def _expire_lot(
    session: Session,
    tenant_id: str,
    member_id: str,
    account: Any,
    lot: Lot,
    transfers: list[dict[str, Any]],
    updates: list[dict[str, Any]],
    deltas: dict[int, list[int]],
    at: datetime | None = None,
) -> None:
    amount = lot.remaining_minor
    if amount <= 0:
        return
    lot.remaining_minor = 0
    lot.status = "closed"
    updates.append(_lot_row(lot))
    expired = repository.system_account(session, tenant_id, account.wallet, "expired")
    transfers.append(
        _transfer(
            tenant_id,
            account.wallet,
            account.id,
            expired,
            amount,
            "expire",
            "posted",
            member_id,
            lot.order_id,
            "job",
            f"lot-{lot.id}",
            f"lot/{lot.id}/expire",
            at or lot.expires_at or lot.available_at,
            lot_id=lot.id,
            rule=lot.rule,
        )
    )
    deltas[account.id][0] -= amount


def _transfer(
    tenant_id: str,
    wallet: str,
    debit_account: int,
    credit_account: int,
    amount: int,
    code: str,
    phase: str,
    member_id: str | None,
    order_id: str | None,
    source_type: str,
    source_id: str,
    idem_key: str,
    effective_at: datetime,
    *,
    pending_id: int | None = None,
    lot_id: int | None = None,
    rule: str | None = None,
    reason: str | None = None,
    partner: str | None = None,
) -> dict[str, Any]:
    return {
        "tenant_id": tenant_id,
        "wallet": wallet,
        "debit_account_id": debit_account,
        "credit_account_id": credit_account,
        "amount_minor": amount,
        "code": code,
        "phase": phase,
        "pending_id": pending_id,
        "member_id": member_id,
        "order_id": order_id,
        "source_type": source_type,
        "source_id": source_id,
        "rule": rule,
        "reason": reason,
        "lot_id": lot_id,
        "idem_key": idem_key,
        "effective_at": effective_at,
        "partner": partner,
    }


def _lot_row(lot: Lot) -> dict[str, Any]:
    return {"lid": lot.id, "remaining": lot.remaining_minor, "status": lot.status}


def _dedupe(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    merged: dict[int, dict[str, Any]] = {}
    for row in rows:
        merged.setdefault(row["lid"], {}).update(row)
    with_expiry = [r for r in merged.values() if "expires_at" in r]
    without = [r for r in merged.values() if "expires_at" not in r]
    return with_expiry + without


# ---- reads --------------------------------------------------------------------------------


def balances_view(
    session: Session,
    *,
    tenant_id: str,
    program: Program | None,
    member_id: str,
    last_activity_at: datetime | None,
    now: datetime,
    owner_type: str = "member",
) -> dict[str, Any]:
    """Balances per wallet as of ``now``: lots that matured count as active, expired ones not."""
    wallets = program.wallets if program else {}
    account_ids = [
        a.id
        for a in repository.member_accounts(session, tenant_id, member_id, owner_type=owner_type)
    ]
    lots = repository.lots_of_accounts(session, account_ids)
    view: dict[str, dict[str, Any]] = {}
    for key, wallet in wallets.items():
        active = pending = 0
        expiring: dict[datetime, int] = defaultdict(int)
        inactivity_deadline = None
        if wallet.expiry.mode == "inactivity_days" and last_activity_at and wallet.expiry.days:
            inactivity_deadline = last_activity_at + timedelta(days=wallet.expiry.days)
        # positive lots active as of now: (no expiry, expiry, id, remaining), for the netting
        held: list[tuple[bool, datetime, int, int]] = []
        matured = False
        debt = 0
        for lot in lots:
            if lot.wallet != key:
                continue
            expires = lot.expires_at
            if lot.status == "pending":
                if lot.available_at > now:
                    pending += lot.remaining_minor
                    continue
                matured = True
                expires = (
                    expires or expiry_for(wallet, program.timezone, lot.available_at)
                    if program
                    else None
                )
            if inactivity_deadline is not None and lot.remaining_minor > 0:
                expires = inactivity_deadline
            if expires is not None and expires <= now and lot.remaining_minor > 0:
                continue
            active += lot.remaining_minor
            if lot.remaining_minor < 0:
                debt -= lot.remaining_minor
            elif lot.remaining_minor > 0:
                held.append((expires is None, expires or now, lot.id, lot.remaining_minor))
        # as the settlement will: a debt (``unlimited`` reversals) is paid from the lots that
        # activate, earliest expiry first, so those points will not expire
        for no_expiry, expires, _, remaining in sorted(held):
            if matured and debt > 0:
                take = min(debt, remaining)
                debt -= take
                remaining -= take
            if not no_expiry and remaining > 0:
                expiring[expires] += remaining
        view[key] = {
            "active": number(active, wallet.precision),
            "pending": number(pending, wallet.precision),
            "expiring": [
                {"amount": number(amount, wallet.precision), "expires_at": at.isoformat()}
                for at, amount in sorted(expiring.items())
            ][:20],
        }
    return view


def account_balances(
    session: Session, tenant_id: str, member_id: str, owner_type: str = "member"
) -> dict[str, tuple[int, int]]:
    return {
        a.wallet: (a.posted_minor, a.pending_minor)
        for a in repository.member_accounts(session, tenant_id, member_id, owner_type=owner_type)
    }


def system_account_ids(session: Session, tenant_id: str) -> set[int]:
    """The tenant's system accounts (issued, redeemed, held, ...): the other side of every
    transfer a member sees."""
    return repository.system_account_ids(session, tenant_id)


def ledger_page(
    session: Session, *, tenant_id: str, member_id: str, before_id: int | None, limit: int
) -> list[Any]:
    return repository.transfers_page(
        session, tenant_id, member_id, before_id=before_id, limit=limit
    )


def order_totals(session: Session, tenant_id: str, order_id: str) -> dict[str, list[int]]:
    return repository.order_wallet_totals(session, tenant_id, order_id)


def expiring_lots(
    session: Session, *, tenant_id: str, wallet: str, now: datetime, until: datetime, limit: int
) -> list[Lot]:
    return repository.lots_to_notify(session, tenant_id, wallet, now, until, limit)


def mark_notified(session: Session, lot_ids: list[int], now: datetime) -> None:
    repository.mark_notified(session, lot_ids, now)


# ---- verification -------------------------------------------------------------------------


def verify(session: Session, *, tenant_id: str, program: Program | None) -> list[str]:
    """Check every ledger invariant of a tenant; returns human-readable breaches."""
    breaches: list[str] = []
    derived = repository.derived_balances(session, tenant_id)
    accounts = repository.accounts_of_tenant(session, tenant_id)
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    lots = repository.lot_sums(session, tenant_id)
    policy = program.refund_policy if program else "within_balance"
    for account in accounts:
        posted, pending = derived.get(account.id, (0, 0))
        totals[account.wallet][0] += posted
        totals[account.wallet][1] += pending
        if account.owner_type not in ("member", "account"):
            continue
        who = f"{account.owner_type} {account.owner_id} wallet {account.wallet}"
        if (account.posted_minor, account.pending_minor) != (posted, pending):
            breaches.append(
                f"{who}: cached balance {account.posted_minor}/{account.pending_minor} "
                f"!= transfers {posted}/{pending}"
            )
        if lots.get((account.id, "active"), 0) != account.posted_minor:
            breaches.append(
                f"{who}: active balance {account.posted_minor} != lots "
                f"{lots.get((account.id, 'active'), 0)}"
            )
        if lots.get((account.id, "pending"), 0) != account.pending_minor:
            breaches.append(
                f"{who}: pending balance {account.pending_minor} != lots "
                f"{lots.get((account.id, 'pending'), 0)}"
            )
        if account.pending_minor < 0:
            breaches.append(f"{who}: pending balance below zero")
        if account.posted_minor < 0 and policy != "unlimited":
            breaches.append(f"{who}: balance {account.posted_minor} below zero")
    for wallet, (posted, pending) in totals.items():
        if posted or pending:
            breaches.append(f"wallet {wallet}: accounts sum to {posted}/{pending}, not zero")
    for lot in repository.bad_lots(session, tenant_id):
        breaches.append(f"lot {lot.id}: remaining {lot.remaining_minor} outside its amount")
    for order_id, wallet, earned, reversed_ in repository.over_reversed_orders(session, tenant_id):
        breaches.append(f"order {order_id} wallet {wallet}: reversed {reversed_} > earned {earned}")
    return breaches


SYSTEM_ACCOUNTS = ("issued", "redeemed", "expired", "adjustments", "held")


def partner_account(partner: str) -> str:
    """Name of the system account that funds a coalition partner's earnings."""
    return f"partner:{partner}"


def open_system_accounts(session: Session, *, tenant_id: str, program: Program) -> None:
    """Create every wallet's system accounts (when a program is applied)."""
    for wallet in program.wallets:
        for name in SYSTEM_ACCOUNTS:
            repository.system_account(session, tenant_id, wallet, name)
    for partner in program.partners:
        wallet = partner.wallet or program.default_wallet
        if wallet in program.wallets:
            repository.system_account(session, tenant_id, wallet, partner_account(partner.key))


def tenants_with_ledger(session: Session) -> list[str]:
    return repository.tenants_with_ledger(session)
