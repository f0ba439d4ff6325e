"""``allegiance export members|ledger|orders`` (docs/export.md): exact contents for a small
tenant, erased members, ledger sums against balances, windows, files and errors."""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from allegiance.cli import app as cli_app
from allegiance.db import get_engine, read_session
from allegiance.export.service import MEMBER_COLUMNS, open_export, write_export
from tests.conftest import Api, apply_program, ledger_ok, order

NOW = "2026-06-01T00:00:00Z"

PROGRAM: dict[str, Any] = {
    "name": "Export",
    "currency": "USD",
    "timezone": "UTC",
    "wallets": {
        "points": {"precision": 0, "rounding": "floor"},
        "credit": {"kind": "credit", "precision": 2, "rounding": "half_up"},
    },
    "tiers": {
        "metric": "points_earned",
        "levels": [{"key": "silver", "threshold": 20}, {"key": "gold", "threshold": 100}],
    },
    "rules": [
        {"key": "base", "on": "order.completed", "earn": {"per_amount": 1}},
        {"key": "cashback", "on": "order.completed", "earn": {"wallet": "credit", "percent": 1.5}},
    ],
}


def run(*args: str) -> Any:
    return CliRunner().invoke(cli_app, ["export", *args])


def build(api: Api) -> None:
    """m1 (profile, two orders, a debit), m2 (erased), m3 (no profile, one small order)."""
    api.now = NOW
    apply_program(api, PROGRAM)
    profiles = {
        "m1": {"email": "ann@example.com", "name": "Ann", "tags": ["vip", "news"]},
        "m2": {"email": "bob@example.com", "name": "Bob", "phone": "+48 600 000 000"},
    }
    for member_id, body in profiles.items():
        body |= {"attributes": {"city": "Kraków"}, "birthdate": "1990-05-01"}
        assert api.put(f"/v1/members/{member_id}", json=body).status_code in (200, 201)
    bodies = [
        order("o1", "m1", "20.00", "4.99", placed_at="2026-03-01T10:00:00Z"),
        order("o2", "m2", "120.50", placed_at="2026-03-02T10:00:00Z", attributes={"gift": "x"}),
        order("o3", "m3", "9.99", placed_at="2026-04-01T10:00:00Z", channel="pos"),
        order("o4", "m1", "1.01", placed_at="2026-05-01T10:00:00Z", coupon_codes=[]),
    ]
    for body in bodies:
        response = api.post("/v1/orders", json=body)
        assert response.status_code == 201, response.text
    response = api.post(
        "/v1/members/m1/adjustments", json={"id": "a1", "amount": -5, "reason": "goodwill back"}
    )
    assert response.status_code == 201, response.text
    assert api.delete("/v1/members/m2").status_code == 204


