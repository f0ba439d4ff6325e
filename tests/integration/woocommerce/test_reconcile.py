"""``allegiance reconcile woocommerce``: a local server serving recorded REST v3 pages."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import httpx
from typer.testing import CliRunner

from allegiance.cli import app as cli_app
from tests.conftest import BASIC_PROGRAM, Api, apply_program, ledger_ok
from tests.integration.platforms import SECRET, RecordedShop, counts, points

FIXTURES = Path(__file__).parent / "fixtures"
KEY, KEY_SECRET = "ck_recorded", "cs_recorded"


def route(path: str, query: dict[str, list[str]], headers: dict[str, str]) -> Any:
    expected = "Basic " + base64.b64encode(f"{KEY}:{KEY_SECRET}".encode()).decode()
    if headers.get("authorization") != expected:
        return 401, {}, b'{"code":"woocommerce_rest_cannot_view"}'
    if path != "/wp-json/wc/v3/orders":
        return 404, {}, b"{}"
    assert query["after"] == ["2026-05-01T00:00:00"]
    page = int(query.get("page", ["1"])[0])
    headers_out = {"X-WP-Total": "3", "X-WP-TotalPages": "2"}
    return 200, headers_out, (FIXTURES / f"orders_page{page}.json").read_bytes()


def test_reconcile_books_missing_orders_and_refunds_once(
    api: Api, http: httpx.Client, tenant: tuple[str, str]
) -> None:
    apply_program(api, BASIC_PROGRAM)
    with RecordedShop(route) as shop:
        body = {
            "webhook_secret": SECRET,
            "api_url": shop.url,
            "api_key": KEY,
            "api_secret": KEY_SECRET,
        }
        assert api.put("/v1/integrations/woocommerce", json=body).status_code == 200
        runner = CliRunner()
        args = ["reconcile", "woocommerce", "--tenant", tenant[0], "--since", "2026-05-01"]
        result = runner.invoke(cli_app, args)
        assert result.exit_code == 0, result.output
        # 801 processing: booked; 802 pending: not yet; 803 completed with a refund: booked
        assert "fetched 3, booked 2, skipped 1, failed 0" in result.output
        assert points(api, "42") == 18
        assert points(api, "43") == 18 - 3  # floor(18 x 5.00 / 29.35) reversed
        assert counts(tenant[0]) == (2, 1)
        again = runner.invoke(cli_app, args)
        assert "fetched 3, booked 0, skipped 3, failed 0" in again.output
        assert counts(tenant[0]) == (2, 1)
        assert [q["page"] for _, q, _ in shop.requests] == [["1"], ["2"], ["1"], ["2"]]
    assert ledger_ok(tenant[0]) == []
