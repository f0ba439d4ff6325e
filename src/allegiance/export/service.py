"""Exports of members, the ledger and orders as CSV or JSON Lines, for ERP, CRM and BI tools.

Rows are read in keyset pages of a bounded size inside one read transaction (a consistent
snapshot: the ledger export sums to the balances the members export shows) and written out
one by one, so memory stays flat whatever the tenant's size. Money and points are exact
decimal strings in the currency's or wallet's precision, never floats.

The column lists live here, in one place each (``MEMBER_COLUMNS``, ``LEDGER_COLUMNS``,
``ORDER_COLUMNS``): adding a column is one entry.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, TextIO

from sqlalchemy.orm import Session

from allegiance.errors import NotFound, invalid
from allegiance.export import repository
from allegiance.kit.money import currency_exponent, money_str
from allegiance.program.compiled import CompiledProgram
from allegiance.program.service import load_program
from allegiance.tenant.repository import tenant_exists

KINDS = ("members", "ledger", "orders")
FORMATS = ("csv", "jsonl")

Row = dict[str, Any]
Getter = Callable[[Any, "_Context"], Any]


@dataclass
class _Context:
    """What a page of rows needs besides the rows: the program and per-member look-ups."""

    program: CompiledProgram | None
    currency_exponent: int
    balances: dict[str, dict[str, tuple[int, int]]] = field(default_factory=dict)
    tiers: dict[str, str] = field(default_factory=dict)

    def precision(self, wallet: str) -> int:
        if self.program is not None and wallet in self.program.program.wallets:
            return self.program.program.wallets[wallet].precision
        return 0


def _iso(value: datetime | date | None) -> str | None:
    return value.isoformat() if value is not None else None


def _money(ctx: _Context, minor: int | None) -> str | None:
    return None if minor is None else money_str(int(minor), ctx.currency_exponent)


# ---- members ---------------------------------------------------------------------------------

# (column, value of a member row). Personal columns are emptied for erased members.
MEMBER_COLUMNS: list[tuple[str, Getter]] = [
    ("member_id", lambda m, c: m.member_id),
    ("email", lambda m, c: m.email),
    ("name", lambda m, c: m.name),
    ("phone", lambda m, c: m.phone),
    ("birthdate", lambda m, c: _iso(m.birthdate)),
    ("locale", lambda m, c: m.locale),
    ("tags", lambda m, c: list(m.tags or [])),
    ("attributes", lambda m, c: dict(m.attributes or {})),
    ("account_id", lambda m, c: m.account_id),
    ("account_role", lambda m, c: m.account_role),
    ("referral_code", lambda m, c: m.referral_code),
    ("enrolled_at", lambda m, c: _iso(m.enrolled_at)),
    ("created_at", lambda m, c: _iso(m.created_at)),
    ("updated_at", lambda m, c: _iso(m.updated_at)),
    ("erased_at", lambda m, c: _iso(m.erased_at)),
    ("orders_count", lambda m, c: int(m.orders_count or 0)),
    ("spend", lambda m, c: _money(c, m.spend_minor or 0)),
    ("first_order_at", lambda m, c: _iso(m.first_order_at)),
    ("last_order_at", lambda m, c: _iso(m.last_order_at)),
    ("last_activity_at", lambda m, c: _iso(m.last_activity_at)),
    ("tier", lambda m, c: c.tiers.get(m.member_id)),
]
PERSONAL_COLUMNS = frozenset(
    {"email", "name", "phone", "birthdate", "locale", "tags", "attributes", "referral_code"}
)


def _wallets(program: CompiledProgram | None) -> list[str]:
    return sorted(program.program.wallets) if program is not None else []


def member_columns(program: CompiledProgram | None) -> list[str]:
    """The profile columns, then ``balance.<wallet>`` (usable) and ``pending.<wallet>`` per
    wallet of the program, wallets in alphabetical order."""
    names = [name for name, _ in MEMBER_COLUMNS]
    for wallet in _wallets(program):
        names += [f"balance.{wallet}", f"pending.{wallet}"]
    return names


def _member_row(m: Any, ctx: _Context, wallets: list[str]) -> Row:
    erased = m.erased_at is not None
    row: Row = {}
    for name, get in MEMBER_COLUMNS:
        row[name] = None if erased and name in PERSONAL_COLUMNS else get(m, ctx)
    held = ctx.balances.get(m.member_id, {})
    for wallet in wallets:
        posted, pending = held.get(wallet, (0, 0))
        precision = ctx.precision(wallet)
        row[f"balance.{wallet}"] = money_str(posted, precision)
        row[f"pending.{wallet}"] = money_str(pending, precision)
    return row


def _members(
    session: Session, tenant_id: str, ctx: _Context, window: _Window, batch_size: int
) -> Iterator[Row]:
    wallets = _wallets(ctx.program)
    after: str | None = None
    while True:
        page = repository.member_page(
            session, tenant_id, after=after, limit=batch_size, since=window[0], until=window[1]
        )
        if not page:
            return
        ids = [m.member_id for m in page]
        ctx.balances = repository.member_balances(session, tenant_id, ids)
        ctx.tiers = repository.member_tiers(session, tenant_id, ids)
        for m in page:
            yield _member_row(m, ctx, wallets)
        after = ids[-1]


# ---- ledger ----------------------------------------------------------------------------------

LEDGER_COLUMNS: list[tuple[str, Getter]] = [
    ("id", lambda t, c: int(t.id)),
    ("effective_at", lambda t, c: _iso(t.effective_at)),
    ("member_id", lambda t, c: t.member_id),
    ("wallet", lambda t, c: t.wallet),
    ("code", lambda t, c: t.code),
    ("phase", lambda t, c: t.phase),
    ("amount", lambda t, c: money_str(_direction(t) * int(t.amount_minor), c.precision(t.wallet))),
    ("debit_account", lambda t, c: f"{t.debit_owner_type}:{t.debit_owner_id}"),
    ("credit_account", lambda t, c: f"{t.credit_owner_type}:{t.credit_owner_id}"),
    ("source_type", lambda t, c: t.source_type),
    ("source_id", lambda t, c: t.source_id),
    ("rule", lambda t, c: t.rule),
    ("reason", lambda t, c: t.reason),
    ("order_id", lambda t, c: t.order_id),
    ("partner", lambda t, c: t.partner),
    ("pending_id", lambda t, c: None if t.pending_id is None else int(t.pending_id)),
]


def _direction(t: Any) -> int:
    """+1 into the holder's wallet, -1 out of it, 0 between system accounts; a void cancels
    part of a pending credit, so it counts the other way (as on the member's ledger page)."""
    debit_system = t.debit_owner_type == "system"
    credit_system = t.credit_owner_type == "system"
    if debit_system and credit_system:
        return 0
    direction = -1 if credit_system else 1
    return -direction if t.phase == "void" else direction


def _ledger(
    session: Session, tenant_id: str, ctx: _Context, window: _Window, batch_size: int
) -> Iterator[Row]:
    after: int | None = None
    while True:
        page = repository.transfer_page(
            session, tenant_id, after=after, limit=batch_size, since=window[0], until=window[1]
        )
        if not page:
            return
        for t in page:
            yield {name: get(t, ctx) for name, get in LEDGER_COLUMNS}
        after = int(page[-1].id)


# ---- orders ----------------------------------------------------------------------------------

ORDER_COLUMNS: list[tuple[str, Getter]] = [
    ("order_id", lambda o, c: o.order_id),
    ("member_id", lambda o, c: o.member_id),
    ("account_id", lambda o, c: o.account_id),
    ("placed_at", lambda o, c: _iso(o.placed_at)),
    ("currency", lambda o, c: o.currency),
    ("subtotal", lambda o, c: money_str(int(o.subtotal_minor), currency_exponent(o.currency))),
    ("total", lambda o, c: money_str(int(o.total_minor), currency_exponent(o.currency))),
    ("refunded", lambda o, c: money_str(int(o.refunded_minor), currency_exponent(o.currency))),
    ("status", lambda o, c: o.status),
    ("channel", lambda o, c: (o.payload or {}).get("channel")),
    ("brand", lambda o, c: (o.payload or {}).get("brand")),
    ("partner", lambda o, c: o.partner),
    ("coupon_codes", lambda o, c: _list((o.payload or {}).get("coupon_codes"))),
    ("attributes", lambda o, c: dict((o.payload or {}).get("attributes") or {})),
    ("program_version", lambda o, c: o.program_version),
    ("created_at", lambda o, c: _iso(o.created_at)),
    ("items", lambda o, c: [_item(i) for i in (o.payload or {}).get("items") or []]),
]
ITEM_FIELDS = ("sku", "name", "category", "labels", "quantity", "unit_price", "amount")
_ITEM_NUMBERS = ("quantity", "unit_price", "amount")


def _list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):  # as an import read it from a CSV cell
        return [part.strip() for part in value.split(";") if part.strip()]
    return [str(v) for v in value]