def csv_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def jsonl_rows(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_members_export_exact(api: Api, tenant: tuple[str, str]) -> None:
    build(api)
    result = run("members", "--tenant", tenant[0])
    assert result.exit_code == 0, result.output
    rows = csv_rows(result.stdout)
    assert list(rows[0]) == [name for name, _ in MEMBER_COLUMNS] + [
        "balance.credit",
        "pending.credit",
        "balance.points",
        "pending.points",
    ]
    by_id = {r["member_id"]: r for r in rows}
    assert list(by_id) == ["m1", "m2", "m3"]
    m1, m2, m3 = by_id["m1"], by_id["m2"], by_id["m3"]
    assert (m1["email"], m1["name"], m1["tags"]) == ("ann@example.com", "Ann", "vip;news")
    assert json.loads(m1["attributes"]) == {"city": "Kraków"}
    assert m1["birthdate"] == "1990-05-01"
    # 24.99 → 24 points and 0.37 credit; 1.01 → 1 point and 0.02 credit; minus 5 points
    assert (m1["balance.points"], m1["balance.credit"]) == ("20", "0.39")
    assert (m1["pending.points"], m1["pending.credit"]) == ("0", "0.00")
    assert (m1["orders_count"], m1["spend"]) == ("2", "26.00")
    assert m1["tier"] == "silver"
    assert m1["erased_at"] == ""
    # erased: personal columns empty, the ids, statistics and balances stay
    for column in ("email", "name", "phone", "birthdate", "tags", "attributes", "locale"):
        assert m2[column] == "", column
    assert m2["erased_at"].startswith("2026-06-01")
    assert (m2["balance.points"], m2["balance.credit"], m2["tier"]) == ("120", "1.81", "gold")
    assert (m3["balance.points"], m3["balance.credit"], m3["tier"]) == ("9", "0.15", "")
    assert "bob@example.com" not in result.stdout
    assert "Bob" not in result.stdout

    as_json = jsonl_rows(run("members", "--tenant", tenant[0], "--format", "jsonl").stdout)
    j1 = next(r for r in as_json if r["member_id"] == "m1")
    assert j1["tags"] == ["vip", "news"]
    assert j1["attributes"] == {"city": "Kraków"}
    assert j1["balance.credit"] == "0.39"  # exact decimal strings, never floats
    assert j1["spend"] == "26.00"
    j2 = next(r for r in as_json if r["member_id"] == "m2")
    assert j2["email"] is None and j2["attributes"] is None


def test_ledger_export_sums_to_balances(api: Api, tenant: tuple[str, str]) -> None:
    build(api)
    assert ledger_ok(tenant[0]) == []
    rows = csv_rows(run("ledger", "--tenant", tenant[0]).stdout)
    ids = [int(r["id"]) for r in rows]
    assert ids == sorted(ids) and len(rows) == 9  # 4 orders x 2 wallets + the debit
    o1 = [r for r in rows if r["order_id"] == "o1"]
    assert {(r["wallet"], r["amount"], r["rule"], r["code"]) for r in o1} == {
        ("points", "24", "base", "earn"),
        ("credit", "0.37", "cashback", "earn"),
    }
    assert all(r["credit_account"] == "member:m1" for r in o1)
    assert all(r["debit_account"].startswith("system:") for r in o1)
    debit = next(r for r in rows if r["code"] != "earn")
    assert (debit["member_id"], debit["wallet"], debit["amount"]) == ("m1", "points", "-5")
    assert debit["reason"] == "goodwill back"
    posted: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for r in rows:
        if r["phase"] == "posted":
            posted[(r["member_id"], r["wallet"])] += Decimal(r["amount"])
    members = csv_rows(run("members", "--tenant", tenant[0]).stdout)
    for m in members:
        for wallet in ("points", "credit"):
            assert posted[(m["member_id"], wallet)] == Decimal(m[f"balance.{wallet}"])
    for r in rows:  # wallet precision: points whole, credit two places
        places = 2 if r["wallet"] == "credit" else 0
        assert -Decimal(r["amount"]).as_tuple().exponent == places, r  # type: ignore[operator]


def test_orders_export(api: Api, tenant: tuple[str, str]) -> None:
    build(api)
    rows = jsonl_rows(run("orders", "--tenant", tenant[0], "--format", "jsonl").stdout)
    assert [r["order_id"] for r in rows] == ["o1", "o2", "o3", "o4"]
    o1 = rows[0]
    assert (o1["member_id"], o1["currency"], o1["total"], o1["subtotal"]) == (
        "m1",
        "USD",
        "24.99",
        "24.99",
    )
    assert o1["placed_at"].startswith("2026-03-01T10:00:00")
    assert o1["refunded"] == "0.00" and o1["status"] == "completed"
    assert [(i["sku"], i["amount"], i["quantity"]) for i in o1["items"]] == [
        ("sku-0", "20.00", "1"),
        ("sku-1", "4.99", "1"),
    ]
    assert rows[1]["attributes"] == {}  # m2 was erased: free-form attributes go
    assert rows[2]["channel"] == "pos"
    flat = csv_rows(run("orders", "--tenant", tenant[0]).stdout)
    assert len(flat) == 4  # one row per order, the lines as JSON
    assert json.loads(flat[0]["items"])[1]["amount"] == "4.99"
    assert flat[3]["coupon_codes"] == ""


def test_windows_and_output_file(api: Api, tenant: tuple[str, str], tmp_dir: Path) -> None:
    build(api)
    window = ["--since", "2026-03-02", "--until", "2026-04-01T10:00:00Z"]
    orders = csv_rows(run("orders", "--tenant", tenant[0], *window).stdout)
    assert [r["order_id"] for r in orders] == ["o2"]
    ledger = csv_rows(run("ledger", "--tenant", tenant[0], "--since", "2026-04-01").stdout)
    assert {r["order_id"] for r in ledger} == {"o3", "o4", ""}
    target = tmp_dir / "members.jsonl"
    result = run("members", "--tenant", tenant[0], "--format", "jsonl", "--output", str(target))
    assert result.exit_code == 0, result.output
    assert "3 rows written" in result.output
    assert [r["member_id"] for r in jsonl_rows(target.read_text())] == ["m1", "m2", "m3"]
    assert not target.with_name("members.jsonl.partial").exists()


def test_pages_are_bounded(api: Api, tenant: tuple[str, str]) -> None:
    """Keyset pages of 2 give the same rows as one page (no row lost or repeated)."""
    build(api)
    outputs = []
    for batch_size in (2, 1000):
        with read_session(get_engine()) as session:
            export = open_export(session, tenant_id=tenant[0], kind="ledger", batch_size=batch_size)
            out = io.StringIO()
            assert write_export(export, out, "jsonl", lambda _: None) == 9
            outputs.append(out.getvalue())
    assert outputs[0] == outputs[1]


def test_errors(api: Api, tenant: tuple[str, str], tmp_dir: Path) -> None:
    unknown = run("members", "--tenant", "ten_nope")
    assert unknown.exit_code == 1
    assert "tenant ten_nope does not exist" in unknown.output
    bad_format = run("members", "--tenant", tenant[0], "--format", "xml")
    assert bad_format.exit_code == 2
    assert "unknown format 'xml'" in bad_format.output
    bad_date = run("ledger", "--tenant", tenant[0], "--since", "yesterday")
    assert bad_date.exit_code == 2
    assert "--since" in bad_date.output
    backwards = run(
        "orders", "--tenant", tenant[0], "--since", "2026-02-01", "--until", "2026-01-01"
    )
    assert backwards.exit_code == 2
    target = tmp_dir / "none.csv"
    failed = run("members", "--tenant", "ten_nope", "--output", str(target))
    assert failed.exit_code == 1
    assert not target.exists() and not target.with_name("none.csv.partial").exists()
    empty = run("members", "--tenant", tenant[0])  # no program yet: profile columns only
    assert empty.exit_code == 0, empty.output
    assert empty.stdout.splitlines() == [",".join(name for name, _ in MEMBER_COLUMNS)]
