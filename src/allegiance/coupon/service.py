"""Coupons: issue, validate against a cart, use on orders, release, campaign batches.

Usage is counted on the coupon row inside the write (row lock on Postgres, the single writer
on SQLite), so a single-use code raced by two orders is taken by one of them.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from allegiance.coupon import repository
from allegiance.coupon.models import Coupon
from allegiance.coupon.schemas import (
    BatchCreate,
    CouponSettings,
    DiscountSpec,
    UseRequest,
    spec_errors,
)
from allegiance.errors import Conflict, NotFound, ValidationFailed, invalid
from allegiance.kit.clock import as_utc
from allegiance.kit.money import currency_exponent, decimal_places, money_str, to_minor
from allegiance.outbox import service as outbox

if TYPE_CHECKING:
    from allegiance.order.service import Booking, PreparedOrder
    from allegiance.program.compiled import CompiledProgram
from allegiance.program.schema import Reward

CHARSETS = {
    # no 0/O, 1/I/L: codes read aloud or typed from a receipt
    "unambiguous": "23456789ABCDEFGHJKMNPQRSTUVWXYZ",
    "alphanumeric": "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ",
    "numeric": "0123456789",
}


def normalize_code(code: str) -> str:
    return code.strip().upper()


# ---- codes -----------------------------------------------------------------------------------


def generate_codes(settings: CouponSettings, count: int) -> set[str]:
    """``count`` distinct random codes (fewer only when the code space is nearly full)."""
    charset = CHARSETS[settings.charset]
    table, rejected = _byte_table(charset)
    prefix = settings.prefix.upper()
    length = settings.length
    found: set[str] = set()
    for _ in range(20):  # duplicates in memory are rare; bounded top-ups
        missing = count - len(found)
        if missing <= 0:
            break
        wanted = missing * length
        chars = ""
        while len(chars) < wanted:
            # random bytes mapped onto the charset; bytes above the largest multiple of its
            # size are dropped so every character is equally likely
            raw = secrets.token_bytes((wanted - len(chars)) * 5 // 4 + 16)
            chars += raw.translate(table, rejected).decode("ascii")
        found.update(prefix + chars[i : i + length] for i in range(0, wanted, length))
    return found


def _byte_table(charset: str) -> tuple[bytes, bytes]:
    size = len(charset)
    limit = 256 - 256 % size
    table = bytes(ord(charset[b % size]) if b < limit else 0 for b in range(256))
    return table, bytes(range(limit, 256))


def _check_space(settings: CouponSettings, count: int) -> None:
    space = len(CHARSETS[settings.charset]) ** settings.length
    if count * 10 > space:
        raise invalid(
            ["body", "settings", "length"],
            f"{settings.length} {settings.charset} characters give {space} codes: too few for "
            f"{count} unique codes; use a longer code",
        )


def _window(
    settings: CouponSettings, now: datetime, starts_at: datetime | None = None
) -> tuple[datetime, datetime | None]:
    start = as_utc(starts_at) if starts_at else now + timedelta(days=settings.inactive_days)
    end = start + timedelta(days=settings.valid_days) if settings.valid_days is not None else None
    return start, end


def _spec_json(spec: DiscountSpec) -> dict[str, Any]:
    return spec.model_dump(mode="json", exclude_none=True, exclude_defaults=True) | {
        "type": spec.type
    }


def issue_coupon(
    session: Session,
    *,
    tenant_id: str,
    spec: DiscountSpec,
    settings: CouponSettings,
    member_id: str | None,
    source_type: str,
    source_id: str | None,
    now: datetime,
    currency: str = "USD",
    kind: str | None = None,
) -> dict[str, Any]:
    """Issue one coupon with a fresh code (to ``member_id`` when given).

    The window follows ``settings``: usable from issue + ``inactive_days``, for
    ``valid_days`` from then. A ``gift_card`` spec starts with its ``value`` as balance. Returns the
    coupon as the API shows it (``code``, ``starts_at``, ``expires_at``, ...).
    """
    _check_space(settings, 1)
    starts_at, expires_at = _window(settings, now)
    exponent = currency_exponent(currency)
    balance = to_minor(spec.value, exponent) if spec.type == "gift_card" and spec.value else None
    if spec.type == "gift_card":
        kind = "gift_card"
    kind = kind or ("batch" if source_type == "batch" else "reward")
    for _ in range(10):
        code = next(iter(generate_codes(settings, 1)))
        row = {
            "tenant_id": tenant_id,
            "code": code,
            "kind": kind,
            "member_id": member_id,
            "spec": _spec_json(spec),
            "starts_at": starts_at,
            "expires_at": expires_at,
            "max_uses": settings.max_uses,
            "uses": 0,
            "balance_minor": balance,
            "status": "active",
            "source_type": source_type,
            "source_id": source_id,
            "created_at": now,
        }
        if repository.insert_coupon_if_new(session, row):
            coupon = repository.get_coupons(session, tenant_id, [code])[code]
            return coupon_view(coupon, exponent)
    raise Conflict("could not find a free coupon code; use longer codes", code="code_space_full")


def create_batch(
    session: Session, *, tenant_id: str, program: CompiledProgram, batch: BatchCreate, now: datetime
) -> dict[str, Any]:
    """Generate ``count`` unique codes for a campaign: in memory, deduplicated, inserted in
    bulk skipping codes that exist already, then topped up until the count is reached."""
    _check_space(batch.settings, batch.count)
    _check_spec(program, batch.discount, ["body", "discount"])
    if repository.count_of_source(session, tenant_id, "batch", batch.id):
        raise Conflict(f"batch {batch.id!r} exists", code="batch_exists")
    exponent = currency_exponent(program.currency)
    starts_at, expires_at = _window(batch.settings, now, batch.starts_at)
    if batch.expires_at is not None:
        expires_at = as_utc(batch.expires_at)
    spec = _spec_json(batch.discount)
    balance = (
        to_minor(batch.discount.value, exponent)
        if batch.discount.type == "gift_card" and batch.discount.value
        else None
    )
    base = {
        "tenant_id": tenant_id,
        "kind": "gift_card" if balance is not None else "batch",
        "member_id": None,
        "spec": spec,
        "starts_at": starts_at,
        "expires_at": expires_at,
        "max_uses": batch.settings.max_uses,
        "uses": 0,
        "balance_minor": balance,
        "status": "active",
        "source_type": "batch",
        "source_id": batch.id,
        "created_at": now,
    }
    made = 0
    for _ in range(20):
        codes = generate_codes(batch.settings, batch.count - made)
        repository.insert_codes(session, base, codes)
        made = repository.count_of_source(session, tenant_id, "batch", batch.id)
        if made >= batch.count:
            break
    else:
        raise Conflict("could not find enough free codes; use longer codes", code="code_space_full")
    return {
        "id": batch.id,
        "count": made,
        "starts_at": starts_at.isoformat(),
        "expires_at": expires_at.isoformat() if expires_at else None,
        "codes_url": f"/v1/coupon-batches/{batch.id}/codes.csv",
    }


def batch_csv(session: Session, *, tenant_id: str, batch_id: str) -> Iterator[str]:
    """The batch's codes as CSV lines (header first), streamed a page at a time."""
    if not repository.count_of_source(session, tenant_id, "batch", batch_id):
        raise NotFound(f"no coupon batch {batch_id!r}", code="batch_not_found")

    def lines() -> Iterator[str]:
        yield "code,starts_at,expires_at,max_uses,uses,status\r\n"
        for page in repository.codes_of_source(session, tenant_id, "batch", batch_id):
            yield "".join(
                f"{code},{starts_at.isoformat()},"
                f"{expires_at.isoformat() if expires_at else ''},"
                f"{max_uses},{uses},{status}\r\n"
                for code, starts_at, expires_at, max_uses, uses, status in page
            )

    return lines()