def _exact(value: Any) -> str | None:
    """A number as sent (JSON number or CSV text) as an exact decimal string."""
    if value is None or value == "":
        return None
    try:
        return str(Decimal(str(value)))
    except InvalidOperation:
        return str(value)


def _item(item: dict[str, Any]) -> Row:
    """An order line as stored, normalised: numbers as exact decimal strings, labels a list,
    attributes (if any) an object."""
    row: Row = {}
    for name in ITEM_FIELDS:
        value = item.get(name)
        if name in _ITEM_NUMBERS:
            row[name] = _exact(value)
        elif name == "labels":
            row[name] = _list(value)
        else:
            row[name] = value
    row["attributes"] = dict(item.get("attributes") or {})
    return row


def _order_row(o: Any, ctx: _Context) -> Row:
    row = {name: get(o, ctx) for name, get in ORDER_COLUMNS}
    if o.member_erased_at is not None:  # attributes may carry personal data
        row["attributes"] = {}
        for item in row["items"]:
            item["attributes"] = {}
    return row


def _orders(
    session: Session, tenant_id: str, ctx: _Context, window: _Window, batch_size: int
) -> Iterator[Row]:
    after: str | None = None
    while True:
        page = repository.order_page(
            session, tenant_id, after=after, limit=batch_size, since=window[0], until=window[1]
        )
        if not page:
            return
        for o in page:
            yield _order_row(o, ctx)
        after = page[-1].order_id


