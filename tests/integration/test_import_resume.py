"""Interrupted imports (docs/import.md "Interrupted imports"): a run killed part-way, or one
that stops on an unexpected error, is completed by running the same file again, with nothing
booked twice and nothing lost. The result equals an uninterrupted import."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

import allegiance.integration.csv.service as import_service
from allegiance.db import get_engine, read_session
from allegiance.export.service import open_export, write_export
from allegiance.integration.csv.service import (
    import_events,
    import_orders,
    import_refunds,
    rejected_path,
)
from allegiance.kit.clock import parse_timestamp
from allegiance.order.models import Event, Order, Refund
from tests.conftest import TEST_URL, Api, apply_program, ledger_ok, new_tenant
from tests.integration.test_import import HEADER, PROGRAM

NOW = "2026-06-01T00:00:00Z"
ORDERS = 1_200


def write_orders(path: Path) -> tuple[int, list[int]]:
    """ORDERS orders of 250 members, every fifth with two lines, and three bad rows; returns
    the number of good orders and the lines of the bad ones."""
    bad: list[int] = []
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        line = 1
        for n in range(ORDERS):
            order_id, member = f"o{n:05d}", f"m{n % 250:03d}"
            placed = f"2026-0{1 + n % 5}-{1 + n % 28:02d}T10:00:00Z"
            line += 1
            if n in (7, 600, ORDERS - 1):
                writer.writerow([order_id, member, placed, "", "X", "X", "x", "", "1", "x", "x"])
                bad.append(line)
                continue
            amount = f"{(n % 97) + 0.99:.2f}"
            labels = "promo" if n % 3 == 0 else ""
            writer.writerow(
                [order_id, member, placed, "", "A", "A", "books", labels, "1", amount, amount]
            )
            if n % 5 == 0:
                writer.writerow(
                    [order_id, member, placed, "", "S", "S", "shipping", "", "1", "4.99", "4.99"]
                )
                line += 1
    return ORDERS - len(bad), bad


def count(model: Any, tenant_id: str) -> int:
    with read_session(get_engine()) as session:
        return int(
            session.scalar(
                select(func.count()).select_from(model).where(model.tenant_id == tenant_id)
            )
            or 0
        )


def exported(tenant_id: str, kind: str) -> list[dict[str, str]]:
    """The export's rows without what differs between two tenants (transfer ids), sorted."""
    with read_session(get_engine()) as session:
        out = io.StringIO()
        write_export(open_export(session, tenant_id=tenant_id, kind=kind), out, "csv", id)
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    for row in rows:
        row.pop("id", None)
        row.pop("pending_id", None)
    return sorted(rows, key=lambda r: sorted(r.items()))


def same_books(tenant_id: str, other: str) -> None:
    for kind in ("members", "ledger"):
        assert exported(tenant_id, kind) == exported(other, kind), kind


def twin(api: Api, program: dict[str, Any]) -> str:
    tenant_id, key = new_tenant("twin")
    other = api.with_key(key)
    other.now = NOW
    apply_program(other, program)
    return tenant_id


