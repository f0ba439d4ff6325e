"""The ``allegiance`` command line (DESIGN.md §2).

``--database-url URL`` (or ALLEGIANCE_DATABASE_URL) applies to every verb and may stand
anywhere on the command line.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import typer
import yaml
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from allegiance.config import get_settings, reset_settings
from allegiance.kit.yamlio import load_yaml

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Allegiance: an API-first loyalty engine for e-commerce.",
)
db_app = typer.Typer(no_args_is_help=True, help="Database schema.")
tenants_app = typer.Typer(no_args_is_help=True, help="Tenants (one per shop or program).")
keys_app = typer.Typer(no_args_is_help=True, help="API keys of a tenant.")
program_app = typer.Typer(no_args_is_help=True, help="The program document.")
import_app = typer.Typer(no_args_is_help=True, help="Import CSV or JSONL files.")
jobs_app = typer.Typer(no_args_is_help=True, help="Periodic jobs.")
ledger_app = typer.Typer(no_args_is_help=True, help="The points ledger.")
sweepstakes_app = typer.Typer(no_args_is_help=True, help="Sweepstakes draws.")
app.add_typer(db_app, name="db")
app.add_typer(tenants_app, name="tenants")
app.add_typer(keys_app, name="keys")
app.add_typer(program_app, name="program")
app.add_typer(import_app, name="import")
app.add_typer(jobs_app, name="jobs")
app.add_typer(ledger_app, name="ledger")
app.add_typer(sweepstakes_app, name="sweepstakes")

console = Console()
err = Console(stderr=True)


def _url() -> str:
    return get_settings().database_url


def _engine() -> Any:
    from allegiance.db import get_engine

    return get_engine(_url())


def _migrate() -> None:
    from allegiance.migrate import upgrade

    upgrade(_url())


def _now(value: str | None) -> Any:
    from allegiance.kit.clock import parse_timestamp, utcnow

    if value is None:
        return utcnow()
    try:
        return parse_timestamp(value)
    except ValueError as exc:
        err.print(f"[red]--now: {exc}[/red]")
        raise typer.Exit(2) from exc


def _fail(message: str, code: int = 1) -> None:
    err.print(f"[red]error:[/red] {message}")
    raise typer.Exit(code)


@app.command()
def serve(host: str = "127.0.0.1", port: int = 8000) -> None:
    """Migrate the database, then serve the API (jobs run in-process)."""
    import uvicorn

    _migrate()
    from allegiance.app import create_app

    uvicorn.run(create_app(), host=host, port=port, log_level="info")


@app.command()
def worker(interval: float = typer.Option(None, help="seconds between rounds")) -> None:
    """Run periodic jobs in a loop (several workers may run at once)."""
    from allegiance.kit.clock import utcnow
    from allegiance.worker.runner import run_all, run_frequent

    _migrate()
    pause = interval or get_settings().jobs_interval_seconds
    tick = min(pause, get_settings().webhook_poll_seconds)
    console.print(f"worker started; a round every {pause:g}s (Ctrl-C stops)")
    try:
        next_round = 0.0
        while True:
            if time.monotonic() >= next_round:
                counts = run_all(_engine(), utcnow())
                if any(counts.values()):
                    console.print(counts)
                next_round = time.monotonic() + pause
            else:
                # outbox and webhook deliveries more often than the other jobs
                run_frequent(_engine(), utcnow())
            time.sleep(tick)
    except KeyboardInterrupt:
        console.print("worker stopped")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Bring the schema to the newest version."""
    _migrate()
    console.print("database is up to date")


@tenants_app.command("create")
def tenants_create(name: str, as_json: bool = typer.Option(False, "--json")) -> None:
    """Create a tenant and print its admin API key (shown once)."""
    from allegiance.db import write_session
    from allegiance.kit.clock import utcnow
    from allegiance.tenant.service import create_tenant

    _migrate()
    with write_session(_engine()) as session:
        tenant_id, key = create_tenant(session, name=name, now=utcnow())
    if as_json:
        print(json.dumps({"tenant_id": tenant_id, "api_key": key.api_key}))
    else:
        console.print(f"tenant [bold]{tenant_id}[/bold]\nadmin API key {key.api_key}")


