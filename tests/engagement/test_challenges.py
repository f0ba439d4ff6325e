"""Challenges through HTTP: steps in a time box, streaks in the program's time zone,
rewards once, GET /v1/members/{id}/challenges, challenge.completed."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from allegiance.engagement.challenges import period_index
from tests.conftest import BASIC_PROGRAM, Api, apply_program, ledger_ok, order

MARCH = {"starts_at": "2026-03-01T00:00:00Z", "ends_at": "2026-04-01T00:00:00Z"}

STEPS_PROGRAM: dict[str, Any] = {
    **BASIC_PROGRAM,
    "challenges": [
        {
            "key": "march-madness",
            "name": "March madness",
            **MARCH,
            "steps": [
                {"key": "orders", "on": "order.completed", "when": "order.total > 50.0",
                 "count": 3},
                {"key": "reviews", "on": "review.created", "count": 2},
            ],
            "reward": {"points": 100},
        }
    ],
}  # fmt: skip


def kinds(body: dict[str, Any]) -> list[str]:
    return [e["type"] for e in body["effects"] if e["type"].startswith("challenge_")]


def progress(api: Api, member_id: str, key: str) -> dict[str, Any]:
    response = api.get(f"/v1/members/{member_id}/challenges")
    assert response.status_code == 200, response.text
    return next(c for c in response.json()["data"] if c["key"] == key)


def test_steps_complete_once_with_points(api: Api, tenant: tuple[str, str]) -> None:
    apply_program(api, STEPS_PROGRAM)
    api.now = "2026-03-31T12:00:00Z"

    def buy(order_id: str, amount: str, day: str) -> dict[str, Any]:
        response = api.post(
            "/v1/orders", json=order(order_id, "m1", amount, placed_at=f"2026-{day}T10:00:00Z")
        )
        assert response.status_code == 201, response.text
        return response.json()

    assert kinds(buy("feb", "80.00", "02-27")) == []  # before the box
    assert kinds(buy("small", "40.00", "03-02")) == []  # the step's condition fails
    assert kinds(buy("o1", "60.00", "03-03")) == ["challenge_progressed"]
    buy("o2", "70.00", "03-04")
    seen = progress(api, "m1", "march-madness")
    assert seen["status"] == "active"
    assert seen["steps"] == [
        {"key": "orders", "count": 3, "done": 2},
        {"key": "reviews", "count": 2, "done": 0},
    ]
    assert seen["completed"] is False and seen["completed_at"] is None
    buy("o3", "55.00", "03-05")
    buy("o4", "55.00", "03-06")  # a fourth order does not count past the step's goal
    for i in range(2):
        response = api.post(
            "/v1/events",
            json={"id": f"r{i}", "type": "review.created", "member_id": "m1",
                  "occurred_at": "2026-03-10T10:00:00Z"},
        )  # fmt: skip
        assert response.status_code == 201, response.text
    body = response.json()
    assert kinds(body) == ["challenge_progressed", "challenge_completed"]
    done = next(e for e in body["effects"] if e["type"] == "challenge_completed")
    assert done["reward"] == {"points": 100, "wallet": "points"}
    points_before = body["balances"]["points"]["active"]
    more = buy("o5", "99.00", "03-20")
    assert kinds(more) == []  # completed: no more progress, no second reward
    assert more["balances"]["points"]["active"] == points_before + 99

    seen = progress(api, "m1", "march-madness")
    assert seen["completed"] is True and seen["completed_at"]
    assert [s["done"] for s in seen["steps"]] == [3, 2]
    rewards = [
        t for t in api.get("/v1/members/m1/ledger?limit=100").json()["data"]
        if t["source"]["type"] == "challenge"
    ]  # fmt: skip
    assert [t["amount"] for t in rewards] == [100]
    events = api.get("/v1/domain-events?type=challenge.completed").json()["data"]
    assert [(e["data"]["member_id"], e["data"]["challenge"]) for e in events] == [
        ("m1", "march-madness")
    ]
    assert ledger_ok(tenant[0]) == []


STREAK_PROGRAM: dict[str, Any] = {
    **BASIC_PROGRAM,
    "timezone": "America/New_York",
    "badges": [{"key": "regular", "name": "Regular", "when": "false"}],
    "challenges": [
        {
            "key": "three-weeks",
            "starts_at": "2026-03-01T00:00:00Z",
            "ends_at": "2026-05-01T00:00:00Z",
            "streak": {"period": "week", "length": 3, "on": "workout.logged"},
            "reward": {"badge": "regular"},
        }
    ],
}


def test_streak_restarts_after_a_missing_week_in_the_program_timezone(api: Api) -> None:
    apply_program(api, STREAK_PROGRAM)

    def log(event_id: str, at: str) -> dict[str, Any]:
        api.now = at
        response = api.post(
            "/v1/events",
            json={"id": event_id, "type": "workout.logged", "member_id": "m1", "occurred_at": at},
        )
        assert response.status_code == 201, response.text
        return response.json()

    def streak() -> dict[str, Any]:
        return dict(progress(api, "m1", "three-weeks")["streak"])

    log("w1", "2026-03-04T15:00:00Z")  # week of Mon 2 March
    # Sunday 15 March 23:30 in New York (EDT) is already Monday 16 March in UTC: week 2
    log("w2", "2026-03-16T03:30:00Z")
    assert streak() == {"period": "week", "length": 3, "current": 2, "best": 2}
    # nothing in the week of 16 March: the streak restarts
    log("w4", "2026-03-24T15:00:00Z")
    assert streak()["current"] == 1 and streak()["best"] == 2
    log("w5", "2026-03-30T15:00:00Z")
    # Sunday 5 April 23:59 in New York: still the week of 30 March, nothing changes
    same = log("w5b", "2026-04-06T03:59:00Z")
    assert [e["type"] for e in same["effects"]] == []
    assert streak()["current"] == 2
    # Monday 6 April 00:00 in New York: the third week in a row
    done = log("w6", "2026-04-06T04:00:00Z")
    assert [e["type"] for e in done["effects"]] == [
        "challenge_progressed", "badge_awarded", "challenge_completed",
    ]  # fmt: skip
    assert streak() == {"period": "week", "length": 3, "current": 3, "best": 3}
    member = api.get("/v1/members/m1").json()
    assert [b["key"] for b in member["badges"]] == ["regular"]


def test_streak_shows_zero_once_a_period_is_missed(api: Api) -> None:
    apply_program(api, STREAK_PROGRAM)
    api.now = "2026-03-04T15:00:00Z"
    api.post(
        "/v1/events",
        json={"id": "w1", "type": "workout.logged", "member_id": "m1",
              "occurred_at": api.now},
    )  # fmt: skip
    api.now = "2026-03-10T15:00:00Z"  # the next week: the streak can still go on
    assert progress(api, "m1", "three-weeks")["streak"]["current"] == 1
    api.now = "2026-03-17T15:00:00Z"  # a whole week without a workout
    seen = progress(api, "m1", "three-weeks")
    assert seen["streak"]["current"] == 0 and seen["streak"]["best"] == 1


def test_month_periods_follow_the_program_timezone() -> None:
    # 1 April 03:30 UTC is still 31 March in New York
    at = datetime(2026, 4, 1, 3, 30, tzinfo=UTC)
    assert period_index("month", at, "America/New_York") == 2026 * 12 + 2
    assert period_index("month", at, "UTC") == 2026 * 12 + 3


def test_challenge_documents_are_checked(api: Api) -> None:
    bad = {
        **BASIC_PROGRAM,
        "challenges": [
            {
                "key": "c",
                "starts_at": "2026-03-01T00:00:00Z",
                "ends_at": "2026-02-01T00:00:00Z",
                "steps": [{"key": "s", "on": "review.created", "when": "order.total > 1.0"}],
                "reward": {"badge": "missing"},
            }
        ],
    }
    response = api.put("/v1/program", json=bad)
    assert response.status_code == 422, response.text
    locs = [e["loc"] for e in response.json()["errors"]]
    assert ["challenges", 0, "ends_at"] in locs
    assert ["challenges", 0, "steps", 0, "when"] in locs
    assert ["challenges", 0, "reward", "badge"] in locs
    assert api.get("/v1/members/nobody/challenges").status_code == 404


def test_a_catalog_reward_is_issued_as_a_coupon(api: Api) -> None:
    apply_program(
        api,
        {
            **BASIC_PROGRAM,
            "rewards": [{"key": "ten-off", "cost": 5, "type": "discount_fixed", "value": 10}],
            "challenges": [
                {
                    "key": "two-reviews",
                    **MARCH,
                    "steps": [{"key": "r", "on": "review.created", "count": 2}],
                    "reward": {"reward": "ten-off"},
                }
            ],
        },
    )
    api.now = "2026-03-10T12:00:00Z"
    for i in range(2):
        response = api.post(
            "/v1/events", json={"id": f"r{i}", "type": "review.created", "member_id": "m1"}
        )
        assert response.status_code == 201, response.text
    done = next(e for e in response.json()["effects"] if e["type"] == "challenge_completed")
    assert done["reward"]["reward"] == "ten-off"
    coupon = api.get(f"/v1/coupons/{done['reward']['code']}")
    assert coupon.status_code == 200, coupon.text
    assert coupon.json()["member_id"] == "m1"
