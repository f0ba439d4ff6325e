"""Experiments: what is declared and how each variant did against the holdout.

Formulas (docs/experiments.md): per variant, ``members`` enrolled, ``repeat_rate`` = members
with ≥ 2 orders in the period / members, ``revenue_per_member`` = net order revenue / members,
``points_cost`` = Σ points issued (net of reversals) × the wallet's point value. Each variant
is compared with the holdout: a two-proportion z-test for the repeat rate and Welch's t-test
for revenue per member, with 95 % confidence intervals of the difference, and
ROI = (incremental gross profit − incremental cost) / incremental cost.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
from scipy import stats
from sqlalchemy.orm import Session

from allegiance.analytics.settlement import period_bounds
from allegiance.b2b.service import account_context
from allegiance.config import get_settings
from allegiance.errors import NotFound, ValidationFailed
from allegiance.experiment import repository
from allegiance.experiment.assignment import NOT_ENROLLED, running, variant_for
from allegiance.kit.clock import as_utc
from allegiance.kit.expression import Scope, compile_expression
from allegiance.kit.money import currency_exponent
from allegiance.order.service import member_context
from allegiance.program.compiled import CompiledProgram
from allegiance.program.schema import HOLDOUT, Experiment, Program

Z_95 = float(stats.norm.ppf(0.975))
DEFAULT_DAYS = 90  # the period when ``from`` is not given and the experiment has no start


def list_experiments(program: Program, *, now: datetime) -> dict[str, Any]:
    """The declared experiments with their state at ``now`` (scheduled, running, ended)."""
    return {"data": [_describe(e, now) for e in program.experiments], "next_cursor": None}


def _describe(experiment: Experiment, now: datetime) -> dict[str, Any]:
    if running(experiment, now):
        state = "running"
    elif experiment.starts_at is not None and now < as_utc(experiment.starts_at):
        state = "scheduled"
    else:
        state = "ended"
    total = sum((v.weight for v in experiment.variants), Decimal(0))
    share = 1 - experiment.holdout
    return {
        "key": experiment.key,
        "name": experiment.name,
        "state": state,
        "starts_at": experiment.starts_at,
        "ends_at": experiment.ends_at,
        "when": experiment.when,
        "holdout": float(experiment.holdout),
        "variants": [
            {
                "key": v.key,
                "name": v.name,
                "weight": float(v.weight),
                "share": float(share * v.weight / total),  # of the enrolled members
            }
            for v in experiment.variants
        ],
    }


def find_experiment(program: Program, key: str) -> Experiment:
    for experiment in program.experiments:
        if experiment.key == key:
            return experiment
    raise NotFound(f"experiment {key!r} is not in the program", code="experiment_not_found")


@dataclass
class _Group:
    members: int = 0
    repeaters: int = 0
    revenue_minor: list[int] = field(default_factory=list)  # one entry per member
    cost: Decimal = Decimal(0)  # money
    points: dict[str, int] = field(default_factory=dict)  # wallet -> minor units


def experiment_results(
    session: Session,
    *,
    tenant_id: str,
    program: CompiledProgram,
    key: str,
    date_from: date | None,
    date_to: date | None,
    now: datetime,
    gross_margin: Decimal | None = None,
) -> dict[str, Any]:
    """Per-variant outcome of experiment ``key`` over the days ``from``..``to`` (program
    timezone, both included) and each variant against the holdout."""
    doc = program.program
    experiment = find_experiment(doc, key)
    if date_to is None:
        last = as_utc(now)
        if experiment.ends_at is not None:
            last = min(last, as_utc(experiment.ends_at) - timedelta(microseconds=1))
        date_to = last.astimezone(program.tz).date()
    if date_from is None:
        date_from = (
            as_utc(experiment.starts_at).astimezone(program.tz).date()
            if experiment.starts_at
            else date_to - timedelta(days=DEFAULT_DAYS - 1)
        )
        date_from = min(date_from, date_to)
    start, end = period_bounds(doc, date_from, date_to)
    margin = _gross_margin(doc, gross_margin)
    settings = get_settings()
    population = repository.count_members_enrolled_before(session, tenant_id, end)
    if population > settings.experiment_max_members:
        raise ValidationFailed(
            f"the tenant has {population:,} members, more than the "
            f"{settings.experiment_max_members:,} experiment results read at once",
            code="too_many_members",
            errors=[{"loc": ["query"], "msg": "raise ALLEGIANCE_EXPERIMENT_MAX_MEMBERS"}],
        )
    orders = repository.order_sums(session, tenant_id, start, end)
    issued = repository.issued_sums(session, tenant_id, start, end)
    issued_by_member: dict[str, list[tuple[str, int]]] = {}
    for (member_id, wallet), amount in issued.items():
        issued_by_member.setdefault(member_id, []).append((wallet, amount))
    groups = {HOLDOUT: _Group(), **{v.key: _Group() for v in experiment.variants}}
    exponent = currency_exponent(doc.currency)
    when = compile_expression(experiment.when) if experiment.when else None
    for chunk in repository.members_enrolled_before(
        session, tenant_id, end, chunk=settings.job_batch_size, limit=population
    ):
        for member in chunk:
            variant = _enrolled_variant(experiment, when, member, exponent, end)
            if variant == NOT_ENROLLED:
                continue
            group = groups[variant]
            count, revenue = orders.get(member.member_id, (0, 0))
            group.members += 1
            group.repeaters += count >= 2
            group.revenue_minor.append(revenue)
            for wallet, amount in issued_by_member.get(member.member_id, ()):
                group.points[wallet] = group.points.get(wallet, 0) + amount
    for group in groups.values():
        group.cost = _points_cost(doc, group.points)
    control = groups[HOLDOUT]
    variants = [_variant_view(HOLDOUT, control, exponent, doc) | {"vs_holdout": None}]
    for v in experiment.variants:
        group = groups[v.key]
        view = _variant_view(v.key, group, exponent, doc)
        view["vs_holdout"] = _compare(group, control, exponent, margin)
        variants.append(view)
    return {
        "experiment": experiment.key,
        "from": date_from.isoformat(),
        "to": date_to.isoformat(),
        "timezone": doc.timezone,
        "currency": doc.currency,
        "gross_margin": float(margin),
        "variants": variants,
        "program": _overall(experiment, groups, control, exponent, margin),
    }


def _gross_margin(program: Program, override: Decimal | None) -> Decimal:
    """The query's ``gross_margin``, else the program's ``analytics.gross_margin``, else the
    ``ALLEGIANCE_ANALYTICS_GROSS_MARGIN`` setting."""
    if override is not None:
        if not 0 <= override <= 1:
            raise ValidationFailed(
                "gross_margin is a fraction from 0 to 1",
                code="validation_failed",
                errors=[{"loc": ["query", "gross_margin"], "msg": "must be from 0 to 1"}],
            )
        return override
    analytics = getattr(program, "analytics", None)
    found = getattr(analytics, "gross_margin", None) if analytics is not None else None
    if found is None and isinstance(analytics, dict):
        found = analytics.get("gross_margin")
    if found is not None:
        return Decimal(str(found))
    return Decimal(str(get_settings().analytics_gross_margin))


def _enrolled_variant(
    experiment: Experiment, when: Any, member: Any, exponent: int, at: datetime
) -> str:
    """The member's group: ``when`` over its profile (tier, plan, badges empty), then the hash."""
    if when is not None:
        scope = Scope(
            {
                "member": member_context(member, exponent),
                "account": account_context(None),
                "now": at,
            }
        )
        if not scope.test(when):
            return NOT_ENROLLED
    return variant_for(experiment, member.member_id)


