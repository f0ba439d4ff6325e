"""Replay an order history through a program in a database of its own (docs/simulator.md).

The simulation never opens the configured database: it builds a throwaway SQLite database in
a temporary directory, creates one tenant, applies the program and books the orders month by
month through the same import path as ``allegiance import orders``, running the periodic jobs
(activation, expiry, tier reviews...) at the end of each simulated month. The month's figures
are read back from that ledger.
"""

from __future__ import annotations

import atexit
import json
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from allegiance.config import get_settings
from allegiance.errors import DomainError, ValidationFailed
from allegiance.kit.clock import as_utc, end_of_month, parse_timestamp, zone
from allegiance.kit.money import currency_exponent
from allegiance.program.schema import Program
from allegiance.program.validate import validate_program

# the moment a simulated month is settled: its last microsecond, so what happens at the first
# instant of the next month (end_of_month expiry) belongs to the next month
_TICK = timedelta(microseconds=1)


@dataclass
class History:
    """The orders of a file, by month of ``placed_at`` in the program timezone."""

    months: list[tuple[datetime, datetime, list[dict[str, Any]]]]  # [start, end), orders
    read: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)  # {line, errors}

    @property
    def orders(self) -> int:
        return sum(len(m[2]) for m in self.months)


def load_history(path: Path, tz: ZoneInfo, *, max_orders: int) -> History:
    """Read an orders file (CSV or JSONL, the import format) and group it by month.

    Orders need ``placed_at`` (a replay has no "now" to default to). Raises ValueError for a
    file the importer would refuse (bad header)."""
    from allegiance.integration.csv.reader import read_records

    dated: list[tuple[datetime, int, dict[str, Any]]] = []
    history = History(months=[])
    for record in read_records(path, "orders"):
        history.read += 1
        if history.read > max_orders:
            raise ValueError(
                f"{path.name} has more than {max_orders:,} orders "
                "(ALLEGIANCE_SIMULATION_MAX_ORDERS)"
            )
        if record.data is None:
            history.rejected.append({"line": record.line, "errors": [record.error]})
            continue
        raw = record.data.get("placed_at")
        try:
            placed_at = parse_timestamp(str(raw)) if raw not in (None, "") else None
        except ValueError as exc:
            history.rejected.append({"line": record.line, "errors": [str(exc)]})
            continue
        if placed_at is None:
            history.rejected.append(
                {"line": record.line, "errors": ["placed_at is needed to replay an order"]}
            )
            continue
        dated.append((placed_at, record.line, record.data))
    dated.sort(key=lambda d: (d[0], d[1]))
    by_month: dict[datetime, list[dict[str, Any]]] = {}
    for placed_at, _, data in dated:
        by_month.setdefault(_month_start(placed_at, tz), []).append(data)
    if by_month:
        start = min(by_month)
        last = max(by_month)
        while start <= last:
            end = end_of_month(start, tz)
            history.months.append((start, end, by_month.get(start, [])))
            start = end
    return history


def _month_start(at: datetime, tz: ZoneInfo) -> datetime:
    local = at.astimezone(tz)
    return as_utc(datetime(local.year, local.month, 1, tzinfo=tz))


@dataclass
class Progress:
    """Called after each month with (orders replayed so far, months done)."""

    callback: Callable[[int, int], None] | None = None

    def __call__(self, orders: int, months: int) -> None:
        if self.callback is not None:
            self.callback(orders, months)


def check_document(document: Any) -> Program:
    program, errors = validate_program(document)
    if program is None:
        raise ValidationFailed("the program document is invalid", errors=errors)
    return program


def simulate(
    document: dict[str, Any],
    history: History,
    *,
    redemption_rate: Decimal = Decimal(0),
    progress: Progress | None = None,
    label: str = "",
) -> dict[str, Any]:
    """Run ``history`` through the program ``document`` in a throwaway database; returns
    ``{program, name, months: [...], totals}`` (docs/simulator.md lists the fields)."""
    program = check_document(document)
    with tempfile.TemporaryDirectory(prefix="allegiance-simulation-") as workdir:
        return _run(document, program, history, Path(workdir), redemption_rate, progress, label)


