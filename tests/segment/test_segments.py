"""Segments through HTTP: membership kept current by orders, refunds, events, profile
upserts and the refresh job; entered/left events once per change; conditions on
``member.segments``; listing, pagination, errors."""

from __future__ import annotations

from typing import Any

from allegiance.db import get_engine
from allegiance.kit.clock import parse_timestamp
from allegiance.worker.runner import run_all
from tests.conftest import BASIC_PROGRAM, Api, apply_program, ledger_ok, order

PROGRAM: dict[str, Any] = {
    **BASIC_PROGRAM,
    "rules": [
        {"key": "base", "on": "order.completed", "earn": {"per_amount": 1}},
        {"key": "vip-bonus", "on": "order.completed", "when": "'vip' in member.segments",
         "earn": {"fixed": 50}},
    ],
    "rewards": [
        {"key": "vip-gift", "cost": 10, "type": "custom", "eligible": "'vip' in member.segments"},
    ],
    "segments": [
        {"key": "vip", "name": "VIP", "description": "spent 100 or more",
         "condition": "member.stats.monetary >= 100.0"},
        {"key": "lapsed", "name": "Lapsed", "condition": "member.stats.recency_days >= 30"},
        {"key": "wholesale", "name": "Wholesale", "condition": "'wholesale' in member.tags"},
        {"key": "shoe-lover", "name": "Shoe lover", "condition": "member.affinity.shoes > 0.5"},
    ],
}  # fmt: skip


def jobs(tenant_id: str, at: str) -> dict[str, int]:
    return run_all(get_engine(), parse_timestamp(at), tenant_id)


def segment_events(api: Api) -> list[tuple[str, str, str]]:
    """(type, segment, member) of every segment event, oldest first."""
    found = []
    for type_ in ("segment.entered", "segment.left"):
        response = api.get(f"/v1/domain-events?type={type_}&limit=500")
        assert response.status_code == 200, response.text
        found += [(e["id"], type_, e["data"]) for e in response.json()["data"]]
    return [(t, d["segment"], d["member_id"]) for _, t, d in found]


def segments(api: Api, member_id: str) -> list[str]:
    response = api.get(f"/v1/members/{member_id}")
    assert response.status_code == 200, response.text
    return response.json()["segments"]


def test_orders_and_refunds_move_a_member_in_and_out(api: Api, tenant: tuple[str, str]) -> None:
    apply_program(api, PROGRAM)
    api.now = "2026-03-01T10:00:00Z"
    first = api.post("/v1/orders", json=order("o1", "m1", "60.00"))
    assert first.status_code == 201, first.text
    assert segments(api, "m1") == []
    second = api.post("/v1/orders", json=order("o2", "m1", "50.00"))
    # the order is evaluated with the segments held before it (like the tier)
    assert "vip-bonus" not in second.json()["rules_applied"]
    assert segments(api, "m1") == ["vip"]
    third = api.post("/v1/orders", json=order("o3", "m1", "5.00"))
    assert "vip-bonus" in third.json()["rules_applied"]
    assert segment_events(api) == [("segment.entered", "vip", "m1")]

    refund = api.post("/v1/orders/o3/refunds", json={"id": "r1", "amount": "5.00"})
    assert refund.status_code == 201, refund.text
    assert segments(api, "m1") == ["vip"]  # 110 spent: still in
    refund = api.post("/v1/orders/o2/refunds", json={"id": "r2", "amount": "20.00"})
    assert refund.status_code == 201, refund.text
    assert segments(api, "m1") == []
    cancel = api.post("/v1/orders/o1/cancel", json={})
    assert cancel.status_code in (200, 201), cancel.text
    assert segment_events(api) == [("segment.entered", "vip", "m1"), ("segment.left", "vip", "m1")]
    assert ledger_ok(tenant[0]) == []