# ---- running an export -----------------------------------------------------------------------

_Window = tuple[datetime | None, datetime | None]


@dataclass
class Export:
    """An export ready to stream: its columns and its rows (read lazily, page by page)."""

    kind: str
    columns: list[str]
    rows: Iterator[Row]


def open_export(
    session: Session,
    *,
    tenant_id: str,
    kind: str,
    since: datetime | None = None,
    until: datetime | None = None,
    batch_size: int = 1_000,
) -> Export:
    """Check the request and return the export's columns and a lazy row iterator. The session
    must stay open while the rows are consumed."""
    if kind not in KINDS:
        raise invalid(["kind"], f"unknown export {kind!r}; one of {', '.join(KINDS)}")
    if since is not None and until is not None and since >= until:
        raise invalid(["since"], "--since must be before --until")
    if not tenant_exists(session, tenant_id):
        raise NotFound(f"tenant {tenant_id} does not exist", code="tenant_not_found")
    program = load_program(session, tenant_id=tenant_id)
    exponent = currency_exponent(program.currency) if program is not None else 2
    ctx = _Context(program=program, currency_exponent=exponent)
    window: _Window = (since, until)
    if kind == "members":
        return Export(
            kind, member_columns(program), _members(session, tenant_id, ctx, window, batch_size)
        )
    if kind == "ledger":
        return Export(
            kind,
            [name for name, _ in LEDGER_COLUMNS],
            _ledger(session, tenant_id, ctx, window, batch_size),
        )
    return Export(
        kind,
        [name for name, _ in ORDER_COLUMNS],
        _orders(session, tenant_id, ctx, window, batch_size),
    )


def _cell(value: Any) -> str:
    """A CSV cell: empty for none, lists joined with ';' (as imports read them), objects and
    lists of objects as JSON."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return ";".join(value)
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, sort_keys=True)
    return str(value)


def write_export(export: Export, out: TextIO, fmt: str, progress: Callable[[int], None]) -> int:
    """Write every row of ``export`` to ``out``; returns the number of rows written."""
    if fmt not in FORMATS:
        raise invalid(["format"], f"unknown format {fmt!r}; one of {', '.join(FORMATS)}")
    count = 0
    if fmt == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(export.columns)
        for row in export.rows:
            writer.writerow([_cell(row[name]) for name in export.columns])
            count += 1
            if count % 1000 == 0:
                progress(count)
    else:
        for row in export.rows:
            out.write(json.dumps(row, separators=(",", ":"), ensure_ascii=False) + "\n")
            count += 1
            if count % 1000 == 0:
                progress(count)
    progress(count)
    return count