def _check_spec(program: CompiledProgram, spec: DiscountSpec, loc: list[str | int]) -> None:
    errors = spec_errors(spec, currency_exponent(program.currency), loc)
    if errors:
        raise ValidationFailed(str(errors[0]["msg"]), errors=errors)


# ---- what a coupon gives ---------------------------------------------------------------------


@dataclass
class Outcome:
    discount_minor: int = 0
    free_item: dict[str, Any] | None = None
    reason: str | None = None  # why it does not apply


def _dec(value: Any) -> Decimal:
    return Decimal(str(value)) if value is not None else Decimal(0)


def compute_discount(
    spec: DiscountSpec | dict[str, Any],
    cart: PreparedOrder,
    exponent: int,
    *,
    balance_minor: int | None = None,
) -> Outcome:
    """The discount of ``spec`` against a cart, in minor units: exact, never more than the
    amount it applies to, never below zero."""
    if isinstance(spec, dict):
        spec = DiscountSpec.model_validate(spec)
    subtotal = cart.subtotal_minor
    if spec.min_order is not None and subtotal < to_minor(spec.min_order, exponent):
        return Outcome(reason="min_order_not_met")
    lines = [
        line
        for line in cart.lines
        if (not spec.skus or line.context.get("sku") in spec.skus)
        and (not spec.categories or line.context.get("category") in spec.categories)
    ]
    matching = sum((to_minor(line.amount, exponent) for line in lines), 0)
    restricted = bool(spec.skus or spec.categories)
    if restricted and not lines:
        return Outcome(reason="no_matching_items")
    cap = to_minor(spec.max_amount, exponent) if spec.max_amount is not None else None
    amount = 0
    if spec.type == "discount_fixed":
        amount = min(to_minor(_dec(spec.value), exponent), matching)
    elif spec.type == "discount_percent":
        raw = Decimal(matching) * _dec(spec.value) / Decimal(100)
        amount = int(raw.quantize(Decimal(1), rounding=ROUND_HALF_UP))
    elif spec.type == "free_shipping":
        amount = to_minor(_dec(cart.context["order"]["shipping_amount"]), exponent)
    elif spec.type == "free_product":
        wanted = Decimal(spec.quantity)
        found = [line for line in cart.lines if line.context.get("sku") == spec.sku]
        if not found:
            return Outcome(free_item={"sku": spec.sku, "quantity": spec.quantity})
        left = wanted
        total = Decimal(0)
        for line in found:
            unit = line.amount / line.quantity if line.quantity else Decimal(0)
            take = min(left, line.quantity)
            total += unit * take
            left -= take
        amount = int(total.scaleb(exponent).quantize(Decimal(1), rounding=ROUND_HALF_UP))
        amount = min(amount, sum(to_minor(line.amount, exponent) for line in found))
    elif spec.type == "gift_card":
        amount = min(balance_minor or 0, cart.total_minor)
        if (balance_minor or 0) <= 0:
            return Outcome(reason="no_balance")
    if cap is not None:
        amount = min(amount, cap)
    return Outcome(discount_minor=max(amount, 0))


