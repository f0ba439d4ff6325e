"""Two deliveries that both complete a challenge, in parallel on the live server: one reward.

Postgres serialises them on the member's row lock; SQLite on its single writer.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import BASIC_PROGRAM, IS_POSTGRES, ledger_ok
from tests.order.test_concurrency import Shop, race

PROGRAM: dict[str, Any] = {
    **BASIC_PROGRAM,
    "badges": [{"key": "critic", "name": "Critic", "when": "false"}],
    "challenges": [
        {
            "key": "first-review",
            "starts_at": "2026-01-01T00:00:00Z",
            "ends_at": "2036-01-01T00:00:00Z",
            "steps": [{"key": "review", "on": "review.created"}],
            "reward": {"points": 50},
        },
        {
            "key": "first-big-order",
            "starts_at": "2026-01-01T00:00:00Z",
            "ends_at": "2036-01-01T00:00:00Z",
            "steps": [{"key": "order", "on": "order.completed", "when": "order.total >= 10.0"}],
            "reward": {"badge": "critic"},
        },
    ],
}


@pytest.fixture()
def shop(live_server: str) -> Iterator[Shop]:
    shop = Shop(live_server, PROGRAM)
    yield shop
    shop.client.close()


def test_parallel_completions_reward_once(shop: Shop) -> None:
    n = 8 if IS_POSTGRES else 4
    responses = race(
        n,
        lambda i: shop.client.post(
            "/v1/events",
            json={"id": f"review-{i}", "type": "review.created", "member_id": "m1"},
        ),
    )
    assert [r.status_code for r in responses] == [201] * n
    completed = [
        e for r in responses for e in r.json()["effects"] if e["type"] == "challenge_completed"
    ]
    assert len(completed) == 1
    rewards = [t for t in shop.ledger() if t["source"]["type"] == "challenge"]
    assert [t["amount"] for t in rewards] == [50]
    assert shop.member()["balances"]["points"]["active"] == 50

    orders = race(
        n,
        lambda i: shop.client.post(
            "/v1/orders",
            json={"id": f"o-{i}", "member_id": "m1",
                  "items": [{"sku": "a", "quantity": 1, "unit_price": "20.00"}]},
        ),
    )  # fmt: skip
    assert [r.status_code for r in orders] == [201] * n
    badges = [e for r in orders for e in r.json()["effects"] if e["type"] == "badge_awarded"]
    assert len(badges) == 1
    assert [b["key"] for b in shop.member()["badges"]] == ["critic"]
    events = shop.client.get("/v1/domain-events?type=challenge.completed").json()["data"]
    assert sorted(e["data"]["challenge"] for e in events) == ["first-big-order", "first-review"]
    assert ledger_ok(shop.tenant_id) == []
