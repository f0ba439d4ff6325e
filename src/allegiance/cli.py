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
export_app = typer.Typer(no_args_is_help=True, help="Export members, the ledger or orders.")
jobs_app = typer.Typer(no_args_is_help=True, help="Periodic jobs.")
ledger_app = typer.Typer(no_args_is_help=True, help="The points ledger.")
sweepstakes_app = typer.Typer(no_args_is_help=True, help="Sweepstakes draws.")
secrets_app = typer.Typer(no_args_is_help=True, help="Webhook and connector secrets at rest.")
app.add_typer(db_app, name="db")
app.add_typer(tenants_app, name="tenants")
app.add_typer(keys_app, name="keys")
app.add_typer(program_app, name="program")
app.add_typer(import_app, name="import")
app.add_typer(export_app, name="export")
app.add_typer(jobs_app, name="jobs")
app.add_typer(ledger_app, name="ledger")
app.add_typer(sweepstakes_app, name="sweepstakes")
app.add_typer(secrets_app, name="secrets")

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


@import_app.command("magento")
def import_magento_cmd(
    file: Path,
    tenant: str = typer.Option(..., "--tenant"),
    now: str | None = typer.Option(None, help="book as of this time"),
) -> None:
    """Import Magento 2 REST orders (JSON: an order, a list or a search result; or JSONL)."""
    from allegiance.integration.reconcile import import_magento

    if not file.exists():
        _fail(f"{file}: no such file")
    _migrate()
    _platform_run(
        f"import magento orders from {file.name}",
        lambda progress: import_magento(
            _engine(), tenant_id=tenant, path=file, now=_now(now), progress=progress
        ),
    )


@app.command()
def reconcile(
    platform: str = typer.Argument(..., help="shopify or woocommerce"),
    tenant: str = typer.Option(..., "--tenant"),
    since: str = typer.Option(..., "--since", help="orders changed since this date or time"),
    now: str | None = typer.Option(None, help="book as of this time"),
) -> None:
    """Pull orders (and refunds) from the platform's API and book what webhooks missed."""
    from allegiance.integration.reconcile import reconcile as run_reconcile

    if platform not in ("shopify", "woocommerce"):
        _fail("reconcile pulls from shopify or woocommerce", code=2)
    _migrate()
    started = _now(since)
    _platform_run(
        f"reconcile {platform} since {since}",
        lambda progress: run_reconcile(
            _engine(),
            tenant_id=tenant,
            platform=platform,
            since=started,
            now=_now(now),
            progress=progress,
        ),
    )


def _platform_run(title: str, run: Any) -> None:
    from allegiance.errors import DomainError

    began = time.perf_counter()
    try:
        with _progress() as bar:
            task = bar.add_task(title, total=None)
            report = run(lambda records: bar.update(task, completed=records))
            bar.update(task, completed=report.fetched, total=report.fetched)
    except DomainError as exc:
        _fail(exc.detail)
        return
    console.print(
        f"fetched {report.fetched:,}, booked {report.booked:,}, skipped {report.skipped:,}, "
        f"failed {report.failed:,} in {time.perf_counter() - began:.1f}s"
    )
    for failure in report.failures:
        console.print(f"  failed {failure['id']}: {failure['reason']}")
    if report.failed:
        raise typer.Exit(1)


_FORMAT = typer.Option("csv", "--format", help="csv or jsonl")
_OUTPUT = typer.Option("-", "--output", "-o", help="file to write, - for standard output")
_SINCE = typer.Option(None, "--since", help="from this date or ISO 8601 time (inclusive)")
_UNTIL = typer.Option(None, "--until", help="up to this date or ISO 8601 time (exclusive)")


@export_app.command("members")
def export_members_cmd(
    tenant: str = typer.Option(..., "--tenant"),
    fmt: str = _FORMAT,
    output: str = _OUTPUT,
    since: str | None = _SINCE,
    until: str | None = _UNTIL,
) -> None:
    """Members: profile, statistics, tier and balances per wallet (window: enrolled_at)."""
    _export("members", tenant, fmt, output, since, until)


@export_app.command("ledger")
def export_ledger_cmd(
    tenant: str = typer.Option(..., "--tenant"),
    fmt: str = _FORMAT,
    output: str = _OUTPUT,
    since: str | None = _SINCE,
    until: str | None = _UNTIL,
) -> None:
    """Ledger transfers, signed from the holder's side (window: effective_at)."""
    _export("ledger", tenant, fmt, output, since, until)


@export_app.command("orders")
def export_orders_cmd(
    tenant: str = typer.Option(..., "--tenant"),
    fmt: str = _FORMAT,
    output: str = _OUTPUT,
    since: str | None = _SINCE,
    until: str | None = _UNTIL,
) -> None:
    """Orders with their lines (window: placed_at)."""
    _export("orders", tenant, fmt, output, since, until)


def _bound(value: str | None, option: str) -> Any:
    from allegiance.kit.clock import parse_timestamp

    if value is None:
        return None
    try:
        return parse_timestamp(value)
    except ValueError as exc:
        _fail(f"{option}: {exc}", code=2)


