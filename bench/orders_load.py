#!/usr/bin/env python3
"""Throughput and latency of ``POST /v1/orders``, compared with pgbench on the same Postgres.

One run:

1. recreates the benchmark database, runs ``allegiance db upgrade`` and
   ``allegiance tenants create bench --json``;
2. runs pgbench (TPC-B-like, scale 10, in a separate database) at each client count: the
   reference for what this machine's Postgres does with small write transactions;
3. starts ``uvicorn allegiance.app:create_app --factory --workers W`` (jobs off), waits for
   ``GET /healthz``, applies a three-rule program with ``PUT /v1/program``;
4. at each client count, sends 10-line orders with unique ids for members drawn from 10,000 ids,
   from separate load-generator processes (``wrk`` with a Lua script, or asyncio + httpx
   processes when wrk is missing), and measures orders/s, p50 and p99 latency and every
   response that is not 201;
5. runs ``allegiance ledger verify`` on the result, prints a Markdown table and PASS/FAIL:
   orders/s >= 0.5 x pgbench tps and p99 <= 50 ms and no non-201 response, at every level.

``--sqlite`` does the same against a temporary SQLite file (no pgbench, no ratio).
Everything it starts (server, load generators, pgbench) is stopped on exit, even on error.
Only 127.0.0.1 is ever contacted. Exit status: 0 PASS, 1 FAIL, 2 setup error.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import math
import multiprocessing
import os
import random
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from _common import (
    BenchError,
    PgTarget,
    count_orders,
    cpu_snapshot,
    cpu_used,
    create_tenant,
    find_pgbench,
    install_sigterm_handler,
    log,
    run_cli,
    stop_process_group,
    tail,
)

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/allegiance_bench"
DEFAULT_PGBENCH_DB = "pgbench_db"
MEMBERS = 10_000
LINES_PER_ORDER = 10
ORDER_SHAPES = 256  # distinct pre-built item lists; ids and members vary per request
RATIO_TARGET = 0.5
P99_TARGET_MS = 50.0
HOST = "127.0.0.1"

PROGRAM: dict[str, Any] = {
    "name": "Bench Rewards",
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
            "key": "big-basket",
            "on": "order.completed",
            "when": "order.total >= 200.0",
            "earn": {"fixed": 50},
        },
    ],
}

CATEGORIES = ["music", "books", "games", "garden", "kitchen", "toys"]


# --------------------------------------------------------------------------- order bodies


def build_order_shapes(rng: random.Random, count: int) -> list[dict[str, Any]]:
    """Order bodies without ``id`` and ``member_id``: 10 lines, amounts exact to the cent.

    About half of the orders end with a shipping line (excluded by the base rule), about a
    third of the lines carry the ``promo`` label, and totals straddle the 200.00 bonus bar.
    """
    placed_at = datetime.now(UTC).replace(microsecond=0).isoformat()
    shapes: list[dict[str, Any]] = []
    for _ in range(count):
        items: list[dict[str, Any]] = []
        total = Decimal(0)
        with_shipping = rng.random() < 0.5
        for line in range(LINES_PER_ORDER):
            if with_shipping and line == LINES_PER_ORDER - 1:
                sku, name, category, labels = "SHIP", "Shipping", "shipping", []
                quantity = 1
                unit_price = Decimal(rng.randrange(399, 1_000)) / 100
            else:
                n = rng.randrange(1, 5_000)
                sku, name = f"SKU-{n:05d}", f"Product {n}"
                category = rng.choice(CATEGORIES)
                labels = ["promo"] if rng.random() < 0.3 else []
                if rng.random() < 0.2:
                    labels.append("new")
                quantity = rng.choice((1, 1, 1, 2, 3))
                unit_price = Decimal(rng.randrange(99, 2_500)) / 100
            amount = unit_price * quantity
            total += amount
            items.append(
                {
                    "sku": sku,
                    "name": name,
                    "category": category,
                    "labels": labels,
                    "quantity": quantity,
                    "unit_price": f"{unit_price:.2f}",
                    "amount": f"{amount:.2f}",
                }
            )
        shapes.append(
            {"placed_at": placed_at, "currency": "USD", "items": items, "total": f"{total:.2f}"}
        )
    return shapes


def shape_fragment(shape: dict[str, Any]) -> str:
    """The shape as the inside of a JSON object (no braces), to append after id/member_id."""
    return json.dumps(shape, separators=(",", ":"))[1:-1]


# --------------------------------------------------------------------------- results


@dataclass
class LoadResult:
    clients: int
    duration_s: float
    ok: int
    non_201: int
    socket_errors: int
    statuses: dict[str, int]
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    first_errors: list[str] = field(default_factory=list)
    socket_error_kinds: dict[str, int] = field(default_factory=dict)
    # CPU time per answered request (all statuses) of the API processes and of Postgres: less
    # sensitive than throughput to other work on a shared machine
    server_cpu_ms: float | None = None
    db_cpu_ms: float | None = None

    @property
    def orders_per_s(self) -> float:
        return self.ok / self.duration_s if self.duration_s > 0 else 0.0


@dataclass
class Level:
    clients: int
    load: LoadResult | None = None
    pgbench_tps: float | None = None
    pgbench_latency_ms: float | None = None

    @property
    def ratio(self) -> float | None:
        if self.load is None or not self.pgbench_tps:
            return None
        return self.load.orders_per_s / self.pgbench_tps

    def verdict(self, check_ratio: bool) -> tuple[bool, list[str]]:
        reasons: list[str] = []
        if self.load is None:
            return False, ["not measured"]
        if self.load.non_201 or self.load.socket_errors:
            reasons.append(f"{self.load.non_201 + self.load.socket_errors} failed requests")
        if self.load.p99_ms > P99_TARGET_MS:
            reasons.append(f"p99 {self.load.p99_ms:.1f} ms > {P99_TARGET_MS:.0f} ms")
        if check_ratio:
            ratio = self.ratio
            if ratio is None:
                reasons.append("no pgbench figure")
            elif ratio < RATIO_TARGET:
                reasons.append(f"ratio {ratio:.2f} < {RATIO_TARGET}")
        return not reasons, reasons


def per_order_ms(cpu: float | None, result: LoadResult) -> float | None:
    answered = result.ok + result.non_201
    if cpu is None or answered == 0:
        return None
    return cpu * 1000 / answered


# --------------------------------------------------------------------------- pgbench


def pgbench_init(pgbench: str, target: PgTarget, scale: int) -> None:
    log(f"pgbench: initialising {target.dbname} at scale {scale}")
    target.recreate()
    cmd = [pgbench, "-i", "-q", "-s", str(scale), target.dbname]
    proc = subprocess.run(
        cmd, env=target.libpq_env(), capture_output=True, text=True, timeout=600, check=False
    )
    if proc.returncode != 0:
        raise BenchError(f"`{' '.join(cmd)}` exited {proc.returncode}:\n{tail(proc.stderr)}")


def pgbench_run(
    pgbench: str, target: PgTarget, clients: int, duration: int
) -> tuple[float, float | None]:
    """TPC-B-like at ``clients`` connections → (tps, average latency ms)."""
    threads = max(1, min(2, clients))
    cmd = [pgbench, "-c", str(clients), "-j", str(threads), "-T", str(duration), target.dbname]
    log(f"pgbench: {clients} clients for {duration} s")
    proc = subprocess.run(
        cmd,
        env=target.libpq_env(),
        capture_output=True,
        text=True,
        timeout=duration + 120,
        check=False,
    )
    output = proc.stdout + proc.stderr
    if proc.returncode != 0:
        raise BenchError(f"`{' '.join(cmd)}` exited {proc.returncode}:\n{tail(output)}")
    tps = re.search(r"tps = ([\d.]+)", output)
    latency = re.search(r"latency average = ([\d.]+) ms", output)
    if not tps:
        raise BenchError(f"could not read tps from pgbench output:\n{tail(output)}")
    return float(tps.group(1)), float(latency.group(1)) if latency else None


# --------------------------------------------------------------------------- server


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def start_server(
    database_url: str, port: int, workers: int, log_path: Path
) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    env["ALLEGIANCE_DATABASE_URL"] = database_url
    env["ALLEGIANCE_RUN_JOBS_IN_SERVER"] = "false"
    cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        "allegiance.app:create_app",
        "--factory",
        "--host",
        HOST,
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--no-access-log",
    ]
    log(f"server: {' '.join(cmd[1:])}")
    with log_path.open("wb") as out:
        return subprocess.Popen(
            cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def wait_healthy(
    base_url: str, proc: subprocess.Popen[bytes], log_path: Path, timeout: float
) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(
                f"the server exited with {proc.returncode} before /healthz answered:\n"
                f"{tail(log_path.read_text(errors='replace'), 40)}"
            )
        try:
            response = httpx.get(f"{base_url}/healthz", timeout=2.0)
            if response.status_code == 200:
                return
            last = f"{response.status_code} {response.text[:200]}"
        except httpx.HTTPError as exc:
            last = repr(exc)
        time.sleep(0.25)
    raise BenchError(
        f"GET /healthz did not answer 200 within {timeout:.0f} s (last: {last}):\n"
        f"{tail(log_path.read_text(errors='replace'), 40)}"
    )


# ``--segments``: the same program with segments, so every order also re-evaluates its member
SEGMENTS: list[dict[str, Any]] = [
    {"key": "vip", "name": "VIP", "condition": "member.stats.monetary >= 1000.0"},
    {"key": "regular", "name": "Regular", "condition": "member.stats.frequency >= 3"},
    {"key": "lapsed", "name": "Lapsed", "condition": "member.stats.recency_days >= 60"},
    {"key": "at-risk", "name": "At risk", "condition": "member.stats.churn_risk == 'high'"},
    {"key": "fan", "name": "Category fan", "condition": "member.affinity.general > 0.5"},
]


def apply_program(base_url: str, api_key: str, segments: bool = False) -> int | None:
    import httpx

    response = httpx.put(
        f"{base_url}/v1/program",
        json={**PROGRAM, "segments": SEGMENTS} if segments else PROGRAM,
        headers={"Authorization": f"Bearer {api_key}"},
        timeout=30.0,
    )
    if response.status_code not in (200, 201):
        raise BenchError(f"PUT /v1/program answered {response.status_code}: {response.text[:1000]}")
    version = response.json().get("version")
    return int(version) if isinstance(version, int) else None


def smoke_order(base_url: str, api_key: str, shape: dict[str, Any], run_tag: str) -> None:
    """One order before the load: a broken endpoint fails fast with its own message."""
    import httpx

    body = {"id": f"{run_tag}-smoke", "member_id": "m1", **shape}
    response = httpx.post(
        f"{base_url}/v1/orders",
        json=body,
        headers={"Authorization": f"Bearer {api_key}"},
        timeout=30.0,
    )
    if response.status_code != 201:
        raise BenchError(
            f"smoke POST /v1/orders answered {response.status_code}: {response.text[:1000]}"
        )


def server_log_problems(log_path: Path) -> list[str]:
    """Tracebacks and ERROR lines the server logged (there must be none)."""
    if not log_path.exists():
        return []
    lines = log_path.read_text(errors="replace").splitlines()
    return [
        line
        for line in lines
        if "Traceback" in line or line.startswith("ERROR") or "Exception" in line
    ]


# --------------------------------------------------------------------------- wrk


WRK_LUA = r"""
-- Generated by bench/orders_load.py: POST /v1/orders with unique ids.
local fragments = {
%(fragments)s
}
local prefix = "%(prefix)s"
local members = %(members)d
local nfrag = #fragments
local threads = {}
local thread_count = 0

