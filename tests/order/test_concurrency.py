"""Concurrent requests against a real server: balances are checked inside the write, and a
client id is booked at most once however many deliveries race.

Postgres runs the full sizes (row locks, READ COMMITTED); SQLite runs smaller ones (one writer
at a time with BEGIN IMMEDIATE) and must be just as exact.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.conftest import BASIC_PROGRAM, IS_POSTGRES, ledger_ok, new_tenant, order

PROGRAM: dict[str, Any] = {
    **BASIC_PROGRAM,
    "wallets": {
        "points": {"precision": 0, "rounding": "floor"},
        "credit": {"precision": 2, "kind": "credit"},
    },
    "rules": [
        {"key": "base", "on": "order.completed", "earn": {"per_amount": 1}},
        {"key": "bonus", "on": "order.completed", "earn": {"fixed": 5}},
        {"key": "cashback", "on": "order.completed", "earn": {"wallet": "credit", "percent": 2}},
    ],
}

postgres_only = pytest.mark.skipif(not IS_POSTGRES, reason="full-size races run on Postgres")
sqlite_only = pytest.mark.skipif(IS_POSTGRES, reason="the small SQLite variant")


class Shop:
    """A fresh tenant on the live server, with a program and one member."""

    def __init__(self, base: str, program: dict[str, Any] | None = None) -> None:
        self.tenant_id, key = new_tenant("race")
        self.client = httpx.Client(
            base_url=base,
            timeout=120,
            headers={"Authorization": f"Bearer {key}"},
            limits=httpx.Limits(max_connections=100, max_keepalive_connections=100),
        )
        response = self.client.put("/v1/program", json=program or PROGRAM)
        assert response.status_code == 200, response.text
        response = self.client.put("/v1/members/m1", json={"email": "m1@example.com"})
        assert response.status_code == 201, response.text

    def member(self) -> dict[str, Any]:
        response = self.client.get("/v1/members/m1")
        assert response.status_code == 200, response.text
        return response.json()

    def ledger(self) -> list[dict[str, Any]]:
        response = self.client.get("/v1/members/m1/ledger", params={"limit": 200})
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["next_cursor"] is None
        return body["data"]


@pytest.fixture()
def shop(live_server: str) -> Iterator[Shop]:
    shop = Shop(live_server)
    yield shop
    shop.client.close()


def race(n: int, call: Callable[[int], httpx.Response]) -> list[httpx.Response]:
    """Run ``call(i)`` for i in range(n) on n threads released at the same moment."""
    barrier = threading.Barrier(n)

    def run(i: int) -> httpx.Response:
        barrier.wait(timeout=60)
        return call(i)

    with ThreadPoolExecutor(max_workers=n) as pool:
        responses = list(pool.map(run, range(n)))
    for response in responses:
        assert response.status_code < 500, response.text
    return responses


def statuses(responses: list[httpx.Response]) -> Counter[int]:
    return Counter(r.status_code for r in responses)


# ---- parallel debits against an exact balance ------------------------------------------------


def parallel_debits(shop: Shop, *, n: int, balance: int, each: int) -> None:
    response = shop.client.post(
        "/v1/members/m1/adjustments", json={"id": "credit-1", "amount": balance, "reason": "seed"}
    )
    assert response.status_code == 201, response.text
    assert shop.member()["balances"]["points"]["active"] == balance

    responses = race(
        n,
        lambda i: shop.client.post(
            "/v1/members/m1/adjustments",
            json={"id": f"debit-{i}", "amount": -each, "reason": "race"},
        ),
    )
    winners = balance // each
    assert statuses(responses) == Counter({201: winners, 409: n - winners}), [
        (r.status_code, r.text) for r in responses
    ]
    for r in responses:
        if r.status_code == 409:
            assert r.headers["content-type"].startswith("application/problem+json")
            assert r.json()["code"] == "insufficient_points", r.text
        else:
            assert r.json()["amount"] == -each
            assert r.json()["balances"]["points"]["active"] >= 0
    member = shop.member()
    assert member["balances"]["points"]["active"] == balance - winners * each == 0
    debits = [t for t in shop.ledger() if t["code"] == "adjust" and t["amount"] < 0]
    assert len(debits) == winners
    assert sorted(t["source"]["id"] for t in debits) == sorted(
        f"debit-{i}" for i, r in enumerate(responses) if r.status_code == 201
    )
    assert ledger_ok(shop.tenant_id) == []
    # a refused debit stays refused under its id even now that nothing changed
    loser = next(i for i, r in enumerate(responses) if r.status_code == 409)
    again = shop.client.post(
        "/v1/members/m1/adjustments",
        json={"id": f"debit-{loser}", "amount": -each, "reason": "race"},
    )
    assert again.status_code == 409
    assert again.headers.get("Idempotent-Replayed") == "true"


@postgres_only
def test_parallel_debits_postgres(shop: Shop) -> None:
    parallel_debits(shop, n=50, balance=100, each=10)


@sqlite_only
def test_parallel_debits_sqlite(shop: Shop) -> None:
    parallel_debits(shop, n=12, balance=30, each=10)


# ---- the same order delivered many times at once ---------------------------------------------


def parallel_duplicates(shop: Shop, *, n: int) -> None:
    body = order("o1", "m1", "40.00", "60.50")
    responses = race(n, lambda _: shop.client.post("/v1/orders", json=body))
    assert statuses(responses) == Counter({201: 1, 200: n - 1}), [
        (r.status_code, r.text) for r in responses
    ]
    first = next(r for r in responses if r.status_code == 201)
    assert "Idempotent-Replayed" not in first.headers
    for r in responses:
        assert r.json() == first.json()
        if r.status_code == 200:
            assert r.headers.get("Idempotent-Replayed") == "true"
    result = first.json()
    assert result["balances"]["points"] == {"active": 105, "pending": 0}
    member = shop.member()
    assert member["stats"]["orders"] == 1
    assert member["stats"]["spend"] == "100.50"
    assert member["balances"]["points"]["active"] == 105
    assert member["balances"]["credit"]["active"] == 2.01
    earns = [(t["wallet"], t["rule"], t["amount"]) for t in shop.ledger() if t["code"] == "earn"]
    assert sorted(earns) == [
        ("credit", "cashback", 2.01),
        ("points", "base", 100),
        ("points", "bonus", 5),
    ]
    assert ledger_ok(shop.tenant_id) == []


@postgres_only
def test_parallel_duplicate_orders_postgres(shop: Shop) -> None:
    parallel_duplicates(shop, n=20)


@sqlite_only
def test_parallel_duplicate_orders_sqlite(shop: Shop) -> None:
    parallel_duplicates(shop, n=8)


# ---- more races: duplicate debits, refunds of one order, many orders of one member ------------


def duplicate_debits(shop: Shop, *, n: int) -> None:
    assert (
        shop.client.post(
            "/v1/members/m1/adjustments", json={"id": "seed", "amount": 25, "reason": "seed"}
        ).status_code
        == 201
    )
    body = {"id": "spend-1", "amount": -10, "reason": "once"}
    responses = race(n, lambda _: shop.client.post("/v1/members/m1/adjustments", json=body))
    assert statuses(responses) == Counter({201: 1, 200: n - 1})
    assert all(r.json() == responses[0].json() for r in responses)
    assert shop.member()["balances"]["points"]["active"] == 15
    assert ledger_ok(shop.tenant_id) == []


def parallel_refunds(shop: Shop, *, n: int) -> None:
    response = shop.client.post("/v1/orders", json=order("o1", "m1", "50.00", "50.00"))
    assert response.status_code == 201, response.text  # 100 + 5 points, 2.00 credit
    responses = race(
        n,
        lambda i: shop.client.post(
            "/v1/orders/o1/refunds", json={"id": f"refund-{i}", "amount": "20.00"}
        ),
    )
    assert statuses(responses) == Counter({201: 5, 409: n - 5}), [
        (r.status_code, r.text) for r in responses
    ]
    assert {r.json()["code"] for r in responses if r.status_code == 409} == {"refund_exceeds_order"}
    totals = sorted(r.json()["refunded_total"] for r in responses if r.status_code == 201)
    assert totals == ["100.00", "20.00", "40.00", "60.00", "80.00"]
    member = shop.member()
    assert member["balances"]["points"]["active"] == 0
    assert member["balances"]["credit"]["active"] == 0
    assert member["stats"]["spend"] == "0.00"
    assert ledger_ok(shop.tenant_id) == []


def parallel_orders(shop: Shop, *, n: int) -> None:
    responses = race(
        n, lambda i: shop.client.post("/v1/orders", json=order(f"o{i}", "m1", "10.00"))
    )
    assert statuses(responses) == Counter({201: n})
    member = shop.member()
    assert member["stats"]["orders"] == n
    assert member["stats"]["spend"] == f"{10 * n}.00"
    assert member["balances"]["points"]["active"] == 15 * n
    assert member["balances"]["credit"]["active"] == pytest.approx(0.2 * n)
    assert ledger_ok(shop.tenant_id) == []


@postgres_only
def test_parallel_duplicate_debits_postgres(shop: Shop) -> None:
    duplicate_debits(shop, n=20)


@postgres_only
def test_parallel_refunds_postgres(shop: Shop) -> None:
    parallel_refunds(shop, n=12)


@postgres_only
def test_parallel_orders_of_one_member_postgres(shop: Shop) -> None:
    parallel_orders(shop, n=30)


@sqlite_only
def test_parallel_duplicate_debits_sqlite(shop: Shop) -> None:
    duplicate_debits(shop, n=6)


@sqlite_only
def test_parallel_refunds_sqlite(shop: Shop) -> None:
    parallel_refunds(shop, n=8)


@sqlite_only
def test_parallel_orders_of_one_member_sqlite(shop: Shop) -> None:
    parallel_orders(shop, n=8)


# ---- debits racing orders: the member's next settlement moment must survive ------------------


def debits_racing_orders(base: str, *, n: int) -> None:
    """Orders (pending points, so the member gets a settlement moment) race manual debits.

    Whatever the interleaving, once the pending days are over the points are active both in
    what GET shows and in what a debit may spend, and the jobs activate them in the ledger.
    """
    program = {
        **PROGRAM,
        "wallets": {
            "points": {"precision": 0, "rounding": "floor", "pending_days": 1},
            "credit": {"precision": 2, "kind": "credit", "pending_days": 1},
        },
    }
    shop = Shop(base, program)
    try:
        seed = {"id": "seed", "amount": 100, "reason": "seed"}
        assert shop.client.post("/v1/members/m1/adjustments", json=seed).status_code == 201

        def call(i: int) -> httpx.Response:
            if i % 6:
                return shop.client.post(
                    "/v1/members/m1/adjustments",
                    json={"id": f"debit-{i}", "amount": -1, "reason": "r"},
                )
            return shop.client.post("/v1/orders", json=order(f"o{i}", "m1", "10.00"))

        responses = race(n, call)
        assert statuses(responses) == Counter({201: n}), [r.text for r in responses]
        orders = len(range(0, n, 6))
        debits = n - orders
        later = datetime.now(UTC) + timedelta(days=2)
        shop.client.headers["X-Allegiance-Now"] = later.isoformat()
        member = shop.member()
        expected = 100 - debits + 15 * orders
        assert member["balances"]["points"] == {"active": expected, "pending": 0, "expiring": []}
        # the jobs activate every matured lot in the ledger itself
        from allegiance.db import get_engine
        from allegiance.worker.runner import run_all

        run_all(get_engine(), later, shop.tenant_id)
        assert ledger_ok(shop.tenant_id) == []
        cached = _cached_balances(shop.tenant_id, "m1")
        assert cached["points"] == (expected, 0), cached
        # and everything GET shows can be spent
        response = shop.client.post(
            "/v1/members/m1/adjustments", json={"id": "all", "amount": -expected, "reason": "all"}
        )
        assert response.status_code == 201, response.text
        assert shop.member()["balances"]["points"]["active"] == 0
        assert ledger_ok(shop.tenant_id) == []
    finally:
        shop.client.close()


def _cached_balances(tenant_id: str, member_id: str) -> dict[str, tuple[int, int]]:
    from allegiance.db import get_engine, read_session
    from allegiance.ledger.service import account_balances

    with read_session(get_engine()) as session:
        return account_balances(session, tenant_id, member_id)


@postgres_only
def test_debits_racing_orders_postgres(live_server: str) -> None:
    debits_racing_orders(live_server, n=24)


@sqlite_only
def test_debits_racing_orders_sqlite(live_server: str) -> None:
    debits_racing_orders(live_server, n=8)


# ---- a debit that waited for the member lock behind an order (deterministic, Postgres) -------


@postgres_only
def test_debit_waiting_behind_an_order_keeps_its_pending_points_due(live_server: str) -> None:
    """The order books pending points and sets the member's next settlement moment; a debit
    that read the member before that commit and got the row lock after it must not put the
    old (empty) settlement moment back, or the pending points never activate in the ledger
    and GET shows points that a debit then refuses."""
    import time

    import psycopg

    from tests.conftest import TEST_URL

    program = {
        **PROGRAM,
        "wallets": {
            "points": {"precision": 0, "rounding": "floor", "pending_days": 1},
            "credit": {"precision": 2, "kind": "credit", "pending_days": 1},
        },
    }
    shop = Shop(live_server, program)
    seed = {"id": "seed", "amount": 100, "reason": "seed"}
    assert shop.client.post("/v1/members/m1/adjustments", json=seed).status_code == 201
    conninfo = TEST_URL.replace("postgresql+psycopg://", "postgresql://")

    def waiting(conn: psycopg.Connection[Any], n: int) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock'"
            ).fetchone()
            if row and row[0] >= n:
                return
            time.sleep(0.01)  # polling an observable condition, not a timing guess
        raise AssertionError(f"never saw {n} request(s) waiting for the member lock")

    with (
        psycopg.connect(conninfo, autocommit=True) as observer,
        psycopg.connect(conninfo) as holder,
        ThreadPoolExecutor(max_workers=2) as pool,
    ):
        holder.execute(
            "SELECT 1 FROM members WHERE tenant_id = %s AND member_id = 'm1' FOR UPDATE",
            (shop.tenant_id,),
        )
        placed = pool.submit(shop.client.post, "/v1/orders", json=order("o1", "m1", "10.00"))
        waiting(observer, 1)
        debited = pool.submit(
            shop.client.post,
            "/v1/members/m1/adjustments",
            json={"id": "d1", "amount": -1, "reason": "r"},
        )
        waiting(observer, 2)
        holder.rollback()  # release: the order goes first, then the debit
        assert placed.result(timeout=60).status_code == 201
        assert debited.result(timeout=60).status_code == 201
    later = datetime.now(UTC) + timedelta(days=2)
    from allegiance.db import get_engine
    from allegiance.worker.runner import run_all

    run_all(get_engine(), later, shop.tenant_id)
    assert ledger_ok(shop.tenant_id) == []
    assert _cached_balances(shop.tenant_id, "m1")["points"] == (99 + 15, 0)
    shop.client.headers["X-Allegiance-Now"] = later.isoformat()
    assert shop.member()["balances"]["points"]["active"] == 114
    response = shop.client.post(
        "/v1/members/m1/adjustments", json={"id": "all", "amount": -114, "reason": "all"}
    )
    assert response.status_code == 201, response.text
    shop.client.close()