def _export(
    kind: str, tenant: str, fmt: str, output: str, since: str | None, until: str | None
) -> None:
    from allegiance.db import is_sqlite, read_session
    from allegiance.errors import DomainError
    from allegiance.export.service import FORMATS, open_export, write_export

    if fmt not in FORMATS:
        _fail(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}", code=2)
    window = (_bound(since, "--since"), _bound(until, "--until"))
    _migrate()
    engine = _engine()
    if not is_sqlite(engine):  # one snapshot for the whole export
        engine = engine.execution_options(isolation_level="REPEATABLE READ")
    target = None if output == "-" else Path(output)
    partial = target.with_name(target.name + ".partial") if target is not None else None
    started = time.perf_counter()
    try:
        with read_session(engine) as session:
            export = open_export(
                session,
                tenant_id=tenant,
                kind=kind,
                since=window[0],
                until=window[1],
                batch_size=get_settings().export_batch_size,
            )
            if partial is None:
                count = write_export(export, sys.stdout, fmt, lambda _: None)
                sys.stdout.flush()
            else:
                with _progress() as bar, partial.open("w", encoding="utf-8", newline="") as out:
                    task = bar.add_task(f"export {kind} to {partial.name[:-8]}", total=None)
                    count = write_export(export, out, fmt, lambda n: bar.update(task, completed=n))
    except DomainError as exc:
        if partial is not None:
            partial.unlink(missing_ok=True)
        _fail(exc.detail, code=2 if exc.status == 422 else 1)
        return
    except BaseException:
        if partial is not None:
            partial.unlink(missing_ok=True)  # never leave a truncated file behind
        raise
    if target is not None and partial is not None:
        partial.replace(target)
        err.print(
            f"{kind}: {count:,} rows written to {target} in {time.perf_counter() - started:.1f}s"
        )


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
    """Check every ledger invariant (and the member months the cohort matrix reads); exit 1
    on any breach."""
    from allegiance.analytics import activity
    from allegiance.db import read_session
    from allegiance.ledger.service import tenants_with_ledger, verify
    from allegiance.program.service import load_program

    breaches: list[str] = []
    with read_session(_engine()) as session:
        tenants = [tenant] if tenant else tenants_with_ledger(session)
        for tid in tenants:
            compiled = load_program(session, tenant_id=tid)
            found = verify(session, tenant_id=tid, program=compiled.program if compiled else None)
            if compiled is not None:
                found += activity.verify(session, tenant_id=tid, timezone=compiled.program.timezone)
            breaches.extend(f"{tid}: {b}" for b in found)
    for breach in breaches:
        err.print(f"[red]breach[/red] {breach}")
    if breaches:
        raise typer.Exit(1)
    console.print(f"ledger ok ({len(tenants)} tenant(s) checked)")


@secrets_app.command("new-key")
def secrets_new_key() -> None:
    """Print a new key for ALLEGIANCE_SECRET_KEYS."""
    from allegiance.kit.encryption import new_key

    print(new_key())


@secrets_app.command("reencrypt")
def secrets_reencrypt(
    plaintext: bool = typer.Option(
        False, "--plaintext", help="Decrypt every secret and store it as plaintext."
    ),
) -> None:
    """Rewrite every stored secret encrypted with the first key of ALLEGIANCE_SECRET_KEYS
    (plaintext ones included): after setting the first key, or putting a new one first."""
    from allegiance.kit.encryption import SecretKeyError, configured_keys, reencrypt

    if not plaintext and not configured_keys():
        _fail("ALLEGIANCE_SECRET_KEYS is not set: nothing to encrypt with", 2)
    _migrate()
    try:
        counts = reencrypt(_engine(), plaintext=plaintext)
    except SecretKeyError as exc:
        _fail(str(exc))
    how = "stored as plaintext" if plaintext else "encrypted with the first key"
    for table, count in counts.items():
        console.print(f"{table}: {count} row(s) {how}")


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


@app.command()
def simulate(
    program: Path = typer.Option(..., "--program", help="program document (YAML or JSON)"),
    orders: Path = typer.Option(..., "--orders", help="orders file (CSV or JSONL, import format)"),
    compare: Path | None = typer.Option(None, "--compare", help="a second program to compare"),
    redemption_rate: float = typer.Option(
        0.0,
        "--redemption-rate",
        min=0.0,
        max=1.0,
        help="share of each member's active points spent at each month end (0-1)",
    ),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Replay an order history through one or two programs in a throwaway database."""
    from allegiance.errors import DomainError
    from allegiance.kit.clock import zone
    from allegiance.simulation import report as sim_report
    from allegiance.simulation.service import Progress, check_document, load_history
    from allegiance.simulation.service import simulate as run_simulation

    files = [program] + ([compare] if compare is not None else [])
    documents: list[Any] = []
    for path in files:
        document = _load_document(path)
        try:
            check_document(document)
        except DomainError as exc:
            _print_errors(path, exc.errors or [{"loc": [], "msg": exc.detail}])
            raise typer.Exit(1) from exc
        documents.append(document)
    if not orders.exists():
        _fail(f"{orders}: no such file")
    timezone = str(documents[0].get("timezone") or "UTC")
    try:
        history = load_history(
            orders, zone(timezone), max_orders=get_settings().simulation_max_orders
        )
    except ValueError as exc:
        _fail(f"{orders}: {exc}")
    results = []
    with _progress() as bar:
        for path, document in zip(files, documents, strict=True):
            task = bar.add_task(f"simulate {path.name}", total=history.orders or None)

            def advance(done: int, months: int, task: Any = task) -> None:
                bar.update(task, completed=done)

            results.append(
                run_simulation(
                    document,
                    history,
                    redemption_rate=Decimal(str(redemption_rate)),
                    progress=Progress(advance),
                    label=str(path),
                )
            )
    body = sim_report.as_document(history, results, redemption_rate)
    if as_json:
        print(json.dumps(body, indent=2))
    else:
        # a table this wide is unreadable at 80 columns: wider when stdout is not a terminal
        sim_report.print_tables(console if console.is_terminal else Console(width=220), body)


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
