"""The ``allegiance`` command line as a user runs it: a subprocess per command (DESIGN.md §2).

Every command gets ``--database-url``: a fresh SQLite file, and also the test database when the
suite runs on PostgreSQL (there, everything is scoped to the tenants these tests create).
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from allegiance.db import normalize_url
from tests.conftest import IS_POSTGRES, TEST_URL

DEMO_PROGRAM = Path(__file__).resolve().parents[1] / "src" / "allegiance" / "demo" / "program.yaml"


def run(
    url: str, *args: str, timeout: float = 120, settings: dict[str, str | None] | None = None
) -> subprocess.CompletedProcess[str]:
    """``allegiance ARGS --database-url URL``; ``settings`` sets (or, None, unsets) variables."""
    env = {k: v for k, v in os.environ.items() if k != "ALLEGIANCE_DATABASE_URL"}
    env["COLUMNS"] = "400"  # no wrapping of long lines by rich
    env["ALLEGIANCE_CLOCK_OVERRIDE"] = "false"
    for name, value in (settings or {}).items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return subprocess.run(
        [sys.executable, "-m", "allegiance.cli", *args, "--database-url", url],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )


def sql(url: str, statement: str, **params: Any) -> list[Any]:
    engine = create_engine(normalize_url(url))
    try:
        with engine.begin() as conn:
            result = conn.execute(text(statement), params)
            return list(result) if result.returns_rows else []
    finally:
        engine.dispose()


@pytest.fixture(scope="module", params=["sqlite", "postgres"] if IS_POSTGRES else ["sqlite"])
def url(request: pytest.FixtureRequest) -> Iterator[str]:
    if request.param == "postgres":
        yield TEST_URL
        return
    folder = tempfile.mkdtemp(prefix="allegiance-cli-")
    yield f"sqlite:///{folder}/cli.db"


def create_tenant(url: str, name: str = "cli shop") -> dict[str, str]:
    result = run(url, "tenants", "create", name, "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(data) == {"tenant_id", "api_key"}
    return data


def test_tenants_create_json(url: str) -> None:
    first = create_tenant(url, "one")
    second = create_tenant(url, "two")
    assert first["tenant_id"] != second["tenant_id"]
    assert first["api_key"] and first["api_key"] != second["api_key"]
    rows = sql(url, "SELECT name FROM tenants WHERE id = :t", t=first["tenant_id"])
    assert [r[0] for r in rows] == ["one"]


def test_program_validate(url: str, tmp_dir: Path) -> None:
    ok = run(url, "program", "validate", str(DEMO_PROGRAM))
    assert ok.returncode == 0, ok.stderr

    as_json = tmp_dir / "program.json"
    as_json.write_text(
        json.dumps(
            {
                "name": "J",
                "currency": "USD",
                "rules": [{"key": "a", "on": "order.completed", "earn": {"per_amount": 1}}],
            }
        ),
        encoding="utf-8",
    )
    assert run(url, "program", "validate", str(as_json)).returncode == 0

    broken = tmp_dir / "broken.yaml"
    broken.write_text(
        DEMO_PROGRAM.read_text(encoding="utf-8")
        .replace('when: "order.total >= 100.0"', 'when: "order.total >= 100"\n    colour: red')
        .replace("earn: {per_amount: 1}", 'earn: {per_amount: 1}\n    when: "order.totl > 1.0"'),
        encoding="utf-8",
    )
    bad = run(url, "program", "validate", str(broken))
    assert bad.returncode == 1, (bad.stdout, bad.stderr)
    assert "rules.2.colour" in bad.stderr
    assert "unknown key" in bad.stderr

    located = tmp_dir / "located.yaml"
    located.write_text(
        DEMO_PROGRAM.read_text(encoding="utf-8").replace(
            "earn: {per_amount: 1}", 'earn: {per_amount: 1}\n    when: "order.totl > 1.0"'
        ),
        encoding="utf-8",
    )
    bad = run(url, "program", "validate", str(located))
    assert bad.returncode == 1
    assert "rules.0.when" in bad.stderr
    assert "totl" in bad.stderr

    unparsable = tmp_dir / "unparsable.yaml"
    unparsable.write_text("name: [unclosed\n", encoding="utf-8")
    assert run(url, "program", "validate", str(unparsable)).returncode == 1
    assert run(url, "program", "validate", str(tmp_dir / "missing.yaml")).returncode != 0


def _versions(url: str, tenant_id: str) -> list[int]:
    rows = sql(
        url,
        "SELECT version FROM program_versions WHERE tenant_id = :t ORDER BY version",
        t=tenant_id,
    )
    return [r[0] for r in rows]


def test_program_apply(url: str, tmp_dir: Path) -> None:
    tenant = create_tenant(url)
    applied = run(url, "program", "apply", str(DEMO_PROGRAM), "--tenant", tenant["tenant_id"])
    assert applied.returncode == 0, applied.stderr
    assert "version 1" in applied.stdout
    again = run(url, "program", "apply", str(DEMO_PROGRAM), "--tenant", tenant["tenant_id"])
    assert again.returncode == 0, again.stderr
    assert "version 2" in again.stdout
    broken = tmp_dir / "broken.yaml"
    broken.write_text(
        DEMO_PROGRAM.read_text(encoding="utf-8").replace(
            "timezone: America/New_York", "timezone: America/Nowhere"
        ),
        encoding="utf-8",
    )
    bad = run(url, "program", "apply", str(broken), "--tenant", tenant["tenant_id"])
    assert bad.returncode == 1
    assert "timezone" in bad.stderr
    assert _versions(url, tenant["tenant_id"]) == [1, 2]
    unknown = run(url, "program", "apply", str(DEMO_PROGRAM), "--tenant", "ten_nope")
    assert unknown.returncode != 0


def _orders_csv(path: Path, count: int) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "member_id", "placed_at", "sku", "category", "quantity", "amount"])
        for n in range(count):
            # two lines per order; the second line of every 5th order has 5 CDs (x2)
            when = f"2026-03-{1 + n % 28:02d}T12:00:00Z"
            writer.writerow([f"o{n}", f"m{n % 7}", when, "cd-a", "music", "1", "10.00"])
            writer.writerow(
                [f"o{n}", f"m{n % 7}", when, "cd-b", "music", "5" if n % 5 == 0 else "1", "20.00"]
            )
        writer.writerow(["bad", "m1", "yesterday", "x", "music", "1", "1.00"])
    return path


def _member_balances(url: str, tenant_id: str) -> dict[str, tuple[int, int]]:
    rows = sql(
        url,
        "SELECT owner_id, posted_minor, pending_minor FROM ledger_accounts "
        "WHERE tenant_id = :t AND owner_type = 'member' AND wallet = 'points'",
        t=tenant_id,
    )
    return {r[0]: (int(r[1]), int(r[2])) for r in rows}


def test_import_jobs_and_ledger_verify(url: str, tmp_dir: Path) -> None:
    tenant = create_tenant(url)
    tid = tenant["tenant_id"]
    assert run(url, "program", "apply", str(DEMO_PROGRAM), "--tenant", tid).returncode == 0
    path = _orders_csv(tmp_dir / "orders.csv", 40)
    imported = run(
        url, "import", "orders", str(path), "--tenant", tid, "--now", "2026-04-01T00:00:00Z"
    )
    assert imported.returncode == 0, imported.stderr
    assert "booked 40" in imported.stdout
    assert "rejected 1" in imported.stdout
    rejects = [
        json.loads(line)
        for line in (tmp_dir / "orders.csv.rejected.jsonl").read_text().splitlines()
    ]
    assert [r["line"] for r in rejects] == [82]
    assert rejects[0]["errors"]

    # 14 pending days (demo program): orders of 12 March and later are still pending
    balances = _member_balances(url, tid)
    assert len(balances) == 7
    total = sum(p + q for p, q in balances.values())
    # per order: 30 points, or 10 + 20 × 2 = 50 for every 5th order (8 of them)
    assert total == 32 * 30 + 8 * 50
    assert sum(q for _, q in balances.values()) > 0

    again = run(url, "import", "orders", str(path), "--tenant", tid)
    assert again.returncode == 0, again.stderr
    assert "booked 0" in again.stdout
    assert "already there 40" in again.stdout

    verified = run(url, "ledger", "verify", "--tenant", tid)
    assert verified.returncode == 0, verified.stderr

    jobs = run(url, "jobs", "run", "--now", "2030-01-01T00:00:00Z", "--tenant", tid)
    assert jobs.returncode == 0, jobs.stderr
    assert "activate_and_expire: 7" in jobs.stdout
    balances = _member_balances(url, tid)
    assert sum(q for _, q in balances.values()) == 0
    assert sum(p for p, _ in balances.values()) == total
    assert run(url, "ledger", "verify", "--tenant", tid).returncode == 0

    sql(
        url,
        "UPDATE ledger_accounts SET posted_minor = posted_minor + 1 "
        "WHERE owner_type = 'member' AND tenant_id = :t",
        t=tid,
    )
    broken = run(url, "ledger", "verify", "--tenant", tid)
    assert broken.returncode == 1
    assert "breach" in broken.stderr
    assert "cached balance" in broken.stderr
    if not url.startswith("postgresql"):  # a database of our own: every tenant is ours
        everything = run(url, "ledger", "verify")
        assert everything.returncode == 1
    sql(
        url,
        "UPDATE ledger_accounts SET posted_minor = posted_minor - 1 "
        "WHERE owner_type = 'member' AND tenant_id = :t",
        t=tid,
    )
    assert run(url, "ledger", "verify", "--tenant", tid).returncode == 0


def test_jobs_run_without_tenant(tmp_dir: Path) -> None:
    url = f"sqlite:///{tmp_dir}/jobs.db"
    assert run(url, "db", "upgrade").returncode == 0
    result = run(url, "jobs", "run", "--now", "2030-01-01T00:00:00Z")
    assert result.returncode == 0, result.stderr
    assert "activate_and_expire: 0" in result.stdout
    assert run(url, "jobs", "run", "--now", "not a time").returncode != 0
    assert run(url, "ledger", "verify").returncode == 0


def test_demo_without_serving(tmp_dir: Path) -> None:
    """The CDNOW demo loads 69,659 orders (about 20-25 s on SQLite) and its ledger holds."""
    url = f"sqlite:///{tmp_dir}/demo.db"
    result = run(url, "demo", "--no-serve", timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "69,659" in result.stdout
    assert "23,570" in result.stdout
    assert "rejected 0" in result.stdout
    verified = run(url, "ledger", "verify")
    assert verified.returncode == 0, verified.stderr[-2000:]