@keys_app.command("create")
def keys_create(
    tenant: str = typer.Option(..., "--tenant"),
    scope: str = typer.Option(..., help="admin | ingest | storefront | partner"),
    name: str | None = None,
    partner: str | None = typer.Option(None, help="scope partner: the partner's key"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Create an API key with a scope."""
    from allegiance.db import write_session
    from allegiance.errors import DomainError
    from allegiance.kit.clock import utcnow
    from allegiance.tenant.service import create_api_key

    try:
        with write_session(_engine()) as session:
            key = create_api_key(
                session, tenant_id=tenant, scope=scope, name=name, now=utcnow(), partner=partner
            )
    except DomainError as exc:
        _fail(exc.detail)
        return
    if as_json:
        print(json.dumps(key.view()))
    else:
        console.print(f"{key.scope} key {key.api_key}")


def _load_document(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        _fail(f"cannot read {path}: {exc.strerror}")
    try:
        if path.suffix.lower() == ".json":
            return json.loads(text)
        return load_yaml(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        _fail(f"{path}: does not parse: {exc}")


def _print_errors(path: Path, errors: list[dict[str, Any]]) -> None:
    for error in errors:
        loc = ".".join(str(p) for p in error["loc"]) or "(document)"
        err.print(f"{path}: [bold]{loc}[/bold]: {error['msg']}")


@program_app.command("validate")
def program_validate(file: Path) -> None:
    """Validate a program document; exit 1 with located errors."""
    from allegiance.program.validate import validate_program

    program, errors = validate_program(_load_document(file))
    if program is None:
        _print_errors(file, errors)
        raise typer.Exit(1)
    console.print(
        f"{file}: valid ({len(program.rules)} rules, wallets {', '.join(program.wallets)})"
    )


@program_app.command("apply")
def program_apply(file: Path, tenant: str = typer.Option(..., "--tenant")) -> None:
    """Validate and apply a program document as the tenant's next version."""
    from allegiance.db import write_session
    from allegiance.errors import DomainError
    from allegiance.kit.clock import utcnow
    from allegiance.program.service import apply_program
    from allegiance.tenant.repository import tenant_exists

    document = _load_document(file)
    _migrate()
    try:
        with write_session(_engine()) as session:
            if not tenant_exists(session, tenant):
                _fail(f"tenant {tenant} does not exist")
            result = apply_program(session, tenant_id=tenant, document=document, now=utcnow())
    except DomainError as exc:
        _print_errors(file, exc.errors or [{"loc": [], "msg": exc.detail}])
        raise typer.Exit(1) from exc
    console.print(f"applied {file} as version {result['version']}")


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:,.0f} records"),
        TimeElapsedColumn(),
        console=err,
        transient=False,
        disable=not err.is_terminal and not os.environ.get("ALLEGIANCE_PROGRESS"),
    )


def _run_import(kind: str, file: Path, tenant: str, now: Any) -> Any:
    from allegiance.integration.csv.service import (
        import_events,
        import_members,
        import_orders,
        import_refunds,
    )

    settings = get_settings()
    with _progress() as bar:
        task = bar.add_task(f"import {kind} from {file.name}", total=None)

        def progress(records: int) -> None:
            bar.update(task, completed=records)

        run = {
            "orders": import_orders,
            "members": import_members,
            "refunds": import_refunds,
            "events": import_events,
        }[kind]
        report = run(
            _engine(),
            tenant_id=tenant,
            path=file,
            now=now,
            batch_size=settings.import_batch_size,
            progress=progress,
        )
        bar.update(task, completed=report.read, total=report.read)
    return report


@import_app.command("orders")
def import_orders_cmd(
    file: Path,
    tenant: str = typer.Option(..., "--tenant"),
    now: str | None = typer.Option(None, help="book as of this time"),
) -> None:
    """Import orders (CSV: one row per line item; JSONL: one order per line)."""
    _import("orders", file, tenant, now)


