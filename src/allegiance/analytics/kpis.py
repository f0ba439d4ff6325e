"""Program KPIs over a period, as time series, and first-order cohorts (docs/analytics.md).

Every figure is an aggregate computed in the database (analytics.repository). A KPI whose
denominator is zero is ``null``, never 0. Periods are local dates of the program timezone,
both ends included. Filters: ``brand`` (orders of one brand), ``tier`` (members holding it now),
``segment`` (members in it now)
and ``members`` (any SELECT of member ids, e.g. a segment), which AND together.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from functools import cached_property
from typing import Any, Literal

from sqlalchemy.orm import Session

from allegiance.analytics import activity, repository
from allegiance.analytics.repository import MemberFilter, OrderStats
from allegiance.analytics.settlement import check_dates, period_bounds
from allegiance.config import get_settings
from allegiance.errors import invalid
from allegiance.kit.clock import as_utc, zone
from allegiance.kit.money import currency_exponent, money_str, number
from allegiance.program.schema import Program

Interval = Literal["day", "week", "month"]
# the history the expected breakage ratio is estimated from (recent behaviour, bounded cost)
HISTORY_DAYS = 365


@dataclass(frozen=True)
class Scope:
    """What a KPI query measures: a tenant's program, one wallet, optional filters."""

    tenant_id: str
    program: Program
    wallet: str
    brand: str | None = None
    tier: str | None = None
    members: MemberFilter = None
    segment: str | None = None

    @property
    def exponent(self) -> int:
        return currency_exponent(self.program.currency)

    @property
    def precision(self) -> int:
        return self.program.wallets[self.wallet].precision

    @property
    def point_value(self) -> Decimal | None:
        return self.program.wallets[self.wallet].point_value


def resolve_scope(
    program: Program,
    *,
    tenant_id: str,
    brand: str | None = None,
    tier: str | None = None,
    wallet: str | None = None,
    members: MemberFilter = None,
    segment: str | None = None,
) -> Scope:
    """Check the filters against the program (422 with the query parameter as ``loc``) and
    pick the wallet: the one asked for, else the brand's own points wallet when the brand has
    exactly one, else the program's default points wallet."""
    if brand is not None and program.brands and all(b.key != brand for b in program.brands):
        known = ", ".join(b.key for b in program.brands)
        raise invalid(["query", "brand"], f"unknown brand {brand!r}; the program has {known}")
    if tier is not None:
        levels = [level.key for level in program.tiers.levels] if program.tiers else []
        if tier not in levels:
            raise invalid(
                ["query", "tier"],
                f"unknown tier {tier!r}; the program has {', '.join(levels) or 'no tiers'}",
            )
    if wallet is not None and wallet not in program.wallets:
        raise invalid(
            ["query", "wallet"],
            f"unknown wallet {wallet!r}; the program has {', '.join(program.wallets)}",
        )
    if segment is not None:
        keys = [s.key for s in program.segments]
        if segment not in keys:
            raise invalid(
                ["query", "segment"],
                f"unknown segment {segment!r}; the program has {', '.join(keys) or 'no segments'}",
            )
        # members in the segment now (docs/segments.md), like the tier filter
        in_segment = repository.segment_members(tenant_id, segment)
        members = (
            in_segment
            if members is None
            else in_segment.where(in_segment.selected_columns[0].in_(members))
        )
    chosen = wallet or default_wallet(program, brand)
    tier_filter: MemberFilter = None
    if tier is not None:
        assert program.tiers is not None
        base = program.tiers.levels[0]
        tier_filter = repository.tier_members(
            tenant_id, tier, base.key if base.threshold == 0 else None
        )
    combined = members
    if tier_filter is not None:
        combined = (
            tier_filter
            if members is None
            else tier_filter.where(tier_filter.selected_columns[0].in_(members))
        )
    return Scope(tenant_id, program, chosen, brand, tier, combined, segment)


def default_wallet(program: Program, brand: str | None = None) -> str:
    """``points`` when declared, else the first wallet of kind points, else the first wallet;
    with a brand that has exactly one wallet of its own, that one."""
    if brand is not None:
        own = [k for k, w in program.wallets.items() if w.brands and brand in w.brands]
        if len(own) == 1:
            return own[0]
    if "points" in program.wallets:
        return "points"
    kinds = [k for k, w in program.wallets.items() if w.kind == "points"]
    return kinds[0] if kinds else next(iter(program.wallets))


