"""Importing orders and members from CSV and JSONL files (DESIGN.md §2 ``import``)."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from allegiance.cli import app as cli_app
from allegiance.db import get_engine
from allegiance.integration.csv.service import import_members, import_orders, rejected_path
from allegiance.kit.clock import parse_timestamp
from tests.conftest import BASIC_PROGRAM, Api, apply_program, ledger_ok, new_tenant, order

NOW = "2026-06-01T00:00:00Z"

PROGRAM: dict[str, Any] = {
    "name": "Import",
    "currency": "USD",
    "timezone": "UTC",
    "wallets": {
        "points": {"precision": 0, "rounding": "floor"},
        "credit": {"kind": "credit", "precision": 2, "rounding": "half_up"},
    },
    "rules": [
        {
            "key": "base",
            "on": "order.completed",
            "earn": {"per_amount": 1, "items": "item.category != 'shipping'"},
        },
        {
            "key": "promo-x2",
            "on": "order.completed",
            "multiply": {"factor": 2, "items": "'promo' in item.labels"},
        },
        {
            "key": "big",
            "on": "order.completed",
            "when": "order.total >= 100.0",
            "earn": {"fixed": 25},
            "limit": {"per_member": 1, "period": "month"},
        },
        {"key": "cashback", "on": "order.completed", "earn": {"wallet": "credit", "percent": 1.5}},
    ],
}

HEADER = [
    "id",
    "member_id",
    "placed_at",
    "total",
    "sku",
    "name",
    "category",
    "labels",
    "quantity",
    "unit_price",
    "amount",
]

# (file line, row); the header is line 1
ROWS: list[list[str]] = [
    [
        "o1",
        "m1",
        "2026-03-01T10:00:00Z",
        "",
        "A",
        "Book",
        "books",
        "promo;new",
        "2",
        "10.00",
        "20.00",
    ],
    ["o1", "m1", "2026-03-01T10:00:00Z", "", "S", "Shipping", "shipping", "", "1", "4.99", "4.99"],
    ["o2", "m2", "2026-03-02T10:00:00Z", "", "B", "Lamp", "home", "", "1", "120.50", "120.50"],
    ["o3", "m1", "2026-03-03T10:00:00Z", "", "C", "Pen", "office", "", "1", "abc", "abc"],
    [
        "o4",
        "m1",
        "2026-03-04T10:00:00Z",
        "150.00",
        "D",
        "Desk",
        "home",
        "",
        "1",
        "100.00",
        "100.00",
    ],
    [
        "o4",
        "m1",
        "2026-03-04T10:00:00Z",
        "150.00",
        "E",
        "Chair",
        "home",
        "promo",
        "1",
        "45.00",
        "45.00",
    ],
    [
        "o4",
        "m1",
        "2026-03-04T10:00:00Z",
        "150.00",
        "S",
        "Shipping",
        "shipping",
        "",
        "1",
        "5.00",
        "5.00",
    ],
    ["o5", "m3", "2026-03-05T10:00:00Z"],  # too few columns
    ["o6", "m3", "2026-03-06T10:00:00Z", "", "F", "Mug", "kitchen", "promo", "3", "3.33", "9.99"],
    ["o7", "m2", "2026-03-07T10:00:00Z", "", "G", "Cup", "kitchen", "", "1", "1.999", "1.999"],
    ["o8", "m2", "2026-04-07T10:00:00Z", "", "H", "Rug", "home", "", "1", "199.99", "199.99"],
]
GOOD = ["o1", "o2", "o4", "o6", "o8"]
BAD_LINES = {5: "o3", 9: "o5", 11: "o7"}  # line -> order id


def write_csv(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        writer.writerows(rows)
    return path


def orders_as_json(rows: list[list[str]]) -> dict[str, dict[str, Any]]:
    """The good orders of ROWS as /v1/orders bodies."""
    orders: dict[str, dict[str, Any]] = {}
    for row in rows:
        if len(row) != len(HEADER):
            continue
        data = dict(zip(HEADER, row, strict=True))
        if data["id"] not in GOOD:
            continue
        body = orders.setdefault(
            data["id"],
            {
                "id": data["id"],
                "member_id": data["member_id"],
                "placed_at": data["placed_at"],
                "items": [],
            },
        )
        if data["total"]:
            body["total"] = data["total"]
        body["items"].append(
            {
                "sku": data["sku"],
                "name": data["name"],
                "category": data["category"],
                "labels": [x for x in data["labels"].split(";") if x],
                "quantity": data["quantity"],
                "unit_price": data["unit_price"],
                "amount": data["amount"],
            }
        )
    return orders


def api_balances(http: httpx.Client, bodies: list[dict[str, Any]]) -> dict[str, Any]:
    """Book the orders through the API in a fresh tenant; balances per member."""
    tenant_id, key = new_tenant("api twin")
    twin = Api(http, key)
    twin.now = NOW
    apply_program(twin, PROGRAM)
    for body in bodies:
        response = twin.post("/v1/orders", json=body)
        assert response.status_code == 201, response.text
    assert ledger_ok(tenant_id) == []
    return {
        m: twin.get(f"/v1/members/{m}").json()["balances"]
        for m in sorted({b["member_id"] for b in bodies})
    }


def read_rejects(path: Path) -> list[dict[str, Any]]:
    target = rejected_path(path)
    assert target.name == path.name + ".rejected.jsonl"
    return [json.loads(line) for line in target.read_text(encoding="utf-8").splitlines()]


def test_import_orders_csv(
    api: Api, tenant: tuple[str, str], tmp_dir: Path, http: httpx.Client
) -> None:
    api.now = NOW
    apply_program(api, PROGRAM)
    path = write_csv(tmp_dir / "orders.csv", ROWS)
    report = import_orders(
        get_engine(), tenant_id=tenant[0], path=path, now=parse_timestamp(NOW), batch_size=2
    )
    assert (report.read, report.booked, report.skipped, report.rejected) == (8, 5, 0, 3)
    assert report.rejected_file == str(rejected_path(path))
    rejects = read_rejects(path)
    assert {r["line"]: len(r["errors"]) > 0 for r in rejects} == dict.fromkeys(BAD_LINES, True)
    assert [r["line"] for r in rejects] == sorted(BAD_LINES)  # in the file's order
    for r in rejects:
        assert all(e["msg"] for e in r["errors"]), r
    by_line = {r["line"]: r for r in rejects}
    assert "column" in by_line[9]["errors"][0]["msg"]  # too few columns
    assert any("decimal places" in e["msg"] for e in by_line[11]["errors"])  # 1.999 USD
    assert ledger_ok(tenant[0]) == []

    # o1 has two lines, o4 three: the adjacent rows became one order each
    ledger = api.get("/v1/members/m1/ledger").json()["data"]
    assert sorted({t["order_id"] for t in ledger}) == ["o1", "o4"]
    expected = api_balances(http, list(orders_as_json(ROWS).values()))
    for member, balances in expected.items():
        got = api.get(f"/v1/members/{member}").json()["balances"]
        assert got == balances, member
    # o1: 20 × 2 (promo) = 40, shipping excluded; o4: 100 + 45 × 2 = 190 + 25 (big)
    assert expected["m1"]["points"]["active"] == 255
    assert report.points["points"] == sum(b["points"]["active"] for b in expected.values())

    # a re-run books nothing twice
    again = import_orders(get_engine(), tenant_id=tenant[0], path=path, now=parse_timestamp(NOW))
    assert (again.read, again.booked, again.skipped, again.rejected) == (8, 0, 5, 3)
    assert again.points == {}
    assert read_rejects(path) == rejects  # rewritten whole: the same lines and reasons
    for member, balances in expected.items():
        assert api.get(f"/v1/members/{member}").json()["balances"] == balances
    assert ledger_ok(tenant[0]) == []


def test_import_orders_jsonl(
    api: Api, tenant: tuple[str, str], tmp_dir: Path, http: httpx.Client
) -> None:
    api.now = NOW
    apply_program(api, PROGRAM)
    good = list(orders_as_json(ROWS).values())
    lines = [
        json.dumps(good[0]),  # 1
        "{not json",  # 2
        json.dumps(good[1]),  # 3
        "",  # 4 (blank: ignored)
        json.dumps([1, 2, 3]),  # 5 not an object
        json.dumps({"id": "x1", "member_id": "m1", "items": [{"sku": "z"}]}),  # 6 no amount
        json.dumps(good[2]),  # 7
        json.dumps({**good[3], "colour": "red"}),  # 8 unknown field
        json.dumps(good[3]),  # 9
        json.dumps(good[4]),  # 10
        json.dumps(
            {
                "id": "x2",
                "member_id": "m9",
                "currency": "EUR",
                "items": [{"sku": "q", "amount": "5.00"}],
            }
        ),  # 11 wrong currency
    ]
    lines.append(json.dumps({**good[0], "member_id": "someone-else"}))  # 12: o1 twice
    path = tmp_dir / "orders.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = import_orders(get_engine(), tenant_id=tenant[0], path=path, now=parse_timestamp(NOW))
    assert report.booked == 5
    rejects = read_rejects(path)
    bad_lines = sorted(r["line"] for r in rejects)
    assert bad_lines == [2, 5, 6, 8, 11, 12]
    assert report.rejected == 6
    by_line = {r["line"]: r for r in rejects}
    assert any("colour" in json.dumps(e["loc"]) for e in by_line[8]["errors"])
    assert any("currency" in json.dumps(e) for e in by_line[11]["errors"])
    assert ledger_ok(tenant[0]) == []
    expected = api_balances(http, good)
    for member, balances in expected.items():
        assert api.get(f"/v1/members/{member}").json()["balances"] == balances, member
    assert api.get("/v1/members/someone-else").status_code == 404

    again = import_orders(get_engine(), tenant_id=tenant[0], path=path, now=parse_timestamp(NOW))
    assert again.booked == 0
    assert again.skipped >= 5
    for member, balances in expected.items():
        assert api.get(f"/v1/members/{member}").json()["balances"] == balances, member
    assert ledger_ok(tenant[0]) == []


def test_import_csv_unknown_column_is_an_error(
    api: Api, tenant: tuple[str, str], tmp_dir: Path
) -> None:
    apply_program(api, PROGRAM)
    path = tmp_dir / "typo.csv"
    path.write_text("id,member_id,amout\no1,m1,10.00\n", encoding="utf-8")
    runner = CliRunner()
    result = runner.invoke(cli_app, ["import", "orders", str(path), "--tenant", tenant[0]])
    assert result.exit_code != 0
    assert api.get("/v1/members/m1").status_code == 404


def test_import_orders_through_the_cli(api: Api, tenant: tuple[str, str], tmp_dir: Path) -> None:
    api.now = NOW
    apply_program(api, PROGRAM)
    path = write_csv(tmp_dir / "cli-orders.csv", ROWS)
    runner = CliRunner()
    args = ["import", "orders", str(path), "--tenant", tenant[0], "--now", NOW]
    result = runner.invoke(cli_app, args)
    assert result.exit_code == 0, result.output
    assert "booked 5" in result.output
    assert "rejected 3" in result.output
    assert rejected_path(path).exists()
    again = runner.invoke(cli_app, args)
    assert again.exit_code == 0, again.output
    assert "booked 0" in again.output
    assert "already there 5" in again.output
    assert api.get("/v1/members/m1").json()["balances"]["points"]["active"] == 255
    assert ledger_ok(tenant[0]) == []


MEMBERS_CSV = """\
member_id,email,name,birthdate,tags,attributes.plan,attributes.city
c1,ann@example.com,Ann,1990-05-01,vip;newsletter,gold,Kraków
c2,bob@example.com,Bob,,,silver,
c3,cy@example.com,Cy,not-a-date,,,
,nobody@example.com,No Id,,,,
c4,dee@example.com,Dee,,wholesale,,Gdańsk
"""


def test_import_members_csv(api: Api, tenant: tuple[str, str], tmp_dir: Path) -> None:
    apply_program(api, PROGRAM)
    path = tmp_dir / "members.csv"
    path.write_text(MEMBERS_CSV, encoding="utf-8")
    report = import_members(get_engine(), tenant_id=tenant[0], path=path, now=parse_timestamp(NOW))
    assert (report.read, report.booked, report.rejected) == (5, 3, 2)
    rejects = read_rejects(path)
    assert sorted(r["line"] for r in rejects) == [4, 5]
    by_line = {r["line"]: r for r in rejects}
    assert any("birthdate" in json.dumps(e["loc"]) for e in by_line[4]["errors"])

    ann = api.get("/v1/members/c1").json()
    assert ann["email"] == "ann@example.com"
    assert ann["tags"] == ["vip", "newsletter"]
    assert ann["attributes"] == {"plan": "gold", "city": "Kraków"}
    assert ann["birthdate"] == "1990-05-01"
    bob = api.get("/v1/members/c2").json()
    assert bob["attributes"] == {"plan": "silver"}
    assert bob["tags"] == []
    assert api.get("/v1/members/c4").json()["tags"] == ["wholesale"]
    assert api.get("/v1/members/c3").status_code == 404

    # a re-run upserts: nothing duplicated, changes applied
    path.write_text(MEMBERS_CSV.replace("Ann,", "Anna,"), encoding="utf-8")
    again = import_members(get_engine(), tenant_id=tenant[0], path=path, now=parse_timestamp(NOW))
    assert again.booked == 3
    assert api.get("/v1/members/c1").json()["name"] == "Anna"
    assert api.get("/v1/members/c1").json()["tags"] == ["vip", "newsletter"]


def test_import_refunds_and_events_with_rejects_and_reruns(
    api: Api, tenant: tuple[str, str], tmp_path: Path
) -> None:
    from allegiance.integration.csv.service import import_events, import_refunds

    apply_program(
        api,
        {
            **BASIC_PROGRAM,
            "rules": [
                {"key": "base", "on": "order.completed", "earn": {"per_amount": 1}},
                {"key": "review", "on": "review.created", "earn": {"fixed": 5}},
                {"key": "recycle", "on": "recycling.returned", "earn": {"percent": 10}},
            ],
        },
    )
    api.post("/v1/orders", json=order("o1", "m1", "100.00"))
    refunds = tmp_path / "refunds.csv"
    refunds.write_text(
        "refund_id,order_id,amount,reason\n"
        "r1,o1,30.00,damaged\n"
        "r2,nope,5.00,\n"  # unknown order
        "r3,o1,500.00,\n"  # more than is left
        ",o1,1.00,\n"  # no id
        "r4,o1,10.00,\n"
    )
    now = parse_timestamp("2026-03-10T00:00:00Z")
    report = import_refunds(get_engine(), tenant_id=tenant[0], path=refunds, now=now)
    assert (report.read, report.booked, report.rejected) == (5, 2, 3)
    rejected = [
        json.loads(line) for line in Path(report.rejected_file or "").read_text().splitlines()
    ]
    rejected.sort(key=lambda r: r["line"])  # refused by parsing at once, by booking per batch
    assert [r["line"] for r in rejected] == [3, 4, 5]
    assert rejected[0]["errors"][0]["msg"] == "order 'nope' not found"
    assert rejected[1]["errors"][0]["loc"] == ["body", "amount"]
    assert rejected[2]["errors"][0]["loc"] == ["id"]
    assert api.get("/v1/members/m1").json()["balances"]["points"]["active"] == 60
    again = import_refunds(get_engine(), tenant_id=tenant[0], path=refunds, now=now)
    assert (again.booked, again.skipped) == (0, 2)
    events = tmp_path / "events.jsonl"
    events.write_text(
        '{"id": "e1", "type": "review.created", "member_id": "m1"}\n'
        '{"id": "e2", "type": "recycling.returned", "member_id": "m2",'
        ' "properties": {"amount": "40"}}\n'
        '{"id": "e3", "type": "order.completed", "member_id": "m1"}\n'
        "not json\n"
    )
    report = import_events(get_engine(), tenant_id=tenant[0], path=events, now=now)
    assert (report.booked, report.rejected) == (2, 2)
    assert api.get("/v1/members/m2").json()["balances"]["points"]["active"] == 4
    csv_events = tmp_path / "events.csv"
    csv_events.write_text(
        "event_id,type,customer_id,properties.amount\ne9,recycling.returned,m3,20\n"
    )
    assert import_events(get_engine(), tenant_id=tenant[0], path=csv_events, now=now).booked == 1
    assert api.get("/v1/members/m3").json()["balances"]["points"]["active"] == 2
    assert ledger_ok(tenant[0]) == []


def test_import_events_and_refunds_through_the_cli(
    api: Api, tenant: tuple[str, str], tmp_path: Path
) -> None:
    apply_program(api, BASIC_PROGRAM)
    api.post("/v1/orders", json=order("o1", "m1", "50.00"))
    refunds = tmp_path / "refunds.jsonl"
    refunds.write_text('{"id": "r1", "order_id": "o1", "amount": "10.00"}\n')
    runner = CliRunner()
    result = runner.invoke(cli_app, ["import", "refunds", str(refunds), "--tenant", tenant[0]])
    assert result.exit_code == 0, result.output
    assert "refunds: read 1, booked 1" in result.output
    events = tmp_path / "events.csv"
    events.write_text("id,type,member_id\ne1,review.created,m1\n")
    result = runner.invoke(cli_app, ["import", "events", str(events), "--tenant", tenant[0]])
    assert result.exit_code == 0, result.output
    assert "events: read 1, booked 1" in result.output
    assert api.get("/v1/members/m1").json()["balances"]["points"]["active"] == 40


def test_the_bulk_connection_gives_sqlite_settings_back() -> None:
    """An import's connection checkpoints the WAL less often only while the import runs."""
    from allegiance.db import BULK_SQLITE_PRAGMAS, bulk_connection

    engine = get_engine()
    if engine.dialect.name != "sqlite":
        pytest.skip("a SQLite setting")
    with bulk_connection(engine) as conn:
        dbapi = conn.connection.dbapi_connection
        assert dbapi is not None
        during = dbapi.execute("PRAGMA wal_autocheckpoint").fetchone()[0]
    after = dbapi.execute("PRAGMA wal_autocheckpoint").fetchone()[0]
    assert during == BULK_SQLITE_PRAGMAS["wal_autocheckpoint"]
    assert after == 1000  # SQLite's default, as the engine's connections have it
