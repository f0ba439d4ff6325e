"""Use cases for what the shop reports: orders, refunds, cancellations, custom events.

Every booking works on a list so that a batch import and a single API call share one path;
an API call is a batch of one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from functools import cached_property, partial
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from allegiance.analytics import activity
from allegiance.b2b import repository as accounts_repo
from allegiance.b2b import service as b2b
from allegiance.b2b.service import Holder
from allegiance.coupon import service as coupons
from allegiance.earning import service as earning
from allegiance.earning.engine import Evaluation, Line, UsageBook, evaluate, usage_keys
from allegiance.engagement import badges
from allegiance.engagement.activity import engaged, on_activity
from allegiance.errors import AlreadyBooked, Conflict, Forbidden, NotFound, invalid
from allegiance.experiment import assignment as experiment_assignment
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
from allegiance.member import enrolment
from allegiance.member import repository as members
from allegiance.member.models import Member
from allegiance.order import repository
from allegiance.order.models import Order
from allegiance.order.schemas import (
    CartBase,
    EventCreate,
    ItemFields,
    OrderFields,
    OrderItem,
    RefundCreate,
)
from allegiance.outbox import service as outbox
from allegiance.pricing import cart as pricing
from allegiance.program.coalition import find_partner, partner_wallet
from allegiance.program.compiled import CompiledProgram
from allegiance.promotion import service as promotions
from allegiance.referral import service as referrals
from allegiance.segment import service as segmentation
from allegiance.tier import service as tiers
from allegiance.tier.repository import Owner
from allegiance.tier.service import NO_TIER, Held, TierBook

if TYPE_CHECKING:
    from allegiance.subscription.service import ActiveMembership


@dataclass
class PreparedOrder:
    order_id: str
    member_id: str | None
    placed_at: datetime
    subtotal_minor: int
    total_minor: int
    lines: list[Line]
    payload: dict[str, Any]
    unit_prices: list[Decimal | None] = field(default_factory=list)  # as sent, per line
    partner: str | None = None
    shipping_minor: int = 0
    tax_minor: int = 0
    coupon_codes: list[str] = field(default_factory=list)
    # builds the order's CEL view (``context``) when something first asks for it
    build_context: Callable[[], dict[str, Any]] | None = field(
        default=None, repr=False, compare=False
    )

    @cached_property
    def context(self) -> dict[str, Any]:
        """The order as CEL sees it (``order``, ``account``, ``now``), built on first use:
        most programs' rules never look at it."""
        assert self.build_context is not None
        return self.build_context()


@dataclass
class Booking:
    order: PreparedOrder
    evaluation: Evaluation = field(default_factory=Evaluation)
    credits: list[Credit] = field(default_factory=list)
    tier_effects: list[dict[str, Any]] = field(default_factory=list)
    coupon_effects: list[dict[str, Any]] = field(default_factory=list)
    owner: Owner | None = None  # who holds the wallets the order earned into
    promotion_effects: list[dict[str, Any]] = field(default_factory=list)
    engagement_effects: list[dict[str, Any]] = field(default_factory=list)  # badges, challenges


def _check_money(value: Decimal | None, exponent: int, loc: list[str | int]) -> None:
    if value is None:
        return
    written = value.as_tuple().exponent
    if isinstance(written, int) and written >= -exponent:
        return  # as written it has few enough places (the common case: no normalising)
    if decimal_places(value) > exponent:
        raise invalid(loc, f"has more than {exponent} decimal places for this currency")


