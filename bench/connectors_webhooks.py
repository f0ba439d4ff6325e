"""Shopify webhook deliveries per second through the HTTP app (signature, dedupe, booking).

Run: ``PYTHONPATH=src python bench/connectors_webhooks.py [N]`` (default 300 deliveries) with
``ALLEGIANCE_DATABASE_URL`` pointing at a scratch database (SQLite file by default). Each
delivery is a new order of the published ``orders/paid`` example for one of 50 customers; then
the same deliveries are sent again (all duplicates).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault(
    "ALLEGIANCE_DATABASE_URL", f"sqlite:///{tempfile.mkdtemp()}/bench-connectors.db"
)
os.environ["ALLEGIANCE_RUN_JOBS_IN_SERVER"] = "false"

from starlette.testclient import TestClient

from allegiance.app import create_app
from allegiance.config import get_settings
from allegiance.db import get_engine, write_session
from allegiance.kit.clock import utcnow
from allegiance.migrate import upgrade
from allegiance.tenant.service import create_tenant

SAMPLE = Path(__file__).resolve().parents[1] / "tests/integration/samples/shopify_orders_paid.json"
SECRET = "bench-secret-0123456789"


def main(count: int) -> None:
    upgrade(get_settings().database_url)
    with write_session(get_engine()) as session:
        tenant_id, key = create_tenant(session, name="bench", now=utcnow())
    client = TestClient(create_app())
    admin = {"Authorization": f"Bearer {key.api_key}"}
    program = {
        "name": "Bench",
        "currency": "USD",
        "timezone": "UTC",
        "wallets": {"points": {"precision": 0, "rounding": "floor"}},
        "rules": [{"key": "base", "on": "order.completed", "earn": {"per_amount": 1}}],
    }
    assert client.put("/v1/program", json=program, headers=admin).status_code == 200
    assert (
        client.put(
            "/v1/integrations/shopify", json={"webhook_secret": SECRET}, headers=admin
        ).status_code
        == 200
    )
    base = json.loads(SAMPLE.read_text())["response"]
    bodies = []
    for i in range(count):
        base["id"] = 9_007_199_254_740_993 + i  # above 2^53
        base["customer"]["id"] = 1_000 + i % 50
        bodies.append(json.dumps(base).encode())

    def send(raw: bytes, i: int) -> str:
        digest = hmac.new(SECRET.encode(), raw, hashlib.sha256).digest()
        response = client.post(
            f"/integrations/shopify/{tenant_id}",
            content=raw,
            headers={
                "X-Shopify-Topic": "orders/paid",
                "X-Shopify-Hmac-Sha256": base64.b64encode(digest).decode(),
                "X-Shopify-Webhook-Id": f"w-{i}",
            },
        )
        return str(response.json()["status"])

    for label in ("new orders", "duplicates"):
        started = time.perf_counter()
        outcomes = [send(raw, i) for i, raw in enumerate(bodies)]
        elapsed = time.perf_counter() - started
        print(
            f"{label}: {count} deliveries in {elapsed:.2f}s = {count / elapsed:.0f}/s, "
            f"{elapsed / count * 1000:.1f} ms each; outcomes {sorted(set(outcomes))}"
        )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 300)
