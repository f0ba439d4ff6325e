"""Use cases for what the shop reports: orders, refunds, cancellations, custom events.

Every booking works on a list so that a batch import and a single API call share one path;
an API call is a batch of one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from allegiance.earning import service as earning
from allegiance.earning.engine import Evaluation, Line, UsageBook, evaluate, usage_keys
from allegiance.errors import AlreadyBooked, Conflict, Forbidden, NotFound, invalid
from allegiance.kit.clock import as_utc
from allegiance.kit.money import (
    currency_exponent,
    decimal_places,
    money_str,
    number,
    round_to_minor,
    to_minor,
)
from allegiance.ledger import service as ledger
from allegiance.ledger.service import Credit
from allegiance.member import repository as members
from allegiance.member.models import Member
from allegiance.order import repository
from allegiance.order.models import Order
from allegiance.order.schemas import CartBase, EventCreate, RefundCreate
from allegiance.outbox import service as outbox
from allegiance.program.coalition import find_partner, partner_wallet
from allegiance.program.compiled import CompiledProgram


@dataclass
class PreparedOrder:
    order_id: str
    member_id: str | None
    placed_at: datetime
    subtotal_minor: int
    total_minor: int
    lines: list[Line]
    context: dict[str, Any]
    payload: dict[str, Any]
    partner: str | None = None


@dataclass
class Booking:
    order: PreparedOrder
    evaluation: Evaluation = field(default_factory=Evaluation)
    credits: list[Credit] = field(default_factory=list)


def _check_money(value: Decimal | None, exponent: int, loc: list[str | int]) -> None:
    if value is not None and decimal_places(value) > exponent:
        raise invalid(loc, f"has more than {exponent} decimal places for this currency")


def prepare_order(
    program: CompiledProgram,
    payload: CartBase,
    *,
    order_id: str | None,
    now: datetime,
    loc_prefix: str = "body",
    stored: dict[str, Any] | None = None,
    partner: str | None = None,
) -> PreparedOrder:
    """Check an order's money against the program currency and build its CEL context.

    ``stored`` is the order as received (kept on the order); by default the parsed payload.
    ``partner`` is the partner of the calling key, if any: the order is booked as that
    partner's (a key of another scope may attribute the order with the ``partner`` field).
    """
    partner = _order_partner(program, payload, partner, loc_prefix)
    _check_brand(program, payload, loc_prefix)
    currency = payload.currency or program.currency
    if currency != program.currency:
        raise invalid(
            [loc_prefix, "currency"],
            f"orders must be in the program currency {program.currency}, got {currency}",
        )
    exponent = currency_exponent(currency)
    for name in ("shipping_amount", "tax_amount", "discount_amount", "total"):
        _check_money(getattr(payload, name), exponent, [loc_prefix, name])
    lines: list[Line] = []
    items_ctx: list[dict[str, Any]] = []
    for index, item in enumerate(payload.items):
        _check_money(item.unit_price, exponent, [loc_prefix, "items", index, "unit_price"])
        _check_money(item.amount, exponent, [loc_prefix, "items", index, "amount"])
        assert item.amount is not None
        quantity = item.quantity
        ctx = {
            "sku": item.sku,
            "name": item.name or "",
            "category": item.category or "",
            "labels": list(item.labels),
            "quantity": _whole_or_float(quantity),
            "unit_price": float(
                item.unit_price
                if item.unit_price is not None
                else (item.amount / quantity if quantity else 0)
            ),
            "amount": float(item.amount),
            "attributes": item.attributes,
        }
        items_ctx.append(ctx)
        lines.append(Line(amount=item.amount, quantity=quantity, context=ctx))
    subtotal = sum((line.amount for line in lines), Decimal(0))
    if payload.total is not None:
        total = payload.total
    else:
        total = max(
            subtotal + payload.shipping_amount + payload.tax_amount - payload.discount_amount,
            Decimal(0),
        )
    placed_at = as_utc(payload.placed_at) if payload.placed_at else now
    context = {
        "order": {
            "id": order_id or "",
            "placed_at": placed_at,
            "currency": currency,
            "items": items_ctx,
            "subtotal": float(subtotal),
            "total": float(total),
            "shipping_amount": float(payload.shipping_amount),
            "tax_amount": float(payload.tax_amount),
            "discount_amount": float(payload.discount_amount),
            "coupon_codes": list(payload.coupon_codes),
            "channel": payload.channel or "",
            "brand": payload.brand or "",
            "partner": partner or "",
            "quantity": _whole_or_float(sum((line.quantity for line in lines), Decimal(0))),
            "attributes": payload.attributes,
        },
        "account": {"id": "", "group": "", "attributes": {}},
        "now": now,
    }
    return PreparedOrder(
        order_id=order_id or "",
        member_id=payload.member_id,
        placed_at=placed_at,
        subtotal_minor=to_minor(subtotal, exponent),
        total_minor=to_minor(total, exponent),
        lines=lines,
        context=context,
        payload=stored
        if stored is not None
        else payload.model_dump(mode="json", exclude_none=True),
        partner=partner,
    )


def _order_partner(
    program: CompiledProgram, payload: CartBase, key_partner: str | None, loc_prefix: str
) -> str | None:
    """The partner an order is booked for: the calling key's, else the ``partner`` field."""
    if key_partner is not None:
        if payload.partner is not None and payload.partner != key_partner:
            raise Forbidden(
                f"a key of partner {key_partner!r} books orders for that partner only",
                code="partner_mismatch",
                errors=[{"loc": [loc_prefix, "partner"], "msg": "not this key's partner"}],
            )
        if find_partner(program.program, key_partner) is None:
            raise Forbidden(
                f"the program no longer declares partner {key_partner!r}",
                code="partner_not_in_program",
            )
        return key_partner
    if payload.partner is not None and find_partner(program.program, payload.partner) is None:
        raise invalid(
            [loc_prefix, "partner"],
            f"unknown partner {payload.partner!r}; the program declares "
            f"{', '.join(p.key for p in program.program.partners) or 'none'}",
        )
    return payload.partner