wrk.method = "POST"
wrk.path = "/v1/orders"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer %(api_key)s"

function setup(thread)
  thread_count = thread_count + 1
  thread:set("tid", thread_count)
  table.insert(threads, thread)
end

function init(args)
  seq = 0
  ok = 0
  bad = 0
  statuses = {}
  first_error = ""
  math.randomseed(tid * 7919 + os.time())
end

function request()
  seq = seq + 1
  local body = '{"id":"' .. prefix .. '-' .. tid .. '-' .. seq .. '","member_id":"m'
    .. math.random(1, members) .. '",' .. fragments[math.random(1, nfrag)] .. '}'
  return wrk.format(nil, nil, nil, body)
end

function response(status, headers, body)
  if status == 201 then
    ok = ok + 1
  else
    bad = bad + 1
    local key = tostring(status)
    statuses[key] = (statuses[key] or 0) + 1
    if first_error == "" then
      first_error = key .. " " .. string.sub(body or "", 1, 500)
    end
  end
end

local function jstr(s)
  return '"' .. string.gsub(s, '[%%c"\\]', function(c)
    return string.format("\\u%%04x", string.byte(c))
  end) .. '"'
end

function done(summary, latency, requests)
  local ok_all, bad_all, statuses_all, errors = 0, 0, {}, {}
  for _, thread in ipairs(threads) do
    ok_all = ok_all + thread:get("ok")
    bad_all = bad_all + thread:get("bad")
    for k, v in pairs(thread:get("statuses")) do
      statuses_all[k] = (statuses_all[k] or 0) + v
    end
    local fe = thread:get("first_error")
    if fe ~= "" then table.insert(errors, jstr(fe)) end
  end
  local parts = {}
  for k, v in pairs(statuses_all) do table.insert(parts, jstr(k) .. ":" .. v) end
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"duration_us":%%d,"requests":%%d,"ok":%%d,"bad":%%d,' ..
    '"socket_errors":{"connect":%%d,"read":%%d,"write":%%d,"timeout":%%d},' ..
    '"p50_us":%%d,"p90_us":%%d,"p99_us":%%d,"max_us":%%d,"statuses":{%%s},"first_errors":[%%s]}\n',
    summary.duration, summary.requests, ok_all, bad_all,
    e.connect, e.read, e.write, e.timeout,
    latency:percentile(50.0), latency:percentile(90.0), latency:percentile(99.0), latency.max,
    table.concat(parts, ","), table.concat(errors, ",")))