def prepare_order(
    program: CompiledProgram,
    payload: CartBase | OrderFields,
    *,
    order_id: str | None,
    now: datetime,
    loc_prefix: str = "body",
    stored: dict[str, Any] | None = None,
    partner: str | None = None,
) -> PreparedOrder:
    """Check an order's money against the program currency; its CEL context is built when
    first needed (``PreparedOrder.context``).

    ``payload`` is the parsed order (the API's model, or an import's ``OrderFields``).
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
    # amounts an import read with no more places than the currency has are fine as they are
    checked = isinstance(payload, OrderFields) and payload.money_places <= exponent
    if not checked:
        for name in ("shipping_amount", "tax_amount", "discount_amount", "total"):
            _check_money(getattr(payload, name), exponent, [loc_prefix, name])
    lines: list[Line] = []
    unit_prices: list[Decimal | None] = []
    items: Sequence[OrderItem | ItemFields] = payload.items
    for index, item in enumerate(items):
        if not checked:
            _check_money(item.unit_price, exponent, [loc_prefix, "items", index, "unit_price"])
            _check_money(item.amount, exponent, [loc_prefix, "items", index, "amount"])
        assert item.amount is not None
        lines.append(Line(item.amount, item.quantity, build=partial(_item_context, item)))
        unit_prices.append(item.unit_price)
    subtotal = sum((line.amount for line in lines), Decimal(0))
    if payload.total is not None:
        total = payload.total
    else:
        total = max(
            subtotal + payload.shipping_amount + payload.tax_amount - payload.discount_amount,
            Decimal(0),
        )
    placed_at = as_utc(payload.placed_at) if payload.placed_at else now

    def build_context() -> dict[str, Any]:
        return _cart_context(
            payload, order_id, placed_at, currency, lines, subtotal, total, partner, now
        )

    return PreparedOrder(
        order_id=order_id or "",
        member_id=payload.member_id,
        placed_at=placed_at,
        subtotal_minor=to_minor(subtotal, exponent),
        total_minor=to_minor(total, exponent),
        lines=lines,
        payload=stored if stored is not None else _as_stored(payload),
        unit_prices=unit_prices,
        partner=partner,
        shipping_minor=to_minor(payload.shipping_amount, exponent),
        tax_minor=to_minor(payload.tax_amount, exponent),
        coupon_codes=list(payload.coupon_codes),
        build_context=build_context,
    )


def _as_stored(payload: CartBase | OrderFields) -> dict[str, Any]:
    # an import passes the order as it read it; the API keeps its parsed body
    assert isinstance(payload, CartBase), "orders parsed by plain_order come with stored"
    return payload.model_dump(mode="json", exclude_none=True)


def _item_context(item: OrderItem | ItemFields) -> dict[str, Any]:
    """One line as CEL sees it (``item``)."""
    assert item.amount is not None
    quantity = item.quantity
    return {
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


def _cart_context(
    payload: CartBase | OrderFields,
    order_id: str | None,
    placed_at: datetime,
    currency: str,
    lines: list[Line],
    subtotal: Decimal,
    total: Decimal,
    partner: str | None,
    now: datetime,
) -> dict[str, Any]:
    """The order as CEL sees it; its ``items`` are the lines' own contexts."""
    return {
        "order": {
            "id": order_id or "",
            "placed_at": placed_at,
            "currency": currency,
            "items": [line.context for line in lines],
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
        "account": b2b.account_context(None),
        "now": now,
    }


def _brand(payload: dict[str, Any]) -> str | None:
    """The order's ``brand`` as stored in its payload (a column for analytics filters)."""
    brand = payload.get("brand")
    return brand if isinstance(brand, str) else None


def _order_partner(
    program: CompiledProgram,
    payload: CartBase | OrderFields,
    key_partner: str | None,
    loc_prefix: str,
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


def _check_brand(
    program: CompiledProgram, payload: CartBase | OrderFields, loc_prefix: str
) -> None:
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
    member: Member | None,
    exponent: int,
    stats: dict[str, Any] | None = None,
    held: Held = NO_TIER,
    membership: ActiveMembership | None = None,
    extra_perks: Sequence[str] = (),
    badges: Sequence[str] = (),
    segments: Sequence[str] = (),
    experiments: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The member as CEL sees it; ``stats`` (a batch's running totals) override the row.
    ``held`` is its tier, ``membership`` its paid plan, ``extra_perks`` what access rewards
    give (perks are the union of all three)."""
    if member is None:
        return {
            "id": "", "email": "", "name": "", "phone": "", "locale": "", "tags": [],
            "attributes": {}, "tier": "", "perks": [], "plan": "", "account_id": "",
            "account_role": "",
            "enrolled_at": None,
            "birthdate": "", "stats": {"orders": 0, "spend": 0.0, "points_earned": 0.0},
            "segments": [], "badges": [], "experiments": {},
        }  # fmt: skip
    return {
        "id": member.member_id,
        "email": member.email or "",
        "name": member.name or "",
        "phone": member.phone or "",
        "locale": member.locale or "",
        "tags": list(member.tags or []),
        "attributes": dict(member.attributes or {}),
        "tier": held.key or "",
        "perks": _perks(held, membership, extra_perks),
        "plan": membership.plan if membership else "",
        "account_id": member.account_id or "",
        "account_role": member.account_role or "",
        "enrolled_at": member.enrolled_at,
        "birthdate": member.birthdate.isoformat() if member.birthdate else "",
        "stats": {
            "orders": (stats or {}).get("orders_count", member.orders_count),
            "spend": float(
                Decimal((stats or {}).get("spend_minor", member.spend_minor)).scaleb(-exponent)
            ),
            "points_earned": 0.0,
        },
        "segments": list(segments),
        "badges": list(badges),
        # experiment key -> variant ("holdout" for the holdout group)
        "experiments": dict(experiments or {}),
    }


def lock_holders(
    session: Session,
    *,
    tenant_id: str,
    program: CompiledProgram,
    members_: list[Member],
    now: datetime,
) -> dict[str, Holder]:
    """Lock the members' accounts (after the members, in id order) and settle what fell due
    in pooled wallets; returns each member's holder."""
    found = b2b.holders(session, tenant_id=tenant_id, members_=members_, lock=True)
    settled: set[str] = set()
    for h in found.values():
        account = h.account
        if not h.pooled or account is None or account.account_id in settled:
            continue
        settled.add(account.account_id)
        if account.settle_at is not None and account.settle_at <= now:
            account.settle_at = ledger.settle_member(
                session,
                tenant_id=tenant_id,
                program=program.program,
                member_id=account.account_id,
                last_activity_at=account.last_activity_at,
                now=now,
                owner_type="account",
            )
            accounts_repo.set_activity(
                session, tenant_id, account.account_id, account.last_activity_at,
                account.settle_at,
            )  # fmt: skip
    return found


def conditions_context(
    session: Session,
    *,
    tenant_id: str,
    program: CompiledProgram,
    member: Member | None,
    exponent: int,
    now: datetime,
) -> dict[str, Any]:
    """``member`` (with the tier it holds now) and ``account`` as conditions outside an order
    see them: price lists in evaluate and price tables, reward eligibility."""
    if member is None:
        return {"member": member_context(None, exponent), "account": b2b.account_context(None)}
    found = standing(session, tenant_id=tenant_id, program=program, member=member, now=now)
    held_badges = badges.held_by(
        session, tenant_id=tenant_id, program=program.program, member_ids=[member.member_id]
    )
    context = {
        "member": member_context(
            member,
            exponent,
            held=found.held,
            membership=found.membership,
            extra_perks=found.perks,
            badges=held_badges.get(member.member_id, ()),
            segments=segmentation.held(
                session, tenant_id=tenant_id, program=program, member_ids=[member.member_id]
            ).get(member.member_id, ()),
        ),
        "account": b2b.account_context(found.holder.account),
    }
    return experiment_assignment.fill(program.program, context, now)


@dataclass(frozen=True)
class Standing:
    """What a member holds now outside an order: its wallets' holder, paid plan, tier, perks."""

    holder: Holder
    membership: ActiveMembership | None
    held: Held
    perks: tuple[str, ...]


def standing(
    session: Session, *, tenant_id: str, program: CompiledProgram, member: Member, now: datetime
) -> Standing:
    holder_ = b2b.holder_of(session, tenant_id=tenant_id, member=member)
    membership = memberships(
        session, tenant_id=tenant_id, program=program, member_ids=[member.member_id], now=now
    ).get(member.member_id)
    held = tiers.current(
        session,
        tenant_id=tenant_id,
        program=program,
        owner=holder_.owner,
        at=now,
        floor=plan_floor(holder_, membership),
    )
    perks = reward_perks(
        session, tenant_id=tenant_id, program=program, member_ids=[member.member_id], now=now
    ).get(member.member_id, ())
    return Standing(holder_, membership, held, tuple(perks))


def memberships(
    session: Session,
    *,
    tenant_id: str,
    program: CompiledProgram,
    member_ids: list[str],
    now: datetime,
) -> dict[str, ActiveMembership]:
    """The paid plans the members hold at ``now`` (one query; none without ``plans``)."""
    if not program.program.plans or not member_ids:
        return {}
    # imported here: subscriptions book through this module (lock_members)
    from allegiance.subscription.service import active_memberships

    return active_memberships(
        session, tenant_id=tenant_id, member_ids=member_ids, now=now, program=program
    )


def plan_floor(holder_: Holder, membership: ActiveMembership | None) -> str | None:
    """A plan's tier floor applies to a member's own tier (a pooled account's tier is the
    account's, whatever one buyer pays for)."""
    if membership is None or holder_.pooled:
        return None
    return membership.tier_floor


def _perks(held: Held, membership: ActiveMembership | None, extra: Sequence[str] = ()) -> list[str]:
    perks = list(held.perks)
    for perk in [*(membership.perks if membership else ()), *extra]:
        if perk not in perks:
            perks.append(perk)
    return perks


def reward_perks(
    session: Session,
    *,
    tenant_id: str,
    program: CompiledProgram,
    member_ids: list[str],
    now: datetime,
) -> dict[str, list[str]]:
    """Perks members hold from redeemed ``access`` rewards (none without such rewards)."""
    if not member_ids or not any(r.type == "access" for r in program.program.rewards):
        return {}
    # imported here: redemptions book through this module (member locks)
    from allegiance.redemption import repository as redemptions

    return redemptions.active_perks(session, tenant_id, member_ids, now)


def stand_in_member(*, tenant_id: str, member_id: str, now: datetime) -> Member:
    """An unknown or anonymous shopper, seen as a new member (not stored)."""
    return Member(
        tenant_id=tenant_id,
        member_id=member_id or "anonymous",
        tags=[],
        attributes={},
        orders_count=0,
        spend_minor=0,
        enrolled_at=now,
    )


def lock_members(
    session: Session,
    *,
    tenant_id: str,
    program: CompiledProgram,
    member_ids: list[str],
    now: datetime,
) -> dict[str, Member]:
    """Create missing members, lock them (id order) and settle any lot that fell due."""
    found = enrolment.ensure_enrolled(session, tenant_id, member_ids, now)
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
    held: Held = NO_TIER,
    holder_: Holder | None = None,
    membership: ActiveMembership | None = None,
    extra_perks: Sequence[str] = (),
    badges: Sequence[str] = (),
    segments: Sequence[str] = (),
) -> Evaluation:
    if member is None:
        return Evaluation()
    context = (
        _order_context(
            program, prepared, member, stats, held, holder_, membership, extra_perks, badges,
            segments,
        )
        if "order.completed" in program.context_events
        else {}  # no rule looks at it
    )  # fmt: skip
    return evaluate(
        program,
        event_type="order.completed",
        context=context,
        lines=prepared.lines,
        member_id=member.member_id,
        at=prepared.placed_at,
        usage=usage,
        tier_multiplier=held.multiplier,
        tier_key=held.key,
        plan_multiplier=membership.earn_multiplier if membership else Decimal(1),
        plan_key=membership.plan if membership else None,
    )


def _order_context(
    program: CompiledProgram,
    prepared: PreparedOrder,
    member: Member | None,
    stats: dict[str, Any] | None = None,
    held: Held = NO_TIER,
    holder_: Holder | None = None,
    membership: ActiveMembership | None = None,
    extra_perks: Sequence[str] = (),
    badges: Sequence[str] = (),
    segments: Sequence[str] = (),
) -> dict[str, Any]:
    """The order as conditions see it, with the member's tier, plan, perks and account."""
    context = dict(prepared.context)
    exponent = currency_exponent(program.currency)
    context["member"] = member_context(
        member, exponent, stats, held, membership, extra_perks, badges, segments
    )
    if holder_ is not None:
        context["account"] = b2b.account_context(holder_.account)
    return experiment_assignment.fill(program.program, context, prepared.placed_at)


def tier_book(
    session: Session,
    *,
    tenant_id: str,
    program: CompiledProgram,
    owners: list[Owner],
    earliest: datetime,
    now: datetime,
    floors: dict[Owner, str] | None = None,
) -> TierBook | None:
    if program.program.tiers is None or not owners:
        return None
    return TierBook(
        session,
        tenant_id=tenant_id,
        program=program,
        owners=sorted(set(owners)),
        earliest=earliest,
        now=now,
        floors=floors,
    )


def _floors(holders: dict[str, Holder], plans: dict[str, ActiveMembership]) -> dict[Owner, str]:
    found: dict[Owner, str] = {}
    for member_id, membership in plans.items():
        h = holders.get(member_id)
        floor = plan_floor(h, membership) if h is not None else None
        if h is not None and floor is not None:
            found[h.owner] = floor
    return found


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
    holders = lock_holders(
        session, tenant_id=tenant_id, program=program, members_=list(locked.values()), now=now
    )
    rows = [
        (
            tenant_id, o.order_id, o.member_id, _pooled_account(holders, o.member_id),
            o.placed_at, program.currency, o.subtotal_minor, o.total_minor, 0, "completed",
            program.version, o.payload, now, o.partner, _brand(o.payload),
        )
        for o in orders
    ]  # fmt: skip
    if len(rows) == 1:
        row = dict(zip(repository.ORDER_COLUMNS, rows[0], strict=True))
        if not repository.insert_order_if_new(session, row):
            raise AlreadyBooked(
                f"order {row['order_id']!r} is already booked",
                code="order_already_booked",
                errors=[{"loc": ["body", "id"], "msg": "an order with this id exists"}],
            )
    else:
        repository.insert_order_values(session, rows)
    rules = program.rules_by_event.get("order.completed", ())
    keys = [
        k
        for o in orders
        if o.member_id
        for k in usage_keys(program, rules, o.member_id, o.placed_at)
    ]
    keys += [k for o in orders for k in promotions.keys(program, o.member_id or "", o.placed_at)]
    usage = earning.load_usage(session, tenant_id=tenant_id, keys=keys, lock=True)
    plans = memberships(
        session, tenant_id=tenant_id, program=program, member_ids=list(locked), now=now
    )
    perks = reward_perks(
        session, tenant_id=tenant_id, program=program, member_ids=list(locked), now=now
    )
    book = tier_book(
        session,
        tenant_id=tenant_id,
        program=program,
        owners=[h.owner for h in holders.values()],
        earliest=min(o.placed_at for o in orders),
        now=now,
        floors=_floors(holders, plans),
    )
    held_badges = badges.held_by(
        session, tenant_id=tenant_id, program=program.program, member_ids=list(locked)
    )
    # segments as held before these orders (like the tier); re-evaluated after booking
    stored_segments = segmentation.stored(
        session, tenant_id=tenant_id, program=program, member_ids=list(locked)
    )
    held_segments = segmentation.keys_of(program, stored_segments)
    account_stats: dict[str, dict[str, Any]] = {}
    bookings: list[Booking] = []
    credits: list[Credit] = []
    stats: dict[str, dict[str, Any]] = {}
    events: list[dict[str, Any]] = []
    # worked out once per batch rather than per order (an import books thousands at once)
    has_promotions = bool(program.program.promotions)
    is_engaged = engaged(program.program)
    pending_for = {key: timedelta(days=float(w.pending_days)) for key, w in wallets.items()}
    funded: dict[str | None, str | None] = {}  # partner -> the wallet it funds
    expiries: dict[tuple[str, datetime], datetime | None] = {}
    for o in orders:
        member = locked.get(o.member_id) if o.member_id else None
        if member is not None:
            mid = member.member_id
            running = stats.get(mid)
            holder_ = holders.get(mid)
            membership = plans.get(mid)
            member_perks: Sequence[str] = perks.get(mid, ())
            member_badges: Sequence[str] = held_badges.get(mid, ())
            member_segments: Sequence[str] = held_segments.get(mid, ())
        else:
            running = holder_ = membership = None
            member_perks = member_badges = member_segments = ()
        owner = holder_.owner if holder_ is not None else None
        held = book.held(owner, o.placed_at) if book and owner else NO_TIER
        booking = Booking(
            order=o,
            evaluation=_evaluate(
                program,
                o,
                member,
                usage,
                running,
                held,
                holder_,
                membership,
                member_perks,
                member_badges,
                member_segments,
            ),
            owner=owner,
        )
        if has_promotions:
            booking.promotion_effects = promotions.book(
                session,
                tenant_id=tenant_id,
                program=program,
                order=o,
                context=_order_context(
                    program,
                    o,
                    member,
                    running,
                    held,
                    holder_,
                    membership,
                    member_perks,
                    member_badges,
                    member_segments,
                ),
                usage=usage,
            )
        if book is not None and owner is not None:
            book.record(
                owner,
                at=o.placed_at,
                source_type="order",
                source_id=o.order_id,
                spend_minor=o.total_minor,
                orders=1,
                points_minor=booking.evaluation.totals_minor.get(book.ladder.wallet, 0),
            )
            effect = book.reassess(owner, at=o.placed_at, reason="qualified", source_id=o.order_id)
            if effect is not None:
                booking.tier_effects.append(effect)
        if o.partner not in funded:
            funded[o.partner] = _partner_wallet(program, o.partner)
        funded_wallet = funded[o.partner]
        for share in booking.evaluation.shares:
            available = o.placed_at + pending_for[share.wallet]
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
                    owner_type=owner[0] if owner else "member",
                    owner_id=owner[1] if owner else None,
                    partner=o.partner if share.wallet == funded_wallet else None,
                )
            )
        credits.extend(booking.credits)
        bookings.append(booking)
        if member is not None:
            s = running if running is not None else stats.setdefault(mid, _stats_of(member))
            s["orders_count"] += 1
            s["spend_minor"] += o.total_minor
            # the earliest and latest order (on a tie the one already there stays)
            placed = o.placed_at
            if s["first_order_at"] is None or placed < s["first_order_at"]:
                s["first_order_at"] = placed
            if s["last_order_at"] is None or placed > s["last_order_at"]:
                s["last_order_at"] = placed
            if holder_ is not None and holder_.pooled and holder_.account is not None:
                # the pooled wallet's lots belong to the account: its clock, not the member's
                _touch(program, s, o.placed_at, [], now, expiries)
                a = account_stats.setdefault(holder_.owner_id, _account_stats(holder_))
                _touch(program, a, o.placed_at, booking.credits, now, expiries)
            else:
                _touch(program, s, o.placed_at, booking.credits, now, expiries)
            if is_engaged:
                context = _order_context(
                    program, o, member, s, held, holder_, membership,
                    perks.get(member.member_id, ()), (), held_segments.get(member.member_id, ()),
                )  # fmt: skip
                outcome = on_activity(
                    session,
                    tenant_id=tenant_id,
                    program=program.program,
                    member_id=member.member_id,
                    event_type="order.completed",
                    source_type="order",
                    source_id=o.order_id,
                    context=context,
                    at=o.placed_at,
                    now=now,
                )
                booking.engagement_effects = outcome.effects
                held_badges[member.member_id] = sorted(
                    set(held_badges.get(member.member_id, ()))
                    | {e["badge"] for e in outcome.effects if e["type"] == "badge_awarded"}
                )
                _touch(program, s, o.placed_at, outcome.credits, now, expiries)
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
    referrals.on_orders_booked(
        session, tenant_id=tenant_id, program=program, orders=orders, members_=locked, now=now
    )
    ledger.credit(session, tenant_id=tenant_id, program=program.program, credits=credits, now=now)
    earning.save_usage(session, tenant_id=tenant_id, usage=usage)
    coupons.book_coupons(session, tenant_id=tenant_id, program=program, bookings=bookings, now=now)
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
    activity.record_bookings(
        session,
        tenant_id=tenant_id,
        timezone=program.program.timezone,
        ordered=[(o.member_id, o.placed_at) for o in orders if o.member_id in stats],
        first_before={mid: locked[mid].first_order_at for mid in stats},
        first_after={mid: s["first_order_at"] for mid, s in stats.items()},
    )
    _save_account_stats(session, tenant_id, program, account_stats, now)
    outbox.emit_many(session, events)
    segmentation.refresh_members(
        session, tenant_id=tenant_id, program=program, member_ids=list(locked), now=now,
        current=stored_segments,
    )  # fmt: skip
    if book is not None:
        book.flush()
    return bookings