def _midnight(program: Program, day: date) -> datetime:
    return as_utc(datetime.combine(day, time(0), tzinfo=zone(program.timezone)))


@dataclass
class Period:
    """One period of one scope; each group of queries runs at most once, when first needed."""

    session: Session
    scope: Scope
    date_from: date
    date_to: date
    start: datetime = field(init=False)
    end: datetime = field(init=False)

    def __post_init__(self) -> None:
        self.start, self.end = period_bounds(self.scope.program, self.date_from, self.date_to)

    @cached_property
    def flows(self) -> dict[tuple[str, str], int]:
        s = self.scope
        return repository.point_flows(self.session, s.tenant_id, self.start, self.end, s.members)

    def flow(self, code: str, wallet: str | None = None) -> int:
        return self.flows.get((wallet or self.scope.wallet, code), 0)

    @property
    def issued(self) -> int:
        return self.flow("earn") - self.flow("reverse") + self.flow("adjust")

    @property
    def redeemed(self) -> int:
        return self.flow("spend") + self.flow("redeem") - self.flow("return")

    @property
    def expired(self) -> int:
        return self.flow("expire")

    @cached_property
    def outstanding(self) -> int:
        """Active points held at the end of the period (today's balance minus what posted
        transfers changed since)."""
        s = self.scope
        now_balance = repository.holder_balance(self.session, s.tenant_id, s.wallet, s.members)
        since = repository.holder_change_since(
            self.session, s.tenant_id, s.wallet, self.end, s.members
        )
        return now_balance - since

    @cached_property
    def history(self) -> dict[tuple[str, str], int]:
        """Redeemed and expired points of the year (365 days) up to the period's end."""
        s = self.scope
        return repository.point_flows(
            self.session,
            s.tenant_id,
            self.end - timedelta(days=HISTORY_DAYS),
            self.end,
            s.members,
            codes=("spend", "redeem", "return", "expire"),
        )

    @property
    def breakage_ratio(self) -> Decimal | None:
        """Of the points that left wallets in the year up to the period's end, the share that
        expired rather than being redeemed: the estimate of what outstanding points will do."""
        w = self.scope.wallet
        life = self.history
        redeemed = life.get((w, "spend"), 0) + life.get((w, "redeem"), 0)
        redeemed -= life.get((w, "return"), 0)
        expired = life.get((w, "expire"), 0)
        if redeemed + expired <= 0:
            return None
        return Decimal(expired) / Decimal(redeemed + expired)

    @cached_property
    def orders(self) -> OrderStats:
        s = self.scope
        return repository.order_stats(
            self.session, s.tenant_id, self.start, self.end, s.brand, s.members
        )

    @cached_property
    def customers_at_start(self) -> int:
        """Customers of the period of equal length just before this one (S)."""
        s = self.scope
        length = self.end - self.start
        return repository.customers_in(
            self.session, s.tenant_id, self.start - length, self.start, s.brand, s.members
        )

    @cached_property
    def activation(self) -> tuple[int, int]:
        s = self.scope
        return repository.activation(self.session, s.tenant_id, self.start, self.end, s.members)

    @cached_property
    def nps_counts(self) -> tuple[int, int, int]:
        s = self.scope
        return repository.nps_counts(self.session, s.tenant_id, self.start, self.end, s.members)

    # ---- money ----------------------------------------------------------------------------

    def points_value(self, points_minor: int, wallet: str | None = None) -> Decimal | None:
        config = self.scope.program.wallets[wallet or self.scope.wallet]
        if config.point_value is None:
            return None
        return Decimal(points_minor).scaleb(-config.precision) * config.point_value

    def money(self, value: Decimal | None) -> str | None:
        if value is None:
            return None
        quantum = Decimal(1).scaleb(-self.scope.exponent)
        return str(value.quantize(quantum, rounding=ROUND_HALF_UP))

    @property
    def program_cost(self) -> Decimal | None:
        """Points redeemed at the wallet's point value, plus the store credit (wallets of kind
        credit, one unit = one currency unit) members spent."""
        redeemed = self.points_value(self.redeemed)
        if redeemed is None:
            return None
        credit = Decimal(0)
        for key, wallet in self.scope.program.wallets.items():
            if wallet.kind != "credit" or key == self.scope.wallet:
                continue
            spent = self.flow("spend", key) + self.flow("redeem", key) - self.flow("return", key)
            credit += self.points_value(spent, key) or Decimal(0)
        return redeemed + credit

    @property
    def incremental_revenue(self) -> Decimal:
        """Revenue of members' orders other than their first order ever, net of refunds."""
        return Decimal(self.orders.repeat_revenue_minor).scaleb(-self.scope.exponent)


