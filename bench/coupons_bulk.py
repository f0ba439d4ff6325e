#!/usr/bin/env python3
"""Time the generation of a campaign's coupon codes through the API (``POST
/v1/coupon-batches``, 100,000 codes) and their CSV export, on SQLite and Postgres.

Usage (from the repository root):
    PYTHONPATH=src python bench/coupons_bulk.py [--database-url URL] [--count 100000] [--runs 3]

Without ``--database-url`` a fresh SQLite file in a temporary directory is used. A Postgres URL
must name a scratch database on this machine: its ``public`` schema is dropped and rebuilt.
Target: 100,000 codes in <= 10 s. Prints one line per run; exit 1 when a run misses the target.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    url = args.database_url or f"sqlite:///{tempfile.mkdtemp(prefix='coupons-bench-')}/bench.db"
    os.environ["ALLEGIANCE_DATABASE_URL"] = url
    os.environ["ALLEGIANCE_RUN_JOBS_IN_SERVER"] = "false"

    from starlette.testclient import TestClient

    from allegiance.app import create_app
    from allegiance.config import reset_settings
    from allegiance.db import get_engine, normalize_url, write_session
    from allegiance.kit.clock import utcnow
    from allegiance.migrate import upgrade
    from allegiance.tenant.service import create_tenant

    reset_settings()
    if normalize_url(url).startswith("postgresql"):
        import psycopg

        with psycopg.connect(normalize_url(url).replace("+psycopg", ""), autocommit=True) as c:
            c.execute("DROP SCHEMA public CASCADE")
            c.execute("CREATE SCHEMA public")
    upgrade(url)
    with write_session(get_engine()) as session:
        _, key = create_tenant(session, name="bench", now=utcnow())
    headers = {"Authorization": f"Bearer {key.api_key}"}
    program = {
        "name": "Bench",
        "currency": "USD",
        "wallets": {"points": {"precision": 0}},
        "rules": [{"key": "base", "on": "order.completed", "earn": {"per_amount": 1}}],
    }
    missed = False
    backend = "postgres" if "postgresql" in normalize_url(url) else "sqlite"
    with TestClient(create_app()) as client:
        assert client.put("/v1/program", json=program, headers=headers).status_code == 200
        for run in range(args.runs):
            body = {
                "id": f"bench-{run}",
                "count": args.count,
                "settings": {"prefix": "SPRING-", "length": 8},
                "discount": {"type": "discount_percent", "value": 10},
            }
            started = time.perf_counter()
            response = client.post("/v1/coupon-batches", json=body, headers=headers)
            generated = time.perf_counter() - started
            assert response.status_code == 201, response.text
            started = time.perf_counter()
            export = client.get(f"/v1/coupon-batches/bench-{run}/codes.csv", headers=headers)
            exported = time.perf_counter() - started
            lines = export.text.count("\n") - 1
            assert lines == args.count, lines
            missed = missed or generated > 10
            print(
                f"{backend} run {run + 1}: {args.count} codes generated and stored in "
                f"{generated:.2f} s; CSV export {exported:.2f} s ({lines} rows)",
                flush=True,
            )
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
