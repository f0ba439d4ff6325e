"""The simulator: its totals equal booking the same orders for real, ``--compare`` shows both
programs, and the configured database is never touched."""

from __future__ import annotations

import csv
import hashlib
import json
import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from allegiance.db import dispose_engine, get_engine, read_session, write_session
from allegiance.integration.csv.service import import_orders
from allegiance.kit.clock import parse_timestamp
from allegiance.ledger.models import LedgerAccount, Transfer
from allegiance.migrate import upgrade
from allegiance.program.service import apply_program
from allegiance.simulation.service import load_history, simulate
from allegiance.tenant.models import Tenant
from allegiance.worker.runner import run_all
from tests.conftest import new_tenant
from tests.test_cli import run, sql

PROGRAM: dict[str, Any] = {
    "name": "Base",
    "currency": "USD",
    "timezone": "UTC",
    "wallets": {
        "points": {"precision": 0, "point_value": "0.01", "pending_days": 14,
                   "expiry": {"mode": "rolling_days", "days": 60}},
    },
    "rules": [
        {"key": "base", "earn": {"per_amount": 1}},
        {"key": "big-basket", "when": "order.total >= 100.0", "earn": {"fixed": 25}},
    ],
    "tiers": {"metric": "spend", "levels": [
        {"key": "bronze", "threshold": 0},
        {"key": "gold", "threshold": 300, "benefits": {"earn_multiplier": 2}},
    ]},
    "rewards": [{"key": "five-off", "cost": 500, "type": "discount_fixed", "value": 5}],
}  # fmt: skip
ZoneUTC = ZoneInfo("UTC")
RICHER = {**PROGRAM, "name": "Richer", "rules": [{"key": "base", "earn": {"per_amount": 3}}]}


def _orders(path: Path, n: int = 240, members: int = 30) -> Path:
    rng = random.Random(7)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    rows = []
    for i in range(n):
        placed = start + timedelta(days=rng.randint(0, 150), hours=rng.randint(0, 23))
        amount = rng.randint(5, 140)
        rows.append(
            {"id": f"o{i}", "member_id": f"m{rng.randint(1, members)}",
             "placed_at": placed.isoformat(),
             "items": [{"sku": "s", "quantity": 1, "unit_price": f"{amount}.00",
                        "amount": f"{amount}.00"}]}
        )  # fmt: skip
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _real_totals(tenant_id: str) -> dict[str, float]:
    with read_session(get_engine()) as session:
        sums = dict(
            session.execute(
                select(Transfer.code, func.sum(Transfer.amount_minor))
                .where(Transfer.tenant_id == tenant_id)
                .group_by(Transfer.code)
            ).all()
        )
        held = session.execute(
            select(func.sum(LedgerAccount.posted_minor + LedgerAccount.pending_minor)).where(
                LedgerAccount.tenant_id == tenant_id, LedgerAccount.owner_type != "system"
            )
        ).scalar()
    return {
        "issued": float(sums.get("earn", 0) - sums.get("reverse", 0)),
        "expired": float(sums.get("expire", 0)),
        "outstanding": float(held or 0),
    }


def test_totals_equal_booking_the_orders_for_real(tmp_dir: Path) -> None:
    path = _orders(tmp_dir / "orders.jsonl", n=120, members=15)
    history = load_history(path, ZoneUTC, max_orders=10_000)
    result = simulate(PROGRAM, history)
    totals = result["totals"]
    months = result["months"]
    assert [m["month"] for m in months] == ["2026-01", "2026-02", "2026-03", "2026-04",
                                           "2026-05"]  # fmt: skip
    assert totals["orders"] == 120 and totals["points_expired"] > 0
    assert totals["tiers"].get("gold", 0) > 0
    # the same orders booked for real in a tenant of the configured database, each as it
    # happened: imported at its own time, with the periodic jobs run as time goes by
    end = parse_timestamp(months[-1]["as_of"])
    tenant_id, _ = new_tenant("real")
    engine = get_engine()
    with write_session(engine) as session:
        apply_program(session, tenant_id=tenant_id, document=PROGRAM, now=end)
    records = sorted(path.read_text().splitlines(), key=lambda r: json.loads(r)["placed_at"])
    single = tmp_dir / "one.jsonl"
    for record in records:
        at = parse_timestamp(json.loads(record)["placed_at"])
        run_all(engine, at, tenant_id)
        single.write_text(record + "\n")
        assert import_orders(engine, tenant_id=tenant_id, path=single, now=at).booked == 1
    run_all(engine, end, tenant_id)
    real = _real_totals(tenant_id)
    assert totals["points_issued"] == real["issued"]
    assert totals["points_expired"] == real["expired"]
    assert totals["points_outstanding"] == real["outstanding"]
    assert totals["liability"] == pytest.approx(real["outstanding"] * 0.01)
    assert totals["tiers"] == _real_tiers(tenant_id)
    # month figures add up: outstanding moves by issued − redeemed − expired
    previous = 0.0
    for m in months:
        assert (
            m["points_outstanding"]
            == previous + m["points_issued"] - m["points_redeemed"] - m["points_expired"]
        )
        previous = m["points_outstanding"]
        assert m["cost"] == pytest.approx(m["points_issued"] * 0.01)
        assert m["cost_share"] == pytest.approx(m["cost"] / m["revenue"])