def _refusal(coupon: Coupon, member_id: str | None, at: datetime) -> str | None:
    if coupon.status == "void":
        return "void"
    if coupon.member_id is not None and coupon.member_id != member_id:
        return "wrong_member"
    if at < coupon.starts_at:
        return "not_yet_active"
    if coupon.expires_at is not None and at >= coupon.expires_at:
        return "expired"
    if coupon.balance_minor is None and coupon.uses >= coupon.max_uses:
        return "used_up"
    if coupon.balance_minor is not None and coupon.balance_minor <= 0:
        return "no_balance"
    return None


def _check(
    coupon: Coupon | None, member_id: str | None, cart: PreparedOrder, exponent: int
) -> Outcome:
    if coupon is None:
        return Outcome(reason="not_found")
    reason = _refusal(coupon, member_id, cart.placed_at)
    if reason is not None:
        return Outcome(reason=reason)
    return compute_discount(coupon.spec, cart, exponent, balance_minor=coupon.balance_minor)


def _result(code: str, outcome: Outcome, exponent: int) -> dict[str, Any]:
    body: dict[str, Any] = {
        "code": code,
        "valid": outcome.reason is None,
        "discount": money_str(outcome.discount_minor, exponent),
        "reason": outcome.reason,
    }
    if outcome.free_item is not None:
        body["free_item"] = outcome.free_item
    return body


def coupon_view(coupon: Coupon, exponent: int) -> dict[str, Any]:
    return {
        "code": coupon.code,
        "kind": coupon.kind,
        "member_id": coupon.member_id,
        "discount": coupon.spec,
        "starts_at": coupon.starts_at.isoformat(),
        "expires_at": coupon.expires_at.isoformat() if coupon.expires_at else None,
        "max_uses": coupon.max_uses,
        "uses": coupon.uses,
        "balance": money_str(coupon.balance_minor, exponent)
        if coupon.balance_minor is not None
        else None,
        "status": coupon.status,
        "source": {"type": coupon.source_type, "id": coupon.source_id},
    }


