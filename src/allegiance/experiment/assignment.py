"""Deterministic assignment of members to experiment variants (docs/experiments.md).

No I/O and no state: a member's variant is a function of the experiment key, the member id,
the holdout fraction and the variant weights, so every process, every program version with
the same split, and the results endpoint agree without storing anything.
"""

from __future__ import annotations

import hashlib
from bisect import bisect_right
from datetime import datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any

from allegiance.kit.clock import as_utc
from allegiance.kit.expression import Scope, compile_expression
from allegiance.program.schema import HOLDOUT, Experiment, ExperimentScope, Program

NOT_ENROLLED = ""  # the value of member.experiments.<key> outside an experiment
_SCALE = 2**64


def bucket(experiment_key: str, member_id: str) -> float:
    """A number in [0, 1) from SHA-256 of ``<experiment key>:<member id>`` (first 8 bytes).

    Keys cannot contain ``:``, so distinct pairs never hash the same text.
    """
    digest = hashlib.sha256(f"{experiment_key}:{member_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / _SCALE


def variant_for(experiment: Experiment, member_id: str) -> str:
    """``holdout`` for the first ``holdout`` share of [0, 1), then variants by weight."""
    keys, bounds = _bounds(
        experiment.key,
        experiment.holdout,
        tuple((v.key, v.weight) for v in experiment.variants),
    )
    index = bisect_right(bounds, bucket(experiment.key, member_id))
    return keys[min(index, len(keys) - 1)]  # min: rounding at the very top of the range


@lru_cache(maxsize=1024)
def _bounds(
    key: str, holdout: Decimal, variants: tuple[tuple[str, Decimal], ...]
) -> tuple[tuple[str, ...], tuple[float, ...]]:
    """Group keys and the upper ends of their slices of [0, 1): the holdout's, then each
    variant's ``holdout + (1 − holdout) × Σ weights so far / Σ weights`` (exact decimals,
    rounded once to float)."""
    total = sum((w for _, w in variants), Decimal(0))
    keys = [HOLDOUT]
    bounds = [float(holdout)]
    running_total = Decimal(0)
    for variant_key, weight in variants:
        running_total += weight
        keys.append(variant_key)
        bounds.append(float(holdout + (1 - holdout) * running_total / total))
    return tuple(keys), tuple(bounds)


def running(experiment: Experiment, at: datetime) -> bool:
    if experiment.starts_at is not None and at < as_utc(experiment.starts_at):
        return False
    return not (experiment.ends_at is not None and at >= as_utc(experiment.ends_at))


def assignments(program: Program, context: dict[str, Any], at: datetime) -> dict[str, str]:
    """Every declared experiment -> the member's variant, ``holdout``, or ``""`` (the
    experiment is not running at ``at``, or its ``when`` does not hold for the member).

    ``context`` has ``member`` (as ``order.service.member_context`` builds it), ``account``
    and ``now``; ``when`` sees the member without ``experiments``.
    """
    if not program.experiments:
        return {}
    member = context.get("member") or {}
    member_id = member.get("id") or ""
    found: dict[str, str] = {}
    scope: Scope | None = None
    for experiment in program.experiments:
        if not member_id or not running(experiment, at):
            found[experiment.key] = NOT_ENROLLED
            continue
        if experiment.when is not None:
            if scope is None:
                scope = Scope(
                    {
                        "member": {**member, "experiments": {}},
                        "account": context.get("account") or {},
                        "now": context.get("now") or at,
                    }
                )
            if not scope.test(compile_expression(experiment.when)):
                found[experiment.key] = NOT_ENROLLED
                continue
        found[experiment.key] = variant_for(experiment, member_id)
    return found


def fill(program: Program, context: dict[str, Any], at: datetime) -> dict[str, Any]:
    """Put the member's assignments into ``context["member"]["experiments"]`` (in place)."""
    member = context.get("member")
    if program.experiments and isinstance(member, dict):
        member["experiments"] = assignments(program, context, at)
    return context


def allowed(scope: ExperimentScope | None, context: dict[str, Any]) -> bool:
    """Whether a benefit restricted to ``scope`` reaches the member of ``context``."""
    if scope is None:
        return True
    member = context.get("member") or {}
    variant = (member.get("experiments") or {}).get(scope.key, NOT_ENROLLED)
    return variant != NOT_ENROLLED and variant != HOLDOUT and variant in scope.variants
