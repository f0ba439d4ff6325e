"""The earning engine: pure computation of what one order or event earns (DESIGN.md §4).

No I/O here. Rule usage (limits, budgets) comes in through ``UsageBook`` so the same code
serves a booking, a batch import and a dry run.

Per wallet, for one order:
1. rules run by priority then document order; a rule applies when its event matches, its
   campaign window contains ``order.placed_at``, its wallet takes the order's brand (wallets
   with ``brands``), ``when`` holds, its limits allow it and, with an ``items`` filter, at least
   one line matches; ``stop`` on an applied rule ends evaluation;
2. per line, ``per_amount × item.amount`` and ``per_quantity × item.quantity`` per earn rule;
3. line multipliers (``multiply`` with ``items``) scale matching lines; order multipliers
   (``multiply`` without ``items``), the tier's and the paid plan's ``earn_multiplier`` scale
   every line;
4. ``fixed`` and ``percent`` amounts are added after multiplication;
5. ``cap_per_order`` and budgets cap each rule, then the wallet total is rounded once to the
   wallet precision and split back over the rules by largest remainder.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from allegiance.experiment.assignment import allowed
from allegiance.kit.clock import period_key
from allegiance.kit.expression import Scope
from allegiance.kit.money import round_to_minor
from allegiance.program.compiled import CompiledProgram, CompiledRule

ZERO = Decimal(0)
ONE = Decimal(1)
TEN = Decimal(10)
HUNDRED = Decimal(100)
UNBUDGETED = 1 << 62  # what a rule without a budget may still give (no cap in practice)


class Line:
    """One order line: what was paid for it, how many, and the item as CEL sees it.

    The CEL view is built on first use (``build``): most programs' rules never look at it,
    and an import prepares tens of thousands of lines.
    """

    __slots__ = ("_build", "_context", "amount", "quantity")

    def __init__(
        self,
        amount: Decimal,
        quantity: Decimal,
        context: dict[str, Any] | None = None,
        build: Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        if context is None and build is None:
            raise ValueError("a line needs its context or a way to build it")
        self.amount = amount
        self.quantity = quantity
        self._context = context
        self._build = build

    @property
    def context(self) -> dict[str, Any]:
        """The item as CEL sees it."""
        context = self._context
        if context is None:
            assert self._build is not None
            context = self._context = self._build()
            self._build = None
        return context


@dataclass
class UsageBook:
    """Counters of rule use: {(scope, member_id or '', period_key): [count, amount_minor]}."""

    counters: dict[tuple[str, str, str], list[int]] = field(default_factory=dict)
    changes: dict[tuple[str, str, str], list[int]] = field(default_factory=dict)

    def get(self, scope: str, member_id: str, period: str) -> tuple[int, int]:
        value = self.counters.get((scope, member_id, period))
        return (value[0], value[1]) if value else (0, 0)

    def add(self, scope: str, member_id: str, period: str, count: int, amount: int) -> None:
        for book in (self.counters, self.changes):
            entry = book.setdefault((scope, member_id, period), [0, 0])
            entry[0] += count
            entry[1] += amount


@dataclass
class Share:
    rule: str
    wallet: str
    kind: str  # earn | multiply
    amount_minor: int = 0
    factor: Decimal | None = None


@dataclass
class Evaluation:
    applied: list[str] = field(default_factory=list)
    shares: list[Share] = field(default_factory=list)  # earn shares with amounts (minor units)
    multipliers: list[Share] = field(default_factory=list)
    issued: list[str] = field(default_factory=list)  # applied issue_coupon rules
    totals_minor: dict[str, int] = field(default_factory=dict)


def usage_keys(
    program: CompiledProgram, rules: tuple[CompiledRule, ...], member_id: str, at: datetime
) -> list[tuple[str, str, str]]:
    """Counter rows a booking of this member at ``at`` may read (to load and lock them)."""
    keys: list[tuple[str, str, str]] = []
    for c in rules:
        scope = f"rule:{c.rule.key}"
        limit = c.rule.limit
        if limit and limit.per_member:
            keys.append((scope, member_id, period_key(limit.period, at, program.tz)))
        if (limit and limit.total) or c.rule.budget:
            keys.append((scope, "", "all"))
        if c.campaign and c.campaign.budget:
            keys.append((f"campaign:{c.campaign.key}", "", "all"))
    return keys


def _window_ok(c: CompiledRule, at: datetime) -> bool:
    for starts, ends in (
        (c.rule.starts_at, c.rule.ends_at),
        (c.campaign.starts_at, c.campaign.ends_at) if c.campaign else (None, None),
    ):
        if starts is not None and at < _aware(starts):
            return False
        if ends is not None and at >= _aware(ends):
            return False
    return True


def _aware(value: datetime) -> datetime:
    from allegiance.kit.clock import as_utc

    return as_utc(value)


def _limits_ok(
    program: CompiledProgram, c: CompiledRule, usage: UsageBook, member_id: str, at: datetime
) -> bool:
    limit = c.rule.limit
    if limit is None:
        return True
    if limit.per_member:
        used, _ = usage.get(c.counter, member_id, period_key(limit.period, at, program.tz))
        if used >= limit.per_member:
            return False
    if limit.total:
        used, _ = usage.get(c.counter, "", "all")
        if used >= limit.total:
            return False
    return True


def evaluate(
    program: CompiledProgram,
    *,
    event_type: str,
    context: dict[str, Any],
    lines: list[Line],
    member_id: str,
    at: datetime,
    usage: UsageBook,
    tier_multiplier: Decimal = ONE,
    tier_key: str | None = None,
    event_amount: Decimal | None = None,
    plan_multiplier: Decimal = ONE,
    plan_key: str | None = None,
) -> Evaluation:
    """Compute what the order (``lines``) or event earns; records usage in ``usage``.

    ``context`` may be empty when no rule of the event reads it
    (``CompiledProgram.context_events``). Runs once per order of an import, so the common
    case (rules without conditions, limits or budgets) does no work it does not need; the
    arithmetic is the same Decimal operations in the same order either way.
    """
    result = Evaluation()
    rules = program.rules_by_event.get(event_type, ())
    n = len(lines)
    scope: Scope | None = None  # converted for CEL on the first condition only
    order = context.get("order") if event_type == "order.completed" else None
    line_scopes: list[Scope | None] = []
    # per wallet: earn rule -> per-line base amounts
    line_points: dict[str, dict[str, list[Decimal]]] = {}
    line_factor: dict[str, list[Decimal]] = {}
    order_factor: dict[str, Decimal] = {}
    flat: dict[str, dict[str, Decimal]] = {}  # fixed and percent, per rule
    applied: list[CompiledRule] = []
    for c in rules:
        if c.windowed and not _window_ok(c, at):
            continue
        if c.brands is not None and order is not None and order.get("brand") not in c.brands:
            continue  # a brand-scoped wallet takes only its brands' orders
        if c.experiments and not all(allowed(x, context) for x in c.experiments):
            continue  # tied to experiment variants the member is not in (or the holdout)
        if c.when is not None:
            if scope is None:
                scope = Scope(context)
            if not scope.test(c.when):
                continue
        rule = c.rule
        if rule.limit is not None and not _limits_ok(program, c, usage, member_id, at):
            continue
        matches: list[int] | None = None  # None: every line
        if c.items is not None:
            if scope is None:
                scope = Scope(context)
            if not line_scopes:
                line_scopes = [None] * n
            matches = []
            for i in range(n):
                line_scope = line_scopes[i]
                if line_scope is None:
                    line_scope = line_scopes[i] = scope.child(item=lines[i].context)
                if line_scope.test(c.items):
                    matches.append(i)
            if not matches:
                continue
        wallet = c.wallet
        if rule.issue_coupon is not None or rule.issue_reward is not None:
            result.issued.append(rule.key)
        elif rule.multiply is not None:
            factor = rule.multiply.factor
            if matches is not None:
                factors = line_factor.get(wallet)
                if factors is None:
                    factors = line_factor[wallet] = [ONE] * n
                for i in matches:
                    factors[i] *= factor
            else:
                order_factor[wallet] = order_factor.get(wallet, ONE) * factor
            result.multipliers.append(Share(rule.key, wallet, "multiply", factor=factor))
        else:
            earn = rule.earn
            assert earn is not None
            if earn.per_amount is not None or earn.per_quantity is not None:
                per_amount, per_quantity = earn.per_amount, earn.per_quantity
                if matches is None:
                    if per_amount is not None:
                        per = [per_amount * line.amount for line in lines]
                    else:
                        assert per_quantity is not None
                        per = [per_quantity * line.quantity for line in lines]
                else:
                    per = [ZERO] * n
                    for i in matches:
                        if per_amount is not None:
                            per[i] = per_amount * lines[i].amount
                        else:
                            assert per_quantity is not None
                            per[i] = per_quantity * lines[i].quantity
                by_rule = line_points.get(wallet)
                if by_rule is None:
                    by_rule = line_points[wallet] = {}
                by_rule[rule.key] = per
            elif earn.fixed is not None:
                flat.setdefault(wallet, {})[rule.key] = earn.fixed
            elif earn.percent is not None:
                if lines:
                    if matches is None:
                        base = sum((line.amount for line in lines), ZERO)
                    else:
                        base = sum((lines[i].amount for i in matches), ZERO)
                else:
                    base = event_amount or ZERO
                flat.setdefault(wallet, {})[rule.key] = earn.percent * base / HUNDRED
        applied.append(c)
        if rule.stop:
            break
    # the tier's and the paid plan's multipliers scale every points wallet's per-line points
    for label, factor in (
        (f"tier:{tier_key}" if tier_key else None, tier_multiplier),
        (f"plan:{plan_key}" if plan_key else None, plan_multiplier),
    ):
        if label is None or factor == 1:
            continue
        for wallet_key, wallet_config in program.program.wallets.items():
            if wallet_config.kind == "points":
                order_factor[wallet_key] = order_factor.get(wallet_key, ONE) * factor
        result.multipliers.append(
            Share(label, program.program.default_wallet, "multiply", factor=factor)
        )
    if applied and (line_points or flat):
        _share_out(program, result, applied, line_points, line_factor, order_factor, flat, n, usage)
    for c in applied:
        limit = c.rule.limit
        if limit is None:
            continue
        if limit.per_member:
            usage.add(c.counter, member_id, period_key(limit.period, at, program.tz), 1, 0)
        if limit.total:
            usage.add(c.counter, "", "all", 1, 0)
    result.applied = [c.rule.key for c in applied]
    return result


def _share_out(
    program: CompiledProgram,
    result: Evaluation,
    applied: list[CompiledRule],
    line_points: dict[str, dict[str, list[Decimal]]],
    line_factor: dict[str, list[Decimal]],
    order_factor: dict[str, Decimal],
    flat: dict[str, dict[str, Decimal]],
    n: int,
    usage: UsageBook,
) -> None:
    """Multiply, cap, round once per wallet and split the points over the rules (steps 3-5)."""
    by_key = {c.rule.key: c for c in applied}
    exact: dict[str, dict[str, Decimal]] = {}
    for wallet, lines_by_rule in line_points.items():
        factors = line_factor.get(wallet)
        g = order_factor.get(wallet, ONE)
        exact_by_rule = exact[wallet] = {}
        for key, per in lines_by_rule.items():
            if factors is None:  # every line's factor is 1: per[i] * 1 == per[i]
                exact_by_rule[key] = sum(per, ZERO) * g
            else:
                exact_by_rule[key] = sum((per[i] * factors[i] for i in range(n)), ZERO) * g
    for wallet, flat_by_rule in flat.items():
        exact_by_rule = exact.setdefault(wallet, {})
        for key, amount_exact in flat_by_rule.items():
            exact_by_rule[key] = exact_by_rule.get(key, ZERO) + amount_exact
    for wallet, exact_by_rule in exact.items():
        w = program.program.wallets[wallet]
        scale = TEN**w.precision
        capped: dict[str, Decimal] = {}
        ordered = (
            sorted(exact_by_rule, key=lambda k: (by_key[k].rule.priority, by_key[k].index))
            if len(exact_by_rule) > 1
            else list(exact_by_rule)
        )
        for key in ordered:
            value: Decimal = exact_by_rule[key]
            c = by_key[key]
            if c.rule.cap_per_order is not None:
                value = min(value, c.rule.cap_per_order)
            if c.budgeted:
                value = _apply_budgets(program, c, value, usage, scale)
            capped[key] = value if value > ZERO else ZERO
        total = sum(capped.values(), ZERO)
        total_minor = round_to_minor(total, w.precision, w.rounding)
        allocation = _allocate(capped, total_minor, scale)
        wallet_total = 0
        for key, amount in allocation.items():
            c = by_key[key]
            # rounding may add a unit; a budget is never exceeded
            amount = min(amount, _budget_left_minor(c, usage, w.precision))
            if amount <= 0:
                continue
            if c.budgeted:
                _record_budget(c, amount, usage)
            result.shares.append(Share(key, wallet, "earn", amount_minor=amount))
            wallet_total += amount
        result.totals_minor[wallet] = wallet_total


def _apply_budgets(
    program: CompiledProgram, c: CompiledRule, value: Decimal, usage: UsageBook, scale: Decimal
) -> Decimal:
    if c.rule.budget is not None:
        _, used = usage.get(c.counter, "", "all")
        value = min(value, c.rule.budget - Decimal(used) / scale)
    if c.campaign is not None and c.campaign.budget is not None:
        assert c.campaign_counter is not None
        _, used = usage.get(c.campaign_counter, "", "all")
        value = min(value, c.campaign.budget - Decimal(used) / scale)
    return value


def _budget_left_minor(c: CompiledRule, usage: UsageBook, precision: int) -> int:
    left = UNBUDGETED
    if not c.budgeted:
        return left
    if c.rule.budget is not None:
        _, used = usage.get(c.counter, "", "all")
        left = min(left, int(c.rule.budget.scaleb(precision)) - used)
    if c.campaign is not None and c.campaign.budget is not None:
        assert c.campaign_counter is not None
        _, used = usage.get(c.campaign_counter, "", "all")
        left = min(left, int(c.campaign.budget.scaleb(precision)) - used)
    return left


def _record_budget(c: CompiledRule, amount_minor: int, usage: UsageBook) -> None:
    if c.rule.budget is not None:
        usage.add(c.counter, "", "all", 0, amount_minor)
    if c.campaign is not None and c.campaign.budget is not None:
        assert c.campaign_counter is not None
        usage.add(c.campaign_counter, "", "all", 0, amount_minor)


def _allocate(values: dict[str, Decimal], total_minor: int, scale: Decimal) -> dict[str, int]:
    """Split a rounded total over rules: floors first, the rest by largest remainder."""
    if not values:
        return {}
    if len(values) == 1:
        key = next(iter(values))
        return {key: total_minor} if total_minor > 0 else {}
    scaled = {k: v * scale for k, v in values.items()}
    floors = {k: int(v) for k, v in scaled.items()}
    rest = total_minor - sum(floors.values())
    order = sorted(scaled, key=lambda k: (-(scaled[k] - floors[k]), k))
    i = 0
    while rest > 0 and order:
        floors[order[i % len(order)]] += 1
        rest -= 1
        i += 1
    while rest < 0:
        for k in sorted(floors, key=lambda k: -floors[k]):
            if rest == 0:
                break
            if floors[k] > 0:
                floors[k] -= 1
                rest += 1
    return {k: v for k, v in floors.items() if v > 0}
