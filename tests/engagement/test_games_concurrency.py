"""Parallel quiz attempts, votes and survey responses against a real server: one reward,
one vote, one response, however the deliveries race."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest

from tests.conftest import IS_POSTGRES, ledger_ok
from tests.engagement.test_games import PROGRAM
from tests.order.test_concurrency import Shop, race, statuses

N = 12 if IS_POSTGRES else 4
PASS = {"origin": "eth", "milk": ["latte", "flat"], "roast": "less"}


@pytest.fixture()
def shop(live_server: str) -> Iterator[Shop]:
    shop = Shop(live_server, PROGRAM)
    yield shop
    shop.client.close()


def test_the_same_quiz_attempt_delivered_in_parallel_rewards_once(shop: Shop) -> None:
    responses = race(
        N,
        lambda i: shop.client.post(
            "/v1/quizzes/coffee/attempts", json={"id": "same", "member_id": "m1", "answers": PASS}
        ),
    )
    assert all(r.status_code in (200, 201) for r in responses), [r.text for r in responses]
    assert {r.json()["reward"]["points"] for r in responses} == {50}
    assert shop.member()["balances"]["points"]["active"] == 50
    assert sum(1 for t in shop.ledger() if t["source"]["type"] == "quiz") == 1
    assert ledger_ok(shop.tenant_id) == []


def test_distinct_attempts_in_parallel_respect_the_limit_and_reward_once(shop: Shop) -> None:
    responses = race(
        N,
        lambda i: shop.client.post(
            "/v1/quizzes/coffee/attempts", json={"id": f"a{i}", "member_id": "m1", "answers": PASS}
        ),
    )
    assert statuses(responses) == Counter({201: 2, 409: N - 2})
    assert {r.json()["code"] for r in responses if r.status_code == 409} == {
        "attempt_limit_reached"
    }
    assert sum(1 for r in responses if r.status_code == 201 and r.json()["reward"]) == 1
    assert shop.member()["balances"]["points"]["active"] == 50
    assert ledger_ok(shop.tenant_id) == []


def test_parallel_survey_responses_record_one(shop: Shop) -> None:
    responses = race(
        N,
        lambda i: shop.client.post(
            "/v1/surveys/nps/responses", json={"member_id": "m1", "score": i % 11}
        ),
    )
    assert statuses(responses) == Counter({201: 1, 409: N - 1})
    assert shop.member()["balances"]["points"]["active"] == 5
    assert shop.client.get("/v1/surveys/nps/nps").json()["responses"] == 1