@import_app.command("members")
def import_members_cmd(
    file: Path, tenant: str = typer.Option(..., "--tenant"), now: str | None = typer.Option(None)
) -> None:
    """Import members (CSV or JSONL)."""
    _import("members", file, tenant, now)


@import_app.command("refunds")
def import_refunds_cmd(
    file: Path, tenant: str = typer.Option(..., "--tenant"), now: str | None = typer.Option(None)
) -> None:
    """Import refunds of booked orders (CSV or JSONL; order_id plus the refund)."""
    _import("refunds", file, tenant, now)


@import_app.command("events")
def import_events_cmd(
    file: Path, tenant: str = typer.Option(..., "--tenant"), now: str | None = typer.Option(None)
) -> None:
    """Import behaviour events (CSV or JSONL)."""
    _import("events", file, tenant, now)


def _import(kind: str, file: Path, tenant: str, now: str | None) -> None:
    from allegiance.errors import DomainError
    from allegiance.tenant.repository import tenant_exists

    if not file.exists():
        _fail(f"{file}: no such file")
    _migrate()
    from allegiance.db import read_session

    with read_session(_engine()) as session:
        if not tenant_exists(session, tenant):
            _fail(f"tenant {tenant} does not exist")
    started = time.perf_counter()
    try:
        report = _run_import(kind, file, tenant, _now(now))
    except (DomainError, ValueError) as exc:
        _fail(getattr(exc, "detail", str(exc)))
        return
    elapsed = time.perf_counter() - started
    console.print(
        f"{kind}: read {report.read:,}, booked {report.booked:,}, already there "
        f"{report.skipped:,}, rejected {report.rejected:,} in {elapsed:.1f}s"
    )
    if report.rejected_file:
        console.print(f"rejected records with reasons: {report.rejected_file}")


@jobs_app.command("run")
def jobs_run(
    now: str | None = typer.Option(None, help="run as of this ISO 8601 time"),
    tenant: str | None = typer.Option(None, "--tenant"),
) -> None:
    """Run every due periodic job once (activation, expiry, notices, subscriptions)."""
    from allegiance.worker.runner import run_all

    _migrate()
    counts = run_all(_engine(), _now(now), tenant)
    for name, count in counts.items():
        console.print(f"{name}: {count}")


@ledger_app.command("verify")
def ledger_verify(tenant: str | None = typer.Option(None, "--tenant")) -> None:
    """Check every ledger invariant; exit 1 on any breach."""
    from allegiance.db import read_session
    from allegiance.ledger.service import tenants_with_ledger, verify
    from allegiance.program.service import load_program

    breaches: list[str] = []
    with read_session(_engine()) as session:
        tenants = [tenant] if tenant else tenants_with_ledger(session)
        for tid in tenants:
            compiled = load_program(session, tenant_id=tid)
            found = verify(session, tenant_id=tid, program=compiled.program if compiled else None)
            breaches.extend(f"{tid}: {b}" for b in found)
    for breach in breaches:
        err.print(f"[red]breach[/red] {breach}")
    if breaches:
        raise typer.Exit(1)
    console.print(f"ledger ok ({len(tenants)} tenant(s) checked)")


@sweepstakes_app.command("verify")
def sweepstakes_verify(
    target: str = typer.Argument(..., help="a published draw (JSON file), or with --tenant a key"),
    tenant: str | None = typer.Option(None, "--tenant"),
) -> None:
    """Re-derive a draw's winners and check from its published data; exit 1 on a mismatch."""
    from allegiance.sweepstakes.draw import verify

    if tenant is None:
        try:
            data = json.loads(Path(target).read_text())
        except (OSError, ValueError) as exc:
            _fail(f"{target}: {exc}", 2)
    else:
        from allegiance.db import read_session
        from allegiance.errors import DomainError
        from allegiance.program.service import require_program
        from allegiance.sweepstakes.service import published

        try:
            with read_session(_engine()) as session:
                program = require_program(session, tenant_id=tenant)
                data = published(session, tenant_id=tenant, program=program, key=target)
        except DomainError as exc:
            _fail(exc.detail, 2)
    problems = verify(data if isinstance(data, dict) else {})
    for problem in problems:
        err.print(f"[red]mismatch[/red] {problem}")
    if problems:
        raise typer.Exit(1)
    console.print(f"draw ok ({len(data['entries'])} entries, {len(data['winners'])} winner(s))")


