"""KPIs, series and cohorts through the HTTP API on a small data set computed by hand
(docs/analytics.md). The program runs in Europe/Warsaw; the period is March 2026, local time.

The story (all at 10:00 UTC, so well inside the local days):
  February  m1 enrolled 02-01, orders f1 100.00 on 02-10 (earns 100, expires 03-12)
            m2 enrolled 02-05, orders f2 50.00 on 02-20 (earns 50, expires 03-22)
  March     m3 enrolled 03-02, m4 enrolled 03-20 (never active)
            o1 m1 200.00 (brand main) 03-05 → m1 reaches gold (spend 300 ≥ 250); earns 200
            o3 m3 80.00 03-03 (m3's first order); earns 80
            o2 m1 100.00 03-10; earns 100
            g1 guest 120.00 (brand outlet) 03-12; earns nothing
            refund of 20.00 on o3 03-15 → 20 points reversed
            manual credit +10 to m3 03-16
            c1 m3 40.00 03-18, cancelled 03-19 → earns 40, reverses 40
            jobs 03-19: m1's February 100 expired (effective 03-12)
            m1 redeems 150 points 03-20
            jobs 03-25: m2's 50 expired (effective 03-22)
            NPS answers: m1 10, m2 9, m3 5, m4 7
  April     m3 orders a1 50.00 on 04-01 (earns 50: after the period)
"""

from __future__ import annotations

from typing import Any

import pytest

from allegiance.analytics import repository
from allegiance.db import get_engine
from allegiance.kit.clock import parse_timestamp
from allegiance.worker.runner import run_all
from tests.conftest import Api, apply_program, ledger_ok, order

PROGRAM: dict[str, Any] = {
    "name": "Measured Rewards",
    "currency": "USD",
    "timezone": "Europe/Warsaw",
    "wallets": {
        "points": {
            "precision": 0,
            "rounding": "floor",
            "point_value": "0.01",
            "expiry": {"mode": "rolling_days", "days": 30},
        }
    },
    "brands": [{"key": "main", "name": "Main"}, {"key": "outlet", "name": "Outlet"}],
    "tiers": {
        "metric": "spend",
        "window": {"mode": "lifetime"},
        "levels": [{"key": "bronze", "threshold": 0}, {"key": "gold", "threshold": 250}],
    },
    "rules": [{"key": "base", "on": "order.completed", "earn": {"per_amount": 1}}],
    "rewards": [{"key": "voucher", "name": "One-point voucher", "cost": 1}],
    "surveys": [{"key": "nps", "name": "Would you recommend us?", "period": "once"}],
    "segments": [{"key": "vip", "name": "VIP", "condition": "'vip' in member.tags"}],
}

MARCH = "from=2026-03-01&to=2026-03-31"


def at(api: Api, moment: str) -> Api:
    api.now = moment
    return api


def ok(response: Any, status: int = 201) -> dict[str, Any]:
    assert response.status_code in (200, status), response.text
    body: dict[str, Any] = response.json()
    return body


def run_jobs(tenant_id: str, moment: str) -> None:
    run_all(get_engine(), parse_timestamp(moment), tenant_id)


def member(api: Api, member_id: str, enrolled: str) -> None:
    at(api, enrolled)
    ok(api.put(f"/v1/members/{member_id}", json={"enrolled_at": enrolled}))


def place(api: Api, order_id: str, member_id: str | None, amount: str, moment: str, **kw: Any):
    at(api, moment)
    body = order(order_id, member_id, amount, placed_at=moment, **kw)
    return ok(api.post("/v1/orders", json=body))