# ---- use cases -------------------------------------------------------------------------------


def validate_coupon(
    session: Session,
    *,
    tenant_id: str,
    program: CompiledProgram,
    code: str,
    member_id: str | None,
    cart: PreparedOrder,
) -> dict[str, Any]:
    """Would this code apply to the cart (for this member)? ``{valid, discount, reason}``."""
    code = normalize_code(code)
    exponent = currency_exponent(program.currency)
    coupon = repository.get_coupons(session, tenant_id, [code]).get(code)
    return _result(code, _check(coupon, member_id or cart.member_id, cart, exponent), exponent)


def evaluate_codes(
    session: Session, *, tenant_id: str, program: CompiledProgram, cart: PreparedOrder
) -> list[dict[str, Any]]:
    """The cart's coupon codes that are coupons here, each with what it would give (codes
    that are not coupons, such as promotion codes, are not listed)."""
    codes = [normalize_code(c) for c in _codes(cart)]
    found = repository.get_coupons(session, tenant_id, codes)
    exponent = currency_exponent(program.currency)
    return [
        _result(code, _check(found[code], cart.member_id, cart, exponent), exponent)
        for code in dict.fromkeys(codes)
        if code in found
    ]


def _codes(cart: PreparedOrder) -> list[str]:
    return [str(c) for c in cart.coupon_codes]


def _take(
    session: Session, tenant_id: str, coupon: Coupon, order_id: str, amount: int, now: datetime
) -> None:
    coupon.uses += 1
    if coupon.balance_minor is not None:
        coupon.balance_minor -= amount
        if coupon.balance_minor <= 0:
            coupon.status = "used"
    elif coupon.uses >= coupon.max_uses:
        coupon.status = "used"
    repository.save_coupon(session, coupon)
    repository.add_use(session, tenant_id, coupon.code, order_id, amount, now)


def reward_spec(reward: Reward) -> DiscountSpec:
    """What a coupon-giving catalog reward's coupon gives."""
    return DiscountSpec(
        type=reward.type,  # type: ignore[arg-type]  # one of COUPON_REWARD_TYPES
        value=reward.value,
        max_amount=reward.max_amount,
        sku=reward.sku,
        quantity=reward.quantity,
    )


def book_coupons(
    session: Session,
    *,
    tenant_id: str,
    program: CompiledProgram,
    bookings: list[Booking],
    now: datetime,
) -> None:
    """Coupons of booked orders: use the codes they carry, then issue the next-order coupons
    of the ``issue_coupon`` rules that applied (effects on each booking)."""
    _use_on_bookings(session, tenant_id=tenant_id, program=program, bookings=bookings, now=now)
    for booking in bookings:
        o = booking.order
        for key in booking.evaluation.issued:
            rule = next(r for r in program.program.rules if r.key == key)
            if rule.issue_reward is not None:
                reward = next(
                    r for r in program.program.rewards if r.key == rule.issue_reward.reward
                )
                spec, settings = reward_spec(reward), reward.coupon or CouponSettings()
            else:
                assert rule.issue_coupon is not None
                spec, settings = rule.issue_coupon.discount, rule.issue_coupon.settings
            coupon = issue_coupon(
                session,
                tenant_id=tenant_id,
                spec=spec,
                settings=settings,
                member_id=o.member_id,
                source_type="order",
                source_id=o.order_id,
                now=o.placed_at,
                currency=program.currency,
                kind="rule",
            )
            booking.coupon_effects.append(
                {
                    "type": "reward_issued",
                    "rule": key,
                    "code": coupon["code"],
                    "starts_at": coupon["starts_at"],
                    "expires_at": coupon["expires_at"],
                }
            )


