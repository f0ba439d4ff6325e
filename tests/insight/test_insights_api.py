"""CLV fitting, member insights, churn early warning and the at-risk list through HTTP."""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
import pytest

from allegiance.db import get_engine
from allegiance.insight import clv, history, tasks
from allegiance.kit.clock import parse_timestamp
from allegiance.kit.pagination import encode_cursor
from tests.conftest import BASIC_PROGRAM, Api, apply_program, order

START = date(2026, 1, 1)


def post_orders(api: Api, member_id: str, days: list[int], amounts: list[str]) -> None:
    for day, amount in zip(days, amounts, strict=True):
        placed = datetime.combine(START + timedelta(days=day), datetime.min.time())
        api.now = (placed + timedelta(hours=12)).isoformat() + "Z"
        body = order(f"{member_id}-{day}", member_id, amount, placed_at=api.now)
        response = api.post("/v1/orders", json=body)
        assert response.status_code == 201, response.text


def population(seed: int, members: int = 40) -> dict[str, tuple[list[int], list[str]]]:
    """Members who first buy in January 2026 and come back as the BG/NBD and Gamma-Gamma
    models assume: each has an own purchase rate, dropout chance and spend level."""
    rng = random.Random(seed)
    out: dict[str, tuple[list[int], list[str]]] = {}
    for i in range(members):
        rate = rng.gammavariate(1.2, 1 / 25)  # purchases per day
        dropout = rng.betavariate(1.0, 3.0)
        spend_scale = 1 / rng.gammavariate(4.0, 1 / 15.0)
        day = rng.randrange(0, 31)
        days = [day]
        while rng.random() >= dropout:
            day += max(1, round(rng.expovariate(rate)))
            if day > 175:
                break
            days.append(day)
        amounts = [f"{rng.gammavariate(6.0, spend_scale) + 1:.2f}" for _ in days]
        out[f"p{i:02d}"] = (days, amounts)
    return out


def load(api: Api, people: dict[str, tuple[list[int], list[str]]]) -> None:
    apply_program(api, BASIC_PROGRAM)
    for member_id, (days, amounts) in people.items():
        post_orders(api, member_id, days, amounts)


def fit(api: Api, at: str, **body: Any) -> Any:
    api.now = at
    return api.post("/v1/analytics/clv/fit", json=body)


def events_of(api: Api, type_: str) -> list[dict[str, Any]]:
    response = api.get(f"/v1/domain-events?type={type_}&limit=500")
    assert response.status_code == 200, response.text
    return [e["data"] for e in response.json()["data"]]