def _pooled_account(holders: dict[str, Holder], member_id: str | None) -> str | None:
    h = holders.get(member_id) if member_id else None
    return h.owner_id if h is not None and h.pooled else None


def _account_stats(h: Holder) -> dict[str, Any]:
    assert h.account is not None
    return {
        "aid": h.account.account_id,
        "last_activity_at": h.account.last_activity_at,
        "settle_at": h.account.settle_at,
    }


def _save_account_stats(
    session: Session,
    tenant_id: str,
    program: CompiledProgram,
    account_stats: dict[str, dict[str, Any]],
    now: datetime,
) -> None:
    for a in account_stats.values():
        if a["settle_at"] is not None and a["settle_at"] <= now:
            a["settle_at"] = ledger.settle_member(
                session,
                tenant_id=tenant_id,
                program=program.program,
                member_id=a["aid"],
                last_activity_at=a["last_activity_at"],
                now=now,
                owner_type="account",
            )
        accounts_repo.set_activity(
            session, tenant_id, a["aid"], a["last_activity_at"], a["settle_at"]
        )


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
    expiries: dict[tuple[str, datetime], datetime | None] | None = None,
) -> None:
    """Record activity and bring ``settle_at`` forward to the next lot event it causes.
    ``expiries`` remembers the wallets' expiry of a lot per activation time (a batch's
    orders share their days)."""
    last = s["last_activity_at"]
    if last is None or activity_at > last:  # on a tie the moment already there stays
        last = s["last_activity_at"] = activity_at
    moments = [s["settle_at"], ledger.inactivity_deadline(program.program, last)]
    for c in credits:
        if c.available_at > now:
            moment: datetime | None = c.available_at
        elif expiries is None:
            moment = _expiry(program, c)
        else:
            key = (c.wallet, c.available_at)
            if key in expiries:
                moment = expiries[key]
            else:
                moment = expiries[key] = _expiry(program, c)
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


