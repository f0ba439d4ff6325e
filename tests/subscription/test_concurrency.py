"""Payments for one member racing each other: each renewal starts where the previous one ends
(the member row lock serialises them), and one payment id is booked once."""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import IS_POSTGRES, new_tenant
from tests.order.test_concurrency import race
from tests.subscription.test_subscriptions import PROGRAM

N = 12 if IS_POSTGRES else 6


@pytest.fixture()
def client(live_server: str) -> Iterator[httpx.Client]:
    _, key = new_tenant("race")
    with httpx.Client(
        base_url=live_server,
        timeout=120,
        headers={"Authorization": f"Bearer {key}"},
        limits=httpx.Limits(max_connections=50, max_keepalive_connections=50),
    ) as client:
        assert client.put("/v1/program", json=PROGRAM).status_code == 200
        yield client


def test_parallel_renewals_chain_without_gaps(client: httpx.Client) -> None:
    responses = race(
        N,
        lambda i: client.post(
            "/v1/members/m1/subscriptions",
            json={"id": f"ch_{i}", "plan": "weekly", "amount": "1.50"},
        ),
    )
    assert Counter(r.status_code for r in responses) == Counter({201: N})
    assert sum(1 for r in responses if not r.json()["renewed"]) == 1
    subs = client.get("/v1/members/m1/subscriptions").json()["data"]
    assert len(subs) == 1
    periods = [(p["period_start"], p["period_end"]) for p in subs[0]["payments"]]
    assert len(periods) == N
    for before, after in itertools.pairwise(periods):
        assert before[1] == after[0]
    assert subs[0]["current_period_end"] == periods[-1][1]


def test_one_payment_id_racing_is_booked_once(client: httpx.Client) -> None:
    body = {"id": "ch_same", "plan": "weekly", "amount": "1.50"}
    responses = race(N, lambda i: client.post("/v1/members/m2/subscriptions", json=body))
    assert Counter(r.status_code for r in responses) == Counter({201: 1, 200: N - 1})
    assert len({r.json()["subscription_id"] for r in responses}) == 1
    subs = client.get("/v1/members/m2/subscriptions").json()["data"]
    assert [len(s["payments"]) for s in subs] == [1]
