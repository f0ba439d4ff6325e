"""Referral races on Postgres: the cap per referrer holds under concurrent enrollments, a
member's code is generated once, and workers running the job together pay each referrer once."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from allegiance.db import get_engine
from allegiance.kit.clock import parse_timestamp
from allegiance.worker.runner import run_all
from tests.conftest import IS_POSTGRES, ledger_ok, new_tenant, order
from tests.referral.test_referrals import program

pytestmark = pytest.mark.skipif(not IS_POSTGRES, reason="row-lock races on Postgres")


def test_cap_and_codes_under_concurrency(live_server: str) -> None:
    tenant_id, key = new_tenant("referral-race")
    client = httpx.Client(
        base_url=live_server,
        timeout=120,
        headers={"Authorization": f"Bearer {key}", "X-Allegiance-Now": "2026-03-01T10:00:00Z"},
    )
    client.put("/v1/program", json=program(cap_per_month=3)).raise_for_status()
    client.put("/v1/members/alice", json={}).raise_for_status()
    with ThreadPoolExecutor(max_workers=8) as pool:
        codes = set(pool.map(lambda _: client.get("/v1/members/alice/referral").json()["code"],
                             range(8)))  # fmt: skip
    assert len(codes) == 1
    code = codes.pop()
    n = 12

    def enroll(i: int) -> httpx.Response:
        return client.put(f"/v1/members/b{i}", json={"referral_code": code})

    with ThreadPoolExecutor(max_workers=n) as pool:
        responses = list(pool.map(enroll, range(n)))
    assert all(r.status_code == 201 for r in responses), [r.text for r in responses]
    stats = client.get("/v1/members/alice/referral").json()["stats"]["referred"]
    assert (stats["pending"], stats["rejected"]) == (3, n - 3)
    accepted = [
        r["referee_id"]
        for r in client.get("/v1/members/alice/referrals?status=pending").json()["data"]
    ]
    for referee in accepted:
        client.post(
            "/v1/orders",
            json=order(f"o-{referee}", referee, "80.00", placed_at="2026-03-02T10:00:00Z"),
        ).raise_for_status()
    due = parse_timestamp("2026-03-20T00:00:00Z")
    with ThreadPoolExecutor(max_workers=4) as pool:
        counts = list(pool.map(lambda _: run_all(get_engine(), due, tenant_id), range(4)))
    assert sum(c["referral_conversions"] for c in counts) == 3
    alice = client.get("/v1/members/alice").json()
    assert alice["balances"]["points"]["active"] == 3 * 500
    assert ledger_ok(tenant_id) == []
    client.close()