def _earned_on_event(
    tenant_id: str, program: CompiledProgram, event: Any, evaluation: Evaluation, now: datetime
) -> list[dict[str, Any]]:
    """``points.earned`` rows for what a behaviour event's rules credited."""
    return [
        outbox.event_row(
            tenant_id,
            "points.earned",
            {
                "member_id": event.member_id,
                "wallet": wallet_key,
                "amount": number(amount, program.program.wallets[wallet_key].precision),
                "event_id": event.id,
                "event_type": event.type,
            },
            now,
        )
        for wallet_key, amount in evaluation.totals_minor.items()
        if amount > 0
    ]


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
    session: Session,
    *,
    tenant_id: str,
    program: CompiledProgram,
    member_id: str | None,
    owner: Owner | None = None,
) -> dict[str, Any]:
    """Balances of the wallets a member's points go to (a pooled account's when it has one)."""
    if owner is not None:
        owner_type, member_id = owner
    else:
        owner_type = "member"
    if not member_id:
        return {}
    cached = ledger.account_balances(session, tenant_id, member_id, owner_type)
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
        "effects": earn_effects(program, booking.evaluation, booking.credits, now)
        + booking.tier_effects
        + booking.promotion_effects
        + booking.coupon_effects
        + booking.engagement_effects,
        "balances": balances(
            session,
            tenant_id=tenant_id,
            program=program,
            member_id=o.member_id,
            owner=booking.owner,
        ),
        "account_id": booking.owner[1] if booking.owner and booking.owner[0] == "account" else None,
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
        keys=usage_keys(program, rules, member_key, cart.placed_at)
        + promotions.keys(program, member_key, cart.placed_at),
        lock=False,
    )
    known = member is not None
    if member is None:
        member = stand_in_member(tenant_id=tenant_id, member_id=member_key, now=now)
    found = standing(session, tenant_id=tenant_id, program=program, member=member, now=now)
    held_segments = (
        segmentation.held(
            session, tenant_id=tenant_id, program=program, member_ids=[member.member_id]
        ).get(member.member_id, ())
        if known
        else ()
    )
    evaluation = _evaluate(
        program,
        cart,
        member,
        usage,
        held=found.held,
        holder_=found.holder,
        membership=found.membership,
        extra_perks=found.perks,
        segments=held_segments,
    )
    coupon_results = coupons.evaluate_codes(
        session, tenant_id=tenant_id, program=program, cart=cart
    )
    offers = promotions.cart_response(
        promotions.evaluate(
            program,
            cart,
            _order_context(
                program,
                cart,
                member,
                None,
                found.held,
                found.holder,
                found.membership,
                found.perks,
                segments=held_segments,
            ),
            usage,
        ),
        cart,
        currency_exponent(program.currency),
    )
    # a generated coupon is reported under "coupons", not as an unknown promotion code
    coupon_codes = {c["code"].upper() for c in coupon_results}
    offers["codes"] = [
        c
        for c in offers.get("codes", [])
        if not (c["status"] == "unknown" and c["code"].upper() in coupon_codes)
    ]
    wallets = program.program.wallets
    points: dict[str, int] = {}
    for share in evaluation.shares:
        points.setdefault(share.wallet, 0)
        points[share.wallet] += share.amount_minor
    exponent = currency_exponent(program.currency)
    prices = pricing.price_cart(
        program.program,
        cart,
        conditions_context(
            session,
            tenant_id=tenant_id,
            program=program,
            member=member,
            exponent=exponent,
            now=now,
        ),
        now=now,
    )
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
            **offers.pop("totals"),
        },
        **offers,
        **prices,
        "rewards": _affordable(session, tenant_id, program, member, now) if known else [],
        "coupons": coupon_results,
    }


