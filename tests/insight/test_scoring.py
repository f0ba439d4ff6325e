"""RFM binning and churn judgements on constructed data."""

from __future__ import annotations

import numpy as np
import pytest

from allegiance.insight import scoring
from allegiance.program.schema import ChurnSettings, RfmSegment


def test_frequency_ties_do_not_collapse_bins() -> None:
    # eight one-time buyers and two regulars: the quintiles of the counts are all 1, so
    # binning by value puts everyone but the regulars into one bin
    orders = np.array([1, 1, 3, 1, 1, 1, 4, 1, 1, 1], dtype=np.float64)
    first_seen = np.arange(10, dtype=np.float64)
    naive = scoring.quintile_by_value(orders)
    assert sorted(set(naive.tolist())) == [1, 5]  # collapsed: scores 2–4 are never used
    ranked = scoring.quintile_by_rank([orders, first_seen])
    assert sorted(ranked.tolist()) == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    # the regulars rank highest; among the one-time buyers the earlier first purchase
    # ranks first (lower)
    assert ranked[6] == 5 and ranked[2] == 5
    assert ranked.tolist()[:2] == [1, 1] and ranked[9] == 4


def test_rfm_recency_is_reversed_and_monetary_binned() -> None:
    recency = np.array([1, 5, 10, 50, 100, 200, 300, 400, 500, 600], dtype=np.float64)
    frequency = np.arange(1, 11, dtype=np.float64)
    monetary = np.array([10, 20, 30, 40, 50, 60, 70, 80, 90, 100], dtype=np.float64)
    r, f, m = scoring.rfm_scores(recency, frequency, monetary, np.zeros(10))
    assert r.tolist() == [5, 5, 4, 4, 3, 3, 2, 2, 1, 1]
    assert f.tolist() == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert m.tolist() == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]


@pytest.mark.parametrize(
    ("r", "f", "segment"),
    [
        (5, 5, "Champions"),
        (5, 4, "Champions"),
        (3, 5, "Loyal Customers"),
        (4, 2, "Potential Loyalists"),
        (5, 1, "New Customers"),
        (4, 1, "Promising"),
        (3, 3, "Need Attention"),
        (3, 1, "About to Sleep"),
        (2, 4, "At Risk"),
        (1, 5, "Can't Lose"),
        (1, 1, "Hibernating"),
    ],
)
def test_default_segment_map(r: int, f: int, segment: str) -> None:
    assert scoring.segment_of(r, f, None) == segment


def test_default_segment_map_covers_every_cell() -> None:
    for r in range(1, 6):
        for f in range(1, 6):
            assert scoring.segment_of(r, f, None) is not None


def test_configured_segments_first_match_wins() -> None:
    segments = [
        RfmSegment(name="Fans", r=(4, 5), f=(4, 5)),
        RfmSegment(name="Everyone", r=(1, 5), f=(1, 5)),
    ]
    assert scoring.segment_of(5, 5, segments) == "Fans"
    assert scoring.segment_of(1, 5, segments) == "Everyone"
    assert scoring.segment_of(1, 5, segments[:1]) is None


SETTINGS = ChurnSettings()


def judge(days: int, gaps: list[int], purchases: int, p_alive: float | None = None):  # type: ignore[no-untyped-def]
    return scoring.judge_churn(
        purchase_days=purchases,
        days_since_last=days,
        own_gaps=np.array(gaps, dtype=np.int64),
        p_alive=p_alive,
        population_threshold_days=40.0,
        settings=SETTINGS,
    )


def test_churn_by_own_interval() -> None:
    # a regular buyer every 10 days (one 14-day gap): 90th percentile 12.8 days
    gaps = [10, 10, 14, 10]
    on_time = judge(9, gaps, 5)
    assert (on_time.risk, on_time.reason) == ("low", "own_interval")
    assert on_time.threshold_days == pytest.approx(12.8)
    assert judge(13, gaps, 5).risk == "medium"
    assert judge(26, gaps, 5).risk == "high"  # more than twice the threshold


def test_churn_by_p_alive_for_two_purchases() -> None:
    assert judge(100, [30], 2, p_alive=0.9).risk == "low"
    assert judge(100, [30], 2, p_alive=0.4).risk == "medium"
    judged = judge(100, [30], 2, p_alive=0.1)
    assert (judged.risk, judged.reason, judged.threshold_days) == ("high", "p_alive", None)


def test_churn_single_purchase_uses_the_shop_interval() -> None:
    judged = judge(50, [], 1, p_alive=1.0)
    assert (judged.risk, judged.reason, judged.threshold_days) == (
        "medium",
        "population_interval",
        40.0,
    )
    # without a fitted model two purchases fall back to the shop's interval too
    assert judge(10, [30], 2).reason == "population_interval"
    none = scoring.judge_churn(
        purchase_days=1,
        days_since_last=3,
        own_gaps=np.array([], dtype=np.int64),
        p_alive=None,
        population_threshold_days=None,
        settings=SETTINGS,
    )
    assert (none.risk, none.reason) == (None, "not_enough_history")