end
"""


def write_wrk_script(path: Path, fragments: list[str], prefix: str, api_key: str) -> None:
    for fragment in fragments:
        if "]=]" in fragment:
            raise BenchError("order fragment cannot be quoted for Lua")
    if not re.fullmatch(r"[A-Za-z0-9_.~+/=-]+", api_key):
        raise BenchError("api key has characters this benchmark does not quote for Lua")
    lua = WRK_LUA % {
        "fragments": ",\n".join(f"[=[{fragment}]=]" for fragment in fragments),
        "prefix": prefix,
        "members": MEMBERS,
        "api_key": api_key,
    }
    path.write_text(lua)


def run_wrk(
    wrk: str, script: Path, base_url: str, clients: int, duration: int, threads: int
) -> LoadResult:
    threads = max(1, min(threads, clients))
    cmd = [
        wrk,
        "-t",
        str(threads),
        "-c",
        str(clients),
        "-d",
        f"{duration}s",
        "--timeout",
        "10s",
        "-s",
        str(script),
        base_url,
    ]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        stdout, stderr = proc.communicate(timeout=duration + 60)
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"wrk did not finish within {duration + 60} s") from exc
    finally:
        stop_process_group(proc, grace=2.0)
    line = next((x for x in stdout.splitlines() if x.startswith("BENCH_RESULT ")), None)
    if proc.returncode != 0 or line is None:
        raise BenchError(f"wrk exited {proc.returncode}:\n{tail(stdout + stderr)}")
    data = json.loads(line.removeprefix("BENCH_RESULT "))
    socket_errors = sum(int(v) for v in data["socket_errors"].values())
    return LoadResult(
        clients=clients,
        duration_s=data["duration_us"] / 1e6,
        ok=int(data["ok"]),
        non_201=int(data["bad"]),
        socket_errors=socket_errors,
        statuses={"201": int(data["ok"]), **{k: int(v) for k, v in data["statuses"].items()}},
        p50_ms=data["p50_us"] / 1000,
        p90_ms=data["p90_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        max_ms=data["max_us"] / 1000,
        first_errors=list(data["first_errors"]),
        socket_error_kinds={k: int(v) for k, v in data["socket_errors"].items() if v},
    )


# --------------------------------------------------------------------------- python load gen


def _python_worker(
    base_url: str,
    api_key: str,
    fragments: list[str],
    prefix: str,
    connections: int,
    duration: float,
    seed: int,
    out: Any,
) -> None:
    """One load-generator process: ``connections`` coroutines posting until the deadline."""
    import httpx

    async def main() -> dict[str, Any]:
        rng = random.Random(seed)
        latencies: list[float] = []
        statuses: dict[str, int] = {}
        errors: list[str] = []
        socket_errors = 0
        error_kinds: dict[str, int] = {}
        counter = 0
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}
        async with httpx.AsyncClient(
            base_url=base_url, limits=limits, timeout=10.0, headers=headers
        ) as client:
            start = time.monotonic()
            deadline = start + duration

            async def one_connection() -> None:
                nonlocal counter, socket_errors
                while time.monotonic() < deadline:
                    counter += 1
                    body = (
                        f'{{"id":"{prefix}-{counter}","member_id":"m{rng.randint(1, MEMBERS)}",'
                        f"{rng.choice(fragments)}}}"
                    )
                    t0 = time.perf_counter()
                    try:
                        response = await client.post("/v1/orders", content=body)
                    except httpx.HTTPError as exc:
                        socket_errors += 1
                        kind = type(exc).__name__
                        error_kinds[kind] = error_kinds.get(kind, 0) + 1
                        if len(errors) < 3:
                            errors.append(f"socket {exc!r}")
                        continue
                    latencies.append(time.perf_counter() - t0)
                    key = str(response.status_code)
                    statuses[key] = statuses.get(key, 0) + 1
                    if response.status_code != 201 and len(errors) < 3:
                        errors.append(f"{key} {response.text[:500]}")

            await asyncio.gather(*(one_connection() for _ in range(connections)))
            elapsed = time.monotonic() - start
        return {
            "elapsed": elapsed,
            "latencies": latencies,
            "statuses": statuses,
            "socket_errors": socket_errors,
            "error_kinds": error_kinds,
            "errors": errors,
        }

    try:
        out.send(asyncio.run(main()))
    except Exception as exc:  # reported by the parent
        out.send({"fatal": repr(exc)})
    finally:
        out.close()


def percentile(sorted_values: list[float], pct: float) -> float:
    if not sorted_values:
        return math.nan
    index = min(len(sorted_values) - 1, max(0, math.ceil(pct / 100 * len(sorted_values)) - 1))
    return sorted_values[index]


def run_python_load(
    base_url: str,
    api_key: str,
    fragments: list[str],
    prefix: str,
    clients: int,
    duration: int,
    processes: int,
) -> LoadResult:
    ctx = multiprocessing.get_context("spawn")
    processes = max(1, min(processes, clients))
    base, extra = divmod(clients, processes)
    shares = [base + (1 if i < extra else 0) for i in range(processes)]
    workers = []
    try:
        for i, share in enumerate(shares):
            receiver, sender = ctx.Pipe(duplex=False)
            proc = ctx.Process(
                target=_python_worker,
                args=(
                    base_url,
                    api_key,
                    fragments,
                    f"{prefix}-p{i}",
                    share,
                    float(duration),
                    secrets.randbits(32),
                    sender,
                ),
                daemon=True,
            )
            proc.start()
            sender.close()
            workers.append((proc, receiver))
        results = []
        for proc, receiver in workers:
            if not receiver.poll(duration + 60):
                raise BenchError("a python load-generator process did not report in time")
            results.append(receiver.recv())
            proc.join(timeout=10)
    finally:
        for proc, _ in workers:
            if proc.is_alive():
                proc.kill()
                proc.join(timeout=5)
    fatal = [r["fatal"] for r in results if "fatal" in r]
    if fatal:
        raise BenchError(f"python load generator failed: {fatal[0]}")
    latencies = sorted(x for r in results for x in r["latencies"])
    statuses: dict[str, int] = {}
    for r in results:
        for key, count in r["statuses"].items():
            statuses[key] = statuses.get(key, 0) + count
    ok = statuses.get("201", 0)
    kinds: dict[str, int] = {}
    for r in results:
        for key, count in r["error_kinds"].items():
            kinds[key] = kinds.get(key, 0) + count
    return LoadResult(
        clients=clients,
        duration_s=max(r["elapsed"] for r in results),
        ok=ok,
        non_201=sum(statuses.values()) - ok,
        socket_errors=sum(r["socket_errors"] for r in results),
        socket_error_kinds=kinds,
        statuses=statuses,
        p50_ms=percentile(latencies, 50) * 1000,
        p90_ms=percentile(latencies, 90) * 1000,
        p99_ms=percentile(latencies, 99) * 1000,
        max_ms=(latencies[-1] if latencies else math.nan) * 1000,
        first_errors=[e for r in results for e in r["errors"]][:5],
    )


# --------------------------------------------------------------------------- report


def fmt(value: float | None, digits: int = 0) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:,.{digits}f}"


def markdown_table(levels: list[Level], check_ratio: bool) -> str:
    head = (
        "| clients | orders/s | p50 ms | p90 ms | p99 ms | max ms | non-201 | socket err "
        "| API CPU ms/order | DB CPU ms/order |"
    )
    rule = "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    if check_ratio:
        head += " pgbench tps | ratio |"
        rule += "---:|---:|"
    head += " result |"
    rule += "---|"
    rows = [head, rule]
    for level in levels:
        load = level.load
        passed, reasons = level.verdict(check_ratio)
        cells = [
            str(level.clients),
            fmt(load.orders_per_s if load else None),
            fmt(load.p50_ms if load else None, 1),
            fmt(load.p90_ms if load else None, 1),
            fmt(load.p99_ms if load else None, 1),
            fmt(load.max_ms if load else None, 1),
            str(load.non_201) if load else "n/a",
            str(load.socket_errors) if load else "n/a",
            fmt(load.server_cpu_ms if load else None, 1),
            fmt(load.db_cpu_ms if load else None, 1),
        ]
        if check_ratio:
            cells += [fmt(level.pgbench_tps), fmt(level.ratio, 2)]
        cells.append("PASS" if passed else "FAIL: " + "; ".join(reasons))
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


# --------------------------------------------------------------------------- main


def parse_clients(text: str) -> list[int]:
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a list of integers: {text!r}") from exc
    if not values or any(v < 1 or v > 1_000 for v in values):
        raise argparse.ArgumentTypeError("client counts must be between 1 and 1000")
    return values


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--clients", type=parse_clients, default=[16, 32, 64])
    parser.add_argument("--duration", type=int, default=15, help="seconds per level")
    parser.add_argument("--warmup", type=int, default=3, help="seconds of warm-up, discarded")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument("--sqlite", action="store_true", help="a temporary SQLite file instead")
    parser.add_argument(
        "--loadgen",
        choices=("auto", "wrk", "python"),
        default="auto",
        help="wrk with a Lua script (auto: when installed) or asyncio+httpx processes",
    )
    parser.add_argument("--loadgen-procs", type=int, default=2, help="load-generator processes")
    parser.add_argument("--pgbench", help="path of pgbench (default: PATH, then the server's)")
    parser.add_argument("--pgbench-db", default=DEFAULT_PGBENCH_DB)
    parser.add_argument("--pgbench-scale", type=int, default=10)
    parser.add_argument("--no-pgbench", action="store_true", help="skip pgbench (no ratio)")
    parser.add_argument("--no-verify", action="store_true", help="skip `allegiance ledger verify`")
    parser.add_argument("--keep", action="store_true", help="keep the pgbench database")
    parser.add_argument("--json-out", type=Path, help="also write the results as JSON here")
    parser.add_argument(
        "--segments", action="store_true", help="the program also defines five segments"
    )
    parser.add_argument("--brand", help="every order carries this brand (e.g. main)")
    args = parser.parse_args(argv)
    if not 1 <= args.duration <= 600:
        parser.error("--duration must be between 1 and 600 seconds")
    if not 0 <= args.warmup <= 60:
        parser.error("--warmup must be between 0 and 60 seconds")
    if not 1 <= args.workers <= 16:
        parser.error("--workers must be between 1 and 16")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    install_sigterm_handler()
    load_at_start = os.getloadavg()[0]  # other work on the machine skews the figures
    levels = [Level(clients=n) for n in args.clients]
    server: subprocess.Popen[bytes] | None = None
    pg_target: PgTarget | None = None
    pgbench_target: PgTarget | None = None
    with tempfile.TemporaryDirectory(prefix="allegiance-bench-") as tmp_name:
        tmp = Path(tmp_name)
        server_log = tmp / "server.log"
        try:
            # ---- database
            if args.sqlite:
                database_url = f"sqlite:///{tmp / 'bench.db'}"
                log(f"database: {database_url}")
            else:
                pg_target = PgTarget.from_url(args.database_url)
                database_url = pg_target.url()
                log(f"database: recreating {pg_target.dbname} on {pg_target.host}:{pg_target.port}")
                pg_target.recreate()
                max_conn = int(pg_target.setting("max_connections"))
                if max(args.clients) + 5 > max_conn:
                    raise BenchError(
                        f"Postgres max_connections is {max_conn}: too few for "
                        f"{max(args.clients)} pgbench clients"
                    )
            env = dict(os.environ, ALLEGIANCE_DATABASE_URL=database_url)
            run_cli(["db", "upgrade", "--database-url", database_url], env=env)
            tenant_id, api_key = create_tenant("bench", database_url, env)
            log(f"tenant {tenant_id} created")

            # ---- pgbench first: the server's idle pools would eat into max_connections
            if not args.sqlite and not args.no_pgbench:
                assert pg_target is not None
                pgbench = find_pgbench(args.pgbench)
                pgbench_target = pg_target.with_db(args.pgbench_db)
                if pgbench_target.dbname == pg_target.dbname:
                    raise BenchError("--pgbench-db must differ from the benchmark database")
                pgbench_init(pgbench, pgbench_target, args.pgbench_scale)
                for level in levels:
                    level.pgbench_tps, level.pgbench_latency_ms = pgbench_run(
                        pgbench, pgbench_target, level.clients, args.duration
                    )
                    log(f"pgbench: {level.clients} clients → {level.pgbench_tps:,.0f} tps")

            # ---- server
            port = free_port()
            base_url = f"http://{HOST}:{port}"
            server = start_server(database_url, port, args.workers, server_log)
            wait_healthy(base_url, server, server_log, timeout=90)
            version = apply_program(base_url, api_key, args.segments)
            log(f"program applied (version {version})")

            rng = random.Random(20260101)
            shapes = build_order_shapes(rng, ORDER_SHAPES)
            if args.brand:
                for shape in shapes:
                    shape["brand"] = args.brand
            fragments = [shape_fragment(s) for s in shapes]
            run_tag = f"b{secrets.token_hex(4)}"
            smoke_order(base_url, api_key, shapes[0], run_tag)

            wrk = shutil.which("wrk")
            use_wrk = args.loadgen == "wrk" or (args.loadgen == "auto" and wrk is not None)
            if use_wrk and wrk is None:
                raise BenchError("wrk is not installed (Debian: apt-get install wrk)")
            loadgen = "wrk" if use_wrk else "python (asyncio+httpx)"
            log(f"load generator: {loadgen}")

            # the benchmark database's backends (not Postgres's background processes)
            backends = f" {pg_target.dbname} " if pg_target is not None else ""

            def load(clients: int, duration: int, tag: str) -> LoadResult:
                prefix = f"{run_tag}-{tag}"
                assert server is not None
                server_cpu = cpu_snapshot(server.pid)
                db_cpu = None if pg_target is None else cpu_snapshot(None, "postgres", backends)
                if use_wrk:
                    assert wrk is not None
                    script = tmp / f"orders-{tag}.lua"
                    write_wrk_script(script, fragments, prefix, api_key)
                    result = run_wrk(
                        wrk, script, base_url, clients, duration, threads=args.loadgen_procs
                    )
                else:
                    result = run_python_load(
                        base_url,
                        api_key,
                        fragments,
                        prefix,
                        clients,
                        duration,
                        processes=args.loadgen_procs,
                    )
                result.server_cpu_ms = per_order_ms(
                    cpu_used(server_cpu, cpu_snapshot(server.pid)), result
                )
                if db_cpu is not None:
                    db_after = cpu_snapshot(None, "postgres", backends)
                    result.db_cpu_ms = per_order_ms(cpu_used(db_cpu, db_after), result)
                return result

            accepted = 1  # the smoke order
            # a load generator stops at its deadline without reading the responses still in
            # flight: up to `clients` orders per run that the server booked but nobody counted
            in_flight = 0
            if args.warmup:
                log(f"warm-up: {args.clients[0]} clients for {args.warmup} s")
                warm = load(args.clients[0], args.warmup, "warm")
                accepted += warm.ok
                in_flight += args.clients[0] + warm.socket_errors
                if warm.non_201 or warm.socket_errors:
                    log(f"warm-up had failures: {warm.statuses} {warm.first_errors[:2]}")

            for level in levels:
                log(f"orders: {level.clients} clients for {args.duration} s")
                level.load = load(level.clients, args.duration, f"c{level.clients}")
                log(
                    f"orders: {level.clients} clients → {level.load.orders_per_s:,.0f}/s, "
                    f"p99 {level.load.p99_ms:.1f} ms, non-201 {level.load.non_201}, "
                    f"socket errors {level.load.socket_errors}"
                )
                for error in level.load.first_errors[:3]:
                    log(f"  first error: {error}")

            stop_process_group(server)
            server = None
            accepted += sum(level.load.ok for level in levels if level.load)
            # so may requests that timed out on the client side
            in_flight += sum(
                level.clients + (level.load.socket_errors if level.load else 0) for level in levels
            )
            stored = count_orders(database_url, tenant_id)

            verify = "skipped"
            if not args.no_verify:
                log("ledger verify")
                try:
                    run_cli(
                        ["ledger", "verify", "--tenant", tenant_id, "--database-url", database_url],
                        env=env,
                        timeout=600,
                    )
                    verify = "ok"
                except BenchError as exc:
                    verify = f"FAILED: {exc}"
        except KeyboardInterrupt:
            log("interrupted")
            return 130
        except BenchError as exc:
            log(f"ERROR: {exc}")
            if server_log_problems(server_log):
                log(f"server log, last lines:\n{tail(server_log.read_text(errors='replace'), 60)}")
            return 2
        finally:
            if server is not None:
                stop_process_group(server)
            if pgbench_target is not None and not args.keep:
                with contextlib.suppress(BenchError):
                    pgbench_target.drop()

        problems = server_log_problems(server_log)
        server_log_text = server_log.read_text(errors="replace") if problems else ""

    # ---- report
    check_ratio = not (args.sqlite or args.no_pgbench)
    passed = all(level.verdict(check_ratio)[0] for level in levels)
    passed = passed and not problems and verify in ("ok", "skipped")
    stored_ok = stored is None or accepted <= stored <= accepted + in_flight
    passed = passed and stored_ok
    backend = "SQLite (temp file)"
    if pg_target is not None:
        backend = f"PostgreSQL {pg_target.server_version()}"
    print(f"## POST /v1/orders — {backend}\n")
    print(
        f"{time.strftime('%Y-%m-%d %H:%M')} · {os.cpu_count()} cores · "
        f"load average at start {load_at_start:.2f} · uvicorn workers "
        f"{args.workers} · {args.duration} s per level · load generator {loadgen} · "
        f"{LINES_PER_ORDER}-line orders, {MEMBERS:,} members\n"
    )
    print(markdown_table(levels, check_ratio))
    print()
    if args.workers > 1 and importlib.util.find_spec("uvloop") is None:
        print(
            "- warning: uvloop is not installed, so `uvicorn --workers N` serves on asyncio, "
            "which leaves Nagle's algorithm on for accepted connections (uvicorn issue #3149): "
            "every keep-alive request after the first waits ~40 ms for a delayed ACK. "
            "Install `uvicorn[standard]` (uvloop, httptools)."
        )
    print(f"- ledger verify: {verify}")
    print(
        f"- orders answered 201: {accepted:,}; orders stored: "
        f"{'n/a' if stored is None else f'{stored:,}'}"
        + f" (at most {in_flight:,} more may have been in flight at the deadlines)"
        + ("" if stored_ok else " — MISMATCH")
    )
    print(f"- server log problem lines: {len(problems)}")
    for line in problems[:10]:
        print(f"  - `{line[:200]}`")
    if problems:
        first = server_log_text.find("Traceback")
        if first >= 0:
            print("\n```\n" + "\n".join(server_log_text[first:].splitlines()[:40]) + "\n```")
    for level in levels:
        if level.load and level.load.socket_error_kinds:
            kinds = ", ".join(f"{k} {v}" for k, v in level.load.socket_error_kinds.items())
            print(
                f"- {level.clients} clients, socket errors: {kinds} (timeout = no answer in 10 s)"
            )
        if level.load and level.load.first_errors:
            print(f"- {level.clients} clients, statuses {level.load.statuses}; first errors:")
            for error in level.load.first_errors[:3]:
                print(f"  - `{error[:300]}`")
    target = f"p99 ≤ {P99_TARGET_MS:.0f} ms, 0 non-201"
    if check_ratio:
        target = f"orders/s ≥ {RATIO_TARGET} x pgbench tps, " + target
    print(f"\n**{'PASS' if passed else 'FAIL'}** (target: {target})")
    if args.json_out:
        payload = {
            "backend": backend,
            "workers": args.workers,
            "duration": args.duration,
            "loadgen": loadgen,
            "passed": passed,
            "verify": verify,
            "server_log_problems": problems[:50],
            "levels": [
                {
                    "clients": lvl.clients,
                    "load": asdict(lvl.load) if lvl.load else None,
                    "orders_per_s": lvl.load.orders_per_s if lvl.load else None,
                    "pgbench_tps": lvl.pgbench_tps,
                    "pgbench_latency_ms": lvl.pgbench_latency_ms,
                    "ratio": lvl.ratio,
                }
                for lvl in levels
            ],
        }
        args.json_out.write_text(json.dumps(payload, indent=2))
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
