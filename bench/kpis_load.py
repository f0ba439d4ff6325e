"""Analytics KPIs at scale: generate members, orders and ledger transfers in Postgres with
set-based SQL, then time each KPI query and the full service calls.

```
python bench/kpis_load.py                                # 1M members, 10M transfers
python bench/kpis_load.py --members 100000 --transfers 1000000   # a small run
python bench/kpis_load.py --reuse                        # time again, no generation
python bench/kpis_load.py --reuse --refill               # also time the member_months job
```

The database (default ``postgresql://postgres@127.0.0.1:5432/bench_kpis``) is dropped and
recreated unless ``--reuse``; it is left in place for inspection. Data: members enrolled over
two years; 30 % of the transfers are order earnings (one order each, one order in ten a guest's
without an earning), the rest activations, redemptions, expiries, reversals and manual
adjustments spread over the same two years; one in ten members holds the gold tier; 100,000
NPS answers. Member statistics (first order) are derived from the orders. Then
``VACUUM ANALYZE`` (autovacuum may be off).

Each query runs ``--repeat`` times on a warm cache; the table shows the median and the worst.
Exit 0 when every KPI query (the first table) is within ``--target`` seconds, 1 otherwise.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import BenchError, PgTarget, log

START = datetime(2024, 12, 1, tzinfo=UTC)  # two years of history up to 2026-11-30
DAYS = 730
PROGRAM: dict[str, Any] = {
    "name": "Bench Rewards",
    "currency": "USD",
    "timezone": "Europe/Warsaw",
    "wallets": {
        "points": {
            "precision": 0,
            "point_value": "0.01",
            "expiry": {"mode": "rolling_days", "days": 365},
        },
        "credit": {"precision": 2, "kind": "credit"},
    },
    "brands": [{"key": "main", "name": "Main"}, {"key": "outlet", "name": "Outlet"}],
    "tiers": {
        "metric": "spend",
        "levels": [{"key": "bronze", "threshold": 0}, {"key": "gold", "threshold": 1000}],
    },
    "rules": [{"key": "base", "on": "order.completed", "earn": {"per_amount": 1}}],
    "surveys": [{"key": "nps", "name": "NPS", "period": "quarter"}],
}


BULK_TABLES = ("members", "orders", "ledger_transfers", "ledger_accounts")


def drop_indexes(conn: Any) -> list[str]:
    """Drop the bulk tables' indexes and keys (rebuilt sorted afterwards, much faster than
    maintained row by row); returns the statements that restore them."""
    restore: list[str] = []
    for table in BULK_TABLES:
        keys = conn.execute(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint"
            " WHERE conrelid = %s::regclass AND contype IN ('p', 'u')",
            (table,),
        ).fetchall()
        plain = conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s"
            " AND indexname NOT IN (SELECT conname FROM pg_constraint"
            " WHERE conrelid = %s::regclass)",
            (table, table),
        ).fetchall()
        for name, _ in plain:
            conn.execute(f'DROP INDEX "{name}"')
        for name, definition in keys:
            conn.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
            restore.append(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
        restore.extend(definition for _, definition in plain)
    return restore


def generate(conn: Any, tenant_id: str, members: int, transfers: int) -> None:
    """Set-based inserts; ids are derived from the row number so the script is repeatable."""
    orders = transfers * 3 // 10
    conn.execute("SET maintenance_work_mem = '512MB'")
    restore = drop_indexes(conn)
    params = {"t": tenant_id, "m": members, "start": START, "days": DAYS}

    def run(label: str, sql: str, **extra: Any) -> None:
        began = time.monotonic()
        conn.execute(sql, {**params, **extra})
        log(f"{label}: {time.monotonic() - began:.1f} s")

    run(
        f"{members:,} members",
        """
        INSERT INTO members (tenant_id, member_id, tags, attributes, enrolled_at, created_at,
                             updated_at, orders_count, spend_minor)
        SELECT %(t)s, 'm' || i, '[]', '{}', e, e, e, 0, 0
        FROM generate_series(1::bigint, %(m)s) AS i,
             LATERAL (SELECT %(start)s::timestamptz
                      + (i::float8 / %(m)s) * %(days)s * interval '1 day') AS x(e)
        """,
    )
    run(
        "ledger accounts",
        """
        INSERT INTO ledger_accounts (tenant_id, wallet, owner_type, owner_id, posted_minor,
                                     pending_minor)
        SELECT %(t)s, 'points', 'member', 'm' || i, (i * 37) %% 2000, 0
        FROM generate_series(1::bigint, %(m)s) AS i
        """,
    )
    # orders after the member's enrolment; one in ten is a guest's; one in four at the outlet
    run(
        f"{orders:,} orders",
        """
        INSERT INTO orders (tenant_id, order_id, member_id, placed_at, currency, subtotal_minor,
                            total_minor, refunded_minor, status, payload, created_at, brand)
        SELECT %(t)s, 'o' || i, CASE WHEN i %% 10 = 0 THEN NULL ELSE 'm' || mi END, p, 'USD',
               a, a, CASE WHEN i %% 20 = 0 THEN a / 2 ELSE 0 END,
               CASE WHEN i %% 50 = 0 THEN 'cancelled' ELSE 'completed' END,
               jsonb_build_object('brand', b), p, b
        FROM generate_series(1::bigint, %(o)s) AS i,
             LATERAL (SELECT (i * 7919) %% %(m)s + 1) AS y(mi),
             LATERAL (SELECT %(start)s::timestamptz
                      + (mi::float8 / %(m)s) * %(days)s * interval '1 day'
                      + ((i * 104729 + (i / %(m)s) * 337) %% 1000)::float8 / 1000
                        * (%(days)s - (mi::float8 / %(m)s) * %(days)s) * interval '1 day'
                     ) AS z(p),
             LATERAL (SELECT 1000 + (i * 31) %% 19000) AS w(a),
             LATERAL (SELECT CASE WHEN i %% 4 = 0 THEN 'outlet' ELSE 'main' END) AS v(b)
        """,
        o=orders,
    )
    run(
        "earn transfers",
        """
        INSERT INTO ledger_transfers (tenant_id, wallet, debit_account_id, credit_account_id,
            amount_minor, code, phase, member_id, order_id, source_type, source_id, idem_key,
            effective_at)
        SELECT %(t)s::varchar, 'points', 1, 2, total_minor / 100, 'earn',
               CASE WHEN placed_at > %(end)s THEN 'pending' ELSE 'posted' END, member_id,
               order_id, 'order', order_id, 'order/' || order_id, placed_at
        FROM orders WHERE tenant_id = %(t)s::varchar AND member_id IS NOT NULL
        """,
        end=datetime(2026, 11, 16, tzinfo=UTC),
    )
    remaining = transfers - int(
        conn.execute(
            "SELECT count(*) FROM ledger_transfers WHERE tenant_id = %(t)s", params
        ).fetchone()[0]
    )
    # the other codes in fixed shares of what is left
    run(
        f"{max(remaining, 0):,} other transfers",
        """
        INSERT INTO ledger_transfers (tenant_id, wallet, debit_account_id, credit_account_id,
            amount_minor, code, phase, member_id, source_type, source_id, idem_key, effective_at)
        SELECT %(t)s, CASE WHEN i %% 40 = 0 THEN 'credit' ELSE 'points' END, 2, 3,
               10 + (i * 13) %% 190, c, CASE WHEN c = 'reverse' AND i %% 2 = 0 THEN 'void'
                                             ELSE 'posted' END,
               'm' || ((i * 7919) %% %(m)s + 1), 'job', 'x' || i, 'x/' || i,
               %(start)s::timestamptz + ((i * 104729) %% 100000)::float8 / 100000
                                        * %(days)s * interval '1 day'
        FROM generate_series(1::bigint, %(n)s) AS i,
             LATERAL (SELECT CASE i %% 14 WHEN 0 THEN 'reverse' WHEN 1 THEN 'adjust'
                             WHEN 2 THEN 'return' WHEN 3 THEN 'redeem'
                             WHEN 4 THEN 'spend' WHEN 5 THEN 'spend' WHEN 6 THEN 'spend'
                             WHEN 7 THEN 'expire' WHEN 8 THEN 'expire' WHEN 9 THEN 'expire'
                             ELSE 'activate' END) AS k(c)
        """,
        n=max(remaining, 0),
    )
    run(
        "member statistics from orders",
        """
        UPDATE members m SET first_order_at = s.first, last_order_at = s.last,
                             orders_count = s.n, spend_minor = s.spend
        FROM (SELECT member_id, min(placed_at) AS first, max(placed_at) AS last, count(*) AS n,
                     sum(total_minor - refunded_minor) AS spend
              FROM orders WHERE tenant_id = %(t)s::varchar AND member_id IS NOT NULL
                AND status = 'completed' GROUP BY member_id) s
        WHERE m.tenant_id = %(t)s AND m.member_id = s.member_id
        """,
    )
    run(
        "tier states (gold: one member in ten)",
        """
        INSERT INTO tier_states (tenant_id, owner_type, owner_id, achieved_key, shown_key,
                                 updated_at)
        SELECT %(t)s, 'member', 'm' || i, 'gold', 'gold', %(start)s
        FROM generate_series(10::bigint, %(m)s, 10) AS i
        """,
    )
    run(
        "100,000 NPS answers",
        """
        INSERT INTO survey_responses (tenant_id, survey_key, member_id, period, score, tags,
                                      reward_minor, created_at)
        SELECT %(t)s, 'nps', 'm' || ((i * 7919) %% %(m)s + 1), 'p' || i, i %% 11, '[]', 0,
               %(start)s::timestamptz + (i::float8 / 100000) * %(days)s * interval '1 day'
        FROM generate_series(1::bigint, 100000) AS i
        """,
    )
    began = time.monotonic()
    for statement in restore:
        conn.execute(statement)
    log(f"indexes and keys rebuilt: {time.monotonic() - began:.1f} s")
    began = time.monotonic()
    conn.execute("VACUUM ANALYZE")
    log(f"VACUUM ANALYZE: {time.monotonic() - began:.1f} s")


def fill_member_months(url: str, tenant_id: str) -> bool:
    """Run the ``member_months`` job until the tenant's months are exact (what an upgraded
    install does over its first worker rounds); prints how long it took."""
    os.environ["ALLEGIANCE_DATABASE_URL"] = url
    from allegiance.config import reset_settings

    reset_settings()
    from allegiance.analytics import activity, tasks
    from allegiance.db import get_engine, read_session
    from allegiance.program.service import require_program

    engine = get_engine()
    with read_session(engine) as session:
        timezone = require_program(session, tenant_id=tenant_id).program.timezone
        if activity.exact_for(session, tenant_id, timezone):
            return False
    began = time.monotonic()
    members = rounds = 0
    while True:
        done = tasks.rebuild_member_months(engine, tenant_id, datetime.now(UTC))
        members += done
        rounds += 1
        with read_session(engine) as session:
            if activity.exact_for(session, tenant_id, timezone):
                break
        if done == 0:
            raise BenchError("the member_months job made no progress")
    took = time.monotonic() - began
    with read_session(engine) as session:
        from sqlalchemy import text

        rows = session.scalar(text("SELECT count(*) FROM member_months"))
        size = session.scalar(text("SELECT pg_total_relation_size('member_months')"))
    print(
        f"member_months job: {members:,} members in {rounds} rounds, {took:.1f} s "
        f"({members / took:,.0f} members/s); {rows:,} rows, {size / 2**20:,.0f} MiB with indexes"
    )
    return True


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, float, Any]:
    """(median, worst) seconds of ``repeat`` warm runs, after one warm-up run."""
    result = fn()
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - began)
    return statistics.median(times), max(times), result


def measure(url: str, tenant_id: str, repeat: int, target: float) -> bool:
    os.environ["ALLEGIANCE_DATABASE_URL"] = url
    from allegiance.config import reset_settings

    reset_settings()
    from allegiance.analytics import kpis, repository
    from allegiance.config import get_settings
    from allegiance.db import get_engine, read_session
    from allegiance.program.service import require_program

    engine = get_engine()
    month = (date(2026, 10, 1), date(2026, 10, 31))
    with read_session(engine) as session:
        program = require_program(session, tenant_id=tenant_id).program
        repository.tune_for_aggregates(session, get_settings().analytics_work_mem_mb)
        scope = kpis.resolve_scope(program, tenant_id=tenant_id)
        gold = kpis.resolve_scope(program, tenant_id=tenant_id, tier="gold")
        period = kpis.Period(session, scope, *month)
        start, end = period.start, period.end
        year_bounds = [
            kpis._midnight(program, date(2025 + (m + 11) // 12, (m + 11) % 12 + 1, 1))
            for m in range(13)
        ]  # 2025-12-01 .. 2026-12-01
        year_months = [
            (2025 + (m + 11) // 12) * 100 + (m + 11) % 12 + 1 for m in range(12)
        ]  # 202512 .. 202611
        quarter_weeks = [
            kpis._midnight(program, date(2026, 8, 3) + timedelta(weeks=w)) for w in range(14)
        ]  # 2026-08-03 .. 2026-11-02, Mondays
        queries: list[tuple[str, Callable[[], Any]]] = [
            ("point flows of the month (issued, redeemed, expired)",
             lambda: repository.point_flows(session, tenant_id, start, end)),
            ("point flows of the month, tier gold",
             lambda: repository.point_flows(session, tenant_id, start, end, gold.members)),
            ("holders' balance today (liability)",
             lambda: repository.holder_balance(session, tenant_id, "points")),
            ("balance change after the month (liability as of `to`)",
             lambda: repository.holder_change_since(session, tenant_id, "points", end)),
            ("redeemed and expired in the year to `to` (expected breakage)",
             lambda: repository.point_flows(
                 session, tenant_id, end - timedelta(days=kpis.HISTORY_DAYS), end,
                 codes=("spend", "redeem", "return", "expire"))),
            ("orders of the month (revenue, AOV, repeat, new customers)",
             lambda: repository.order_stats(session, tenant_id, start, end)),
            ("orders of the month, brand outlet",
             lambda: repository.order_stats(session, tenant_id, start, end, "outlet")),
            ("orders of the month, tier gold",
             lambda: repository.order_stats(session, tenant_id, start, end, None, gold.members)),
            ("customers of the month before (retention S)",
             lambda: repository.customers_in(session, tenant_id, start - (end - start), start)),
            ("activation of the month's enrolments",
             lambda: repository.activation(session, tenant_id, start, end)),
            ("NPS of the month",
             lambda: repository.nps_counts(session, tenant_id, start, end)),
            ("cohort sizes, 12 months",
             lambda: repository.cohort_sizes(session, tenant_id, year_bounds)),
            ("cohort activity, 12 months (`/cohorts`, from member_months)",
             lambda: repository.cohort_activity_by_month(
                 session, tenant_id, year_bounds, year_months)),
        ]  # fmt: skip
        # what the matrix counts from the orders when member_months cannot answer (a brand,
        # weeks or days, a range not of whole months, a time zone change being rebuilt)
        fallbacks: list[tuple[str, Callable[[], Any]]] = [
            ("12 months counted from the orders (no brand)",
             lambda: repository.cohort_activity(session, tenant_id, year_bounds)),
            ("12 months counted from the orders, brand outlet",
             lambda: repository.cohort_activity(session, tenant_id, year_bounds, "outlet")),
            ("13 weeks (a quarter) counted from the orders",
             lambda: repository.cohort_activity(session, tenant_id, quarter_weeks)),
        ]  # fmt: skip
        calls: list[tuple[str, Callable[[], Any]]] = [
            ("kpis(): every KPI of the month",
             lambda: kpis.kpis(session, scope=scope, date_from=month[0], date_to=month[1])),
            ("kpis(): every KPI of the month, tier gold",
             lambda: kpis.kpis(session, scope=gold, date_from=month[0], date_to=month[1])),
            ("kpis(): every KPI of a year",
             lambda: kpis.kpis(session, scope=scope, date_from=date(2025, 11, 1),
                               date_to=date(2026, 10, 31))),
            ("series(): redemption_rate by month over a year",
             lambda: kpis.series(session, scope=scope, metric="redemption_rate",
                                 interval="month", date_from=date(2025, 11, 1),
                                 date_to=date(2026, 10, 31))),
            ("series(): revenue by day over October",
             lambda: kpis.series(session, scope=scope, metric="revenue", interval="day",
                                 date_from=month[0], date_to=month[1])),
            ("cohorts(): 12 months",
             lambda: kpis.cohorts(session, scope=scope, date_from=date(2025, 12, 1),
                                  date_to=date(2026, 11, 30), interval="month")),
        ]  # fmt: skip
        met = True
        print("\n| KPI query (October 2026) | median s | worst s | ≤ target |")
        print("|---|---:|---:|---|")
        for label, fn in queries:
            median, worst, _ = timed(fn, repeat)
            ok = worst <= target
            met = met and ok
            print(f"| {label} | {median:.3f} | {worst:.3f} | {'yes' if ok else '**no**'} |")
        print("\n| cohort matrix without member_months | median s | worst s |")
        print("|---|---:|---:|")
        for label, fn in fallbacks:
            median, worst, _ = timed(fn, repeat)
            print(f"| {label} | {median:.3f} | {worst:.3f} |")
        same = repository.cohort_activity(
            session, tenant_id, year_bounds
        ) == repository.cohort_activity_by_month(session, tenant_id, year_bounds, year_months)
        print(f"\nmember_months matrix equals the matrix counted from the orders: {same}")
        met = met and same
        print("\n| service call | median s | worst s |")
        print("|---|---:|---:|")
        sample: Any = None
        for label, fn in calls:
            median, worst, result = timed(fn, repeat)
            sample = sample or result
            print(f"| {label} | {median:.3f} | {worst:.3f} |")
        keys = ("points_issued", "redemption_rate", "orders", "customers", "retention_rate", "nps")
        print("\nOctober 2026: " + ", ".join(f"{k} = {sample[k]}" for k in keys))
    return met


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/bench_kpis")
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--transfers", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--target", type=float, default=2.0, help="seconds per KPI query")
    parser.add_argument("--reuse", action="store_true", help="time the existing data only")
    parser.add_argument(
        "--refill", action="store_true", help="empty member_months and time the job filling it"
    )
    args = parser.parse_args()
    try:
        target = PgTarget.from_url(args.database_url)
        url = target.url()
        if not args.reuse:
            target.recreate()
            from allegiance.migrate import upgrade

            upgrade(url)
            os.environ["ALLEGIANCE_DATABASE_URL"] = url
            from allegiance.config import reset_settings

            reset_settings()
            from allegiance.db import get_engine, write_session
            from allegiance.program.service import apply_program
            from allegiance.tenant.service import create_tenant

            now = datetime.now(UTC)
            with write_session(get_engine()) as session:
                tenant_id, _ = create_tenant(session, name="bench", now=now)
                apply_program(session, tenant_id=tenant_id, document=PROGRAM, now=now)
            began = time.monotonic()
            with target._connect(target.dbname) as conn:
                conn.execute("CREATE TABLE IF NOT EXISTS bench_meta (tenant_id text)")
                conn.execute("INSERT INTO bench_meta VALUES (%s)", (tenant_id,))
                generate(conn, tenant_id, args.members, args.transfers)
            log(f"generated in {time.monotonic() - began:.0f} s")
        if not args.reuse or args.refill:
            with target._connect(target.dbname) as conn:
                # the generated orders bypassed booking: start as an upgraded install does
                conn.execute("TRUNCATE member_months, member_months_state")
        with target._connect(target.dbname) as conn:
            row = conn.execute("SELECT tenant_id FROM bench_meta").fetchone()
            if row is None:
                raise BenchError("no generated data: run without --reuse first")
            tenant_id = row[0]
            counts = conn.execute(
                "SELECT (SELECT count(*) FROM members), (SELECT count(*) FROM ledger_transfers),"
                " (SELECT count(*) FROM orders)"
            ).fetchone()
        print(
            f"members {counts[0]:,}, ledger transfers {counts[1]:,}, orders {counts[2]:,}; "
            f"PostgreSQL {target.server_version()}"
        )
        if fill_member_months(url, tenant_id):
            with target._connect(target.dbname) as conn:
                # what autovacuum would do after the fill (it may be off on the bench machine);
                # index-only scans need the visibility map
                conn.execute("VACUUM ANALYZE member_months")
        met = measure(url, tenant_id, args.repeat, args.target)
    except BenchError as exc:
        print(f"setup error: {exc}", file=sys.stderr)
        return 2
    print(f"\n{'PASS' if met else 'FAIL'}: every KPI query ≤ {args.target} s")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
