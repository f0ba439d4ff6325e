"""Sweepstakes races on Postgres: the per-member cap holds under concurrent purchases, and
concurrent draws draw once and pay each winner once."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.conftest import IS_POSTGRES, ledger_ok, new_tenant, order
from tests.sweepstakes.test_sweepstakes import CLOSED, DURING, program

pytestmark = pytest.mark.skipif(not IS_POSTGRES, reason="row-lock races on Postgres")


def test_cap_and_single_draw_under_concurrency(live_server: str) -> None:
    tenant_id, key = new_tenant("sweepstakes-race")

    def client(at: str) -> httpx.Client:
        return httpx.Client(
            base_url=live_server,
            timeout=120,
            headers={"Authorization": f"Bearer {key}", "X-Allegiance-Now": at},
        )

    during = client(DURING)
    during.put("/v1/program", json=program()).raise_for_status()
    for member_id in ("alice", "bob"):
        booked = during.post("/v1/orders", json=order(f"o-{member_id}", member_id, "900.00"))
        booked.raise_for_status()

    def buy(i: int) -> int:
        body = {"id": f"p{i}", "member_id": "alice" if i % 2 else "bob", "count": 1}
        return during.post("/v1/sweepstakes/summer/entries", json=body).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        codes = list(pool.map(buy, range(16)))
    assert codes.count(201) == 6 and codes.count(409) == 10  # 3 each
    closed = client(CLOSED)
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda _: closed.post("/v1/sweepstakes/summer/draw"), range(4)))
    assert all(r.status_code == 200 for r in results), [r.text for r in results]
    assert all(r.json() == results[0].json() for r in results)
    balances = {
        m: closed.get(f"/v1/members/{m}").json()["balances"]["points"]["active"]
        for m in ("alice", "bob")
    }
    assert balances == {"alice": 900 - 300 + 1000, "bob": 900 - 300 + 1000}
    assert ledger_ok(tenant_id) == []
    during.close()
    closed.close()