def _ratio(numerator: float | Decimal | int, denominator: float | Decimal | int) -> float | None:
    if not denominator:
        return None
    return float(Decimal(numerator) / Decimal(denominator))


def _points(p: Period, amount_minor: int) -> int | float:
    return number(amount_minor, p.scope.precision)


def _retention(p: Period) -> float | None:
    s = p.customers_at_start
    return _ratio(p.orders.customers - p.orders.new_customers, s)


def _churn(p: Period) -> float | None:
    retention = _retention(p)
    return None if retention is None else float(1 - Decimal(str(retention)))


def _nps(p: Period) -> float | int | None:
    total, promoters, detractors = p.nps_counts
    if not total:
        return None
    value = (Decimal(100) * (promoters - detractors) / total).quantize(
        Decimal("0.1"), rounding=ROUND_HALF_UP
    )
    return int(value) if value == value.to_integral_value() else float(value)


def _aov(p: Period) -> str | None:
    o = p.orders
    if not o.member_orders:
        return None
    return p.money(Decimal(o.member_revenue_minor).scaleb(-p.scope.exponent) / o.member_orders)


def _liability(p: Period) -> Decimal | None:
    return p.points_value(p.outstanding)


def _expected_breakage_points(p: Period) -> int | float | None:
    ratio = p.breakage_ratio
    if ratio is None:
        return None
    minor = int((Decimal(max(p.outstanding, 0)) * ratio).to_integral_value(ROUND_HALF_UP))
    return _points(p, minor)


def _expected_breakage(p: Period) -> str | None:
    ratio = p.breakage_ratio
    liability = _liability(p)
    if ratio is None or liability is None:
        return None
    return p.money(max(liability, Decimal(0)) * ratio)


def _roi(p: Period) -> float | None:
    cost = p.program_cost
    if not cost:
        return None
    margin = p.scope.program.analytics.gross_margin
    return float((p.incremental_revenue * margin - cost) / cost)


def _money_minor(p: Period, amount_minor: int) -> str:
    return money_str(amount_minor, p.scope.exponent)


# name → how it is computed from a period; the order is the order of the KPI object
METRICS: dict[str, Callable[[Period], Any]] = {
    # points (the chosen wallet)
    "points_issued": lambda p: _points(p, p.issued),
    "points_redeemed": lambda p: _points(p, p.redeemed),
    "points_expired": lambda p: _points(p, p.expired),
    "redemption_rate": lambda p: _ratio(p.redeemed, p.issued),
    "breakage_rate": lambda p: _ratio(p.issued - p.redeemed, p.issued),
    "expiry_rate": lambda p: _ratio(p.expired, p.issued),
    "points_outstanding": lambda p: _points(p, p.outstanding),
    "points_liability": lambda p: p.money(_liability(p)),
    "expected_breakage_points": _expected_breakage_points,
    "expected_breakage": _expected_breakage,
    # members
    "members_enrolled": lambda p: p.activation[0],
    "members_activated": lambda p: p.activation[1],
    "activation_rate": lambda p: _ratio(p.activation[1], p.activation[0]),
    # orders
    "orders": lambda p: p.orders.orders,
    "revenue": lambda p: _money_minor(p, p.orders.revenue_minor),
    "member_orders": lambda p: p.orders.member_orders,
    "member_revenue": lambda p: _money_minor(p, p.orders.member_revenue_minor),
    "member_revenue_share": lambda p: _ratio(p.orders.member_revenue_minor, p.orders.revenue_minor),
    "aov": _aov,
    "customers": lambda p: p.orders.customers,
    "repeat_customers": lambda p: p.orders.repeat_customers,
    "new_customers": lambda p: p.orders.new_customers,
    "purchase_frequency": lambda p: _ratio(p.orders.member_orders, p.orders.customers),
    "repeat_customer_rate": lambda p: _ratio(p.orders.repeat_customers, p.orders.customers),
    "customers_at_start": lambda p: p.customers_at_start,
    "retention_rate": _retention,
    "churn_rate": _churn,
    # satisfaction
    "nps_responses": lambda p: p.nps_counts[0],
    "nps": _nps,
    # cost and return
    "program_cost": lambda p: p.money(p.program_cost),
    "incremental_revenue": lambda p: p.money(p.incremental_revenue),
    "roi": _roi,
}


