"""RFM quintile scores, RFM segments and churn risk levels: pure functions over arrays."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from allegiance.program.schema import ChurnSettings, RfmSegment

# The default R/F map (R = recency score, F = frequency score, both 1–5); first match wins.
DEFAULT_SEGMENTS: tuple[tuple[str, tuple[int, int], tuple[int, int]], ...] = (
    ("Champions", (5, 5), (4, 5)),
    ("Loyal Customers", (3, 4), (4, 5)),
    ("Potential Loyalists", (4, 5), (2, 3)),
    ("New Customers", (5, 5), (1, 1)),
    ("Promising", (4, 4), (1, 1)),
    ("Need Attention", (3, 3), (3, 3)),
    ("About to Sleep", (3, 3), (1, 2)),
    ("Can't Lose", (1, 2), (5, 5)),
    ("At Risk", (1, 2), (3, 4)),
    ("Hibernating", (1, 2), (1, 2)),
)

RISK_LEVELS = ("low", "medium", "high")


def quintile_by_value(values: NDArray[np.float64]) -> NDArray[np.int64]:
    """1–5: one more than the number of the 20/40/60/80 % quantiles (linear interpolation)
    that the value exceeds. Equal values share a score."""
    if len(values) == 0:
        return np.zeros(0, dtype=np.int64)
    cuts = np.quantile(values, [0.2, 0.4, 0.6, 0.8])
    return (1 + (values[:, None] > cuts[None, :]).sum(axis=1)).astype(np.int64)


def quintile_by_rank(order_keys: Sequence[NDArray[np.float64]]) -> NDArray[np.int64]:
    """1–5 from the rank of each row (1..n, ties broken by the later keys, then by position:
    rank method "first"): ceil(5 · rank / n). Every score gets n/5 rows even when most
    values are equal."""
    n = len(order_keys[0])
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    # np.lexsort sorts by the last key first
    order = np.lexsort(tuple(reversed(order_keys)))
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(1, n + 1)
    return np.ceil(5 * rank / n).astype(np.int64)


def rfm_scores(
    recency_days: NDArray[np.float64],
    frequency: NDArray[np.float64],
    monetary: NDArray[np.float64],
    first_seen: NDArray[np.float64],
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
    """(R, F, M) scores 1–5. R is reversed (the most recent buyers score 5); F ranks by
    purchase count, ties going to the earlier first purchase first ("first-come"); M bins
    the spend by its quintiles."""
    r = 6 - quintile_by_value(recency_days)
    f = quintile_by_rank([frequency, first_seen])
    m = quintile_by_value(monetary)
    return r, f, m


def segment_of(r: int, f: int, segments: Sequence[RfmSegment] | None) -> str | None:
    if segments is None:
        for name, (r_lo, r_hi), (f_lo, f_hi) in DEFAULT_SEGMENTS:
            if r_lo <= r <= r_hi and f_lo <= f <= f_hi:
                return name
        return None
    for segment in segments:
        if segment.r[0] <= r <= segment.r[1] and segment.f[0] <= f <= segment.f[1]:
            return segment.name
    return None


@dataclass(frozen=True)
class ChurnJudgement:
    risk: str | None  # low | medium | high; None without enough history
    reason: str  # own_interval | p_alive | population_interval | not_enough_history
    threshold_days: float | None


def judge_churn(
    *,
    purchase_days: int,
    days_since_last: int,
    own_gaps: NDArray[np.int64],
    p_alive: float | None,
    population_threshold_days: float | None,
    settings: ChurnSettings,
) -> ChurnJudgement:
    """A member with at least ``min_orders`` purchase days is judged against the
    ``gap_percentile`` of its own gaps; one with two purchase days by P(alive); one with a
    single purchase day (where BG/NBD's P(alive) is 1 by construction) or without a fitted
    model against the same percentile of every gap in the shop."""
    if purchase_days >= settings.min_orders and len(own_gaps):
        threshold = float(np.percentile(own_gaps, settings.gap_percentile))
        return ChurnJudgement(
            _by_gap(days_since_last, threshold, settings), "own_interval", threshold
        )
    if purchase_days >= 2 and p_alive is not None:
        if p_alive < settings.p_alive_high:
            risk = "high"
        elif p_alive < settings.p_alive_medium:
            risk = "medium"
        else:
            risk = "low"
        return ChurnJudgement(risk, "p_alive", None)
    if population_threshold_days is not None:
        return ChurnJudgement(
            _by_gap(days_since_last, population_threshold_days, settings),
            "population_interval",
            population_threshold_days,
        )
    return ChurnJudgement(None, "not_enough_history", None)


def _by_gap(days_since_last: int, threshold: float, settings: ChurnSettings) -> str:
    if days_since_last > settings.high_multiple * threshold:
        return "high"
    if days_since_last > threshold:
        return "medium"
    return "low"