def _affordable(
    session: Session, tenant_id: str, program: CompiledProgram, member: Member, now: datetime
) -> list[dict[str, Any]]:
    """The rewards the member could redeem now (the catalog entries that are redeemable)."""
    if not program.program.rewards:
        return []
    # imported here: redemptions book through this module (member locks)
    from allegiance.redemption.service import catalog

    return [
        r
        for r in catalog(session, tenant_id=tenant_id, program=program, member=member, now=now)
        if r["redeemable"]
    ]


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
    reversed_by_wallet: dict[str, int] = {}
    owner: Owner = (
        ("account", order.account_id) if order.account_id else ("member", order.member_id or "")
    )
    if order.account_id:
        # the pooled wallet's lots are the account's: lock it as bookings do
        accounts_repo.accounts_by_id(session, tenant_id, [order.account_id], lock=True)
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
            reversed_by_wallet[wallet_key] = delta
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
                owner_type=owner[0],
                owner_id=owner[1],
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
    if cancel:
        effects.extend(
            coupons.release_order(
                session, tenant_id=tenant_id, program=program, order_id=order_id, now=now
            )
        )
    status = "cancelled" if cancel else order.status
    if cancel:
        promotions.release(session, tenant_id=tenant_id, stored=order.promotions)
    counted_before = order.status != "cancelled" and (
        order.refunded_minor < order.total_minor or order.total_minor == 0
    )
    repository.set_refunded(session, tenant_id, order_id, cumulative, status)
    if cancel and order.member_id:
        activity.record_cancel(
            session,
            tenant_id=tenant_id,
            timezone=program.program.timezone,
            member_id=order.member_id,
            placed_at=order.placed_at,
        )
    referrals.on_order_reversed(session, tenant_id=tenant_id, order_id=order_id, now=now)
    if order.member_id:
        counted_after = not cancel and (cumulative < order.total_minor or order.total_minor == 0)
        plan = memberships(
            session, tenant_id=tenant_id, program=program, member_ids=[order.member_id], now=now
        ).get(order.member_id)
        book = tier_book(
            session,
            tenant_id=tenant_id,
            program=program,
            owners=[owner],
            earliest=order.placed_at,
            now=now,
            floors={owner: plan.tier_floor}
            if plan and plan.tier_floor and owner[0] == "member"
            else None,
        )
        if book is not None:
            book.record(
                owner,
                at=order.placed_at,  # net of refunds: the refund leaves the order's window
                source_type=source_type,
                source_id=source_id,
                spend_minor=-amount_minor,
                orders=int(counted_after) - int(counted_before),
                points_minor=-reversed_by_wallet.get(book.ladder.wallet, 0),
            )
            effect = book.reassess(owner, at=now, reason=source_type, source_id=source_id)
            if effect is not None:
                effects.append(effect)
            book.flush()
    if order.member_id:
        member = members.get(session, tenant_id, order.member_id)
        if member is not None:
            s = _stats_of(member)
            s["spend_minor"] -= amount_minor
            if cancel:
                s["orders_count"] = max(0, s["orders_count"] - 1)
            # a refund is not member activity: the inactivity clock is left alone
            members.update_stats(session, [s])
            segmentation.refresh_members(
                session, tenant_id=tenant_id, program=program, member_ids=[order.member_id],
                now=now,
            )  # fmt: skip
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
            session, tenant_id=tenant_id, program=program, member_id=order.member_id, owner=owner
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
    holder_ = lock_holders(
        session, tenant_id=tenant_id, program=program, members_=[member], now=now
    )[event.member_id]
    owner = holder_.owner
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
    membership = memberships(
        session, tenant_id=tenant_id, program=program, member_ids=[event.member_id], now=now
    ).get(event.member_id)
    book = tier_book(
        session,
        tenant_id=tenant_id,
        program=program,
        owners=[owner],
        earliest=occurred_at,
        now=now,
        floors=_floors({event.member_id: holder_}, {event.member_id: membership})
        if membership
        else None,
    )
    held = book.held(owner, occurred_at) if book is not None else NO_TIER
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
        "member": member_context(
            member,
            exponent,
            held=held,
            membership=membership,
            badges=badges.held_by(
                session, tenant_id=tenant_id, program=program.program, member_ids=[member.member_id]
            ).get(member.member_id, ()),
            segments=segmentation.held(
                session, tenant_id=tenant_id, program=program, member_ids=[member.member_id]
            ).get(member.member_id, ()),
        ),
        "account": b2b.account_context(holder_.account),
        "now": now,
    }
    experiment_assignment.fill(program.program, context, occurred_at)
    if program.program.sweepstakes:
        from allegiance.sweepstakes.service import on_event

        on_event(
            session, tenant_id=tenant_id, program=program, event_id=event.id,
            event_type=event.type, member_id=event.member_id, occurred_at=occurred_at,
            context=context, now=now,
        )  # fmt: skip
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
            owner_type=owner[0],
            owner_id=owner[1],
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
    tier_effects: list[dict[str, Any]] = []
    if book is not None:
        points = evaluation.totals_minor.get(book.ladder.wallet, 0)
        if points:
            book.record(
                owner, at=occurred_at, source_type="event", source_id=event.id,
                points_minor=points,
            )  # fmt: skip
            effect = book.reassess(owner, at=occurred_at, reason="qualified", source_id=event.id)
            if effect is not None:
                tier_effects.append(effect)
        book.flush()
    engagement = on_activity(
        session,
        tenant_id=tenant_id,
        program=program.program,
        member_id=event.member_id,
        event_type=event.type,
        source_type="event",
        source_id=event.id,
        context=context,
        at=occurred_at,
        now=max(now, occurred_at),
    )
    s = _stats_of(member)
    if holder_.pooled:
        _touch(program, s, occurred_at, [], max(now, occurred_at))
        a = _account_stats(holder_)
        _touch(program, a, occurred_at, credits, max(now, occurred_at))
        _save_account_stats(session, tenant_id, program, {holder_.owner_id: a}, now)
    else:
        _touch(program, s, occurred_at, credits, max(now, occurred_at))
    if engagement.credits:
        _touch(program, s, occurred_at, engagement.credits, max(now, occurred_at))
    members.update_stats(session, [s])
    outbox.emit(
        session,
        tenant_id=tenant_id,
        type_=event.type,
        data={"event_id": event.id, "member_id": event.member_id, "properties": event.properties},
        now=now,
    )
    segmentation.refresh_members(
        session, tenant_id=tenant_id, program=program, member_ids=[event.member_id], now=now
    )
    outbox.emit_many(session, _earned_on_event(tenant_id, program, event, evaluation, now))
    return {
        "event_id": event.id,
        "type": event.type,
        "member_id": event.member_id,
        "rules_applied": evaluation.applied,
        "effects": earn_effects(program, evaluation, credits, max(now, occurred_at))
        + tier_effects
        + engagement.effects,
        "balances": balances(
            session, tenant_id=tenant_id, program=program, member_id=event.member_id, owner=owner
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
        "promotions": [
            {"promotion": p["promotion"], "amount": p["amount"]} for p in order.promotions or []
        ],
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