def _header(scope: Scope, date_from: date, date_to: date) -> dict[str, Any]:
    return {
        "from": date_from.isoformat(),
        "to": date_to.isoformat(),
        "timezone": scope.program.timezone,
        "currency": scope.program.currency,
        "wallet": scope.wallet,
        "brand": scope.brand,
        "tier": scope.tier,
        "segment": scope.segment,
        "gross_margin": str(scope.program.analytics.gross_margin),
    }


def kpis(session: Session, *, scope: Scope, date_from: date, date_to: date) -> dict[str, Any]:
    """GET /v1/analytics/kpis: every KPI of the period (docs/analytics.md#kpis)."""
    period = Period(session, scope, date_from, date_to)
    repository.tune_for_aggregates(session, get_settings().analytics_work_mem_mb)
    return {**_header(scope, date_from, date_to), **{k: f(period) for k, f in METRICS.items()}}


def buckets(date_from: date, date_to: date, interval: Interval) -> list[tuple[date, date]]:
    """Calendar days, ISO weeks (Monday first) or months covering [from, to], clipped to it."""
    check_dates(date_from, date_to)
    limit = get_settings().analytics_max_buckets
    out: list[tuple[date, date]] = []
    start = date_from
    while start <= date_to:
        if len(out) >= limit:
            raise invalid(
                ["query", "interval"],
                f"more than {limit} {interval}s between from and to; use a longer interval",
            )
        if interval == "day":
            nxt = start + timedelta(days=1)
        elif interval == "week":
            nxt = start + timedelta(days=7 - start.weekday())
        else:
            nxt = (start.replace(day=1) + timedelta(days=32)).replace(day=1)
        out.append((start, min(nxt - timedelta(days=1), date_to)))
        start = nxt
    return out


def series(
    session: Session,
    *,
    scope: Scope,
    metric: str,
    interval: Interval,
    date_from: date,
    date_to: date,
) -> dict[str, Any]:
    """GET /v1/analytics/series: one KPI per bucket, each computed exactly as the KPI
    endpoint computes it for the bucket's dates (only the queries the metric needs run)."""
    if metric not in METRICS:
        raise invalid(
            ["query", "metric"], f"unknown metric {metric!r}; one of {', '.join(METRICS)}"
        )
    compute = METRICS[metric]
    repository.tune_for_aggregates(session, get_settings().analytics_work_mem_mb)
    data = [
        {"period_start": start.isoformat(), "period_end": end.isoformat(),
         "value": compute(Period(session, scope, start, end))}
        for start, end in buckets(date_from, date_to, interval)
    ]  # fmt: skip
    return {
        **_header(scope, date_from, date_to),
        "metric": metric,
        "interval": interval,
        "data": data,
    }


def cohorts(
    session: Session, *, scope: Scope, date_from: date, date_to: date, interval: Interval
) -> dict[str, Any]:
    """GET /v1/analytics/cohorts: members grouped by the month (``interval``) of their first
    order; for each later period k, the fraction of the cohort that ordered in it."""
    spans = buckets(date_from, date_to, interval)
    program = scope.program
    bounds = [_midnight(program, start) for start, _ in spans]
    bounds.append(_midnight(program, spans[-1][1] + timedelta(days=1)))
    repository.tune_for_aggregates(session, get_settings().analytics_work_mem_mb)
    sizes = repository.cohort_sizes(session, scope.tenant_id, bounds, scope.members)
    whole_months = (
        interval == "month"
        and date_from.day == 1
        and (date_to + timedelta(days=1)).day == 1
        and scope.brand is None
    )
    if whole_months and activity.exact_for(session, scope.tenant_id, program.timezone):
        # every member's months are kept with the orders (docs/analytics.md#cohorts)
        months = [start.year * 100 + start.month for start, _ in spans]
        active = repository.cohort_activity_by_month(
            session, scope.tenant_id, bounds, months, scope.members
        )
    else:
        active = repository.cohort_activity(
            session, scope.tenant_id, bounds, scope.brand, scope.members
        )
    rows = []
    for index, (start, _) in enumerate(spans):
        size = sizes.get(index, 0)
        counts = [active.get((index, later), 0) for later in range(index, len(spans))]
        rows.append(
            {
                "cohort": start.isoformat(),
                "size": size,
                "members": counts,
                "retention": [_ratio(c, size) for c in counts],
            }
        )
    return {
        **_header(scope, date_from, date_to),
        "interval": interval,
        "periods": [start.isoformat() for start, _ in spans],
        "cohorts": rows,
    }