def _real_tiers(tenant_id: str) -> dict[str, int]:
    from allegiance.simulation.repository import tier_counts

    with read_session(get_engine()) as session:
        return dict(sorted(tier_counts(session, tenant_id).items()))


def test_redemption_assumption_spends_points(tmp_dir: Path) -> None:
    history = load_history(_orders(tmp_dir / "orders.jsonl"), ZoneUTC, max_orders=10_000)
    result = simulate(PROGRAM, history, redemption_rate=Decimal("0.5"))
    redeemed = result["totals"]["points_redeemed"]
    assert redeemed > 0 and redeemed % 500 == 0  # whole units of the cheapest reward
    assert result["redemptions_refused"] == 0
    previous = 0.0
    for m in result["months"]:
        assert (
            m["points_outstanding"]
            == previous + m["points_issued"] - m["points_redeemed"] - m["points_expired"]
        )
        previous = m["points_outstanding"]


def test_orders_without_a_date_are_rejected(tmp_dir: Path) -> None:
    path = tmp_dir / "orders.csv"
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "member_id", "placed_at", "sku", "quantity", "amount"])
        writer.writerow(["a", "m1", "2026-01-05", "s", "1", "10.00"])
        writer.writerow(["b", "m1", "", "s", "1", "10.00"])
        writer.writerow(["c", "m2", "2026-03-05T10:00:00Z", "s", "1", "20.00"])
    history = load_history(path, ZoneUTC, max_orders=10)
    assert history.orders == 2 and history.read == 3
    assert history.rejected[0]["errors"] == ["placed_at is needed to replay an order"]
    assert [len(m[2]) for m in history.months] == [1, 0, 1]  # February is empty, but listed
    with pytest.raises(ValueError, match="more than 2"):
        load_history(path, ZoneUTC, max_orders=2)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else ""


def test_cli_compare_json_and_the_live_database_is_untouched(tmp_dir: Path) -> None:
    orders = _orders(tmp_dir / "orders.jsonl", n=120)
    first = tmp_dir / "base.json"
    first.write_text(json.dumps(PROGRAM))
    second = tmp_dir / "richer.json"
    second.write_text(json.dumps(RICHER))
    live = f"sqlite:///{tmp_dir / 'live.db'}"
    upgrade(live)
    dispose_engine(live)
    tables = ["tenants", "orders", "members", "ledger_transfers", "program_versions"]
    before = {t: sql(live, f"SELECT count(*) FROM {t}")[0][0] for t in tables}
    digest = _digest(tmp_dir / "live.db")
    result = run(live, "simulate", "--program", str(first), "--orders", str(orders),
                 "--compare", str(second), "--json", "--redemption-rate", "0.25")  # fmt: skip
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    assert [p["name"] for p in body["programs"]] == ["Base", "Richer"]
    base, richer = body["programs"]
    assert [m["month"] for m in base["months"]] == [m["month"] for m in richer["months"]]
    assert richer["totals"]["points_issued"] > base["totals"]["points_issued"]
    assert body["assumptions"] == {"redemption_rate": 0.25}
    assert body["orders"]["replayed"] == 120
    # nothing reached the configured database, nor the test database
    assert {t: sql(live, f"SELECT count(*) FROM {t}")[0][0] for t in tables} == before
    assert _digest(tmp_dir / "live.db") == digest
    with read_session(get_engine()) as session:
        names = list(session.scalars(select(Tenant.name).where(Tenant.name == "simulation")))
    assert names == []
    # the table: both programs side by side
    table = run(live, "simulate", "--program", str(first), "--orders", str(orders),
                "--compare", str(second))  # fmt: skip
    assert table.returncode == 0, table.stderr
    assert "Issued A" in table.stdout and "Issued B" in table.stdout
    assert "Base" in table.stdout and "Richer" in table.stdout
    assert "Total" in table.stdout


def test_cli_bad_program_is_located(tmp_dir: Path) -> None:
    bad = tmp_dir / "bad.json"
    experiment = {"key": "e", "holdout": 5, "variants": [{"key": "a"}]}
    bad.write_text(json.dumps({**PROGRAM, "experiments": [experiment]}))
    orders = _orders(tmp_dir / "orders.jsonl", n=5)
    result = run(f"sqlite:///{tmp_dir / 'x.db'}", "simulate", "--program", str(bad),
                 "--orders", str(orders))  # fmt: skip
    assert result.returncode == 1
    assert "experiments.0.holdout" in result.stderr
    assert not (tmp_dir / "x.db").exists()
