"""Magento 2 orders: pushed with a Bearer ingest key, or imported from files with the CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
from typer.testing import CliRunner

from allegiance.cli import app as cli_app
from tests.conftest import BASIC_PROGRAM, Api, apply_program, ledger_ok, new_tenant
from tests.integration.platforms import counts, points

FIXTURE = Path(__file__).parent / "fixtures" / "order.json"


def order(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(FIXTURE.read_text())
    body.update(changes)
    return body


def setup(api: Api) -> str:
    apply_program(api, BASIC_PROGRAM)
    response = api.put("/v1/integrations/magento", json={"mapping": {}})
    assert response.status_code == 200, response.text
    key = api.post("/v1/api-keys", json={"scope": "ingest", "name": "magento"})
    assert key.status_code == 201, key.text
    return str(key.json()["api_key"])


def push(http: httpx.Client, tenant_id: str, key: str | None, body: Any) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return http.post(f"/integrations/magento/{tenant_id}", content=raw, headers=headers)


def test_top_level_rows_count_children_do_not(
    api: Api, http: httpx.Client, tenant: tuple[str, str]
) -> None:
    key = setup(api)
    response = push(http, tenant[0], key, order())
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "booked"
    # bundle 104.00 - 10.00 discount + bottle 16.00; its two child rows would add 94.00 more
    assert points(api, "57") == 110
    booked = api.get("/v1/orders/312").json()
    assert booked["member_id"] == "57"
    assert counts(tenant[0]) == (1, 0)
    assert push(http, tenant[0], key, order()).json()["status"] == "duplicate"
    assert counts(tenant[0]) == (1, 0)
    assert ledger_ok(tenant[0]) == []


def test_push_needs_an_ingest_key_of_the_same_tenant(
    api: Api, http: httpx.Client, tenant: tuple[str, str]
) -> None:
    setup(api)
    assert push(http, tenant[0], None, order()).status_code == 401
    assert push(http, tenant[0], "alg_not_a_key", order()).status_code == 401
    other_id, other_admin = new_tenant()
    assert push(http, tenant[0], other_admin, order()).status_code == 401
    # a tenant that has not connected Magento
    assert push(http, other_id, other_admin, order()).status_code == 404
    assert counts(tenant[0]) == (0, 0)


def test_cancel_and_refund_from_snapshots(
    api: Api, http: httpx.Client, tenant: tuple[str, str]
) -> None:
    key = setup(api)
    push(http, tenant[0], key, order())
    refunded = order(total_refunded=24.6)
    response = push(http, tenant[0], key, refunded)
    assert response.json()["status"] == "refunded", response.text
    # floor(110 x 24.60 / 124.60) = 21
    assert points(api, "57") == 89
    assert push(http, tenant[0], key, refunded).json()["status"] == "duplicate"
    assert counts(tenant[0]) == (1, 1)
    cancelled = order(state="canceled", status="canceled", total_refunded=24.6)
    assert push(http, tenant[0], key, cancelled).json()["status"] == "cancelled"
    assert points(api, "57") == 0
    assert ledger_ok(tenant[0]) == []


def test_guest_and_pending_orders(api: Api, http: httpx.Client, tenant: tuple[str, str]) -> None:
    key = setup(api)
    pending = order(entity_id=313, state="new", status="pending")
    assert push(http, tenant[0], key, pending).json()["status"] == "recorded"
    guest = order(entity_id=314, customer_id=None, customer_is_guest=1)
    assert push(http, tenant[0], key, guest).json()["status"] == "booked"
    assert api.get("/v1/orders/314").json()["member_id"] is None
    assert counts(tenant[0]) == (1, 0)


def test_cli_import_books_once(api: Api, tenant: tuple[str, str], tmp_dir: Path) -> None:
    setup(api)
    search = {
        "items": [order(), order(entity_id=315, increment_id="000000315", customer_id=58)],
        "search_criteria": {},
        "total_count": 2,
    }
    path = tmp_dir / "orders.json"
    path.write_text(json.dumps(search))
    runner = CliRunner()
    result = runner.invoke(cli_app, ["import", "magento", str(path), "--tenant", tenant[0]])
    assert result.exit_code == 0, result.output
    assert "fetched 2, booked 2, skipped 0, failed 0" in result.output
    assert points(api, "57") == 110 and points(api, "58") == 110
    again = runner.invoke(cli_app, ["import", "magento", str(path), "--tenant", tenant[0]])
    assert again.exit_code == 0, again.output
    assert "fetched 2, booked 0, skipped 2, failed 0" in again.output
    lines = tmp_dir / "orders.jsonl"
    lines.write_text(
        json.dumps(order(entity_id=316))
        + "\n{broken\n"
        + json.dumps(order(order_currency_code="EUR", entity_id=317))
        + "\n"
    )
    mixed = runner.invoke(cli_app, ["import", "magento", str(lines), "--tenant", tenant[0]])
    assert mixed.exit_code == 1, mixed.output
    assert "fetched 3, booked 1, skipped 0, failed 2" in mixed.output
    assert "line 2" in mixed.output
    assert "failed 317: " in mixed.output
    assert counts(tenant[0]) == (3, 0)  # 312, 315, 316