def _run(
    document: dict[str, Any],
    program: Program,
    history: History,
    workdir: Path,
    redemption_rate: Decimal,
    progress: Progress | None,
    label: str,
) -> dict[str, Any]:
    from allegiance.db import dispose_engine, get_engine, write_session
    from allegiance.integration.csv.service import import_orders
    from allegiance.program.service import apply_program
    from allegiance.tenant.service import create_tenant
    from allegiance.worker.runner import run_all

    target = workdir / "simulation.db"
    shutil.copyfile(_migrated_template(), target)
    url = f"sqlite:///{target}"
    settings = get_settings()
    engine = get_engine(url)
    try:
        first = history.months[0][0] if history.months else datetime.now(tz=zone("UTC"))
        with write_session(engine) as session:
            tenant_id, _ = create_tenant(session, name="simulation", now=first)
            apply_program(session, tenant_id=tenant_id, document=document, now=first)
        months: list[dict[str, Any]] = []
        replayed = 0
        rejected = 0
        redemption_failures = 0
        for number, (start, end, orders) in enumerate(history.months):
            as_of = end - _TICK
            if orders:
                path = workdir / f"orders-{start:%Y-%m}.jsonl"
                path.write_text(
                    "".join(json.dumps(o, default=str) + "\n" for o in orders), encoding="utf-8"
                )
                report = import_orders(
                    engine,
                    tenant_id=tenant_id,
                    path=path,
                    now=as_of,
                    batch_size=settings.import_batch_size,
                )
                rejected += report.rejected
                path.unlink()
            run_all(engine, as_of, tenant_id)
            if redemption_rate > 0:
                redemption_failures += _redeem(
                    engine, tenant_id, program, redemption_rate, as_of, start
                )
            months.append(_month_view(engine, tenant_id, program, start, end))
            replayed += len(orders)
            if progress is not None:
                progress(replayed, number + 1)
        return {
            "program": label,
            "name": program.name,
            "currency": program.currency,
            "wallet": program.default_wallet,
            "point_value": float(_point_value(program, program.default_wallet)),
            "months": months,
            "totals": _totals(months, program),
            "orders_rejected": rejected,
            "redemptions_refused": redemption_failures,
        }
    finally:
        dispose_engine(url)


@lru_cache(maxsize=1)
def _migrated_template() -> Path:
    """An empty database at the newest schema, built once per process (migrating takes
    seconds; copying a file does not). Removed when the process exits."""
    from allegiance.db import dispose_engine
    from allegiance.migrate import upgrade

    folder = Path(tempfile.mkdtemp(prefix="allegiance-simulation-schema-"))
    atexit.register(shutil.rmtree, folder, True)
    path = folder / "schema.db"
    url = f"sqlite:///{path}"
    upgrade(url)
    dispose_engine(url)
    return path


def _point_value(program: Program, wallet: str) -> Decimal:
    value = program.wallets[wallet].point_value
    return value if value is not None else Decimal(0)


