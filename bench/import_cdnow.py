#!/usr/bin/env python3
"""Time ``allegiance import orders`` of the whole CDNOW master file on SQLite and Postgres.

The CDNOW master file (69,659 purchases of 23,570 customers, 1997-01..1998-06) ships in the
PyPI package ``lifetimes==0.11.3`` (``pip install --no-deps lifetimes==0.11.3``); it is found
through ``importlib.metadata`` without importing ``lifetimes`` and is never copied into the
repository. Each CDNOW row becomes one order with one line, written to a temporary CSV (or JSONL)
file; see bench/README.md for the exact columns.

For each backend and for the first 25 %, 50 % and 100 % of the rows, the script makes a fresh
database (``db upgrade``, ``tenants create``, ``program apply``), then runs the import as a
child process and records its wall time and its peak RSS (``wait4`` rusage of that process
alone, started from a small launcher interpreter). Target: the whole file in <= 10 s per
backend, and peak memory flat (the 100 % import may use at most 20 % more memory than the
25 % one). Exit status: 0 PASS, 1 FAIL, 2 setup error.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

from _common import (
    BenchError,
    PgTarget,
    allegiance_command,
    count_orders,
    create_tenant,
    install_sigterm_handler,
    log,
    run_cli,
    stop_process_group,
    tail,
)
from allegiance.demo import cdnow

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/allegiance_import_bench"
CSV_COLUMNS = [
    "id",
    "member_id",
    "placed_at",
    "currency",
    "total",
    "sku",
    "name",
    "category",
    "quantity",
    "unit_price",
    "amount",
]
TIME_TARGET_S = 10.0
MEMORY_GROWTH_LIMIT = 0.20  # peak RSS at 100 % vs 25 %
CENT = Decimal("0.01")

PROGRAM: dict[str, Any] = {
    "name": "CDNOW import bench",
    "currency": "USD",
    "timezone": "UTC",
    "wallets": {
        "points": {
            "precision": 0,
            "rounding": "floor",
            "pending_days": 14,
            "expiry": {"mode": "rolling_days", "days": 365},
        }
    },
    "rules": [{"key": "base", "on": "order.completed", "earn": {"per_amount": 1}}],
}


# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class CdnowRow:
    index: int
    customer: str
    iso_date: str
    cds: int
    dollars: Decimal


def find_cdnow_master() -> Path:
    """``CDNOW_master.txt`` of the installed ``lifetimes`` distribution (not imported)."""
    try:
        return cdnow.locate(install=False)
    except FileNotFoundError as exc:
        raise BenchError(str(exc)) from exc


def read_cdnow(path: Path) -> list[CdnowRow]:
    """The purchases in file order, read by the same code as ``allegiance demo``."""
    return [
        CdnowRow(index, customer, iso_date, cds, Decimal(dollars))
        for index, (customer, iso_date, cds, dollars) in enumerate(cdnow.rows(path))
    ]


def row_order(row: CdnowRow) -> dict[str, Any]:
    """One CDNOW purchase as an order: one line, sku "cd", quantity = CDs, amount = dollars."""
    amount = row.dollars.quantize(CENT, rounding=ROUND_HALF_UP)
    unit_price = (
        (amount / row.cds).quantize(CENT, rounding=ROUND_HALF_UP) if row.cds else Decimal(0)
    )
    return {
        "id": f"{row.customer}-{row.index}",
        "member_id": row.customer,
        "placed_at": f"{row.iso_date}T00:00:00+00:00",
        "currency": "USD",
        "total": f"{amount:.2f}",
        "sku": "cd",
        "name": "CD",
        "category": "music",
        "quantity": row.cds,
        "unit_price": f"{unit_price:.2f}",
        "amount": f"{amount:.2f}",
    }


def write_orders(rows: list[CdnowRow], path: Path, fmt: str) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        if fmt == "csv":
            writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS, lineterminator="\n")
            writer.writeheader()
            for row in rows:
                writer.writerow(row_order(row))
        else:
            for row in rows:
                flat = row_order(row)
                order = {k: flat[k] for k in ("id", "member_id", "placed_at", "currency", "total")}
                order["items"] = [
                    {k: flat[k] for k in ("sku", "name", "category", "quantity", "unit_price")}
                    | {"amount": flat["amount"]}
                ]
                handle.write(json.dumps(order, separators=(",", ":")) + "\n")


# --------------------------------------------------------------------------- measurement


@dataclass
class ImportRun:
    backend: str
    fraction: int
    rows: int
    seconds: float
    peak_rss_mib: float
    exit_code: int
    rejected: int
    booked: int | None

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


# Runs in a fresh small interpreter: it starts the command, waits for it with wait4 and writes
# the child's wall time and peak RSS to the file named by argv[1]. The indirection matters on
# Linux: a child's ru_maxrss starts at the high-water mark of the process that forked it, so
# forking the import straight from this (large) script would report this script's memory.
LAUNCHER = """
import json, os, subprocess, sys, time
start = time.perf_counter()
proc = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(proc.pid, 0)
proc.returncode = os.waitstatus_to_exitcode(status)
with open(sys.argv[1], "w") as out:
    json.dump({"seconds": time.perf_counter() - start, "maxrss_kib": usage.ru_maxrss,
               "exit": proc.returncode}, out)
