"""``allegiance reconcile shopify``: pulls orders from a local server serving recorded pages."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
from typer.testing import CliRunner

from allegiance.cli import app as cli_app
from tests.conftest import BASIC_PROGRAM, Api, apply_program, ledger_ok
from tests.integration.platforms import SECRET, RecordedShop, counts, points, shopify_post

FIXTURES = Path(__file__).parent / "fixtures"
TOKEN = "shpat_recorded_0123456789"
PATH = "/admin/api/2026-07/orders.json"


def pages(shop_url: str) -> Any:
    throttled = {"done": False}

    def route(path: str, query: dict[str, list[str]], headers: dict[str, str]) -> Any:
        if headers.get("x-shopify-access-token") != TOKEN:
            return 401, {}, b'{"errors":"[API] Invalid API key or access token"}'
        if path != PATH:
            return 404, {}, b'{"errors":"Not Found"}'
        if "page_info" in query:
            # Shopify refuses filters next to page_info: only limit may come along
            if set(query) - {"page_info", "limit"}:
                return 400, {}, b'{"errors":"page_info with other parameters"}'
            return 200, {}, (FIXTURES / "orders_page2.json").read_bytes()
        assert query["status"] == ["any"]
        assert query["updated_at_min"][0].startswith("2026-05-01")
        if not throttled["done"]:
            throttled["done"] = True
            return 429, {"Retry-After": "0"}, b'{"errors":"Exceeded 2 calls per second"}'
        link = f'<{shop_url}{PATH}?limit=250&page_info=eyJsYXN0X2lkIjo1MDAyfQ>; rel="next"'
        return 200, {"Link": link}, (FIXTURES / "orders_page1.json").read_bytes()

    return route


def test_reconcile_books_what_webhooks_missed_and_rerun_books_nothing(
    api: Api, http: httpx.Client, tenant: tuple[str, str]
) -> None:
    apply_program(api, BASIC_PROGRAM)
    routes: dict[str, Any] = {}
    with RecordedShop(lambda *a: routes["route"](*a)) as shop:
        routes["route"] = pages(shop.url)
        body = {
            "webhook_secret": SECRET,
            "api_url": shop.url,
            "access_token": TOKEN,
            "mapping": {},
        }
        assert api.put("/v1/integrations/shopify", json=body).status_code == 200
        # the webhook for order 5001 arrived; the others were missed
        page1 = json.loads((FIXTURES / "orders_page1.json").read_text())
        assert shopify_post(http, tenant[0], "orders/paid", page1["orders"][0]).json()[
            "status"
        ] == ("booked")
        runner = CliRunner()
        args = ["reconcile", "shopify", "--tenant", tenant[0], "--since", "2026-05-01"]
        result = runner.invoke(cli_app, args)
        assert result.exit_code == 0, result.output
        # 5001 booked before, 5002 not paid, 5003 booked with its refund, 5004 cancelled unbooked
        assert "fetched 4, booked 1, skipped 3, failed 0" in result.output
        assert points(api, "7001") == 50
        assert points(api, "7002") == 60  # 80 less the refunded quarter (20.00 succeeded)
        assert counts(tenant[0]) == (2, 1)
        again = runner.invoke(cli_app, args)
        assert again.exit_code == 0, again.output
        assert "fetched 4, booked 0, skipped 4, failed 0" in again.output
        assert counts(tenant[0]) == (2, 1)
        # one throttled answer, then two pages per run
        statuses = [q.get("page_info") for _, q, _ in shop.requests]
        assert len(shop.requests) == 5
        assert statuses.count(["eyJsYXN0X2lkIjo1MDAyfQ"]) == 2
    assert ledger_ok(tenant[0]) == []


def test_reconcile_reports_a_platform_that_refuses(api: Api, tenant: tuple[str, str]) -> None:
    apply_program(api, BASIC_PROGRAM)
    with RecordedShop(lambda *a: (401, {}, b'{"errors":"Invalid API key"}')) as shop:
        body = {"webhook_secret": SECRET, "api_url": shop.url, "access_token": "x" * 20}
        assert api.put("/v1/integrations/shopify", json=body).status_code == 200
        result = CliRunner().invoke(
            cli_app, ["reconcile", "shopify", "--tenant", tenant[0], "--since", "2026-05-01"]
        )
    assert result.exit_code == 1
    assert "401" in result.output
    assert counts(tenant[0]) == (0, 0)


def test_reconcile_gives_up_on_endless_throttling(api: Api, tenant: tuple[str, str]) -> None:
    from allegiance.config import get_settings

    apply_program(api, BASIC_PROGRAM)
    with RecordedShop(lambda *a: (429, {"Retry-After": "0"}, b"{}")) as shop:
        body = {"webhook_secret": SECRET, "api_url": shop.url, "access_token": "x" * 20}
        api.put("/v1/integrations/shopify", json=body)
        result = CliRunner().invoke(
            cli_app, ["reconcile", "shopify", "--tenant", tenant[0], "--since", "2026-05-01"]
        )
        assert result.exit_code == 1
        assert "gave up" in result.output
        assert len(shop.requests) == get_settings().integration_max_retries + 1