def test_profile_upsert_and_events_reevaluate(api: Api) -> None:
    apply_program(api, PROGRAM)
    api.now = "2026-03-01T10:00:00Z"
    created = api.put("/v1/members/m1", json={"tags": ["wholesale"]})
    assert created.status_code == 201, created.text
    assert created.json()["segments"] == ["wholesale"]
    assert api.put("/v1/members/m1", json={"tags": ["wholesale", "b2b"]}).status_code == 200
    assert api.put("/v1/members/m1", json={"tags": []}).json()["segments"] == []

    # purchases: one shoes line, one hats line -> shoes 0.5, not above it
    body = order("o1", "m1", "10.00", "10.00")
    body["items"][0]["category"] = "shoes"
    body["items"][1]["category"] = "hats"
    assert api.post("/v1/orders", json=body).status_code == 201
    assert segments(api, "m1") == []
    viewed = api.post(
        "/v1/events",
        json={"id": "e1", "type": "product.viewed", "member_id": "m1",
              "properties": {"sku": "boot-1", "category": "shoes"}},
    )  # fmt: skip
    assert viewed.status_code == 201, viewed.text
    assert segments(api, "m1") == ["shoe-lover"]
    assert segment_events(api) == [
        ("segment.entered", "wholesale", "m1"),
        ("segment.entered", "shoe-lover", "m1"),
        ("segment.left", "wholesale", "m1"),
    ]


def test_job_applies_time_and_program_changes(api: Api, tenant: tuple[str, str]) -> None:
    apply_program(api, PROGRAM)
    api.now = "2026-03-01T10:00:00Z"
    assert api.post("/v1/orders", json=order("o1", "m1", "10.00")).status_code == 201
    assert api.put("/v1/members/m2", json={"email": "m2@example.com"}).status_code == 201
    assert jobs(tenant[0], "2026-03-20T00:00:00Z")["segments"] == 2
    assert segments(api, "m1") == []
    assert jobs(tenant[0], "2026-03-20T06:00:00Z")["segments"] == 0  # evaluated recently
    jobs(tenant[0], "2026-04-01T00:00:00Z")  # 30 days and 14 hours without an order
    assert segments(api, "m1") == ["lapsed"]
    assert segments(api, "m2") == []  # never ordered: recency is null, no threshold matches
    jobs(tenant[0], "2026-04-03T00:00:00Z")
    assert segment_events(api) == [("segment.entered", "lapsed", "m1")]
    api.now = "2026-04-05T00:00:00Z"
    assert api.post("/v1/orders", json=order("o2", "m1", "10.00")).status_code == 201
    assert segments(api, "m1") == []

    # a program change takes effect at the next run, without activity
    everyone = {"key": "everyone", "name": "All", "condition": "true"}
    changed = {**PROGRAM, "segments": [*PROGRAM["segments"], everyone]}
    apply_program(api, changed)
    assert jobs(tenant[0], "2026-04-05T01:00:00Z")["segments"] == 2
    assert segments(api, "m1") == ["everyone"] and segments(api, "m2") == ["everyone"]
    apply_program(api, {**PROGRAM, "segments": []})
    jobs(tenant[0], "2026-04-05T02:00:00Z")
    assert segments(api, "m1") == []
    left = [e for e in segment_events(api) if e[1] == "everyone"]
    assert sorted(left) == [
        ("segment.entered", "everyone", "m1"),
        ("segment.entered", "everyone", "m2"),
        ("segment.left", "everyone", "m1"),
        ("segment.left", "everyone", "m2"),
    ]


def test_reward_gated_by_a_segment(api: Api) -> None:
    apply_program(api, PROGRAM)
    api.now = "2026-03-01T10:00:00Z"
    assert api.post("/v1/orders", json=order("o1", "m1", "40.00")).status_code == 201

    def gift() -> dict[str, Any]:
        rewards = api.get("/v1/members/m1/rewards").json()["data"]
        return next(r for r in rewards if r["key"] == "vip-gift")

    assert gift()["eligible"] is False
    refused = api.post("/v1/members/m1/redemptions", json={"id": "x1", "reward": "vip-gift"})
    assert refused.status_code == 403 and refused.json()["code"] == "not_eligible"
    assert api.post("/v1/orders", json=order("o2", "m1", "60.00")).status_code == 201
    assert gift()["eligible"] is True
    redeemed = api.post("/v1/members/m1/redemptions", json={"id": "x2", "reward": "vip-gift"})
    assert redeemed.status_code == 201, redeemed.text