def build_story(api: Api, tenant_id: str) -> None:
    apply_program(api, PROGRAM)
    member(api, "m1", "2026-02-01T10:00:00Z")
    member(api, "m2", "2026-02-05T10:00:00Z")
    place(api, "f1", "m1", "100.00", "2026-02-10T10:00:00Z")
    place(api, "f2", "m2", "50.00", "2026-02-20T10:00:00Z")
    member(api, "m3", "2026-03-02T10:00:00Z")
    place(api, "o3", "m3", "80.00", "2026-03-03T10:00:00Z")
    place(api, "o1", "m1", "200.00", "2026-03-05T10:00:00Z", brand="main")
    place(api, "o2", "m1", "100.00", "2026-03-10T10:00:00Z")
    place(api, "g1", None, "120.00", "2026-03-12T10:00:00Z", brand="outlet")
    at(api, "2026-03-15T10:00:00Z")
    refund = ok(api.post("/v1/orders/o3/refunds", json={"id": "o3-r1", "amount": "20.00"}))
    assert refund["effects"][0]["amount"] == 20
    at(api, "2026-03-16T10:00:00Z")
    ok(
        api.post(
            "/v1/members/m3/adjustments",
            json={"id": "adj-1", "wallet": "points", "amount": 10, "reason": "goodwill"},
        )
    )
    place(api, "c1", "m3", "40.00", "2026-03-18T10:00:00Z")
    at(api, "2026-03-19T09:00:00Z")
    ok(api.post("/v1/orders/c1/cancel"))
    run_jobs(tenant_id, "2026-03-19T10:00:00Z")
    at(api, "2026-03-20T10:00:00Z")
    redemption = {"id": "r1", "reward": "voucher", "quantity": 150}
    ok(api.post("/v1/members/m1/redemptions", json=redemption))
    member(api, "m4", "2026-03-20T11:00:00Z")
    run_jobs(tenant_id, "2026-03-25T10:00:00Z")
    for member_id, score in (("m1", 10), ("m2", 9), ("m3", 5), ("m4", 7)):
        at(api, "2026-03-26T10:00:00Z")
        ok(api.post("/v1/surveys/nps/responses", json={"member_id": member_id, "score": score}))
    place(api, "a1", "m3", "50.00", "2026-04-01T10:00:00Z")
    assert ledger_ok(tenant_id) == []
    at(api, "2026-04-02T10:00:00Z")


@pytest.fixture()
def story(api: Api, tenant: tuple[str, str]) -> Api:
    build_story(api, tenant[0])
    return api


