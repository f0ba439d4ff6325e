"""Badges through HTTP: once, in levels, on events, shown on the member, badge.awarded."""

from __future__ import annotations

from typing import Any

from tests.conftest import BASIC_PROGRAM, Api, apply_program, order

PROGRAM: dict[str, Any] = {
    **BASIC_PROGRAM,
    "badges": [
        {"key": "first-order", "name": "First order", "on": "order.completed",
         "when": "member.stats.orders >= 1"},
        {"key": "big-spender", "name": "Big spender", "on": "order.completed",
         "levels": [
             {"key": "bronze", "when": "member.stats.spend >= 100.0"},
             {"key": "silver", "when": "member.stats.spend >= 200.0"},
             {"key": "gold", "when": "member.stats.spend >= 500.0"},
         ]},
        {"key": "reviewer", "name": "Reviewer", "on": "review.created",
         "when": "event.properties.stars >= 4 && 'first-order' in member.badges"},
    ],
}  # fmt: skip


def awarded(body: dict[str, Any]) -> list[tuple[str, str | None]]:
    return [(e["badge"], e["level"]) for e in body["effects"] if e["type"] == "badge_awarded"]


def test_badges_are_awarded_once_and_in_levels(api: Api) -> None:
    apply_program(api, PROGRAM)
    first = api.post("/v1/orders", json=order("o1", "m1", "120.00"))
    assert first.status_code == 201, first.text
    assert awarded(first.json()) == [("first-order", None), ("big-spender", "bronze")]
    second = api.post("/v1/orders", json=order("o2", "m1", "90.00"))
    assert awarded(second.json()) == [("big-spender", "silver")]  # 210 spent; bronze held
    third = api.post("/v1/orders", json=order("o3", "m1", "10.00"))
    assert awarded(third.json()) == []

    member = api.get("/v1/members/m1").json()
    shown = {b["key"]: b for b in member["badges"]}
    assert set(shown) == {"first-order", "big-spender"}
    assert shown["big-spender"]["level"] == "silver"
    assert shown["big-spender"]["name"] == "Big spender"
    assert shown["first-order"]["level"] is None
    assert shown["first-order"]["awarded_at"]
    listed = api.get("/v1/members/m1/badges")
    assert listed.status_code == 200
    assert [b["key"] for b in listed.json()["data"]] == [b["key"] for b in member["badges"]]

    events = api.get("/v1/domain-events?type=badge.awarded&limit=100").json()["data"]
    assert sorted((e["data"]["badge"], e["data"]["level"]) for e in events) == [
        ("big-spender", "bronze"),
        ("big-spender", "silver"),
        ("first-order", None),
    ]


def test_earning_rules_see_member_badges(api: Api) -> None:
    apply_program(
        api,
        {
            **PROGRAM,
            "rules": [
                *BASIC_PROGRAM["rules"],
                {"key": "badge-bonus", "on": "order.completed",
                 "when": "'big-spender' in member.badges", "earn": {"fixed": 10}},
            ],
        },
    )  # fmt: skip
    first = api.post("/v1/orders", json=order("o1", "m3", "100.00")).json()
    assert first["rules_applied"] == ["base"]  # the badge comes after this order's earning
    second = api.post("/v1/orders", json=order("o2", "m3", "5.00")).json()
    assert second["rules_applied"] == ["base", "badge-bonus"]
    assert second["balances"]["points"]["active"] == 100 + 5 + 10


def test_event_badge_sees_member_badges(api: Api) -> None:
    apply_program(api, PROGRAM)
    review = {"type": "review.created", "member_id": "m2", "properties": {"stars": 5}}
    early = api.post("/v1/events", json={"id": "e1", **review})
    assert early.status_code == 201, early.text
    assert awarded(early.json()) == []  # no first-order badge yet
    api.post("/v1/orders", json=order("o1", "m2", "20.00"))
    late = api.post("/v1/events", json={"id": "e2", **review})
    assert awarded(late.json()) == [("reviewer", None)]
    low = api.post(
        "/v1/events",
        json={"id": "e3", **review, "properties": {"stars": 2}},
    )
    assert awarded(low.json()) == []


def test_no_badges_for_unknown_member_and_bad_conditions(api: Api) -> None:
    apply_program(api, PROGRAM)
    assert api.get("/v1/members/nobody/badges").status_code == 404
    bad = {**BASIC_PROGRAM, "badges": [{"key": "b", "when": "order.total > 1"}]}
    response = api.put("/v1/program", json=bad)
    assert response.status_code == 422, response.text
    assert any(e["loc"] == ["badges", 0, "when"] for e in response.json()["errors"])
    both = {**BASIC_PROGRAM, "badges": [{"key": "b", "when": "true", "levels": [
        {"key": "x", "when": "true"}]}]}  # fmt: skip
    assert api.put("/v1/program", json=both).status_code == 422


def test_badges_gate_rewards(api: Api) -> None:
    """Reward eligibility sees the badges a member holds, as rules do."""
    apply_program(
        api,
        {
            "name": "Badge-gated",
            "currency": "USD",
            "rules": [{"key": "base", "on": "order.completed", "earn": {"per_amount": 1}}],
            "badges": [
                {"key": "regular", "on": "order.completed", "when": "member.stats.orders >= 2"}
            ],
            "rewards": [
                {"key": "insider-gift", "cost": 1, "eligible": "'regular' in member.badges"}
            ],
        },
    )
    api.post("/v1/orders", json=order("o1", "m1", "10"))
    first = api.post("/v1/members/m1/redemptions", json={"id": "r1", "reward": "insider-gift"})
    assert first.json()["code"] == "not_eligible"
    api.post("/v1/orders", json=order("o2", "m1", "10"))
    second = api.post("/v1/members/m1/redemptions", json={"id": "r2", "reward": "insider-gift"})
    assert second.status_code == 201, second.text


def test_badges_and_challenges_are_in_the_member_export(api: Api) -> None:
    apply_program(
        api,
        {
            **BASIC_PROGRAM,
            "badges": [{"key": "first", "on": "order.completed", "when": "true"}],
            "challenges": [
                {
                    "key": "march",
                    "starts_at": "2026-03-01T00:00:00Z",
                    "ends_at": "2026-04-01T00:00:00Z",
                    "steps": [{"key": "buy", "on": "order.completed", "count": 2}],
                }
            ],
        },
    )
    api.now = "2026-03-05T10:00:00Z"
    api.post("/v1/orders", json=order("o1", "m1", "10"))
    exported = api.get("/v1/members/m1/export").json()
    assert [b["key"] for b in exported["badges"]] == ["first"]
    assert exported["challenges"][0]["key"] == "march"
    assert exported["challenges"][0]["steps"][0]["done"] == 1