sys.exit(0)
"""


def timed_child(
    cmd: list[str], env: dict[str, str], timeout: float
) -> tuple[int, float, float, str]:
    """Run ``cmd``; → (exit code, wall seconds, peak RSS MiB of that process, output tail)."""
    with tempfile.TemporaryDirectory(prefix="allegiance-timed-") as tmp_name:
        report = Path(tmp_name) / "rusage.json"
        log_path = Path(tmp_name) / "output.log"
        launcher = [sys.executable, "-c", LAUNCHER, str(report), *cmd]
        with log_path.open("wb") as out:
            proc = subprocess.Popen(
                launcher, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired as exc:
                raise BenchError(
                    f"`{' '.join(cmd)}` did not finish within {timeout:.0f} s"
                ) from exc
            finally:
                stop_process_group(proc, grace=5.0)
        output = tail(log_path.read_text(errors="replace"), 30)
        if proc.returncode != 0 or not report.exists():
            raise BenchError(f"could not measure `{' '.join(cmd)}`:\n{output}")
        data = json.loads(report.read_text())
    peak_mib = data["maxrss_kib"] / 1024  # Linux reports KiB
    return int(data["exit"]), float(data["seconds"]), peak_mib, output


def count_lines(path: Path) -> int:
    if not path.exists():
        return 0
    with path.open("rb") as handle:
        return sum(1 for line in handle if line.strip())


def rejected_path(orders_file: Path) -> Path:
    return orders_file.with_name(orders_file.name + ".rejected.jsonl")


def prepare_database(
    backend: str, pg: PgTarget | None, tmp: Path, label: str, program_file: Path | None
) -> tuple[str, str, dict[str, str]]:
    """A fresh database with the schema, a tenant and the program → (url, tenant id, env)."""
    if backend == "sqlite":
        db_file = tmp / f"import-{label}.db"
        db_file.unlink(missing_ok=True)
        database_url = f"sqlite:///{db_file}"
    else:
        assert pg is not None
        pg.recreate()
        database_url = pg.url()
    env = dict(os.environ, ALLEGIANCE_DATABASE_URL=database_url)
    run_cli(["db", "upgrade", "--database-url", database_url], env=env)
    tenant_id, _ = create_tenant("cdnow", database_url, env)
    if program_file is not None:
        run_cli(
            [
                "program",
                "apply",
                str(program_file),
                "--tenant",
                tenant_id,
                "--database-url",
                database_url,
            ],
            env=env,
        )
    return database_url, tenant_id, env


def baseline_rss(database_url: str, env: dict[str, str]) -> float:
    """Peak RSS of a CLI process that loads the application but imports nothing."""
    cmd = [*allegiance_command(), "db", "upgrade", "--database-url", database_url]
    code, _, peak, output = timed_child(cmd, env, timeout=120)
    if code != 0:
        raise BenchError(f"`{' '.join(cmd)}` exited {code}:\n{output}")
    return peak


# --------------------------------------------------------------------------- report


def verdicts(runs: list[ImportRun], backends: list[str]) -> dict[str, list[str]]:
    """Per backend, the reasons it fails its targets (empty: PASS)."""
    result: dict[str, list[str]] = {}
    for backend in backends:
        mine = {r.fraction: r for r in runs if r.backend == backend}
        reasons: list[str] = []
        for run in mine.values():
            if run.exit_code != 0:
                reasons.append(f"{run.fraction}%: exit {run.exit_code}")
            if run.rejected:
                reasons.append(f"{run.fraction}%: {run.rejected} rejected rows")
            if run.booked is not None and run.booked != run.rows:
                reasons.append(f"{run.fraction}%: {run.booked} orders stored of {run.rows}")
        full = mine.get(100)
        if full is None:
            reasons.append("the whole file was not imported")
        elif full.seconds > TIME_TARGET_S:
            reasons.append(f"whole file {full.seconds:.1f} s > {TIME_TARGET_S:.0f} s")
        smallest = mine.get(min(mine)) if mine else None
        if full and smallest and smallest is not full:
            growth = full.peak_rss_mib / smallest.peak_rss_mib - 1
            if growth > MEMORY_GROWTH_LIMIT:
                reasons.append(
                    f"peak RSS grew {growth:.0%} from {smallest.fraction}% to 100% "
                    f"({smallest.peak_rss_mib:.0f} → {full.peak_rss_mib:.0f} MiB)"
                )
        result[backend] = reasons
    return result


def markdown_table(runs: list[ImportRun], baselines: dict[str, float]) -> str:
    rows = [
        "| backend | share | rows | seconds | rows/s | peak RSS MiB | baseline RSS MiB "
        "| exit | rejected | stored |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for run in runs:
        rows.append(
            f"| {run.backend} | {run.fraction}% | {run.rows:,} | {run.seconds:.2f} "
            f"| {run.rows_per_s:,.0f} | {run.peak_rss_mib:.0f} "
            f"| {baselines.get(run.backend, math.nan):.0f} | {run.exit_code} | {run.rejected} "
            f"| {'n/a' if run.booked is None else f'{run.booked:,}'} |"
        )
    return "\n".join(rows)


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL, help="Postgres URL")
    parser.add_argument(
        "--backends", default="sqlite,postgres", help="comma list of sqlite, postgres"
    )
    parser.add_argument("--format", choices=("csv", "jsonl"), default="csv")
    parser.add_argument(
        "--fractions", default="25,50,100", help="percentages of the file to import"
    )
    parser.add_argument("--no-program", action="store_true", help="import without a program")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per import")
    parser.add_argument("--no-verify", action="store_true", help="skip `allegiance ledger verify`")
    parser.add_argument("--json-out", type=Path, help="also write the results as JSON here")
    args = parser.parse_args(argv)
    args.backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    if not args.backends or set(args.backends) - {"sqlite", "postgres"}:
        parser.error("--backends takes sqlite and/or postgres")
    try:
        args.fractions = sorted({int(x) for x in args.fractions.split(",") if x.strip()})
    except ValueError:
        parser.error("--fractions takes integers")
    if not args.fractions or any(not 1 <= f <= 100 for f in args.fractions):
        parser.error("--fractions must be between 1 and 100")
    if 100 not in args.fractions:
        args.fractions.append(100)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    install_sigterm_handler()
    load_at_start = os.getloadavg()[0]  # other work on the machine skews the figures
    runs: list[ImportRun] = []
    baselines: dict[str, float] = {}
    verify: dict[str, str] = {}
    failures: dict[str, str] = {}
    pg = PgTarget.from_url(args.database_url) if "postgres" in args.backends else None
    with tempfile.TemporaryDirectory(prefix="allegiance-import-") as tmp_name:
        tmp = Path(tmp_name)
        try:
            source = find_cdnow_master()
            rows = read_cdnow(source)
            log(f"CDNOW master: {len(rows):,} rows, {len({r.customer for r in rows}):,} customers")
            files: dict[int, tuple[Path, int]] = {}
            for fraction in args.fractions:
                count = math.ceil(len(rows) * fraction / 100)
                path = tmp / f"cdnow-{fraction}.{args.format}"
                start = time.perf_counter()
                write_orders(rows[:count], path, args.format)
                files[fraction] = (path, count)
                log(f"wrote {path.name}: {count:,} orders in {time.perf_counter() - start:.2f} s")
            program_file: Path | None = None
            if not args.no_program:
                program_file = tmp / "program.json"
                program_file.write_text(json.dumps(PROGRAM, indent=2))

            for backend in args.backends:
                try:
                    for fraction in args.fractions:
                        path, count = files[fraction]
                        label = f"{backend}-{fraction}"
                        url, tenant, env = prepare_database(backend, pg, tmp, label, program_file)
                        if backend not in baselines:
                            baselines[backend] = baseline_rss(url, env)
                        rejected_path(path).unlink(missing_ok=True)
                        cmd = [
                            *allegiance_command(),
                            "import",
                            "orders",
                            str(path),
                            "--tenant",
                            tenant,
                            "--database-url",
                            url,
                        ]
                        log(f"{backend}: importing {count:,} orders ({fraction}%)")
                        code, seconds, peak, output = timed_child(cmd, env, args.timeout)
                        run = ImportRun(
                            backend=backend,
                            fraction=fraction,
                            rows=count,
                            seconds=seconds,
                            peak_rss_mib=peak,
                            exit_code=code,
                            rejected=count_lines(rejected_path(path)),
                            booked=count_orders(url, tenant),
                        )
                        runs.append(run)
                        log(
                            f"{backend} {fraction}%: {seconds:.2f} s, peak {peak:.0f} MiB, "
                            f"exit {code}, rejected {run.rejected}, stored {run.booked}"
                        )
                        if code != 0:
                            log(f"import output:\n{output}")
                        if run.rejected:
                            with rejected_path(path).open() as handle:
                                log(f"first rejected row: {handle.readline().strip()[:500]}")
                        if fraction == 100 and not args.no_verify:
                            try:
                                run_cli(
                                    ["ledger", "verify", "--tenant", tenant, "--database-url", url],
                                    env=env,
                                    timeout=600,
                                )
                                verify[backend] = "ok"
                            except BenchError as exc:
                                verify[backend] = f"FAILED: {exc}"
                except BenchError as exc:
                    failures[backend] = str(exc)
                    log(f"ERROR ({backend}): {exc}")
        except KeyboardInterrupt:
            log("interrupted")
            return 130
        except BenchError as exc:
            log(f"ERROR: {exc}")
            return 2
        finally:
            if pg is not None:
                try:
                    pg.drop()
                except BenchError as exc:
                    log(f"could not drop {pg.dbname}: {exc}")

    reasons = verdicts(runs, args.backends)
    for backend, message in failures.items():
        reasons[backend].insert(0, f"setup error: {message.splitlines()[0]}")
    for backend, outcome in verify.items():
        if outcome != "ok":
            reasons[backend].append("ledger verify failed")
    passed = not any(reasons.values())
    print("## allegiance import orders — CDNOW master\n")
    print(
        f"{time.strftime('%Y-%m-%d %H:%M')} · {os.cpu_count()} cores · "
        f"load average at start {load_at_start:.2f} · format {args.format} · "
        f"program {'none' if args.no_program else 'base rule'} · wall time and peak RSS of the "
        f"`allegiance import orders` process\n"
    )
    print(markdown_table(runs, baselines))
    print()
    for backend in args.backends:
        state = "PASS" if not reasons[backend] else "FAIL: " + "; ".join(reasons[backend])
        print(f"- {backend}: {state} (ledger verify: {verify.get(backend, 'not run')})")
    for backend, message in failures.items():
        print(f"\n{backend} setup error:\n```\n{message[:3000]}\n```")
    print(
        f"\n**{'PASS' if passed else 'FAIL'}** (target: whole file ≤ {TIME_TARGET_S:.0f} s per "
        f"backend, peak RSS at 100% ≤ {1 + MEMORY_GROWTH_LIMIT:.1f} x at 25%, no rejected row)"
    )
    if args.json_out:
        payload = {
            "passed": passed,
            "format": args.format,
            "runs": [asdict(r) | {"rows_per_s": r.rows_per_s} for r in runs],
            "baseline_rss_mib": baselines,
            "verify": verify,
            "failures": failures,
            "reasons": reasons,
        }
        args.json_out.write_text(json.dumps(payload, indent=2))
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
