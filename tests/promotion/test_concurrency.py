"""A promotion's total limit holds under parallel bookings (row-locked counter on Postgres,
one writer at a time on SQLite)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from tests.conftest import BASIC_PROGRAM, IS_POSTGRES, new_tenant, order

PROGRAM: dict[str, Any] = {
    **BASIC_PROGRAM,
    "promotions": [
        {"key": "first", "type": "discount_fixed", "value": "5", "limit": {"total": 1}},
        {
            "key": "once-each",
            "type": "free_shipping",
            "stacking": "stackable",
            "limit": {"per_member": 1},
        },
    ],
}


def test_total_limit_one_counts_once_under_parallel_orders(live_server: str) -> None:
    _, key = new_tenant("promo-race")
    size = 16 if IS_POSTGRES else 6
    with httpx.Client(
        base_url=live_server, timeout=120, headers={"Authorization": f"Bearer {key}"}
    ) as client:
        assert client.put("/v1/program", json=PROGRAM).status_code == 200
        assert client.put("/v1/members/m1", json={}).status_code == 201

        def book(i: int) -> dict[str, Any]:
            body = order(f"o{i}", "m1" if i % 2 else None, "20.00", shipping_amount="3.00")
            response = client.post("/v1/orders", json=body)
            assert response.status_code == 201, response.text
            return dict(response.json())

        with ThreadPoolExecutor(max_workers=size) as pool:
            results = list(pool.map(book, range(size)))
        given = [
            (r["order_id"], e["promotion"])
            for r in results
            for e in r["effects"]
            if e["type"] == "discount"
        ]
        firsts = [o for o, p in given if p == "first"]
        assert len(firsts) == 1
        # the member's free shipping once, however many of its orders raced
        assert len([o for o, p in given if p == "once-each"]) == 1
        # cancelling the order that used it gives the use back
        assert client.post(f"/v1/orders/{firsts[0]}/cancel", json={}).status_code in (200, 201)
        again = book(size)
        assert [e["promotion"] for e in again["effects"] if e["type"] == "discount"] == ["first"]