def kpis(api: Api, query: str) -> dict[str, Any]:
    response = api.get(f"/v1/analytics/kpis?{query}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_kpis_of_march_match_the_hand_computed_figures(story: Api) -> None:
    body = kpis(story, MARCH)
    assert body["wallet"] == "points"  # the default points wallet
    assert body["timezone"] == "Europe/Warsaw"
    # issued = earn 200+80+100+40 − reverse 20+40 + adjust 10 = 370
    assert body["points_issued"] == 370
    assert body["points_redeemed"] == 150
    assert body["points_expired"] == 150  # 100 (03-12) + 50 (03-22)
    assert body["redemption_rate"] == pytest.approx(150 / 370)
    assert body["breakage_rate"] == pytest.approx(220 / 370)
    assert body["expiry_rate"] == pytest.approx(150 / 370)
    # at the end of March: m1 300 − 150 = 150, m2 0, m3 80 − 20 + 10 = 70 (April's 50 later)
    assert body["points_outstanding"] == 220
    assert body["points_liability"] == "2.20"
    # up to the end of March 150 redeemed and 150 expired: half of what leaves wallets expires
    assert body["expected_breakage_points"] == 110
    assert body["expected_breakage"] == "1.10"
    # enrolled in March: m3 (earned) and m4 (nothing)
    assert (body["members_enrolled"], body["members_activated"]) == (2, 1)
    assert body["activation_rate"] == 0.5
    # orders: o1 200 + o2 100 + o3 (80 − 20) + g1 120 = 480; c1 cancelled
    assert body["orders"] == 4
    assert body["revenue"] == "480.00"
    assert body["member_orders"] == 3
    assert body["member_revenue"] == "360.00"
    assert body["member_revenue_share"] == 0.75
    assert body["aov"] == "120.00"  # 360 / 3
    assert body["customers"] == 2  # m1, m3
    assert body["repeat_customers"] == 1  # m1
    assert body["repeat_customer_rate"] == 0.5
    assert body["purchase_frequency"] == 1.5  # 3 orders / 2 customers
    # S: customers of the 31 days before March (m1, m2); E = 2; N = 1 (m3's first order)
    assert body["customers_at_start"] == 2
    assert body["new_customers"] == 1
    assert body["retention_rate"] == 0.5  # (2 − 1) / 2
    assert body["churn_rate"] == 0.5
    # 2 promoters, 1 detractor, 1 passive out of 4: 100 × (2 − 1) / 4
    assert body["nps_responses"] == 4
    assert body["nps"] == 25
    # cost: 150 points × 0.01; incremental revenue: m1's repeat orders o1 + o2 = 300
    assert body["program_cost"] == "1.50"
    assert body["incremental_revenue"] == "300.00"
    assert body["roi"] == pytest.approx((300 * 0.3 - 1.5) / 1.5)  # 59.0
    assert body["gross_margin"] == "0.3"


def test_gross_margin_comes_from_the_program(story: Api) -> None:
    apply_program(story, {**PROGRAM, "analytics": {"gross_margin": 0.5}})
    body = kpis(story, MARCH)
    assert body["roi"] == pytest.approx((300 * 0.5 - 1.5) / 1.5)
    bad = story.put("/v1/program", json={**PROGRAM, "analytics": {"gross_margin": 2}})
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["loc"][:2] == ["analytics", "gross_margin"]


def test_tier_filter_counts_only_members_holding_the_tier(story: Api) -> None:
    gold = kpis(story, MARCH + "&tier=gold")  # m1 only
    assert gold["tier"] == "gold"
    assert gold["points_issued"] == 300
    assert gold["points_redeemed"] == 150
    assert gold["points_expired"] == 100
    assert gold["redemption_rate"] == 0.5
    assert gold["points_outstanding"] == 150
    assert gold["member_revenue"] == "300.00"
    assert gold["revenue"] == "480.00"  # the share is of all orders
    assert gold["member_revenue_share"] == 0.625
    assert (gold["customers"], gold["repeat_customers"]) == (1, 1)
    assert gold["nps"] == 100
    assert gold["members_enrolled"] == 0
    assert gold["activation_rate"] is None  # no member of the tier enrolled in March
    bronze = kpis(story, MARCH + "&tier=bronze")  # m2, m3, m4: never booked into a tier
    assert bronze["points_issued"] == 70  # m3: 80 + 40 − 20 − 40 + 10
    assert bronze["points_expired"] == 50
    assert bronze["customers"] == 1
    assert bronze["nps_responses"] == 3


def test_segment_filter_counts_only_members_in_the_segment(story: Api) -> None:
    assert kpis(story, MARCH + "&segment=vip")["points_issued"] == 0  # nobody in it yet
    ok(story.put("/v1/members/m1", json={"tags": ["vip"]}), 200)
    vip = kpis(story, MARCH + "&segment=vip")  # m1 only, as the gold tier above
    assert vip["segment"] == "vip"
    assert (vip["points_issued"], vip["points_redeemed"], vip["points_expired"]) == (300, 150, 100)
    assert vip["member_revenue"] == "300.00"
    assert (vip["customers"], vip["repeat_customers"]) == (1, 1)
    both = kpis(story, MARCH + "&segment=vip&tier=bronze")  # m1 is gold: nobody
    assert both["customers"] == 0


def test_brand_filter_counts_only_that_brands_orders(story: Api) -> None:
    outlet = kpis(story, MARCH + "&brand=outlet")
    assert (outlet["orders"], outlet["revenue"]) == (1, "120.00")
    assert outlet["member_orders"] == 0
    assert outlet["member_revenue_share"] == 0
    assert outlet["aov"] is None
    assert outlet["repeat_customer_rate"] is None
    assert outlet["purchase_frequency"] is None
    assert outlet["retention_rate"] is None  # no outlet customers before March
    assert outlet["churn_rate"] is None
    main = kpis(story, MARCH + "&brand=main")
    assert (main["orders"], main["member_revenue"], main["customers"]) == (1, "200.00", 1)


def test_no_data_gives_nulls_not_zeros(api: Api) -> None:
    apply_program(api, PROGRAM)
    api.now = "2026-04-02T10:00:00Z"
    body = kpis(api, MARCH)
    for key in (
        "redemption_rate", "breakage_rate", "expiry_rate", "activation_rate",
        "repeat_customer_rate", "retention_rate", "churn_rate", "nps", "member_revenue_share",
        "aov", "purchase_frequency", "roi", "expected_breakage", "expected_breakage_points",
    ):  # fmt: skip
        assert body[key] is None, key
    assert body["points_issued"] == 0
    assert body["points_liability"] == "0.00"
    assert body["program_cost"] == "0.00"
    assert body["revenue"] == "0.00"


def test_a_wallet_without_point_value_has_no_money_figures(api: Api) -> None:
    document = {**PROGRAM, "wallets": {"points": {"precision": 0}, "stars": {"precision": 1}}}
    apply_program(api, document)
    api.now = "2026-03-05T10:00:00Z"
    ok(api.post("/v1/orders", json=order("x1", "m1", "10.00", placed_at="2026-03-05T10:00:00Z")))
    body = kpis(api, MARCH)
    assert body["points_issued"] == 10
    assert body["points_liability"] is None
    assert body["program_cost"] is None
    stars = kpis(api, MARCH + "&wallet=stars")
    assert stars["wallet"] == "stars"
    assert stars["points_issued"] == 0
    assert stars["redemption_rate"] is None


def test_series_buckets_agree_with_the_kpi_endpoint(story: Api) -> None:
    for metric in ("points_issued", "redemption_rate", "revenue", "customers", "retention_rate"):
        response = story.get(f"/v1/analytics/series?metric={metric}&interval=week&{MARCH}")
        assert response.status_code == 200, response.text
        data = response.json()["data"]
        # ISO weeks clipped to March: 03-01 (a Sunday), 03-02 .. 03-30 (Mondays)
        assert [row["period_start"] for row in data] == [
            "2026-03-01", "2026-03-02", "2026-03-09", "2026-03-16", "2026-03-23", "2026-03-30",
        ]  # fmt: skip
        for row in data:
            bucket = kpis(story, f"from={row['period_start']}&to={row['period_end']}")
            assert row["value"] == bucket[metric], (metric, row)
    issued = story.get(f"/v1/analytics/series?metric=points_issued&interval=week&{MARCH}")
    # 03-02..08: 80 + 200; 03-09..15: 100 − 20; 03-16..22: 10 + 40 − 40
    assert [row["value"] for row in issued.json()["data"]] == [0, 280, 80, 10, 0, 0]
    monthly = story.get(
        "/v1/analytics/series?metric=nps&interval=month&from=2026-02-01&to=2026-04-30"
    )
    assert [(r["period_start"], r["value"]) for r in monthly.json()["data"]] == [
        ("2026-02-01", None),
        ("2026-03-01", 25),
        ("2026-04-01", None),
    ]
    daily = story.get(
        "/v1/analytics/series?metric=orders&interval=day&from=2026-03-09&to=2026-03-12"
    )
    assert [r["value"] for r in daily.json()["data"]] == [0, 1, 0, 1]


def test_cohort_matrix_by_month_of_first_order(story: Api) -> None:
    response = story.get("/v1/analytics/cohorts?from=2026-02-01&to=2026-04-30&interval=month")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["periods"] == ["2026-02-01", "2026-03-01", "2026-04-01"]
    cohorts = {row["cohort"]: row for row in body["cohorts"]}
    # February: m1 and m2; both ordered in February, m1 in March, nobody in April
    assert cohorts["2026-02-01"]["size"] == 2
    assert cohorts["2026-02-01"]["members"] == [2, 1, 0]
    assert cohorts["2026-02-01"]["retention"] == [1.0, 0.5, 0.0]
    # March: m3, who ordered again in April
    assert cohorts["2026-03-01"]["size"] == 1
    assert cohorts["2026-03-01"]["retention"] == [1.0, 1.0]
    # April: nobody's first order
    assert cohorts["2026-04-01"] == {
        "cohort": "2026-04-01", "size": 0, "members": [0], "retention": [None],
    }  # fmt: skip
    gold = story.get("/v1/analytics/cohorts?from=2026-02-01&to=2026-04-30&tier=gold").json()
    assert [row["size"] for row in gold["cohorts"]] == [1, 0, 0]


@pytest.mark.parametrize(
    ("path", "loc"),
    [
        ("kpis?from=2026-03-01", ["query", "to"]),
        ("kpis?from=2026-13-01&to=2026-03-31", ["query", "from"]),
        ("kpis?from=yesterday&to=2026-03-31", ["query", "from"]),
        ("kpis?from=2026-03-31&to=2026-03-01", ["query", "from"]),
        ("kpis?from=2026-03-01&to=9999-12-31", ["query", "to"]),
        ("kpis?from=0001-01-01&to=2026-03-31", ["query", "from"]),
        ("cohorts?from=2026-03-01&to=9999-12-31", ["query", "to"]),
        ("kpis?from=2026-03-01&to=2026-03-31&brand=nope", ["query", "brand"]),
        ("kpis?from=2026-03-01&to=2026-03-31&tier=platinum", ["query", "tier"]),
        ("kpis?from=2026-03-01&to=2026-03-31&wallet=miles", ["query", "wallet"]),
        ("kpis?from=2026-03-01&to=2026-03-31&segment=whales", ["query", "segment"]),
        ("series?metric=happiness&from=2026-03-01&to=2026-03-31", ["query", "metric"]),
        ("series?metric=nps&interval=hour&from=2026-03-01&to=2026-03-31", ["query", "interval"]),
        ("series?metric=nps&interval=day&from=2020-01-01&to=2026-03-31", ["query", "interval"]),
        ("series?from=2026-03-01&to=2026-03-31", ["query", "metric"]),
        ("cohorts?from=2026-03-01&to=2026-03-31&interval=year", ["query", "interval"]),
        ("cohorts?from=2026-04-01&to=2026-03-31", ["query", "from"]),
    ],
)
def test_bad_parameters_are_422_with_a_location(api: Api, path: str, loc: list[str]) -> None:
    apply_program(api, PROGRAM)
    response = api.get(f"/v1/analytics/{path}")
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert loc in [e["loc"] for e in response.json()["errors"]]


def test_analytics_needs_an_admin_key(api: Api) -> None:
    apply_program(api, PROGRAM)
    created = api.post("/v1/api-keys", json={"scope": "storefront"})
    assert created.status_code == 201, created.text
    storefront = api.with_key(created.json()["api_key"])
    for path in ("kpis", "series?metric=nps&", "cohorts"):
        sep = "" if path.endswith("&") else "?"
        response = storefront.get(f"/v1/analytics/{path}{sep}{MARCH}")
        assert response.status_code == 403, response.text


def test_daily_cohorts_past_the_bitmask_width(story: Api) -> None:
    # 89 daily periods: more than a member's bitmask holds, so the pairwise query answers
    body = story.get("/v1/analytics/cohorts?from=2026-02-01&to=2026-04-30&interval=day").json()
    rows = {row["cohort"]: row for row in body["cohorts"]}
    assert len(body["periods"]) == 89 > repository.MASK_PERIODS
    # m1: first order 02-10, again 03-05 and 03-10; m3: 03-03, then a1 on 04-01 (c1 cancelled)
    assert [k for k, n in enumerate(rows["2026-02-10"]["members"]) if n] == [0, 23, 28]
    assert [k for k, n in enumerate(rows["2026-03-03"]["members"]) if n] == [0, 29]
    assert sum(row["size"] for row in body["cohorts"]) == 3


def test_cohort_bitmasks_agree_with_distinct_pairs(
    story: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = "/v1/analytics/cohorts?from=2026-02-01&to=2026-03-31&interval=day"
    masked = story.get(path).json()
    monkeypatch.setattr(repository, "MASK_PERIODS", 0)
    assert story.get(path).json() == masked
    assert sum(sum(row["members"]) for row in masked["cohorts"]) == 5
