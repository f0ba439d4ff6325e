"""Results on a constructed data set, checked against scipy and hand computation."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from scipy import stats

from allegiance.experiment.assignment import variant_for
from allegiance.program.schema import Experiment
from tests.conftest import Api, apply_program, order

EXPERIMENT = {
    "key": "x",
    "holdout": 0.4,
    "variants": [{"key": "a"}, {"key": "b"}],
    "starts_at": "2026-03-01T00:00:00Z",
}
PROGRAM: dict[str, Any] = {
    "name": "Results",
    "currency": "USD",
    "timezone": "UTC",
    "wallets": {"points": {"precision": 0, "point_value": "0.01"}},
    "experiments": [EXPERIMENT],
    "rules": [
        {"key": "base", "earn": {"per_amount": 1}},
        {"key": "bonus", "earn": {"fixed": 100}, "experiment": {"key": "x", "variants": ["a"]}},
    ],
}
SPLIT = Experiment.model_validate(EXPERIMENT)
N = 90


def _orders_of(i: int, variant: str) -> list[int]:
    """Whole-dollar order totals of member i: variant a buys more often, b spends more."""
    count = (i % 3) + (1 if variant == "a" and i % 2 else 0)
    bump = 15 if variant == "b" else 0
    return [10 + (i * 7) % 40 + bump + 5 * k for k in range(count)]


@pytest.fixture()
def data(api: Api) -> dict[str, list[tuple[int, int, int]]]:
    """variant -> [(orders, revenue, points)] per member."""
    api.now = "2026-03-02T00:00:00Z"
    apply_program(api, PROGRAM)
    groups: dict[str, list[tuple[int, int, int]]] = {"holdout": [], "a": [], "b": []}
    for i in range(N):
        member_id = f"r{i}"
        variant = variant_for(SPLIT, member_id)
        put = api.put(f"/v1/members/{member_id}", json={"enrolled_at": "2026-03-01T00:00:00Z"})
        assert put.status_code in (200, 201), put.text
        totals = _orders_of(i, variant)
        for k, amount in enumerate(totals):
            body = order(f"{member_id}-{k}", member_id, f"{amount}.00",
                         placed_at=f"2026-03-{10 + k:02d}T12:00:00Z")  # fmt: skip
            response = api.post("/v1/orders", json=body)
            assert response.status_code == 201, response.text
        points = sum(totals) + (100 * len(totals) if variant == "a" else 0)
        groups[variant].append((len(totals), sum(totals), points))
    # outside the period: counts for nobody
    api.post("/v1/orders", json=order("late", "r0", "999.00", placed_at="2026-04-02T00:00:00Z"))
    return groups


def test_results_match_scipy(api: Api, data: dict[str, list[tuple[int, int, int]]]) -> None:
    api.now = "2026-04-05T00:00:00Z"
    response = api.get(
        "/v1/experiments/x/results", params={"from": "2026-03-01", "to": "2026-03-31",
                                             "gross_margin": "0.4"}
    )  # fmt: skip
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["gross_margin"] == 0.4
    views = {v["variant"]: v for v in body["variants"]}
    assert list(views) == ["holdout", "a", "b"]
    holdout = data["holdout"]
    for key, rows in data.items():
        view = views[key]
        n = len(rows)
        assert view["members"] == n
        assert view["repeat_customers"] == sum(1 for r in rows if r[0] >= 2)
        assert view["repeat_rate"] == pytest.approx(sum(1 for r in rows if r[0] >= 2) / n)
        assert view["revenue_per_member"] == pytest.approx(round(sum(r[1] for r in rows) / n, 2))
        assert view["points_issued"] == {"points": sum(r[2] for r in rows)}
        assert view["points_cost"] == pytest.approx(sum(r[2] for r in rows) * 0.01)
    for key in ("a", "b"):
        rows = data[key]
        versus = views[key]["vs_holdout"]
        # repeat rate: two-proportion z-test, by hand
        x1, n1 = sum(1 for r in rows if r[0] >= 2), len(rows)
        x2, n2 = sum(1 for r in holdout if r[0] >= 2), len(holdout)
        p1, p2, pooled = x1 / n1, x2 / n2, (x1 + x2) / (n1 + n2)
        z = (p1 - p2) / math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
        half = 1.959964 * math.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2)
        repeat = versus["repeat_rate"]
        assert repeat["difference"] == pytest.approx(p1 - p2)
        assert repeat["z"] == pytest.approx(z)
        assert repeat["p_value"] == pytest.approx(math.erfc(abs(z) / math.sqrt(2)))
        assert repeat["ci95"] == pytest.approx([p1 - p2 - half, p1 - p2 + half], rel=1e-5)
        # revenue per member: Welch's t-test, against scipy's own interval
        a = np.array([r[1] for r in rows], dtype=float)
        b = np.array([r[1] for r in holdout], dtype=float)
        welch = stats.ttest_ind(a, b, equal_var=False)
        interval = welch.confidence_interval(0.95)
        revenue = versus["revenue_per_member"]
        assert revenue["difference"] == pytest.approx(a.mean() - b.mean())
        assert revenue["p_value"] == pytest.approx(welch.pvalue)
        assert revenue["df"] == pytest.approx(welch.df)
        assert revenue["ci95"] == pytest.approx([interval.low, interval.high])
        # ROI: (incremental gross profit − incremental cost) / incremental cost
        cost = np.array([r[2] for r in rows]) * 0.01
        cost0 = np.array([r[2] for r in holdout]) * 0.01
        inc_revenue = (a.mean() - b.mean()) * n1
        inc_cost = (cost.mean() - cost0.mean()) * n1
        assert versus["incremental_revenue"] == pytest.approx(round(inc_revenue, 2))
        assert versus["incremental_cost"] == pytest.approx(round(inc_cost, 2))
        if inc_cost > 0:
            assert versus["roi"] == pytest.approx((inc_revenue * 0.4 - inc_cost) / inc_cost)
        else:
            assert versus["roi"] is None


def test_results_defaults_and_errors(api: Api, data: dict[str, list[tuple[int, int, int]]]) -> None:
    api.now = "2026-03-31T10:00:00Z"
    body = api.get("/v1/experiments/x/results").json()
    # from the experiment's start to today
    assert (body["from"], body["to"]) == ("2026-03-01", "2026-03-31")
    assert body["gross_margin"] == 0.3  # the documented default
    assert sum(v["members"] for v in body["variants"]) == N
    missing = api.get("/v1/experiments/nope/results")
    assert missing.status_code == 404 and missing.json()["code"] == "experiment_not_found"
    bad = api.get("/v1/experiments/x/results", params={"from": "2026-04-01", "to": "2026-03-01"})
    assert bad.status_code == 422
    bad = api.get("/v1/experiments/x/results", params={"gross_margin": "2"})
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["loc"] == ["query", "gross_margin"]