def _use_on_bookings(
    session: Session,
    *,
    tenant_id: str,
    program: CompiledProgram,
    bookings: list[Booking],
    now: datetime,
) -> None:
    """Use the coupons the booked orders carry (effects ``coupon_used`` / ``coupon_rejected``
    on each booking). Codes that are not coupons are left alone; a refused coupon never stops
    the order: the shop has charged it already."""
    wanted = {
        b.order.order_id: list(dict.fromkeys(normalize_code(c) for c in _codes(b.order)))
        for b in bookings
    }
    codes = sorted({c for cs in wanted.values() for c in cs})
    if not codes:
        return
    found = repository.get_coupons(session, tenant_id, codes, lock=True)
    exponent = currency_exponent(program.currency)
    events: list[dict[str, Any]] = []
    for booking in bookings:
        for code in wanted[booking.order.order_id]:
            coupon = found.get(code)
            if coupon is None:
                continue
            outcome = _check(coupon, booking.order.member_id, booking.order, exponent)
            if outcome.reason is not None:
                booking.coupon_effects.append(
                    {"type": "coupon_rejected", "code": code, "reason": outcome.reason}
                )
                continue
            _take(session, tenant_id, coupon, booking.order.order_id, outcome.discount_minor, now)
            events.append(
                _used_event(
                    tenant_id, coupon, booking.order.order_id, booking.order.member_id,
                    outcome.discount_minor, exponent, now,
                )
            )  # fmt: skip
            effect: dict[str, Any] = {
                "type": "coupon_used",
                "code": code,
                "discount": money_str(outcome.discount_minor, exponent),
            }
            if coupon.balance_minor is not None:
                effect["balance"] = money_str(coupon.balance_minor, exponent)
            booking.coupon_effects.append(effect)
    outbox.emit_many(session, events)


def _used_event(
    tenant_id: str,
    coupon: Coupon,
    order_id: str,
    member_id: str | None,
    amount_minor: int,
    exponent: int,
    now: datetime,
) -> dict[str, Any]:
    """A ``coupon.used`` outbox row."""
    data: dict[str, Any] = {
        "code": coupon.code,
        "kind": coupon.kind,
        "order_id": order_id,
        "member_id": member_id or coupon.member_id,
        "discount": money_str(amount_minor, exponent),
    }
    if coupon.balance_minor is not None:
        data["balance"] = money_str(coupon.balance_minor, exponent)
    return outbox.event_row(tenant_id, "coupon.used", data, now)


def _give_back(session: Session, tenant_id: str, coupon: Coupon, amount: int) -> None:
    coupon.uses = max(coupon.uses - 1, 0)
    if coupon.balance_minor is not None:
        coupon.balance_minor += amount
    if coupon.status == "used":
        coupon.status = "active"
    repository.save_coupon(session, coupon)


def release_order(
    session: Session, *, tenant_id: str, program: CompiledProgram, order_id: str, now: datetime
) -> list[dict[str, Any]]:
    """Give back the coupon uses of a cancelled order (effects ``coupon_released``) and void
    the next-order coupons it earned that are still unused (``coupon_voided``)."""
    effects: list[dict[str, Any]] = []
    for issued in repository.coupons_of_source(session, tenant_id, "order", order_id):
        if issued.uses == 0 and issued.status == "active":
            issued.status = "void"
            repository.save_coupon(session, issued)
            effects.append({"type": "coupon_voided", "code": issued.code})
    uses = repository.uses_of_order(session, tenant_id, order_id)
    if not uses:
        return effects
    found = repository.get_coupons(session, tenant_id, [u.code for u in uses], lock=True)
    exponent = currency_exponent(program.currency)
    for use in uses:
        coupon = found.get(use.code)
        if coupon is None:
            continue
        _give_back(session, tenant_id, coupon, use.amount_minor)
        use.released_at = now
        effects.append(
            {
                "type": "coupon_released",
                "code": use.code,
                "discount": money_str(use.amount_minor, exponent),
            }
        )
    session.flush()
    return effects


def _locked(session: Session, tenant_id: str, code: str) -> Coupon:
    coupon = repository.get_coupons(session, tenant_id, [code], lock=True).get(code)
    if coupon is None:
        raise NotFound(f"no coupon {code!r}", code="coupon_not_found")
    return coupon