def _check_brand(program: CompiledProgram, payload: CartBase, loc_prefix: str) -> None:
    brands = program.program.brands
    if brands and payload.brand is not None and all(b.key != payload.brand for b in brands):
        raise invalid(
            [loc_prefix, "brand"],
            f"unknown brand {payload.brand!r}; the program declares "
            f"{', '.join(b.key for b in brands)}",
        )


def _whole_or_float(value: Decimal) -> int | float:
    """Quantities are CEL ints when whole (``item.quantity >= 5``), doubles when not."""
    return int(value) if value == value.to_integral_value() else float(value)


def member_context(
    member: Member | None, exponent: int, stats: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The member as CEL sees it; ``stats`` (a batch's running totals) override the row."""
    if member is None:
        return {
            "id": "", "email": "", "name": "", "phone": "", "locale": "", "tags": [],
            "attributes": {}, "tier": "", "account_id": "", "enrolled_at": None,
            "birthdate": "", "stats": {"orders": 0, "spend": 0.0, "points_earned": 0.0},
            "segments": [], "badges": [],
        }  # fmt: skip
    return {
        "id": member.member_id,
        "email": member.email or "",
        "name": member.name or "",
        "phone": member.phone or "",
        "locale": member.locale or "",
        "tags": list(member.tags or []),
        "attributes": dict(member.attributes or {}),
        "tier": "",
        "account_id": member.account_id or "",
        "enrolled_at": member.enrolled_at,
        "birthdate": member.birthdate.isoformat() if member.birthdate else "",
        "stats": {
            "orders": (stats or {}).get("orders_count", member.orders_count),
            "spend": float(
                Decimal((stats or {}).get("spend_minor", member.spend_minor)).scaleb(-exponent)
            ),
            "points_earned": 0.0,
        },
        "segments": [],
        "badges": [],
    }


def lock_members(
    session: Session,
    *,
    tenant_id: str,
    program: CompiledProgram,
    member_ids: list[str],
    now: datetime,
) -> dict[str, Member]:
    """Create missing members, lock them (id order) and settle any lot that fell due."""
    found = members.ensure_locked(session, tenant_id, member_ids, now)
    for member in found.values():
        if member.settle_at is not None and member.settle_at <= now:
            member.settle_at = ledger.settle_member(
                session,
                tenant_id=tenant_id,
                program=program.program,
                member_id=member.member_id,
                last_activity_at=member.last_activity_at,
                now=now,
            )
            members.set_settle_at(session, tenant_id, member.member_id, member.settle_at)
    return found


def _evaluate(
    program: CompiledProgram,
    prepared: PreparedOrder,
    member: Member | None,
    usage: UsageBook,
    stats: dict[str, Any] | None = None,
) -> Evaluation:
    if member is None:
        return Evaluation()
    exponent = currency_exponent(program.currency)
    context = dict(prepared.context)
    context["member"] = member_context(member, exponent, stats)
    return evaluate(
        program,
        event_type="order.completed",
        context=context,
        lines=prepared.lines,
        member_id=member.member_id,
        at=prepared.placed_at,
        usage=usage,
    )


def book_orders(
    session: Session,
    *,
    tenant_id: str,
    program: CompiledProgram,
    orders: list[PreparedOrder],
    now: datetime,
    emit_events: bool = True,
) -> list[Booking]:
    """Book orders and what they earn. Order ids must be new (the insert enforces it)."""
    wallets = program.program.wallets
    member_ids = [o.member_id for o in orders if o.member_id]
    locked = lock_members(
        session, tenant_id=tenant_id, program=program, member_ids=member_ids, now=now
    )
    rows = [
        {
            "tenant_id": tenant_id,
            "order_id": o.order_id,
            "member_id": o.member_id,
            "placed_at": o.placed_at,
            "currency": program.currency,
            "subtotal_minor": o.subtotal_minor,
            "total_minor": o.total_minor,
            "refunded_minor": 0,
            "status": "completed",
            "program_version": program.version,
            "payload": o.payload,
            "created_at": now,
            "partner": o.partner,
        }
        for o in orders
    ]
    if len(rows) == 1:
        if not repository.insert_order_if_new(session, rows[0]):
            raise AlreadyBooked(
                f"order {rows[0]['order_id']!r} is already booked",
                code="order_already_booked",
                errors=[{"loc": ["body", "id"], "msg": "an order with this id exists"}],
            )
    else:
        repository.insert_orders(session, rows)
    rules = program.rules_by_event.get("order.completed", ())
    keys = [
        k
        for o in orders
        if o.member_id
        for k in usage_keys(program, rules, o.member_id, o.placed_at)
    ]
    usage = earning.load_usage(session, tenant_id=tenant_id, keys=keys, lock=True)
    bookings: list[Booking] = []
    credits: list[Credit] = []
    stats: dict[str, dict[str, Any]] = {}
    events: list[dict[str, Any]] = []
    for o in orders:
        member = locked.get(o.member_id) if o.member_id else None
        running = stats.get(member.member_id) if member is not None else None
        booking = Booking(order=o, evaluation=_evaluate(program, o, member, usage, running))
        funded_wallet = _partner_wallet(program, o.partner)
        for share in booking.evaluation.shares:
            wallet = wallets[share.wallet]
            available = o.placed_at + timedelta(days=float(wallet.pending_days))
            booking.credits.append(
                Credit(
                    member_id=o.member_id or "",
                    wallet=share.wallet,
                    amount_minor=share.amount_minor,
                    code="earn",
                    source_type="order",
                    source_id=o.order_id,
                    idem_key=f"order/{o.order_id}/earn/{share.wallet}/{share.rule}",
                    available_at=available,
                    effective_at=o.placed_at,
                    order_id=o.order_id,
                    rule=share.rule,
                    partner=o.partner if share.wallet == funded_wallet else None,
                )
            )
        credits.extend(booking.credits)
        bookings.append(booking)
        if member is not None:
            s = stats.setdefault(member.member_id, _stats_of(member))
            s["orders_count"] += 1
            s["spend_minor"] += o.total_minor
            s["first_order_at"] = min(filter(None, [s["first_order_at"], o.placed_at]))
            s["last_order_at"] = max(filter(None, [s["last_order_at"], o.placed_at]))
            _touch(program, s, o.placed_at, booking.credits, now)
        if emit_events:
            events.append(
                outbox.event_row(
                    tenant_id,
                    "order.completed",
                    {
                        "order_id": o.order_id,
                        "member_id": o.member_id,
                        "total": money_str(o.total_minor, currency_exponent(program.currency)),
                        "placed_at": o.placed_at.isoformat(),
                        "points": _points_by_wallet(program, booking),
                    },
                    now,
                )
            )
            for wallet_key, amount in booking.evaluation.totals_minor.items():
                if amount > 0:
                    events.append(
                        outbox.event_row(
                            tenant_id,
                            "points.earned",
                            {
                                "member_id": o.member_id,
                                "wallet": wallet_key,
                                "amount": number(amount, wallets[wallet_key].precision),
                                "order_id": o.order_id,
                            },
                            now,
                        )
                    )
    ledger.credit(session, tenant_id=tenant_id, program=program.program, credits=credits, now=now)
    earning.save_usage(session, tenant_id=tenant_id, usage=usage)
    for s in stats.values():
        if s["settle_at"] is not None and s["settle_at"] <= now:
            # history older than its own expiry: settle now so balances are never stale
            s["settle_at"] = ledger.settle_member(
                session,
                tenant_id=tenant_id,
                program=program.program,
                member_id=s["mid"],
                last_activity_at=s["last_activity_at"],
                now=now,
            )
    members.update_stats(session, list(stats.values()))
    outbox.emit_many(session, events)
    return bookings


def _partner_wallet(program: CompiledProgram, partner_key: str | None) -> str | None:
    """The wallet a partner funds the order's points in (other wallets: the program)."""
    if partner_key is None:
        return None
    partner = find_partner(program.program, partner_key)
    return partner_wallet(program.program, partner) if partner is not None else None


def _touch(
    program: CompiledProgram,
    s: dict[str, Any],
    activity_at: datetime,
    credits: list[Credit],
    now: datetime,
) -> None:
    """Record activity and bring ``settle_at`` forward to the next lot event it causes."""
    s["last_activity_at"] = max(filter(None, [s["last_activity_at"], activity_at]))
    moments = [s["settle_at"], ledger.inactivity_deadline(program.program, s["last_activity_at"])]
    for c in credits:
        moment = c.available_at if c.available_at > now else _expiry(program, c)
        if moment is not None and moment > now:  # an earlier expiry was booked with the lot
            moments.append(moment)
    present = [m for m in moments if m is not None]
    s["settle_at"] = min(present) if present else None


def _expiry(program: CompiledProgram, c: Credit) -> datetime | None:
    return ledger.expiry_for(
        program.program.wallets[c.wallet], program.program.timezone, c.available_at
    )


def _stats_of(member: Member) -> dict[str, Any]:
    return {
        "tid": member.tenant_id,
        "mid": member.member_id,
        "orders_count": member.orders_count,
        "spend_minor": member.spend_minor,
        "first_order_at": member.first_order_at,
        "last_order_at": member.last_order_at,
        "last_activity_at": member.last_activity_at,
        "settle_at": member.settle_at,
    }


def _points_by_wallet(program: CompiledProgram, booking: Booking) -> dict[str, int | float]:
    return {
        k: number(v, program.program.wallets[k].precision)
        for k, v in booking.evaluation.totals_minor.items()
    }


def earn_effects(
    program: CompiledProgram, evaluation: Evaluation, credits: list[Credit], now: datetime
) -> list[dict[str, Any]]:
    effects: list[dict[str, Any]] = []
    for m in evaluation.multipliers:
        effects.append(
            {
                "type": "points_multiplied",
                "wallet": m.wallet,
                "rule": m.rule,
                "factor": float(m.factor or 0),
            }
        )
    for c in credits:
        precision = program.program.wallets[c.wallet].precision
        pending = c.available_at > now
        effect: dict[str, Any] = {
            "type": "points_pending" if pending else "points_earned",
            "wallet": c.wallet,
            "amount": number(c.amount_minor, precision),
            "rule": c.rule,
        }
        if pending:
            effect["available_at"] = c.available_at.isoformat()
        effects.append(effect)
    return effects


def balances(
    session: Session, *, tenant_id: str, program: CompiledProgram, member_id: str | None
) -> dict[str, Any]:
    if not member_id:
        return {}
    cached = ledger.account_balances(session, tenant_id, member_id)
    return {
        key: {
            "active": number(cached.get(key, (0, 0))[0], wallet.precision),
            "pending": number(cached.get(key, (0, 0))[1], wallet.precision),
        }
        for key, wallet in program.program.wallets.items()
    }


def order_response(
    session: Session, *, tenant_id: str, program: CompiledProgram, booking: Booking, now: datetime
) -> dict[str, Any]:
    o = booking.order
    return {
        "order_id": o.order_id,
        "member_id": o.member_id,
        "status": "completed",
        **({"partner": o.partner} if o.partner else {}),
        "program_version": program.version,
        "rules_applied": booking.evaluation.applied,
        "effects": earn_effects(program, booking.evaluation, booking.credits, now),
        "balances": balances(session, tenant_id=tenant_id, program=program, member_id=o.member_id),
    }


def create_order(
    session: Session,
    *,
    tenant_id: str,
    program: CompiledProgram,
    order: PreparedOrder,
    now: datetime,
) -> dict[str, Any]:
    """Book one order (POST /v1/orders)."""
    booking = book_orders(session, tenant_id=tenant_id, program=program, orders=[order], now=now)[0]
    return order_response(session, tenant_id=tenant_id, program=program, booking=booking, now=now)


def evaluate_cart(
    session: Session,
    *,
    tenant_id: str,
    program: CompiledProgram,
    cart: PreparedOrder,
    now: datetime,
) -> dict[str, Any]:
    """Dry run: what the cart would earn for this member now. Writes nothing."""
    member = members.get(session, tenant_id, cart.member_id) if cart.member_id else None
    rules = program.rules_by_event.get("order.completed", ())
    member_key = cart.member_id or ""
    usage = earning.load_usage(
        session,
        tenant_id=tenant_id,
        keys=usage_keys(program, rules, member_key, cart.placed_at),
        lock=False,
    )
    if member is None:
        # an unknown or anonymous shopper: show what a new member would earn
        member = Member(
            tenant_id=tenant_id,
            member_id=member_key or "anonymous",
            tags=[],
            attributes={},
            orders_count=0,
            spend_minor=0,
            enrolled_at=now,
        )
    evaluation = _evaluate(program, cart, member, usage)
    wallets = program.program.wallets
    points: dict[str, int] = {}
    for share in evaluation.shares:
        points.setdefault(share.wallet, 0)
        points[share.wallet] += share.amount_minor
    exponent = currency_exponent(program.currency)
    return {
        "member_id": cart.member_id,
        "rules_applied": evaluation.applied,
        "points": {k: number(v, wallets[k].precision) for k, v in points.items()},
        "effects": [
            {**e, "type": "points_earned"} if e["type"] == "points_pending" else e
            for e in earn_effects(
                program,
                evaluation,
                [
                    Credit(
                        member_id=member_key,
                        wallet=s.wallet,
                        amount_minor=s.amount_minor,
                        code="earn",
                        source_type="cart",
                        source_id="",
                        idem_key="",
                        available_at=now,
                        effective_at=now,
                        rule=s.rule,
                    )
                    for s in evaluation.shares
                ],
                now,
            )
        ],
        "totals": {
            "subtotal": money_str(cart.subtotal_minor, exponent),
            "total": money_str(cart.total_minor, exponent),
        },
        "discounts": [],
        "free_items": [],
    }


# ---- refunds and cancellations -------------------------------------------------------------


def refund_order(
    session: Session,
    *,
    tenant_id: str,
    program: CompiledProgram,
    order_id: str,
    refund: RefundCreate,
    now: datetime,
    partner: str | None = None,
) -> dict[str, Any]:
    """Reverse points in proportion to the cumulative refunded share of the order.

    ``partner`` (a partner key's) limits the refund to that partner's own orders.
    """
    exponent = currency_exponent(program.currency)
    if refund.amount is not None:
        _check_money(refund.amount, exponent, ["body", "amount"])
        amount = refund.amount
    else:
        assert refund.items is not None
        for index, item in enumerate(refund.items):
            _check_money(item.amount, exponent, ["body", "items", index, "amount"])
        amount = sum((item.amount for item in refund.items), Decimal(0))
    return _reverse(
        session,
        tenant_id=tenant_id,
        program=program,
        order_id=order_id,
        source_type="refund",
        source_id=refund.id,
        amount_minor=to_minor(amount, exponent),
        payload=refund.model_dump(mode="json", exclude_none=True),
        now=now,
        cancel=False,
        partner=partner,
    )


def cancel_order(
    session: Session,
    *,
    tenant_id: str,
    program: CompiledProgram,
    order_id: str,
    reason: str | None,
    now: datetime,
    partner: str | None = None,
) -> dict[str, Any]:
    """Full reversal of what is not yet refunded; the order becomes ``cancelled``."""
    return _reverse(
        session,
        tenant_id=tenant_id,
        program=program,
        order_id=order_id,
        source_type="cancel",
        source_id=f"cancel-{order_id}",
        amount_minor=None,
        payload={"reason": reason} if reason else {},
        now=now,
        cancel=True,
        partner=partner,
    )


def _reverse(
    session: Session,
    *,
    tenant_id: str,
    program: CompiledProgram,
    order_id: str,
    source_type: str,
    source_id: str,
    amount_minor: int | None,
    payload: dict[str, Any],
    now: datetime,
    cancel: bool,
    partner: str | None,
) -> dict[str, Any]:
    seen = _visible_order(session, tenant_id, order_id, partner)
    if seen.member_id:
        lock_members(
            session, tenant_id=tenant_id, program=program, member_ids=[seen.member_id], now=now
        )
    order = repository.get_order(session, tenant_id, order_id, lock=True)
    assert order is not None
    if order.status == "cancelled":
        raise Conflict(f"order {order_id!r} is cancelled", code="order_cancelled")
    exponent = currency_exponent(program.currency)
    remaining = order.total_minor - order.refunded_minor
    if amount_minor is None:
        amount_minor = remaining
    if amount_minor > remaining:
        raise Conflict(
            f"refund of {money_str(amount_minor, exponent)} exceeds what is left to refund "
            f"({money_str(remaining, exponent)})",
            code="refund_exceeds_order",
            errors=[{"loc": ["body", "amount"], "msg": "more than the unrefunded order total"}],
        )
    repository.insert_refund(
        session,
        tenant_id=tenant_id,
        refund_id=source_id,
        order_id=order_id,
        amount_minor=amount_minor,
        payload=payload,
        created_at=now,
    )
    cumulative = order.refunded_minor + amount_minor
    effects: list[dict[str, Any]] = []
    if order.member_id and order.total_minor > 0:
        share = Decimal(cumulative) / Decimal(order.total_minor)
        for wallet_key, (earned, reversed_) in sorted(
            ledger.order_totals(session, tenant_id, order_id).items()
        ):
            wallet = program.program.wallets.get(wallet_key)
            if wallet is None or earned <= 0:
                continue
            target = round_to_minor(Decimal(earned) * share, 0, wallet.rounding)
            delta = min(target, earned) - reversed_
            if delta <= 0:
                continue
            voided, taken = ledger.reverse_order_points(
                session,
                tenant_id=tenant_id,
                program=program.program,
                member_id=order.member_id,
                order_id=order_id,
                wallet=wallet_key,
                amount_minor=delta,
                source_type=source_type,
                source_id=source_id,
                now=now,
            )
            effects.append(
                {
                    "type": "points_reversed",
                    "wallet": wallet_key,
                    "amount": number(voided + taken, wallet.precision),
                    "pending_voided": number(voided, wallet.precision),
                    "active_reversed": number(taken, wallet.precision),
                    "not_reversed": number(delta - voided - taken, wallet.precision),
                }
            )
    status = "cancelled" if cancel else order.status
    repository.set_refunded(session, tenant_id, order_id, cumulative, status)
    if order.member_id:
        member = members.get(session, tenant_id, order.member_id)
        if member is not None:
            s = _stats_of(member)
            s["spend_minor"] -= amount_minor
            if cancel:
                s["orders_count"] = max(0, s["orders_count"] - 1)
            # a refund is not member activity: the inactivity clock is left alone
            members.update_stats(session, [s])
    outbox.emit(
        session,
        tenant_id=tenant_id,
        type_="order.cancelled" if cancel else "order.refunded",
        data={
            "order_id": order_id,
            "member_id": order.member_id,
            "amount": money_str(amount_minor, exponent),
            "refunded_total": money_str(cumulative, exponent),
        },
        now=now,
    )
    key = "cancel_id" if cancel else "refund_id"
    return {
        key: source_id,
        "order_id": order_id,
        "status": status,
        "amount": money_str(amount_minor, exponent),
        "refunded_total": money_str(cumulative, exponent),
        "effects": effects,
        "balances": balances(
            session, tenant_id=tenant_id, program=program, member_id=order.member_id
        ),
    }


# ---- custom events ---------------------------------------------------------------------


def record_event(
    session: Session, *, tenant_id: str, program: CompiledProgram, event: EventCreate, now: datetime
) -> dict[str, Any]:
    """Store a behaviour event and book what its rules earn (active at once, no pending)."""
    if event.type.startswith("order."):
        raise invalid(["body", "type"], "order.* events come from POST /v1/orders, not events")
    occurred_at = as_utc(event.occurred_at) if event.occurred_at else now
    locked = lock_members(
        session, tenant_id=tenant_id, program=program, member_ids=[event.member_id], now=now
    )
    member = locked[event.member_id]
    repository.insert_events(
        session,
        [
            {
                "tenant_id": tenant_id,
                "event_id": event.id,
                "type": event.type,
                "member_id": event.member_id,
                "occurred_at": occurred_at,
                "properties": event.properties,
                "created_at": now,
            }
        ],
    )
    rules = program.rules_by_event.get(event.type, ())
    usage = earning.load_usage(
        session,
        tenant_id=tenant_id,
        keys=usage_keys(program, rules, event.member_id, occurred_at),
        lock=True,
    )
    exponent = currency_exponent(program.currency)
    amount = event.properties.get("amount")
    event_amount = None
    if isinstance(amount, int | float | str) and not isinstance(amount, bool):
        try:
            event_amount = Decimal(str(amount))
        except ArithmeticError:
            event_amount = None
    context = {
        "event": {
            "id": event.id,
            "type": event.type,
            "occurred_at": occurred_at,
            "properties": event.properties,
        },
        "member": member_context(member, exponent),
        "account": {"id": "", "group": "", "attributes": {}},
        "now": now,
    }
    evaluation = evaluate(
        program,
        event_type=event.type,
        context=context,
        lines=[],
        member_id=event.member_id,
        at=occurred_at,
        usage=usage,
        event_amount=event_amount,
    )
    credits = [
        Credit(
            member_id=event.member_id,
            wallet=s.wallet,
            amount_minor=s.amount_minor,
            code="earn",
            source_type="event",
            source_id=event.id,
            idem_key=f"event/{event.id}/earn/{s.wallet}/{s.rule}",
            available_at=occurred_at,
            effective_at=occurred_at,
            rule=s.rule,
        )
        for s in evaluation.shares
    ]
    ledger.credit(
        session,
        tenant_id=tenant_id,
        program=program.program,
        credits=credits,
        now=max(now, occurred_at),
    )
    earning.save_usage(session, tenant_id=tenant_id, usage=usage)
    s = _stats_of(member)
    _touch(program, s, occurred_at, credits, max(now, occurred_at))
    members.update_stats(session, [s])
    outbox.emit(
        session,
        tenant_id=tenant_id,
        type_=event.type,
        data={"event_id": event.id, "member_id": event.member_id, "properties": event.properties},
        now=now,
    )
    return {
        "event_id": event.id,
        "type": event.type,
        "member_id": event.member_id,
        "rules_applied": evaluation.applied,
        "effects": earn_effects(program, evaluation, credits, max(now, occurred_at)),
        "balances": balances(
            session, tenant_id=tenant_id, program=program, member_id=event.member_id
        ),
    }


def _visible_order(session: Session, tenant_id: str, order_id: str, partner: str | None) -> Order:
    """The order, if the caller may see it: a partner key sees only its partner's orders."""
    order = repository.get_order(session, tenant_id, order_id)
    # another partner's order is "not found", so ids of other partners are not disclosed
    if order is None or (partner is not None and order.partner != partner):
        raise NotFound(f"order {order_id!r} not found", code="order_not_found")
    return order


def get_order(
    session: Session,
    *,
    tenant_id: str,
    program: CompiledProgram | None,
    order_id: str,
    partner: str | None,
) -> dict[str, Any]:
    """One order as booked, with the points it earned and those reversed (GET /v1/orders/{id})."""
    order = _visible_order(session, tenant_id, order_id, partner)
    exponent = currency_exponent(order.currency)
    wallets = program.program.wallets if program else {}
    points = {
        wallet: {
            "earned": number(earned, wallets[wallet].precision if wallet in wallets else 0),
            "reversed": number(reversed_, wallets[wallet].precision if wallet in wallets else 0),
        }
        for wallet, (earned, reversed_) in sorted(
            ledger.order_totals(session, tenant_id, order_id).items()
        )
    }
    return {
        "order_id": order.order_id,
        "member_id": order.member_id,
        "partner": order.partner,
        "brand": order.payload.get("brand"),
        "placed_at": order.placed_at.isoformat(),
        "status": order.status,
        "currency": order.currency,
        "subtotal": money_str(order.subtotal_minor, exponent),
        "total": money_str(order.total_minor, exponent),
        "refunded_total": money_str(order.refunded_minor, exponent),
        "program_version": order.program_version,
        "points": points,
        "order": order.payload,
        "created_at": order.created_at.isoformat(),
    }


def orders_of_member(session: Session, *, tenant_id: str, member_id: str) -> list[dict[str, Any]]:
    return [
        {
            "order_id": o.order_id,
            "placed_at": o.placed_at.isoformat(),
            "status": o.status,
            "total_minor": o.total_minor,
            "refunded_minor": o.refunded_minor,
            "payload": o.payload,
        }
        for o in repository.orders_of_member(session, tenant_id, member_id, 100_000)
    ]


def events_of_member(session: Session, *, tenant_id: str, member_id: str) -> list[dict[str, Any]]:
    return [
        {
            "event_id": e.event_id,
            "type": e.type,
            "occurred_at": e.occurred_at.isoformat(),
            "properties": e.properties,
        }
        for e in repository.events_of_member(session, tenant_id, member_id, 100_000)
    ]
