"""On Postgres (row locks, READ COMMITTED) and SQLite (one writer): the same single-use
coupon carried by orders booked at once is used once; every order is still booked."""

from __future__ import annotations

import csv
import io
import threading
from concurrent.futures import ThreadPoolExecutor

import httpx

from tests.conftest import BASIC_PROGRAM, IS_POSTGRES, ledger_ok, new_tenant, order


def test_the_same_coupon_used_by_orders_at_once_is_used_once(live_server: str) -> None:
    tenant_id, key = new_tenant("coupon-race")
    n = 12 if IS_POSTGRES else 4
    with httpx.Client(
        base_url=live_server, timeout=120, headers={"Authorization": f"Bearer {key}"}
    ) as client:
        assert client.put("/v1/program", json=BASIC_PROGRAM).status_code == 200
        created = client.post(
            "/v1/coupon-batches",
            json={"id": "b1", "count": 1, "discount": {"type": "discount_fixed", "value": 5}},
        )
        assert created.status_code == 201, created.text
        export = client.get("/v1/coupon-batches/b1/codes.csv").text
        [code] = [row["code"] for row in csv.DictReader(io.StringIO(export))]
        barrier = threading.Barrier(n)

        def book(i: int) -> httpx.Response:
            barrier.wait(timeout=60)
            return client.post(
                "/v1/orders", json=order(f"o{i}", f"m{i}", "20.00", coupon_codes=[code])
            )

        with ThreadPoolExecutor(max_workers=n) as pool:
            responses = list(pool.map(book, range(n)))
        assert [r.status_code for r in responses] == [201] * n, [r.text for r in responses]
        effects = [
            e for r in responses for e in r.json()["effects"] if e["type"].startswith("coupon_")
        ]
        used = [e for e in effects if e["type"] == "coupon_used"]
        rejected = [e for e in effects if e["type"] == "coupon_rejected"]
        assert len(used) == 1, effects
        assert len(rejected) == n - 1
        assert {e["reason"] for e in rejected} == {"used_up"}
        coupon = client.get(f"/v1/coupons/{code}").json()
        assert (coupon["uses"], coupon["status"]) == (1, "used")
        assert len([u for u in coupon["uses_history"] if u["released_at"] is None]) == 1
    assert ledger_ok(tenant_id) == []
