"""Leaderboards through the HTTP API: metrics, periods, opt-out, masked names, own rank, ties."""

from __future__ import annotations

from typing import Any

from tests.conftest import BASIC_PROGRAM, Api, apply_program, order

PROGRAM: dict[str, Any] = {
    **BASIC_PROGRAM,
    "leaderboards": [
        {
            "key": "monthly",
            "name": "Top earners",
            "metric": "points_earned",
            "period": "month",
            "size": 2,
        },
        {"key": "buyers", "name": "Most orders", "metric": "orders", "period": "lifetime"},
        {
            "key": "reviews",
            "name": "Reviewers",
            "metric": "events",
            "event_type": "review.posted",
            "period": "year",
        },
    ],
}


def book(api: Api, order_id: str, member: str, amount: str) -> None:
    response = api.post("/v1/orders", json=order(order_id, member, amount))
    assert response.status_code == 201, response.text


def test_points_leaderboard_ranks_masks_and_breaks_ties(api: Api) -> None:
    apply_program(api, PROGRAM)
    api.now = "2026-02-20T09:00:00Z"
    api.put("/v1/members/ann", json={"email": "a@x.com", "name": "Ann Kowalski"})
    api.put("/v1/members/m42", json={"email": "b@x.com"})
    api.put(
        "/v1/members/zed",
        json={"email": "z@x.com", "name": "Zed", "attributes": {"leaderboard_opt_out": True}},
    )
    api.put(
        "/v1/members/cat",
        json={"email": "c@x.com", "attributes": {"leaderboard_name": "Coffee Cat"}},
    )
    book(api, "o0", "ann", "500.00")  # February: another period
    api.now = "2026-03-02T09:00:00Z"
    book(api, "o1", "m42", "30.00")
    api.now = "2026-03-03T09:00:00Z"
    book(api, "o2", "ann", "30.00")  # reaches 30 later than m42: ranks after it
    book(api, "o3", "zed", "90.00")  # opted out: not ranked
    book(api, "o4", "cat", "10.00")
    api.now = "2026-03-20T09:00:00Z"

    board = api.get("/v1/leaderboards/monthly", params={"member_id": "cat"})
    assert board.status_code == 200, board.text
    body = board.json()
    assert body["period"] == "m2026-03" and body["participants"] == 3
    assert [
        (e["rank"], e["member_id"], e["display_name"], e["value"]) for e in body["entries"]
    ] == [
        (1, "m42", "Member ••42", 30),
        (2, "ann", "Ann K.", 30),
    ]
    assert body["member"]["rank"] == 3 and body["member"]["display_name"] == "Coffee Cat"
    hidden = api.get("/v1/leaderboards/monthly", params={"member_id": "zed"}).json()["member"]
    assert hidden["opted_out"] is True and hidden["rank"] is None

    refund = api.post("/v1/orders/o1/refunds", json={"id": "r1", "amount": "30.00"})
    assert refund.status_code == 201, refund.text
    after = api.get("/v1/leaderboards/monthly").json()["entries"]
    assert [e["member_id"] for e in after] == ["ann", "cat"]

    past = api.get("/v1/leaderboards/monthly", params={"at": "2026-02-15T00:00:00Z"}).json()
    assert past["period"] == "m2026-02" and past["entries"][0]["value"] == 500


def test_orders_and_events_leaderboards(api: Api) -> None:
    apply_program(api, PROGRAM)
    api.now = "2026-03-01T09:00:00Z"
    for member in ("m1", "m2"):
        api.put(f"/v1/members/{member}", json={"email": f"{member}@x.com"})
    book(api, "o1", "m1", "5.00")
    book(api, "o2", "m2", "5.00")
    book(api, "o3", "m2", "5.00")
    assert api.post("/v1/orders/o3/cancel", json={}).status_code in (200, 201)
    book(api, "o4", "m2", "5.00")
    buyers = api.get("/v1/leaderboards/buyers").json()["entries"]
    assert [(e["member_id"], e["value"]) for e in buyers] == [("m2", 2), ("m1", 1)]
    for number, member in enumerate(["m1", "m1", "m2"]):
        response = api.post(
            "/v1/events", json={"id": f"e{number}", "type": "review.posted", "member_id": member}
        )
        assert response.status_code in (200, 201, 202), response.text
    reviews = api.get("/v1/leaderboards/reviews").json()["entries"]
    assert [(e["member_id"], e["value"]) for e in reviews] == [("m1", 2), ("m2", 1)]
    assert api.get("/v1/leaderboards/nope").status_code == 404
    bad = api.put(
        "/v1/program",
        json={**PROGRAM, "leaderboards": [{"key": "x", "name": "X", "metric": "events"}]},
    )
    assert bad.status_code == 422 and bad.json()["errors"][0]["loc"] == [
        "leaderboards",
        0,
        "event_type",
    ]
