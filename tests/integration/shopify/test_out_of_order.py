"""Shopify does not deliver in order: a cancellation may arrive before the order's "paid"
webhook. The order must then never be booked, even when both arrive at once."""

from __future__ import annotations

import copy
import json
import threading
from typing import Any

import httpx
import pytest

from tests.conftest import BASIC_PROGRAM, Api, apply_program, ledger_ok
from tests.integration.platforms import (
    connect,
    counts,
    sample,
    shopify_post,
    shopify_post_live,
)

CUSTOMER = "115310627314723950"


def paid_and_cancelled(order_id: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """The "paid" snapshot (taken before the cancellation) and the "cancelled" one."""
    cancelled = sample("shopify_orders_paid.json")
    cancelled["id"] = order_id
    paid = copy.deepcopy(cancelled)
    paid["cancelled_at"] = None
    paid["cancel_reason"] = None
    paid["financial_status"] = "paid"
    return paid, cancelled


def test_paid_arriving_after_the_cancellation_books_nothing(
    api: Api, http: httpx.Client, tenant: tuple[str, str]
) -> None:
    apply_program(api, BASIC_PROGRAM)
    connect(api, "shopify")
    paid, cancelled = paid_and_cancelled(7001)
    first = shopify_post(http, tenant[0], "orders/cancelled", cancelled).json()
    assert first["status"] == "ignored"
    assert "cancelled before it was booked" in json.dumps(first)
    late = shopify_post(http, tenant[0], "orders/paid", paid).json()
    assert late["status"] == "ignored"
    assert shopify_post(http, tenant[0], "orders/updated", paid).json()["status"] == "ignored"
    assert counts(tenant[0]) == (0, 0)
    assert api.get("/v1/orders/7001").status_code == 404
    # another order of the same customer still books
    other, _ = paid_and_cancelled(7002)
    assert shopify_post(http, tenant[0], "orders/paid", other).json()["status"] == "booked"
    assert counts(tenant[0]) == (1, 0)
    assert ledger_ok(tenant[0]) == []


@pytest.mark.parametrize("rounds", [12])
def test_paid_and_cancelled_at_once_never_leave_a_live_order(
    api: Api, live_server: str, tenant: tuple[str, str], rounds: int
) -> None:
    apply_program(api, BASIC_PROGRAM)
    connect(api, "shopify")

    def deliver(topic: str, body: dict[str, Any], barrier: threading.Barrier) -> None:
        raw = json.dumps(body).encode()
        barrier.wait()
        response = shopify_post_live(live_server, tenant[0], topic, raw)
        assert response.status_code == 200, response.text

    for n in range(rounds):
        paid, cancelled = paid_and_cancelled(8000 + n)
        barrier = threading.Barrier(2)
        threads = [
            threading.Thread(target=deliver, args=("orders/paid", paid, barrier)),
            threading.Thread(target=deliver, args=("orders/cancelled", cancelled, barrier)),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    # whichever came first, no order is left booked and not cancelled
    for n in range(rounds):
        response = api.get(f"/v1/orders/{8000 + n}")
        assert response.status_code == 404 or response.json()["status"] == "cancelled"
    member = api.get(f"/v1/members/{CUSTOMER}")
    if member.status_code == 200:
        balances = member.json()["balances"]["points"]
        assert balances["active"] + balances["pending"] == 0
    assert ledger_ok(tenant[0]) == []
