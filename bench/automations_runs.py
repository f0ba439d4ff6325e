"""Automation throughput: members enrolled → outbox dispatch → runs executed (award points and
a welcome mail written as an .eml file), on a temporary SQLite file or a local Postgres.

    python bench/automations_runs.py                     # SQLite, 2,000 members
    python bench/automations_runs.py --members 5000
    python bench/automations_runs.py --database-url postgresql://postgres@127.0.0.1:5432/automations_bench

Prints a Markdown table on stdout; exit 0. Only loopback database hosts are accepted.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import BenchError, is_loopback, log


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=2_000)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    if not 1 <= args.members <= 50_000:
        raise BenchError("--members must be between 1 and 50,000")
    work = Path(tempfile.mkdtemp(prefix="allegiance-automations-bench-"))
    url = args.database_url or f"sqlite:///{work}/bench.db"
    host = urllib.parse.urlsplit(url).hostname
    if host and not is_loopback(host):
        raise BenchError(f"only loopback databases are used, not {host!r}")
    os.environ["ALLEGIANCE_DATABASE_URL"] = url
    os.environ["ALLEGIANCE_MAIL_DIR"] = str(work / "mail")
    os.environ.pop("ALLEGIANCE_SMTP_URL", None)

    import allegiance.automation.actions
    import allegiance.email.service  # noqa: F401
    from allegiance.automation.tasks import execute_due
    from allegiance.config import reset_settings
    from allegiance.db import get_engine, write_session
    from allegiance.kit.clock import utcnow
    from allegiance.member.schemas import MemberUpsert
    from allegiance.member.service import upsert_member
    from allegiance.migrate import upgrade
    from allegiance.outbox.tasks import dispatch
    from allegiance.program.service import apply_program
    from allegiance.tenant.service import create_tenant

    reset_settings()
    if url.startswith("postgresql"):
        import psycopg

        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("DROP SCHEMA IF EXISTS public CASCADE")
            conn.execute("CREATE SCHEMA public")
    upgrade(url)
    engine = get_engine()
    now = utcnow()
    with write_session(engine) as session:
        tenant_id, _ = create_tenant(session, name="bench", now=now)
        apply_program(
            session,
            tenant_id=tenant_id,
            document={
                "name": "Bench",
                "currency": "USD",
                "automations": [
                    {
                        "key": "welcome",
                        "trigger": {"event": "member.enrolled"},
                        "actions": [
                            {"award_points": {"amount": 10}},
                            {"send_email": {"template": "welcome"}},
                        ],
                    }
                ],
            },
            now=now,
        )
    log(f"enrolling {args.members} members")
    started = time.perf_counter()
    for start in range(0, args.members, 500):
        with write_session(engine) as session:
            for i in range(start, min(start + 500, args.members)):
                data = MemberUpsert(email=f"m{i}@example.com", locale="ar" if i % 3 else "zh")
                upsert_member(session, tenant_id=tenant_id, member_id=f"m{i}", data=data, now=now)
    enrol = time.perf_counter() - started
    log("dispatching")
    started = time.perf_counter()
    dispatched = dispatch(engine, tenant_id, now)
    dispatch_s = time.perf_counter() - started
    log("executing runs")
    started = time.perf_counter()
    executed = execute_due(engine, tenant_id, now)
    execute_s = time.perf_counter() - started
    mails = len(list((work / "mail").glob("*.eml")))
    backend = "postgres" if url.startswith("postgresql") else "sqlite"
    print(f"| step ({backend}, {args.members} members) | items | seconds | per second |")
    print("|---|---|---|---|")
    rows = [
        ("upsert members (+ member.enrolled)", args.members, enrol),
        ("outbox dispatch (runs created)", dispatched, dispatch_s),
        ("runs executed (points + .eml mail)", executed, execute_s),
    ]
    for name, count, seconds in rows:
        print(f"| {name} | {count} | {seconds:.2f} | {count / seconds:,.0f} |")
    print(f"\nmails written: {mails}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