def test_import_killed_part_way_completes_on_rerun(
    api: Api, tenant: tuple[str, str], tmp_dir: Path
) -> None:
    api.now = NOW
    apply_program(api, PROGRAM)
    path = tmp_dir / "orders.csv"
    good, bad = write_orders(path)
    env = dict(os.environ, ALLEGIANCE_DATABASE_URL=TEST_URL, ALLEGIANCE_IMPORT_BATCH_SIZE="50")
    args = ["import", "orders", str(path), "--tenant", tenant[0], "--now", NOW]
    child = subprocess.Popen(
        [sys.executable, "-m", "allegiance.cli", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while count(Order, tenant[0]) < 100:  # two batches committed
            assert child.poll() is None, "the import ended before it could be interrupted"
            assert time.monotonic() < deadline, "the import did not start"
            time.sleep(0.02)
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait(timeout=60)
    assert child.returncode == -signal.SIGKILL
    booked_before = count(Order, tenant[0])
    assert 100 <= booked_before < good  # really interrupted part-way
    assert ledger_ok(tenant[0]) == []  # the batch in flight left no trace

    report = import_orders(get_engine(), tenant_id=tenant[0], path=path, now=parse_timestamp(NOW))
    assert (report.booked, report.skipped, report.rejected) == (
        good - booked_before,
        booked_before,
        3,
    )
    rejects = [json.loads(line) for line in rejected_path(path).read_text().splitlines()]
    assert sorted(r["line"] for r in rejects) == bad
    assert count(Order, tenant[0]) == good
    assert ledger_ok(tenant[0]) == []

    # the same as one uninterrupted run (limits, multipliers, balances, every transfer)
    other = twin(api, PROGRAM)
    straight = import_orders(get_engine(), tenant_id=other, path=path, now=parse_timestamp(NOW))
    assert straight.booked == good
    same_books(tenant[0], other)
    earned = Counter((r["order_id"], r["wallet"], r["rule"]) for r in exported(other, "ledger"))
    assert len({order_id for order_id, _, _ in earned}) == good  # every good order earned
    assert set(earned.values()) == {1}  # and nothing twice


class Crash(Exception):
    """An unexpected failure (not a rejected record): the import stops."""


def crash_at(monkeypatch: pytest.MonkeyPatch, name: str, call: int) -> None:
    """Make the importer's ``name`` fail on its ``call``-th use, once."""
    real = getattr(import_service, name)
    calls = Counter[str]()

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        calls[name] += 1
        if calls[name] == call:
            raise Crash(f"{name} failed at call {call}")
        return real(*args, **kwargs)

    monkeypatch.setattr(import_service, name, wrapper)


def test_orders_refunds_and_events_stopped_by_an_error_complete_on_rerun(
    api: Api, tenant: tuple[str, str], tmp_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    api.now = NOW
    program = {
        **PROGRAM,
        "rules": [
            *PROGRAM["rules"],
            {"key": "review", "on": "review.created", "earn": {"fixed": 5}},
        ],
    }
    apply_program(api, program)
    now = parse_timestamp(NOW)
    engine = get_engine()
    orders = tmp_dir / "orders.csv"
    good, _ = write_orders(orders)
    crash_at(monkeypatch, "book_orders", 4)  # the fourth batch
    with pytest.raises(Crash):
        import_orders(engine, tenant_id=tenant[0], path=orders, now=now, batch_size=100)
    assert count(Order, tenant[0]) == 300
    monkeypatch.undo()
    again = import_orders(engine, tenant_id=tenant[0], path=orders, now=now, batch_size=100)
    assert (again.booked, again.skipped) == (good - 300, 300)

    refunds = tmp_dir / "refunds.csv"
    refunds.write_text(
        "refund_id,order_id,amount\n"
        + "".join(f"r{n},o{n:05d},0.99\n" for n in range(0, 200, 2))
        + "r9999,o00007,1.00\n",  # the order was rejected: refused
        encoding="utf-8",
    )
    crash_at(monkeypatch, "refund_order", 60)
    with pytest.raises(Crash):
        import_refunds(engine, tenant_id=tenant[0], path=refunds, now=now, batch_size=25)
    assert count(Refund, tenant[0]) == 50  # two batches of 25 committed, the third rolled back
    monkeypatch.undo()
    report = import_refunds(engine, tenant_id=tenant[0], path=refunds, now=now, batch_size=25)
    assert (report.booked, report.skipped, report.rejected) == (50, 50, 1)
    assert count(Refund, tenant[0]) == 100

    events = tmp_dir / "events.csv"
    events.write_text(
        "id,type,member_id\n" + "".join(f"e{n},review.created,m{n:03d}\n" for n in range(120)),
        encoding="utf-8",
    )
    crash_at(monkeypatch, "record_event", 101)
    with pytest.raises(Crash):
        import_events(engine, tenant_id=tenant[0], path=events, now=now, batch_size=50)
    assert count(Event, tenant[0]) == 100
    monkeypatch.undo()
    report = import_events(engine, tenant_id=tenant[0], path=events, now=now, batch_size=50)
    assert (report.booked, report.skipped) == (20, 100)
    assert ledger_ok(tenant[0]) == []

    # everything booked once: the same books as a tenant that never saw an error
    other = twin(api, program)
    import_orders(engine, tenant_id=other, path=orders, now=now)
    import_refunds(engine, tenant_id=other, path=refunds, now=now)
    import_events(engine, tenant_id=other, path=events, now=now)
    same_books(tenant[0], other)