def test_scores_from_the_scoring_table(api: Api, tenant: tuple[str, str]) -> None:
    from allegiance.db import write_session
    from allegiance.insight.models import MemberScore

    apply_program(
        api,
        {**BASIC_PROGRAM, "segments": [
            {"key": "at-risk", "name": "At risk",
             "condition": "member.stats.churn_risk == 'high' && member.stats.p_alive < 0.3"},
            {"key": "valuable", "name": "Valuable", "condition": "member.stats.clv >= 500.0"},
        ]},
    )  # fmt: skip
    api.now = "2026-03-01T10:00:00Z"
    assert api.put("/v1/members/m1", json={}).status_code == 201
    assert segments(api, "m1") == []  # no scores yet: null values match nothing
    with write_session(get_engine()) as session:
        session.add(
            MemberScore(
                tenant_id=tenant[0], member_id="m1", computed_at=parse_timestamp(api.now),
                orders_count=3, monetary_minor=90000, clv_minor=75000, p_alive=0.2,
                churn_risk="high", rfm_segment="at_risk",
            )
        )  # fmt: skip
    assert api.put("/v1/members/m1", json={"name": "Ann"}).json()["segments"] == [
        "at-risk",
        "valuable",
    ]


def test_listing_and_pagination(api: Api) -> None:
    apply_program(api, PROGRAM)
    api.now = "2026-03-01T10:00:00Z"
    for n in range(5):
        assert api.put(f"/v1/members/w{n}", json={"tags": ["wholesale"]}).status_code == 201
    assert api.put("/v1/members/r1", json={}).status_code == 201
    listed = api.get("/v1/segments")
    assert listed.status_code == 200, listed.text
    counts = {s["key"]: s["member_count"] for s in listed.json()["data"]}
    assert counts == {"vip": 0, "lapsed": 0, "wholesale": 5, "shoe-lover": 0}
    assert listed.json()["data"][0]["name"] == "VIP"

    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        path = "/v1/segments/wholesale/members?limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = api.get(path)
        assert page.status_code == 200, page.text
        seen += [m["member_id"] for m in page.json()["data"]]
        pages += 1
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break
    assert seen == ["w0", "w1", "w2", "w3", "w4"] and pages == 3

    missing = api.get("/v1/segments/nope/members")
    assert missing.status_code == 404 and missing.json()["code"] == "segment_not_found"
    bad = api.get("/v1/segments/wholesale/members?cursor=%%%")
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["loc"] == ["query", "cursor"]


def test_bad_segment_conditions_are_located(api: Api) -> None:
    document = {
        **BASIC_PROGRAM,
        "segments": [
            {"key": "ok", "name": "Fine", "condition": "member.stats.frequency >= 2"},
            {"key": "typo", "name": "Typo", "condition": "member.stats.monetry > 1.0"},
            {"key": "syntax", "name": "Syntax", "condition": "member.tags.exists(t,"},
            {"key": "order", "name": "Order", "condition": "order.total > 1.0"},
            {"key": "ok", "name": "Again", "condition": "true"},
        ],
    }
    response = api.put("/v1/program", json=document)
    assert response.status_code == 422, response.text
    locs = [e["loc"] for e in response.json()["errors"]]
    assert locs == [
        ["segments", 1, "condition"],
        ["segments", 2, "condition"],
        ["segments", 3, "condition"],
        ["segments", 4, "key"],
    ]
    missing_name = api.put(
        "/v1/program", json={**BASIC_PROGRAM, "segments": [{"key": "x", "condition": "true"}]}
    )
    assert missing_name.status_code == 422
    assert missing_name.json()["errors"][0]["loc"] == ["segments", 0, "name"]
