"""Imported history can be attributed to partners (a coalition's back office)."""

from __future__ import annotations

import json
from pathlib import Path

from allegiance.db import get_engine
from allegiance.integration.csv.service import import_orders, rejected_path
from allegiance.kit.clock import parse_timestamp
from tests.conftest import Api, ledger_ok
from tests.partners.helpers import setup_coalition, system_balance


def test_imported_orders_are_funded_by_their_partner(
    api: Api, tenant: tuple[str, str], tmp_dir: Path
) -> None:
    setup_coalition(api)
    path = tmp_dir / "orders.csv"
    path.write_text(
        "id,member_id,placed_at,partner,sku,amount\n"
        "i-1,m1,2026-05-02T10:00:00Z,cafe,latte,4.00\n"
        "i-2,m2,2026-05-03T10:00:00Z,books,novel,20.00\n"
        "i-3,m2,2026-05-04T10:00:00Z,,mug,7.00\n"
        "i-4,m3,2026-05-05T10:00:00Z,bakery,bread,3.00\n",
        encoding="utf-8",
    )
    report = import_orders(
        get_engine(), tenant_id=tenant[0], path=path, now=parse_timestamp("2026-06-01T00:00:00Z")
    )
    assert (report.booked, report.rejected) == (3, 1)
    rejects = [json.loads(line) for line in rejected_path(path).read_text().splitlines()]
    assert rejects[0]["errors"][0]["loc"] == ["order", "partner"]
    assert system_balance(tenant[0], "points", "partner:cafe") == (-9, 0)  # 4 + 5 bonus
    assert system_balance(tenant[0], "points", "partner:books") == (-20, 0)
    assert system_balance(tenant[0], "points", "issued") == (-7, 0)
    assert api.get("/v1/orders/i-1").json()["partner"] == "cafe"
    settlement = api.get("/v1/analytics/partner-settlement?from=2026-05-01&to=2026-05-31").json()
    assert [r["net_amount"] for r in settlement["partners"]] == ["0.09", "0.40"]
    assert ledger_ok(tenant[0]) == []