def _redeem(
    engine: Any,
    tenant_id: str,
    program: Program,
    rate: Decimal,
    as_of: datetime,
    month: datetime,
) -> int:
    """Each member spends ``rate`` of its active balance on whole units of the cheapest
    reward it may redeem; returns how many redemptions the engine refused."""
    from allegiance.db import read_session, write_session
    from allegiance.program.service import require_program
    from allegiance.redemption.schemas import RedemptionCreate
    from allegiance.redemption.service import redeem
    from allegiance.simulation import repository

    reward = _cheapest_reward(program, as_of)
    if reward is None:
        return 0
    wallet = program.wallets[reward.wallet or program.default_wallet]
    cost_minor = int(reward.unit_cost.scaleb(wallet.precision))
    settings = get_settings()
    refused = 0
    with read_session(engine) as session:
        holders = repository.redeemers(
            session, tenant_id, reward.wallet or program.default_wallet, cost_minor,
            limit=settings.simulation_max_orders,
        )  # fmt: skip
    for member_id, active in holders:
        quantity = min(int(Decimal(active) * rate) // cost_minor, 1000)
        if quantity < 1:
            continue
        try:
            with write_session(engine) as session:
                compiled = require_program(session, tenant_id=tenant_id)
                redeem(
                    session,
                    tenant_id=tenant_id,
                    program=compiled,
                    member_id=member_id,
                    body=RedemptionCreate(
                        id=f"simulation/{month:%Y-%m}/{member_id}",
                        reward=reward.key,
                        quantity=quantity,
                    ),
                    now=as_of,
                )
        except DomainError:
            refused += 1
    return refused


def _cheapest_reward(program: Program, at: datetime) -> Any:
    candidates = [
        r
        for r in program.rewards
        if r.enabled
        and r.type != "cashback"
        and r.cost is not None
        and (r.starts_at is None or as_utc(r.starts_at) <= at)
        and (r.ends_at is None or at < as_utc(r.ends_at))
    ]
    return min(candidates, key=lambda r: r.unit_cost, default=None)


def _month_view(
    engine: Any, tenant_id: str, program: Program, start: datetime, end: datetime
) -> dict[str, Any]:
    from allegiance.db import read_session
    from allegiance.simulation import repository

    with read_session(engine) as session:
        sums = repository.code_sums(session, tenant_id, start, end)
        held = repository.outstanding(session, tenant_id)
        orders, revenue_minor = repository.order_totals(session, tenant_id, start, end)
        tiers = repository.tier_counts(session, tenant_id) if program.tiers else {}
    exponent = currency_exponent(program.currency)
    revenue = Decimal(revenue_minor).scaleb(-exponent)
    wallets: dict[str, dict[str, Any]] = {}
    cost = Decimal(0)
    liability = Decimal(0)
    for key, wallet in program.wallets.items():
        scale = -wallet.precision
        issued = sums.get((key, "earn"), 0) - sums.get((key, "reverse"), 0)
        redeemed = sums.get((key, "spend"), 0) - sums.get((key, "return"), 0)
        active, pending = held.get(key, (0, 0))
        value = _point_value(program, key)
        wallet_cost = Decimal(issued).scaleb(scale) * value
        wallet_liability = Decimal(active + pending).scaleb(scale) * value
        cost += wallet_cost
        liability += wallet_liability
        wallets[key] = {
            "issued": float(Decimal(issued).scaleb(scale)),
            "redeemed": float(Decimal(redeemed).scaleb(scale)),
            "expired": float(Decimal(sums.get((key, "expire"), 0)).scaleb(scale)),
            "active": float(Decimal(active).scaleb(scale)),
            "pending": float(Decimal(pending).scaleb(scale)),
            "outstanding": float(Decimal(active + pending).scaleb(scale)),
            "liability": round(float(wallet_liability), exponent),
            "cost": round(float(wallet_cost), exponent),
        }
    main = wallets[program.default_wallet]
    return {
        "month": f"{start.astimezone(zone(program.timezone)):%Y-%m}",
        "as_of": (end - _TICK).isoformat(),
        "orders": orders,
        "revenue": round(float(revenue), exponent),
        "points_issued": main["issued"],
        "points_redeemed": main["redeemed"],
        "points_expired": main["expired"],
        "points_outstanding": main["outstanding"],
        "liability": round(float(liability), exponent),
        "cost": round(float(cost), exponent),
        "cost_share": float(cost / revenue) if revenue else None,
        "tiers": dict(sorted(tiers.items())),
        "wallets": wallets,
    }


def _totals(months: list[dict[str, Any]], program: Program) -> dict[str, Any]:
    exponent = currency_exponent(program.currency)
    revenue = sum(m["revenue"] for m in months)
    cost = sum(m["cost"] for m in months)
    last = months[-1] if months else {}
    return {
        "orders": sum(m["orders"] for m in months),
        "revenue": round(revenue, exponent),
        "points_issued": sum(m["points_issued"] for m in months),
        "points_redeemed": sum(m["points_redeemed"] for m in months),
        "points_expired": sum(m["points_expired"] for m in months),
        "points_outstanding": last.get("points_outstanding", 0.0),
        "liability": last.get("liability", 0.0),
        "cost": round(cost, exponent),
        "cost_share": cost / revenue if revenue else None,
        "tiers": last.get("tiers", {}),
    }


def iter_months(history: History) -> Iterator[str]:
    for start, _, _ in history.months:
        yield f"{start:%Y-%m}"