@app.command()
def demo(
    host: str = "127.0.0.1",
    port: int = 8000,
    serve_after: bool = typer.Option(True, "--serve/--no-serve"),
) -> None:
    """Load the CDNOW purchase history into a demo tenant, print a summary, and serve."""
    from allegiance.demo import cdnow
    from allegiance.demo import service as demo_service
    from allegiance.kit.clock import utcnow
    from allegiance.kit.money import money_str

    _migrate()
    now = utcnow()
    console.print("locating the CDNOW data set (PyPI package lifetimes, without dependencies)")
    try:
        source = cdnow.locate(install=True)
    except (FileNotFoundError, OSError) as exc:
        _fail(str(exc))
        return
    setup = demo_service.setup_tenant(_engine(), now)
    with tempfile.TemporaryDirectory() as tmp:
        orders_csv = Path(tmp) / "cdnow_orders.csv"
        count = cdnow.write_orders_csv(source, orders_csv)
        console.print(f"importing {count:,} CDNOW purchases into tenant {setup.tenant_id}")
        started = time.perf_counter()
        report = _run_import("orders", orders_csv, setup.tenant_id, now)
        elapsed = time.perf_counter() - started
    summary = demo_service.summary(_engine(), setup.tenant_id)
    table = Table(title="CDNOW demo")
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_row("members", f"{summary['members']:,}")
    table.add_row("orders", f"{summary['orders']:,}")
    table.add_row("revenue (USD)", f"{Decimal(money_str(summary['revenue_minor'], 2)):,}")
    table.add_row("points issued", f"{summary['issued_minor'].get('points', 0):,}")
    table.add_row(
        "store credit issued (USD)",
        f"{Decimal(money_str(summary['issued_minor'].get('credit', 0), 2)):,}",
    )
    for tier, count in sorted(summary["tiers"].items(), key=lambda kv: -kv[1]):
        table.add_row(f"members in tier {tier}", f"{count:,}")
    table.add_row(
        "import",
        f"booked {report.booked:,}, already there {report.skipped:,}, "
        f"rejected {report.rejected:,} in {elapsed:.1f}s",
    )
    console.print(table)
    top = Table(title="Top members by points")
    top.add_column("member")
    top.add_column("points", justify="right")
    for row in summary["top_members"]:
        top.add_row(row["member_id"], f"{row['points']:,}")
    console.print(top)
    console.print(f"tenant {setup.tenant_id}\nadmin API key {setup.api_key}")
    if serve_after:
        import uvicorn

        from allegiance.app import create_app

        console.print(
            f"try: curl -H 'Authorization: Bearer {setup.api_key}' "
            f"http://{host}:{port}/v1/members/{summary['top_members'][0]['member_id']}"
            if summary["top_members"]
            else ""
        )
        uvicorn.run(create_app(), host=host, port=port, log_level="info")


def _extract_database_url(argv: list[str]) -> list[str]:
    """Take ``--database-url`` from anywhere on the command line into the environment."""
    out: list[str] = []
    skip = False
    for index, arg in enumerate(argv):
        if skip:
            skip = False
            continue
        if arg == "--database-url":
            if index + 1 >= len(argv):
                err.print("--database-url needs a value")
                raise SystemExit(2)
            os.environ["ALLEGIANCE_DATABASE_URL"] = argv[index + 1]
            skip = True
            continue
        if arg.startswith("--database-url="):
            os.environ["ALLEGIANCE_DATABASE_URL"] = arg.split("=", 1)[1]
            continue
        out.append(arg)
    return out


def main() -> None:
    args = _extract_database_url(sys.argv[1:])
    reset_settings()
    app(args=args, prog_name="allegiance")


if __name__ == "__main__":
    main()
