"""Recommendations on a constructed history: cosine-normalised co-occurrence order, views
weigh less, bought products excluded, popular products for a cold start, the stored model
(job) and the model learnt on the fly agree; next best reward."""

from __future__ import annotations

import math
from typing import Any

import pytest

from allegiance.db import get_engine, read_session
from allegiance.kit.clock import parse_timestamp
from allegiance.worker.runner import run_all
from tests.conftest import BASIC_PROGRAM, Api, apply_program

NOW = "2026-03-01T10:00:00Z"
CATEGORY = {"A": "shoes", "B": "socks", "C": "laces", "D": "hats", "E": "bags"}

# member -> (bought, viewed)
HISTORY: dict[str, tuple[list[str], list[str]]] = {
    "a": (["A", "B"], []),
    "b": (["A", "B", "C"], []),
    "c": (["A", "C"], []),
    "d": (["B", "D"], []),
    "e": ([], ["A", "E"]),
    "f": (["E"], []),
    "t": (["A"], []),
}


def build(api: Api) -> None:
    apply_program(api, BASIC_PROGRAM)
    api.now = NOW
    for member, (bought, viewed) in HISTORY.items():
        if bought:
            items = [
                {"sku": s, "name": f"Product {s}", "category": CATEGORY[s], "quantity": 1,
                 "unit_price": "10.00", "amount": "10.00"}
                for s in bought
            ]  # fmt: skip
            response = api.post("/v1/orders", json={"id": f"o-{member}", "member_id": member,
                                                    "items": items})  # fmt: skip
            assert response.status_code == 201, response.text
        for n, sku in enumerate(viewed):
            response = api.post(
                "/v1/events",
                json={"id": f"v-{member}-{n}", "type": "product.viewed", "member_id": member,
                      "properties": {"sku": sku}},
            )  # fmt: skip
            assert response.status_code == 201, response.text
    api.put("/v1/members/z", json={})  # no history


def cosine(x: str, y: str) -> float:
    """The documented similarity, computed from HISTORY by hand (views weigh 0.3)."""

    def weight(member: str, sku: str) -> float:
        bought, viewed = HISTORY[member]
        return 1.0 if sku in bought else 0.3 if sku in viewed else 0.0

    def dot(p: str, q: str) -> float:
        return sum(weight(m, p) * weight(m, q) for m in HISTORY)

    return dot(x, y) / math.sqrt(dot(x, x) * dot(y, y))


def recommend(api: Api, member: str, limit: int = 4) -> list[dict[str, Any]]:
    response = api.get(f"/v1/members/{member}/recommendations?limit={limit}")
    assert response.status_code == 200, response.text
    return response.json()["products"]


@pytest.mark.parametrize("stored", [False, True])
def test_co_occurrence_order_exclusion_and_cold_start(
    api: Api, tenant: tuple[str, str], stored: bool
) -> None:
    build(api)
    if stored:
        counts = run_all(get_engine(), parse_timestamp(NOW), tenant[0])
        assert counts["recommendation_model"] == 5

    found = recommend(api, "t")
    # C is less popular than B but bought with A by a larger share of its buyers
    assert [(p["sku"], p["reason"]) for p in found] == [
        ("C", "bought_together"),
        ("B", "bought_together"),
        ("E", "bought_together"),
        ("D", "popular"),
    ]
    assert found[0]["score"] == pytest.approx(cosine("A", "C"), abs=1e-4)
    assert found[1]["score"] == pytest.approx(cosine("A", "B"), abs=1e-4)
    assert found[2]["score"] == pytest.approx(cosine("A", "E"), abs=1e-4)  # a view: low
    assert found[0]["because"] == "A"
    assert found[0]["name"] == "Product C" and found[0]["category"] == "laces"

    # b bought A, B and C: none of them comes back
    assert [p["sku"] for p in recommend(api, "b", limit=5)] == ["D", "E"]
    # e only viewed A and E: what goes with them, explained by the view
    viewed = recommend(api, "e", limit=2)
    assert [p["reason"] for p in viewed] == ["viewed_together", "viewed_together"]
    assert [p["sku"] for p in viewed] == ["C", "B"]

    # no history: the most popular products (weighted buyers + viewers), best first
    cold = recommend(api, "z", limit=5)
    assert [p["sku"] for p in cold] == ["A", "B", "C", "E", "D"]
    assert {p["reason"] for p in cold} == {"popular"}
    assert cold[0]["score"] == 1.0 and cold[1]["score"] == pytest.approx(3 / 4.3, abs=1e-4)


def test_unknown_member_and_limits(api: Api) -> None:
    build(api)
    missing = api.get("/v1/members/ghost/recommendations")
    assert missing.status_code == 404 and missing.json()["code"] == "member_not_found"
    assert api.get("/v1/members/t/recommendations?limit=0").status_code == 422
    assert api.get("/v1/members/t/recommendations?limit=abc").status_code == 422
    assert len(recommend(api, "t", limit=1)) == 1


REWARDS_PROGRAM: dict[str, Any] = {
    **BASIC_PROGRAM,
    "rules": [],
    "rewards": [
        {"key": "small", "cost": 10, "type": "custom"},
        {"key": "mid", "cost": 50, "type": "custom"},
        {"key": "mid-too", "cost": 50, "type": "custom"},
        {"key": "big", "cost": 200, "type": "custom"},
        {"key": "staff", "cost": 1, "type": "custom", "eligible": "'staff' in member.tags"},
    ],
}


def seed(api: Api, member: str, points: int) -> None:
    response = api.post(
        f"/v1/members/{member}/adjustments",
        json={"id": f"seed-{member}", "amount": points, "reason": "seed"},
    )
    assert response.status_code == 201, response.text


def test_next_best_reward(api: Api, tenant: tuple[str, str]) -> None:
    from allegiance.recommendation.service import for_member

    apply_program(api, REWARDS_PROGRAM)
    api.now = NOW
    for member in ("rich", "poor", "broke"):
        assert api.put(f"/v1/members/{member}", json={}).status_code == 201
    seed(api, "rich", 60)
    seed(api, "poor", 4)

    best = api.get("/v1/members/rich/recommendations").json()["next_best_reward"]
    # affordable: small and mid (twice); the most valuable, first in the catalog on a tie
    assert best["key"] == "mid" and best["reason"] == "best_affordable"
    assert best["points_missing"] == 0 and best["affordable"] is True
    closest = api.get("/v1/members/poor/recommendations").json()["next_best_reward"]
    assert closest["key"] == "small" and closest["reason"] == "closest_to_affordable"
    assert closest["points_missing"] == 6
    assert (
        api.get("/v1/members/broke/recommendations").json()["next_best_reward"]["points_missing"]
        == 10
    )

    # the plain service function gives the same answer (the insights endpoint uses it)
    with read_session(get_engine()) as session:
        direct = for_member(
            session, tenant_id=tenant[0], member_id="rich", limit=10, now=parse_timestamp(NOW)
        )
    assert direct == api.get("/v1/members/rich/recommendations?limit=10").json()

    apply_program(api, {**REWARDS_PROGRAM, "rewards": REWARDS_PROGRAM["rewards"][-1:]})
    assert api.get("/v1/members/rich/recommendations").json()["next_best_reward"] is None