def _points_cost(program: Program, points: dict[str, int]) -> Decimal:
    cost = Decimal(0)
    for wallet_key, amount in points.items():
        wallet = program.wallets.get(wallet_key)
        if wallet is None or wallet.point_value is None:
            continue  # a wallet without a point value costs nothing in these figures
        cost += Decimal(amount).scaleb(-wallet.precision) * wallet.point_value
    return cost


def _money(value: Decimal | float, exponent: int) -> float:
    return round(float(value), exponent)


def _variant_view(key: str, group: _Group, exponent: int, program: Program) -> dict[str, Any]:
    n = group.members
    revenue = Decimal(sum(group.revenue_minor)).scaleb(-exponent)
    return {
        "variant": key,
        "members": n,
        "repeat_customers": group.repeaters,
        "repeat_rate": group.repeaters / n if n else None,
        "revenue": _money(revenue, exponent),
        "revenue_per_member": _money(revenue / n, exponent) if n else None,
        "points_issued": {
            w: float(Decimal(a).scaleb(-program.wallets[w].precision))
            for w, a in sorted(group.points.items())
            if w in program.wallets
        },
        "points_cost": _money(group.cost, exponent),
        "points_cost_per_member": _money(group.cost / n, exponent) if n else None,
    }


def _compare(group: _Group, control: _Group, exponent: int, margin: Decimal) -> dict[str, Any]:
    return {
        "repeat_rate": two_proportion_test(
            group.repeaters, group.members, control.repeaters, control.members
        ),
        "revenue_per_member": welch_test(
            np.asarray(group.revenue_minor, dtype=float) / 10**exponent,
            np.asarray(control.revenue_minor, dtype=float) / 10**exponent,
        ),
        **_roi([(group, control)], margin, exponent),
    }