def redeem_coupon(
    session: Session,
    *,
    tenant_id: str,
    program: CompiledProgram,
    code: str,
    use: UseRequest,
    now: datetime,
) -> dict[str, Any]:
    """Mark a code used by an order the shop books elsewhere (``POST .../redeem``).

    Checks the window, the member binding and the uses left (not a cart: the shop validated
    it). A gift card takes ``amount`` (default: its whole balance, at most the balance).
    Redeeming again for the same order answers the same use.
    """
    code = normalize_code(code)
    exponent = currency_exponent(program.currency)
    coupon = _locked(session, tenant_id, code)
    existing = repository.get_use(session, tenant_id, code, use.order_id)
    if existing is not None and existing.released_at is None:
        return _use_view(coupon, existing.order_id, existing.amount_minor, exponent)
    reason = _refusal(coupon, use.member_id, now)
    if reason is not None:
        raise Conflict(f"coupon {code!r} cannot be used: {reason}", code=f"coupon_{reason}")
    amount = 0
    if use.amount is not None:
        if decimal_places(use.amount) > exponent:
            raise invalid(["body", "amount"], f"more than {exponent} decimal places")
        amount = to_minor(use.amount, exponent)
    if coupon.balance_minor is not None:
        if use.amount is None:
            amount = coupon.balance_minor
        if amount > coupon.balance_minor:
            raise Conflict(
                f"the gift card has {money_str(coupon.balance_minor, exponent)} left",
                code="coupon_insufficient_balance",
                errors=[{"loc": ["body", "amount"], "msg": "more than the balance"}],
            )
    _take(session, tenant_id, coupon, use.order_id, amount, now)
    outbox.emit_many(
        session,
        [_used_event(tenant_id, coupon, use.order_id, use.member_id, amount, exponent, now)],
    )
    return _use_view(coupon, use.order_id, amount, exponent)


def release_coupon(
    session: Session,
    *,
    tenant_id: str,
    program: CompiledProgram,
    code: str,
    order_id: str,
    now: datetime,
) -> dict[str, Any]:
    """Give back an order's use of a code (``POST .../release``); releasing twice is a no-op."""
    code = normalize_code(code)
    exponent = currency_exponent(program.currency)
    coupon = _locked(session, tenant_id, code)
    use = repository.get_use(session, tenant_id, code, order_id)
    if use is None:
        raise NotFound(
            f"order {order_id!r} has not used coupon {code!r}", code="coupon_use_not_found"
        )
    if use.released_at is None:
        _give_back(session, tenant_id, coupon, use.amount_minor)
        use.released_at = now
        session.flush()
    return {**_use_view(coupon, order_id, use.amount_minor, exponent), "released": True}


def _use_view(coupon: Coupon, order_id: str, amount_minor: int, exponent: int) -> dict[str, Any]:
    return {
        "code": coupon.code,
        "order_id": order_id,
        "amount": money_str(amount_minor, exponent),
        "coupon": coupon_view(coupon, exponent),
    }


def get_coupon(
    session: Session, *, tenant_id: str, program: CompiledProgram, code: str, limit: int = 100
) -> dict[str, Any]:
    code = normalize_code(code)
    coupon = repository.get_coupons(session, tenant_id, [code]).get(code)
    if coupon is None:
        raise NotFound(f"no coupon {code!r}", code="coupon_not_found")
    exponent = currency_exponent(program.currency)
    return {
        **coupon_view(coupon, exponent),
        "uses_history": [
            {
                "order_id": u.order_id,
                "amount": money_str(u.amount_minor, exponent),
                "used_at": u.used_at.isoformat(),
                "released_at": u.released_at.isoformat() if u.released_at else None,
            }
            for u in repository.uses_of_coupon(session, tenant_id, code, limit)
        ],
    }


def void_coupons_of(
    session: Session, *, tenant_id: str, source_type: str, source_id: str
) -> list[str]:
    """Void the coupons a source issued (a cancelled redemption). A coupon already used, even
    in part, cannot be voided: ``Conflict`` ``coupon_used``, and nothing changes."""
    issued = repository.coupons_of_source(session, tenant_id, source_type, source_id)
    used = [c.code for c in issued if c.uses > 0 or c.status == "used"]
    if used:
        raise Conflict(
            f"coupon {used[0]} has been used; the redemption can no longer be cancelled",
            code="coupon_used",
        )
    voided: list[str] = []
    for coupon in issued:
        if coupon.status != "void":
            coupon.status = "void"
            repository.save_coupon(session, coupon)
            voided.append(coupon.code)
    return voided
