"""Helpers for the connector tests: the sample payloads, signing, counting what was booked."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select

from allegiance.db import get_engine, read_session
from allegiance.order.models import Order, Refund
from tests.conftest import Api

SAMPLES = Path(__file__).parent / "samples"
SECRET = "shpss_0123456789abcdef0123456789"


def sample(name: str) -> Any:
    """A sample file's webhook body (Shopify's files keep it under ``response``)."""
    data = json.loads((SAMPLES / name).read_text(encoding="utf-8"))
    return data["response"] if name.startswith("shopify_") else data


def sign(raw: bytes, secret: str = SECRET) -> str:
    return base64.b64encode(hmac.new(secret.encode(), raw, hashlib.sha256).digest()).decode()


def connect(api: Api, platform: str, **mapping: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"webhook_secret": SECRET, "mapping": mapping}
    response = api.put(f"/v1/integrations/{platform}", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def shopify_post(
    client: httpx.Client,
    tenant_id: str,
    topic: str,
    body: Any,
    *,
    webhook_id: str | None = None,
    event_id: str | None = None,
    secret: str = SECRET,
    signature: str | None = None,
    now: str | None = None,
) -> httpx.Response:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {
        "Content-Type": "application/json",
        "X-Shopify-Topic": topic,
        "X-Shopify-Hmac-Sha256": signature if signature is not None else sign(raw, secret),
        "X-Shopify-Shop-Domain": "example.myshopify.com",
        "X-Shopify-API-Version": "2026-07",
        "X-Shopify-Webhook-Id": webhook_id or str(uuid.uuid4()),
        "X-Shopify-Event-Id": event_id or str(uuid.uuid4()),
    }
    if now:
        headers["X-Allegiance-Now"] = now
    return client.post(f"/integrations/shopify/{tenant_id}", content=raw, headers=headers)


def woo_post(
    client: httpx.Client,
    tenant_id: str,
    topic: str,
    body: Any,
    *,
    signature: str | None = None,
    now: str | None = None,
) -> httpx.Response:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {
        "Content-Type": "application/json",
        "X-WC-Webhook-Topic": topic,
        "X-WC-Webhook-Resource": topic.split(".")[0],
        "X-WC-Webhook-Event": topic.split(".")[-1],
        "X-WC-Webhook-Signature": signature if signature is not None else sign(raw),
        "X-WC-Webhook-Delivery-ID": str(uuid.uuid4()),
    }
    if now:
        headers["X-Allegiance-Now"] = now
    return client.post(f"/integrations/woocommerce/{tenant_id}", content=raw, headers=headers)


def shopify_post_live(
    base_url: str, tenant_id: str, topic: str, raw: bytes, *, webhook_id: str | None = None
) -> httpx.Response:
    """A signed Shopify delivery to a live server (for tests of concurrent deliveries)."""
    webhook_id = webhook_id or str(uuid.uuid4())
    headers = {
        "Content-Type": "application/json",
        "X-Shopify-Topic": topic,
        "X-Shopify-Hmac-Sha256": sign(raw),
        "X-Shopify-Webhook-Id": webhook_id,
        "X-Shopify-Event-Id": webhook_id,
    }
    return httpx.post(
        f"{base_url}/integrations/shopify/{tenant_id}", content=raw, headers=headers, timeout=60
    )


def counts(tenant_id: str) -> tuple[int, int]:
    """(orders, refunds) booked for the tenant."""
    with read_session(get_engine()) as session:
        orders = session.scalar(
            select(func.count()).select_from(Order).where(Order.tenant_id == tenant_id)
        )
        refunds = session.scalar(
            select(func.count()).select_from(Refund).where(Refund.tenant_id == tenant_id)
        )
    return int(orders or 0), int(refunds or 0)


def points(api: Api, member_id: str) -> int | float:
    response = api.get(f"/v1/members/{member_id}")
    assert response.status_code == 200, response.text
    balances = response.json()["balances"]["points"]
    return balances["active"] + balances["pending"]


class RecordedShop:
    """A real HTTP server on a local port that answers like a shop's REST API, from recorded
    pages. ``route(path, query, headers) -> (status, headers, body)``; requests are kept."""

    def __init__(self, route: Any) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        from urllib.parse import parse_qs, urlsplit

        shop = self
        self.requests: list[tuple[str, dict[str, list[str]], dict[str, str]]] = []

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                query = parse_qs(parts.query)
                headers = {k.lower(): v for k, v in self.headers.items()}
                shop.requests.append((parts.path, query, headers))
                status, extra, body = route(parts.path, query, headers)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for name, value in extra.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> RecordedShop:
        self.thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