def test_fit_through_http_matches_the_model(api: Api) -> None:
    people = population(seed=3)
    load(api, people)
    response = fit(
        api,
        "2026-07-01T09:00:00Z",
        calibration_end="2026-06-30",
        time_unit="week",
        horizon=26,
        discount_rate=0.1,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    # the same fit on the same histories computed here
    index = {m: i for i, m in enumerate(people)}
    customers, days, values = [], [], []
    for member_id, (ds, amounts) in people.items():
        for d, amount in zip(ds, amounts, strict=True):
            customers.append(index[member_id])
            days.append((START + timedelta(days=d)).toordinal())
            values.append(float(amount))
    s = history.summarise(
        np.array(customers),
        np.array(days),
        np.array(values),
        customers=len(people),
        end_day=date(2026, 6, 30).toordinal(),
        time_unit="week",
    )
    expected = clv.fit_bgnbd(s.x, s.t_x, s.T)
    assert body["converged"] is True
    assert body["customers"] == len(people)
    assert body["repeat_buyers"] == int((s.x > 0).sum())
    for key in ("r", "alpha", "a", "b"):
        assert body["parameters"][key] == pytest.approx(getattr(expected, key), rel=1e-6)
    assert body["log_likelihood"]["bgnbd"] == pytest.approx(expected.log_likelihood, abs=1e-6)
    assert body["parameters"]["q"] > 1
    assert (body["time_unit"], body["horizon"], body["discount_rate"]) == ("week", 26, 0.1)
    assert body["calibration_end"] == "2026-06-30"
    assert body["summary"]["members_scored"] == len(people)
    assert float(body["summary"]["expected_value"]) > 0

    insights = api.get("/v1/members/p00/insights")
    assert insights.status_code == 200, insights.text
    view = insights.json()
    assert set(view) >= {"rfm", "clv", "churn", "stats", "recommendations"}
    assert set(view["rfm"]) == {"r", "f", "m", "score", "segment"}
    assert all(1 <= view["rfm"][k] <= 5 for k in ("r", "f", "m"))
    assert view["rfm"]["score"] == f"{view['rfm']['r']}{view['rfm']['f']}{view['rfm']['m']}"
    assert view["rfm"]["segment"]
    assert set(view["clv"]) >= {
        "expected_purchases",
        "expected_value",
        "horizon",
        "time_unit",
        "discount_rate",
        "p_alive",
        "model_fitted_at",
    }
    assert view["clv"]["horizon"] == 26 and view["clv"]["time_unit"] == "week"
    assert view["clv"]["model_fitted_at"].startswith("2026-07-01T09:00:00")
    assert 0 < view["clv"]["p_alive"] <= 1
    assert set(view["churn"]) == {"risk", "reason", "days_since_last_order", "threshold_days"}
    assert view["churn"]["risk"] in ("low", "medium", "high")
    last_day = START + timedelta(days=people["p00"][0][-1])
    assert view["churn"]["days_since_last_order"] == (date(2026, 7, 1) - last_day).days
    assert view["stats"]["orders_count"] == len(people["p00"][0])
    # the same suggestions the recommendation endpoint gives, top 5
    suggested = api.get("/v1/members/p00/recommendations?limit=5").json()
    assert view["recommendations"] == suggested["products"]
    assert view["next_best_reward"] == suggested["next_best_reward"]


def test_refit_and_scoring_jobs(api: Api, tenant: tuple[str, str]) -> None:
    load(api, population(seed=4))
    first = fit(api, "2026-07-01T00:00:00Z", time_unit="day", horizon=90)
    assert first.status_code == 200, first.text
    assert first.json()["calibration_end"] == "2026-07-01"  # default: today
    engine = get_engine()
    # a week later nothing new: the refit runs, same parameters, settings kept
    assert tasks.refit_models(engine, tenant[0], parse_timestamp("2026-07-03T00:00:00Z")) == 0
    assert tasks.refit_models(engine, tenant[0], parse_timestamp("2026-07-09T00:00:00Z")) == 1
    api.now = "2026-07-09T00:00:00Z"
    # scoring runs daily: not again within 24 h of the last run
    assert tasks.score_members(engine, tenant[0], parse_timestamp("2026-07-09T00:00:00Z")) > 0
    assert tasks.score_members(engine, tenant[0], parse_timestamp("2026-07-09T12:00:00Z")) == 0
    view = api.get("/v1/members/p01/insights").json()
    assert view["clv"]["time_unit"] == "day" and view["clv"]["horizon"] == 90
    assert view["clv"]["model_fitted_at"].startswith("2026-07-09")


def test_churn_flags_and_events(api: Api, tenant: tuple[str, str]) -> None:
    load(api, population(seed=5))
    # a regular buyer every 10 days who stops: last order on day 100
    post_orders(api, "regular-late", [60, 70, 80, 90, 100], ["20.00"] * 5)
    # a regular buyer every 10 days still on time at day 181
    post_orders(api, "regular-on-time", [141, 151, 161, 171, 178], ["20.00"] * 5)
    # two orders a week apart, long ago; and two recent ones
    post_orders(api, "two-gone", [5, 12], ["30.00", "30.00"])
    post_orders(api, "two-recent", [160, 175], ["30.00", "30.00"])
    response = fit(api, "2026-07-01T00:00:00Z", calibration_end="2026-06-30", horizon=26)
    assert response.status_code == 200, response.text
    params = response.json()["parameters"]

    def insight(member_id: str) -> dict[str, Any]:
        got = api.get(f"/v1/members/{member_id}/insights")
        assert got.status_code == 200, got.text
        return got.json()

    late = insight("regular-late")["churn"]
    assert (late["risk"], late["reason"], late["threshold_days"]) == ("high", "own_interval", 10)
    on_time = insight("regular-on-time")
    assert on_time["churn"]["risk"] == "low"
    assert on_time["churn"]["reason"] == "own_interval"
    gone = insight("two-gone")
    assert gone["churn"]["reason"] == "p_alive"
    model = clv.BgNbd(params["r"], params["alpha"], params["a"], params["b"], 0, True)
    x, t_x, T = np.array([1.0]), np.array([1.0]), np.array([(181 - 5) / 7])
    assert gone["clv"]["p_alive"] == pytest.approx(float(clv.p_alive(model, x, t_x, T)[0]))
    assert gone["churn"]["risk"] in ("medium", "high")
    recent = insight("two-recent")["churn"]
    assert (recent["risk"], recent["reason"]) == ("low", "p_alive")

    def changes(member_id: str) -> list[dict[str, Any]]:
        return [e for e in events_of(api, "churn.risk_changed") if e["member_id"] == member_id]

    first = changes("regular-late")
    assert len(first) == 1
    assert first[0]["from"] is None and first[0]["to"] == "high"
    assert first[0]["reason"] == "own_interval" and float(first[0]["clv"]) >= 0
    assert changes("regular-on-time") == []  # a first score of low says nothing
    engine = get_engine()
    # rescoring without a change emits nothing
    tasks.score_members(engine, tenant[0], parse_timestamp("2026-07-01T06:00:00Z"), force=True)
    assert len(changes("regular-late")) == 1
    # the regular buyer comes back: high → low, once
    post_orders(api, "regular-late", [185], ["20.00"])
    tasks.score_members(engine, tenant[0], parse_timestamp("2026-07-06T00:00:00Z"), force=True)
    tasks.score_members(engine, tenant[0], parse_timestamp("2026-07-06T01:00:00Z"), force=True)
    after = changes("regular-late")
    assert [(e["from"], e["to"]) for e in after] == [(None, "high"), ("high", "low")]
    # the on-time buyer misses its rhythm: 15 days after day 178 (2026-06-28) is over its
    # 90th-percentile gap (10 days) but under twice that → medium
    tasks.score_members(engine, tenant[0], parse_timestamp("2026-07-13T00:00:00Z"), force=True)
    assert [(e["from"], e["to"]) for e in changes("regular-on-time")] == [("low", "medium")]

    # the at-risk list: medium and high only, highest CLV first, pages chained by cursor
    api.now = "2026-07-13T00:00:00Z"
    seen: list[dict[str, Any]] = []
    cursor = None
    for _ in range(50):
        path = "/v1/analytics/churn/at-risk?limit=3" + (f"&cursor={cursor}" if cursor else "")
        page = api.get(path)
        assert page.status_code == 200, page.text
        seen.extend(page.json()["data"])
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break
    assert seen and all(row["risk"] in ("medium", "high") for row in seen)
    values = [float(row["clv"]) for row in seen]
    assert values == sorted(values, reverse=True)
    assert len({row["member_id"] for row in seen}) == len(seen)
    assert "regular-on-time" in {row["member_id"] for row in seen}
    threshold = values[len(values) // 2]
    rich = api.get(f"/v1/analytics/churn/at-risk?min_value={threshold}&limit=500").json()["data"]
    assert rich and all(float(row["clv"]) >= threshold for row in rich)
    assert len(rich) < len(seen) or threshold == values[-1]


def test_rfm_segments_from_the_program(api: Api) -> None:
    document = dict(BASIC_PROGRAM)
    document["analytics"] = {
        "rfm": {"segments": [{"name": "Fans", "r": [4, 5], "f": [4, 5]}]},
        "churn": {"gap_percentile": 75},
    }
    apply_program(api, document)
    for member_id, (days, amounts) in population(seed=6).items():
        post_orders(api, member_id, days, amounts)
    response = fit(api, "2026-07-01T00:00:00Z", horizon=12)
    assert response.status_code == 200, response.text
    segments = set()
    for i in range(40):
        rfm = api.get(f"/v1/members/p{i:02d}/insights").json()["rfm"]
        fan = rfm["r"] >= 4 and rfm["f"] >= 4
        assert rfm["segment"] == ("Fans" if fan else None)
        segments.add(rfm["segment"])
    assert segments == {"Fans", None}
    bad = dict(BASIC_PROGRAM)
    bad["analytics"] = {"rfm": {"segments": [{"name": "Odd", "r": [5, 1], "f": [1, 5]}]}}
    refused = api.put("/v1/program", json=bad)
    assert refused.status_code == 422, refused.text


def test_bad_input(api: Api, tenant: tuple[str, str]) -> None:
    apply_program(api, BASIC_PROGRAM)
    api.now = "2026-03-01T00:00:00Z"
    for body in (
        {"horizon": 0},
        {"horizon": -3},
        {"horizon": 10, "time_unit": "month"},
        {"horizon": 10, "discount_rate": 1.5},
        {"horizon": 10, "calibration_end": "not a date"},
        {"horizon": 100000},
        {"time_unit": "week"},
        {"horizon": 10, "surprise": True},
    ):
        response = api.post("/v1/analytics/clv/fit", json=body)
        assert response.status_code == 422, (body, response.text)
        assert response.json()["errors"], response.text
    future = api.post(
        "/v1/analytics/clv/fit", json={"horizon": 10, "calibration_end": "2026-03-02"}
    )
    assert future.status_code == 422 and future.json()["errors"][0]["loc"][-1] == "calibration_end"
    # no data at all, then a single repeat buyer: not enough to fit
    empty = api.post("/v1/analytics/clv/fit", json={"horizon": 10})
    assert (empty.status_code, empty.json()["code"]) == (422, "clv_not_enough_data")
    post_orders(api, "solo", [1, 8], ["10.00", "12.00"])
    post_orders(api, "once", [3], ["10.00"])
    api.now = "2026-03-01T00:00:00Z"
    single = api.post("/v1/analytics/clv/fit", json={"horizon": 10})
    assert (single.status_code, single.json()["code"]) == (422, "clv_not_enough_data")
    # a cancelled order does not count
    post_orders(api, "duo", [2], ["15.00"])
    extra = order("duo-x", "duo", "25.00", placed_at="2026-01-20T12:00:00Z")
    api.now = "2026-01-20T13:00:00Z"
    assert api.post("/v1/orders", json=extra).status_code == 201
    assert api.post("/v1/orders/duo-x/cancel", json={}).status_code in (200, 201)
    api.now = "2026-03-01T00:00:00Z"
    still = api.post("/v1/analytics/clv/fit", json={"horizon": 10})
    assert (still.status_code, still.json()["code"]) == (422, "clv_not_enough_data")

    missing = api.get("/v1/members/nobody/insights")
    assert missing.status_code == 404
    assert api.get("/v1/analytics/churn/at-risk?cursor=zz!").status_code == 422
    assert api.get("/v1/analytics/churn/at-risk?min_value=abc").status_code == 422
    assert api.get("/v1/analytics/churn/at-risk?min_value=1.005").status_code == 422
    assert api.get("/v1/analytics/churn/at-risk?limit=0").status_code == 422
    assert api.get("/v1/analytics/churn/at-risk?min_value=1e40").status_code == 422
    assert api.get("/v1/analytics/churn/at-risk?min_value=NaN").status_code == 422
    huge = encode_cursor([10**30, "x"])
    assert api.get(f"/v1/analytics/churn/at-risk?cursor={huge}").status_code == 422
    # a member never scored: the shape is there, with empty values
    view = api.get("/v1/members/once/insights").json()
    assert view["rfm"]["score"] is None and view["churn"]["risk"] is None
    suggested = api.get("/v1/members/once/recommendations?limit=5").json()
    assert view["recommendations"] == suggested["products"]


def test_scopes(api: Api, tenant: tuple[str, str]) -> None:
    apply_program(api, BASIC_PROGRAM)
    created = api.post("/v1/api-keys", json={"scope": "storefront"})
    assert created.status_code == 201, created.text
    store = api.with_key(created.json()["api_key"])
    assert store.post("/v1/analytics/clv/fit", json={"horizon": 5}).status_code == 403
    assert store.get("/v1/analytics/churn/at-risk").status_code == 403
    assert api.with_key(None).get("/v1/analytics/churn/at-risk").status_code == 401


def test_jobs_are_scheduled_before_the_outbox() -> None:
    from allegiance.worker.schedule import jobs

    names = [job.name for job in jobs()]
    assert names.index("clv_refit") < names.index("member_scores") < names.index("outbox")


def test_failed_refit_keeps_the_model(
    api: Api, tenant: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from allegiance.config import reset_settings

    load(api, population(seed=3))
    fitted = fit(api, "2026-07-01T00:00:00Z", horizon=26)
    assert fitted.status_code == 200, fitted.text
    engine = get_engine()
    monkeypatch.setenv("ALLEGIANCE_INSIGHT_MAX_ORDERS", "10")
    reset_settings()
    try:
        at = parse_timestamp("2026-07-09T00:00:00Z")
        assert tasks.refit_models(engine, tenant[0], at) == 0
        # not tried again within the refit period
        assert tasks.refit_models(engine, tenant[0], at + timedelta(days=3)) == 0
    finally:
        monkeypatch.delenv("ALLEGIANCE_INSIGHT_MAX_ORDERS")
        reset_settings()
    from allegiance.db import read_session
    from allegiance.insight import repository

    with read_session(engine) as session:
        model = repository.get_model(session, tenant[0])
        assert model is not None and model.fitted_at is not None
        assert model.fitted_at.isoformat().startswith("2026-07-01")
        assert model.summary["refit_error"] == "clv_too_much_data"
        assert model.r == fitted.json()["parameters"]["r"]
    assert tasks.refit_models(engine, tenant[0], parse_timestamp("2026-07-12T00:00:00Z")) == 0
    # a period after the failure it is tried again: by then these few histories no longer
    # have an interior maximum (the dropout parameters run off), so it fails again, with the
    # reason recorded and the model still kept
    assert tasks.refit_models(engine, tenant[0], parse_timestamp("2026-07-16T00:00:00Z")) == 0
    with read_session(engine) as session:
        model = repository.get_model(session, tenant[0])
        assert model is not None
        assert model.summary["refit_error"] == "clv_fit_not_converged"
        assert model.summary["refit_failed_at"].startswith("2026-07-16")
        assert model.r == fitted.json()["parameters"]["r"]
