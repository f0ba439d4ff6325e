"""Test fixtures: a real database built with the migrations, the app, tenants, a live server.

SQLite (a temporary file) by default; PostgreSQL when ALLEGIANCE_TEST_DATABASE_URL is set
(the schema ``public`` of that database is dropped and rebuilt once per run). Every test works
in a tenant of its own, so tests never see each other's data. Under pytest-xdist each worker
has a database of its own: a SQLite file, or ``<database>_<worker>`` beside the given
PostgreSQL database (created when missing).
"""

from __future__ import annotations

import os
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

_tmp = tempfile.mkdtemp(prefix="allegiance-tests-")


def _worker_database(url: str, worker: str) -> str:
    """``url`` with the database ``<name>_<worker>``, created on the server when missing."""
    import psycopg
    from sqlalchemy.engine import make_url

    given = make_url(url)
    name = f"{given.database}_{worker}"
    conninfo = given.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
            conn.execute(f'CREATE DATABASE "{name}"')
    return given.set(database=name).render_as_string(hide_password=False)


TEST_URL = os.environ.get("ALLEGIANCE_TEST_DATABASE_URL") or f"sqlite:///{_tmp}/test.db"
if os.environ.get("ALLEGIANCE_TEST_DATABASE_URL") and os.environ.get("PYTEST_XDIST_WORKER"):
    TEST_URL = _worker_database(TEST_URL, os.environ["PYTEST_XDIST_WORKER"])
os.environ["ALLEGIANCE_DATABASE_URL"] = TEST_URL
os.environ["ALLEGIANCE_CLOCK_OVERRIDE"] = "true"
os.environ["ALLEGIANCE_RUN_JOBS_IN_SERVER"] = "false"
os.environ.setdefault("ALLEGIANCE_MAX_BODY_BYTES", "200000")

from allegiance.config import reset_settings  # noqa: E402

reset_settings()

from allegiance.db import get_engine, normalize_url  # noqa: E402
from allegiance.kit.clock import utcnow  # noqa: E402

IS_POSTGRES = normalize_url(TEST_URL).startswith("postgresql")


def _reset_postgres(url: str) -> None:
    import psycopg

    conninfo = normalize_url(url).replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS public CASCADE")
        conn.execute("CREATE SCHEMA public")


@pytest.fixture(scope="session", autouse=True)
def database() -> Iterator[str]:
    from allegiance.migrate import upgrade

    if IS_POSTGRES:
        _reset_postgres(TEST_URL)
    upgrade(TEST_URL)
    yield TEST_URL


@pytest.fixture(scope="session")
def app(database: str) -> Any:
    from allegiance.app import create_app

    return create_app()


class Api:
    """A thin HTTP client bound to one API key (and optionally a frozen time)."""

    def __init__(self, client: httpx.Client, key: str | None) -> None:
        self.client = client
        self.key = key
        self.now: str | None = None

    def headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        headers = {}
        if self.key:
            headers["Authorization"] = f"Bearer {self.key}"
        if self.now:
            headers["X-Allegiance-Now"] = self.now
        headers.update(extra or {})
        return headers

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        headers: dict[str, str] | None = None,
        **kw: Any,
    ) -> httpx.Response:
        return self.client.request(method, path, json=json, headers=self.headers(headers), **kw)

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return self.request("GET", path, **kw)

    def post(self, path: str, json: Any = None, **kw: Any) -> httpx.Response:
        return self.request("POST", path, json=json, **kw)

    def put(self, path: str, json: Any = None, **kw: Any) -> httpx.Response:
        return self.request("PUT", path, json=json, **kw)

    def patch(self, path: str, json: Any = None, **kw: Any) -> httpx.Response:
        return self.request("PATCH", path, json=json, **kw)

    def delete(self, path: str, **kw: Any) -> httpx.Response:
        return self.request("DELETE", path, **kw)

    def with_key(self, key: str | None) -> Api:
        other = Api(self.client, key)
        other.now = self.now
        return other


@pytest.fixture(scope="session")
def http(app: Any) -> Iterator[httpx.Client]:
    from starlette.testclient import TestClient

    with TestClient(app, base_url="http://testserver") as client:
        yield client  # type: ignore[misc]


def new_tenant(name: str = "shop") -> tuple[str, str]:
    from allegiance.db import write_session
    from allegiance.tenant.service import create_tenant

    with write_session(get_engine()) as session:
        tenant_id, key = create_tenant(session, name=name, now=utcnow())
    return tenant_id, key.api_key


@pytest.fixture()
def tenant() -> tuple[str, str]:
    return new_tenant()


@pytest.fixture()
def api(http: httpx.Client, tenant: tuple[str, str]) -> Api:
    return Api(http, tenant[1])


BASIC_PROGRAM: dict[str, Any] = {
    "name": "Test Rewards",
    "currency": "USD",
    "timezone": "UTC",
    "wallets": {"points": {"precision": 0, "rounding": "floor"}},
    "rules": [{"key": "base", "on": "order.completed", "earn": {"per_amount": 1}}],
}


def apply_program(api: Api, document: dict[str, Any]) -> dict[str, Any]:
    response = api.put("/v1/program", json=document)
    assert response.status_code == 200, response.text
    return response.json()


def order(order_id: str, member_id: str | None, *amounts: str, **extra: Any) -> dict[str, Any]:
    items = [
        {
            "sku": f"sku-{i}",
            "name": f"Item {i}",
            "category": "general",
            "quantity": 1,
            "unit_price": amount,
            "amount": amount,
        }
        for i, amount in enumerate(amounts)
    ]
    body: dict[str, Any] = {"id": order_id, "member_id": member_id, "items": items}
    body.update(extra)
    return body


@pytest.fixture()
def receiver() -> Iterator[Any]:
    """A real HTTP server recording (and verifying) the webhooks it receives."""
    from tests.webhook.receiver import Receiver

    r = Receiver().start()
    yield r
    r.stop()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def live_server(database: str) -> Iterator[str]:
    """The app behind a real uvicorn server on a free local port (for concurrency tests)."""
    import uvicorn

    from allegiance.app import create_app

    port = free_port()
    config = uvicorn.Config(
        create_app(), host="127.0.0.1", port=port, log_level="warning", limit_concurrency=200
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.05)
    yield base
    server.should_exit = True
    thread.join(timeout=10)


def ledger_ok(tenant_id: str) -> list[str]:
    from allegiance.analytics import activity
    from allegiance.db import read_session
    from allegiance.ledger.service import verify
    from allegiance.program.service import load_program

    with read_session(get_engine()) as session:
        compiled = load_program(session, tenant_id=tenant_id)
        found = verify(session, tenant_id=tenant_id, program=compiled.program if compiled else None)
        if compiled is not None:
            timezone = compiled.program.timezone
            found += activity.verify(session, tenant_id=tenant_id, timezone=timezone)
        return found


@pytest.fixture()
def tmp_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="allegiance-test-"))
