"""Automatic cart promotions: pure computation, no I/O (docs/program.md#promotions).

Amounts are integer minor units of the program currency. Every promotion is computed on the
cart's undiscounted line amounts (``unit_price × quantity``, else ``amount``) less what the
promotions applied before it took, so no line and no order goes below zero.

1. A promotion is a candidate when its window contains ``order.placed_at``, its ``code`` (if
   any) is among the cart's coupon codes (case-insensitive), ``when`` holds, its limits allow
   it and, with an ``items`` filter, at least one line matches.
2. Candidates form three groups: money off the items (percent, fixed, steps, buy X get Y),
   free items, free shipping. Within a group the exclusive candidates are each computed
   alone and the one best for the customer applies (ties: priority, then document order);
   then the stackable ones apply in priority order on what is left.
3. A discount is rounded once, half up, to the minor unit, capped by ``max_amount`` and by
   what is left of its lines, and allocated to the lines in proportion to what is left of
   them (largest remainder), so the line amounts sum exactly to the discount.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from allegiance.earning.engine import UsageBook
from allegiance.experiment.assignment import allowed
from allegiance.kit.clock import as_utc, period_key
from allegiance.kit.expression import Scope, compile_expression
from allegiance.kit.money import to_minor
from allegiance.program.schema import Program, Promotion

HUNDRED = Decimal(100)
ITEM_TYPES = frozenset({"discount_percent", "discount_fixed", "discount_steps", "buy_x_get_y"})
GROUPS = ("items", "free_item", "shipping")


@dataclass
class CartLine:
    index: int
    sku: str
    quantity: Decimal
    base_minor: int  # undiscounted line amount
    context: dict[str, Any]  # the item as CEL sees it

    @property
    def unit_minor(self) -> Decimal:
        if self.quantity <= 0:
            return Decimal(self.base_minor)
        return Decimal(self.base_minor) / self.quantity


@dataclass
class Applied:
    promotion: Promotion
    target: str  # order | items | cheapest | shipping | free_item
    amount_minor: int = 0
    lines: dict[int, int] = field(default_factory=dict)
    free_items: list[tuple[str, Decimal, str | None]] = field(default_factory=list)
    usage: list[tuple[str, str, str]] = field(default_factory=list)  # counters it uses


@dataclass
class Outcome:
    applied: list[Applied] = field(default_factory=list)
    codes: list[dict[str, Any]] = field(default_factory=list)
    subtotal_minor: int = 0  # undiscounted
    items_discount_minor: int = 0
    shipping_discount_minor: int = 0

    @property
    def discount_minor(self) -> int:
        return self.items_discount_minor + self.shipping_discount_minor


@dataclass
class _State:
    remaining: list[int]
    shipping: int

    def copy(self) -> _State:
        return _State(list(self.remaining), self.shipping)


def group_of(promotion: Promotion) -> str:
    if promotion.type in ITEM_TYPES:
        return "items"
    return "shipping" if promotion.type == "free_shipping" else "free_item"


def usage_keys(
    program: Program, member_id: str, at: datetime, tz: ZoneInfo
) -> list[tuple[str, str, str]]:
    """Counter rows promotions with limits may read for this member at ``at``."""
    keys: list[tuple[str, str, str]] = []
    for p in program.promotions:
        keys.extend(_counters(p, member_id, at, tz))
    return keys


def _counters(
    p: Promotion, member_id: str, at: datetime, tz: ZoneInfo
) -> list[tuple[str, str, str]]:
    limit = p.limit
    if limit is None:
        return []
    keys: list[tuple[str, str, str]] = []
    if limit.per_member and member_id:
        keys.append((f"promotion:{p.key}", member_id, period_key(limit.period, at, tz)))
    if limit.total:
        keys.append((f"promotion:{p.key}", "", "all"))
    return keys


def evaluate_promotions(
    program: Program,
    *,
    lines: list[CartLine],
    shipping_minor: int,
    coupon_codes: list[str],
    context: dict[str, Any],
    member_id: str,
    at: datetime,
    usage: UsageBook,
    tz: ZoneInfo,
    exponent: int,
) -> Outcome:
    """What the promotions give this cart. ``usage`` is only read (see ``record_usage``)."""
    outcome = Outcome(subtotal_minor=sum(line.base_minor for line in lines))
    in_cart = {c.strip().lower() for c in coupon_codes}
    scope = Scope(context)
    line_scopes: dict[int, Scope] = {}
    reasons: dict[str, str] = {}
    candidates: dict[str, list[tuple[Promotion, list[int]]]] = {g: [] for g in GROUPS}
    ordered = sorted(enumerate(program.promotions), key=lambda e: (e[1].priority, e[0]))
    for _, p in ordered:
        if p.code is not None and p.code.strip().lower() not in in_cart:
            continue
        reason, matches = _eligible(p, lines, scope, line_scopes, usage, member_id, at, tz)
        if reason is not None:
            reasons[p.key] = reason
            continue
        candidates[group_of(p)].append((p, matches))
    state = _State([line.base_minor for line in lines], shipping_minor)
    for group in GROUPS:
        exclusive = [c for c in candidates[group] if c[0].stacking == "exclusive"]
        best: Applied | None = None
        tried: list[tuple[Promotion, Applied]] = []
        for p, matches in exclusive:
            trial = _compute(p, matches, lines, state.copy(), exponent)
            tried.append((p, trial))
            # free items are not comparable in money: the first exclusive one applies
            if best is None or (group != "free_item" and trial.amount_minor > best.amount_minor):
                best = trial
        if best is not None and _gives(best):
            _apply(best, state)
            outcome.applied.append(best)
        for p, trial in tried:
            if best is not None and trial is best and _gives(best):
                continue
            if not _gives(trial):
                reasons[p.key] = "nothing in the cart for this promotion to discount"
            else:
                assert best is not None
                reasons[p.key] = (
                    f"exclusive: promotion {best.promotion.key!r} gives the customer at least "
                    "as much"
                )
        for p, matches in candidates[group]:
            if p.stacking != "stackable":
                continue
            applied = _compute(p, matches, lines, state.copy(), exponent)
            if _gives(applied):
                _apply(applied, state)
                outcome.applied.append(applied)
            else:
                reasons[p.key] = "nothing left in the cart for this promotion to discount"
    for applied in outcome.applied:
        applied.usage = _counters(applied.promotion, member_id, at, tz)
        if applied.target == "shipping":
            outcome.shipping_discount_minor += applied.amount_minor
        else:
            outcome.items_discount_minor += applied.amount_minor
    outcome.codes = _codes(program, coupon_codes, outcome, reasons)
    return outcome


def record_usage(usage: UsageBook, outcome: Outcome, sign: int = 1) -> None:
    """Count (or, with ``sign=-1``, give back) one use of every applied promotion."""
    for applied in outcome.applied:
        for scope, member_id, period in applied.usage:
            usage.add(scope, member_id, period, sign, 0)


def _gives(applied: Applied) -> bool:
    return applied.amount_minor > 0 or bool(applied.free_items)


def _apply(applied: Applied, state: _State) -> None:
    if applied.target == "shipping":
        state.shipping -= applied.amount_minor
    for index, amount in applied.lines.items():
        state.remaining[index] -= amount


def _eligible(
    p: Promotion,
    lines: list[CartLine],
    scope: Scope,
    line_scopes: dict[int, Scope],
    usage: UsageBook,
    member_id: str,
    at: datetime,
    tz: ZoneInfo,
) -> tuple[str | None, list[int]]:
    if p.starts_at is not None and at < as_utc(p.starts_at):
        return "the promotion has not started", []
    if p.ends_at is not None and at >= as_utc(p.ends_at):
        return "the promotion has ended", []
    if p.experiment is not None and not allowed(p.experiment, scope.values):
        return "the promotion is part of an experiment variant the member is not in", []
    if p.when is not None and not scope.test(compile_expression(p.when)):
        return "the cart does not meet the promotion's conditions", []
    if p.limit is not None:
        scope_key = f"promotion:{p.key}"
        if p.limit.per_member:
            if not member_id:
                return "the promotion is limited per member and the cart has no member", []
            used, _ = usage.get(scope_key, member_id, period_key(p.limit.period, at, tz))
            if used >= p.limit.per_member:
                return "the member has used this promotion as often as allowed", []
        if p.limit.total:
            used, _ = usage.get(scope_key, "", "all")
            if used >= p.limit.total:
                return "the promotion has been used as often as allowed", []
    matches = [line.index for line in lines]
    if p.items is not None:
        expression = compile_expression(p.items)
        matches = []
        for line in lines:
            line_scope = line_scopes.get(line.index)
            if line_scope is None:
                line_scope = line_scopes[line.index] = scope.child(item=line.context)
            if line_scope.test(expression):
                matches.append(line.index)
        if not matches:
            return "no item in the cart matches the promotion", []
    return None, matches


def _half_up(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _compute(
    p: Promotion, matches: list[int], lines: list[CartLine], state: _State, exponent: int
) -> Applied:
    """The promotion alone on ``state`` (what is left of the lines and of shipping)."""
    cap = to_minor(p.max_amount, exponent) if p.max_amount is not None else None
    if p.type == "free_shipping":
        amount = state.shipping if cap is None else min(state.shipping, cap)
        return Applied(p, "shipping", amount_minor=max(amount, 0))
    if p.type == "free_item":
        return _free_items(p, lines, state, cap, exponent)
    target = p.target or ("items" if p.items is not None else "order")
    indexes = [line.index for line in lines] if target == "order" else matches
    left = {i: max(state.remaining[i], 0) for i in indexes}
    weights: dict[int, Decimal] = {i: Decimal(v) for i, v in left.items()}
    if target == "cheapest" and indexes:
        cheapest = min(indexes, key=lambda i: (lines[i].unit_minor, i))
        unit = Decimal(left[cheapest])
        if lines[cheapest].quantity >= 1:  # one unit; a fractional line is taken whole
            unit = min(lines[cheapest].unit_minor, unit)
        left = {cheapest: left[cheapest]}
        weights = {cheapest: unit}
    pool = sum(weights.values(), Decimal(0))
    if p.type == "discount_percent":
        assert p.value is not None
        exact = pool * p.value / HUNDRED
    elif p.type == "discount_fixed":
        assert p.value is not None
        exact = min(Decimal(to_minor(p.value, exponent)), pool)
    elif p.type == "discount_steps":
        assert p.steps is not None
        before = sum(lines[i].base_minor for i in indexes)  # the amount before any discount
        percent = Decimal(0)
        for step in p.steps:
            if before >= to_minor(step.min_amount, exponent):
                percent = step.percent
        exact = pool * percent / HUNDRED
    else:  # buy_x_get_y
        weights = _free_units(p, indexes, lines, left)
        exact = sum(weights.values(), Decimal(0))
    amount = min(_half_up(exact), sum(left.values()))
    if cap is not None:
        amount = min(amount, cap)
    amount = max(amount, 0)
    return Applied(p, target, amount_minor=amount, lines=_allocate(amount, weights, left))


def _free_units(
    p: Promotion, indexes: list[int], lines: list[CartLine], left: dict[int, int]
) -> dict[int, Decimal]:
    """Buy X get Y: of every X+Y matching whole units, the Y cheapest are discounted."""
    assert p.buy is not None and p.get is not None
    percent = p.value if p.value is not None else HUNDRED
    units: list[tuple[Decimal, int]] = []
    for i in indexes:
        whole = int(lines[i].quantity.to_integral_value(rounding=ROUND_FLOOR))
        units.extend((lines[i].unit_minor, i) for _ in range(min(whole, 10_000)))
    free = len(units) // (p.buy + p.get) * p.get
    weights: dict[int, Decimal] = {}
    for unit, i in sorted(units)[:free]:
        weights[i] = weights.get(i, Decimal(0)) + unit * percent / HUNDRED
    return {i: min(w, Decimal(left[i])) for i, w in weights.items()}


def _free_items(
    p: Promotion, lines: list[CartLine], state: _State, cap: int | None, exponent: int
) -> Applied:
    """Free products: units already in the cart (same SKU) are discounted, the rest added."""
    applied = Applied(p, "free_item")
    assert p.free_items is not None
    for entry in p.free_items:
        wanted = entry.quantity
        for line in lines:
            if wanted <= 0 or line.sku != entry.sku or line.quantity <= 0:
                continue
            left = max(state.remaining[line.index] - applied.lines.get(line.index, 0), 0)
            units = min(wanted, line.quantity)
            amount = min(_half_up(line.unit_minor * units), left)
            if cap is not None:
                amount = min(amount, cap - applied.amount_minor)
            if amount > 0:
                applied.lines[line.index] = applied.lines.get(line.index, 0) + amount
                applied.amount_minor += amount
            wanted -= units
        if wanted > 0:
            applied.free_items.append((entry.sku, wanted, entry.name))
    return applied


def _allocate(total: int, weights: dict[int, Decimal], caps: dict[int, int]) -> dict[int, int]:
    """Split ``total`` over lines by weight (largest remainder), never above a line's cap."""
    if total <= 0:
        return {}
    weight_sum = sum(weights.values(), Decimal(0))
    if weight_sum <= 0:
        weights = {i: Decimal(c) for i, c in caps.items()}
        weight_sum = sum(weights.values(), Decimal(0))
        if weight_sum <= 0:
            return {}
    shares: dict[int, int] = {}
    fractions: list[tuple[Decimal, int]] = []
    for i, w in sorted(weights.items()):
        exact = Decimal(total) * w / weight_sum
        whole = int(exact.to_integral_value(rounding=ROUND_FLOOR))
        shares[i] = min(whole, caps[i])
        fractions.append((exact - whole, i))
    left = total - sum(shares.values())
    for _, i in sorted(fractions, key=lambda f: (-f[0], f[1])):
        if left <= 0:
            break
        if shares[i] < caps[i]:
            shares[i] += 1
            left -= 1
    for i in sorted(caps):  # what a capped line could not take goes to lines with room
        if left <= 0:
            break
        room = caps[i] - shares.get(i, 0)
        if room > 0:
            take = min(room, left)
            shares[i] = shares.get(i, 0) + take
            left -= take
    return {i: v for i, v in sorted(shares.items()) if v > 0}


def _codes(
    program: Program, coupon_codes: list[str], outcome: Outcome, reasons: dict[str, str]
) -> list[dict[str, Any]]:
    applied = {a.promotion.key for a in outcome.applied}
    found: list[dict[str, Any]] = []
    seen: set[str] = set()
    for code in coupon_codes:
        norm = code.strip().lower()
        if norm in seen:
            continue
        seen.add(norm)
        holders = [p for p in program.promotions if p.code and p.code.strip().lower() == norm]
        if not holders:
            found.append(
                {"code": code, "status": "unknown", "reason": "no promotion has this code"}
            )
        elif any(p.key in applied for p in holders):
            found.append({"code": code, "status": "applied", "reason": None})
        else:
            reason = next(
                (reasons[p.key] for p in holders if p.key in reasons),
                "the promotion does not apply to this cart",
            )
            found.append({"code": code, "status": "rejected", "reason": reason})
    return found