def two_proportion_test(x1: int, n1: int, x2: int, n2: int) -> dict[str, Any] | None:
    """p1 − p2 with a 95 % Wald interval (unpooled) and the two-sided p-value of the pooled
    two-proportion z-test; None when a group is empty."""
    if n1 == 0 or n2 == 0:
        return None
    p1, p2 = x1 / n1, x2 / n2
    diff = p1 - p2
    se = math.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2)
    pooled = (x1 + x2) / (n1 + n2)
    se0 = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se0 == 0:
        p_value = 1.0 if diff == 0 else 0.0
        z = None
    else:
        z = diff / se0
        p_value = float(2 * stats.norm.sf(abs(z)))
    return {
        "difference": diff,
        "ci95": [diff - Z_95 * se, diff + Z_95 * se],
        "z": z,
        "p_value": p_value,
    }


def welch_test(a: np.ndarray, b: np.ndarray) -> dict[str, Any] | None:
    """mean(a) − mean(b) with a 95 % Welch interval and Welch's t-test two-sided p-value;
    None when a group has fewer than two members."""
    n1, n2 = len(a), len(b)
    if n1 < 2 or n2 < 2:
        return None
    diff = float(a.mean() - b.mean())
    v1, v2 = float(a.var(ddof=1)) / n1, float(b.var(ddof=1)) / n2
    se = math.sqrt(v1 + v2)
    if se == 0:
        return {"difference": diff, "ci95": [diff, diff], "t": None, "df": None,
                "p_value": 1.0 if diff == 0 else 0.0}  # fmt: skip
    df = (v1 + v2) ** 2 / (v1**2 / (n1 - 1) + v2**2 / (n2 - 1))
    result = stats.ttest_ind(a, b, equal_var=False)
    half = float(stats.t.ppf(0.975, df)) * se
    return {
        "difference": diff,
        "ci95": [diff - half, diff + half],
        "t": float(result.statistic),
        "df": df,
        "p_value": float(result.pvalue),
    }


def _roi(pairs: list[tuple[_Group, _Group]], margin: Decimal, exponent: int) -> dict[str, Any]:
    """Incremental revenue, gross profit and cost of the groups over the holdout, scaled to
    each group's size, and ROI = (incremental gross profit − incremental cost) / cost."""
    revenue = Decimal(0)
    cost = Decimal(0)
    for group, control in pairs:
        if group.members == 0 or control.members == 0:
            continue
        n = group.members
        rpm = Decimal(sum(group.revenue_minor)).scaleb(-exponent) / n
        rpm0 = Decimal(sum(control.revenue_minor)).scaleb(-exponent) / control.members
        revenue += (rpm - rpm0) * n
        cost += (group.cost / n - control.cost / control.members) * n
    profit = revenue * margin
    return {
        "incremental_revenue": _money(revenue, exponent),
        "incremental_gross_profit": _money(profit, exponent),
        "incremental_cost": _money(cost, exponent),
        "roi": float((profit - cost) / cost) if cost > 0 else None,
    }


def _overall(
    experiment: Experiment,
    groups: dict[str, _Group],
    control: _Group,
    exponent: int,
    margin: Decimal,
) -> dict[str, Any]:
    """All variants together against the holdout."""
    return _roi([(groups[v.key], control) for v in experiment.variants], margin, exponent)
