"""Import use cases: validate each record, book good ones in batches, write rejects out.

Re-running a file books nothing twice: order, refund and event ids already booked are skipped
(counted), and members are upserted. Rejected records go to ``FILE.rejected.jsonl`` with the
line number and the reasons; good records around them are booked.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from allegiance.db import bulk_connection, read_session, refresh_statistics, write_session
from allegiance.errors import DomainError, ValidationFailed
from allegiance.integration.csv.reader import Record, read_records
from allegiance.kit.collector import bulk_work
from allegiance.member.schemas import MemberUpsert
from allegiance.member.service import upsert_member
from allegiance.order import repository as orders_repo
from allegiance.order.schemas import EventCreate, OrderCreate, RefundCreate, plain_order
from allegiance.order.service import (
    PreparedOrder,
    book_orders,
    prepare_order,
    record_event,
    refund_order,
)
from allegiance.program.compiled import CompiledProgram
from allegiance.program.service import require_program


@dataclass
class ImportReport:
    read: int = 0
    booked: int = 0
    skipped: int = 0  # already booked earlier (a re-run)
    rejected: int = 0
    rejected_file: str | None = None
    points: dict[str, int] = field(default_factory=dict)


# tables a large import grows, whose planner statistics are refreshed as it goes
STATISTICS_TABLES = (
    "orders", "members", "ledger_accounts", "ledger_transfers", "ledger_lots", "member_months",
)  # fmt: skip

Progress = Callable[[int], None]  # bytes or records processed so far


def rejected_path(path: Path) -> Path:
    return path.with_name(path.name + ".rejected.jsonl")


class _Rejects:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.handle = path.open("w", encoding="utf-8")
        self.count = 0

    def write(self, record: Record, errors: list[dict[str, Any]]) -> None:
        self.count += 1
        self.handle.write(
            json.dumps({"line": record.line, "errors": errors, "record": record.raw}, default=str)
            + "\n"
        )

    def close(self) -> None:
        self.handle.close()
        if self.count == 0:
            self.path.unlink(missing_ok=True)


def _errors_of(exc: Exception) -> list[dict[str, Any]]:
    if isinstance(exc, ValidationError):
        return [
            {"loc": list(e["loc"]), "msg": str(e["msg"]).removeprefix("Value error, ")}
            for e in exc.errors(include_url=False)
        ]
    if isinstance(exc, DomainError):
        return exc.errors or [{"loc": [], "msg": exc.detail}]
    return [{"loc": [], "msg": str(exc)}]


def import_orders(
    engine: Engine,
    *,
    tenant_id: str,
    path: Path,
    now: datetime,
    batch_size: int = 500,
    progress: Progress | None = None,
    emit_events: bool = False,
) -> ImportReport:
    report = ImportReport()
    with read_session(engine) as session:
        program = require_program(session, tenant_id=tenant_id)
    rejects = _Rejects(rejected_path(path))
    flushed = 0
    batches = _prepared_batches(program, path, now, batch_size, report, progress)
    try:
        with bulk_work(), bulk_connection(engine) as conn:
            for batch, refused in batches:
                for record, errors in refused:  # the file's order, as if read one by one
                    rejects.write(record, errors)
                if not batch:
                    continue
                _flush(conn, tenant_id, program, batch, now, report, rejects, emit_events)
                flushed += 1
                if flushed in (1, 8, 64):  # the tables grow by orders of magnitude
                    refresh_statistics(engine, STATISTICS_TABLES)
            refresh_statistics(engine, STATISTICS_TABLES)
    finally:
        rejects.close()
    report.rejected = rejects.count
    report.rejected_file = str(rejects.path) if rejects.count else None
    return report


Refused = list[tuple[Record, list[dict[str, Any]]]]
Batch = tuple[list[tuple[Record, PreparedOrder]], Refused]


def _prepared_batches(
    program: CompiledProgram,
    path: Path,
    now: datetime,
    batch_size: int,
    report: ImportReport,
    progress: Progress | None,
) -> Iterator[Batch]:
    """The file's orders read and prepared, ``batch_size`` good ones at a time, each batch with
    the records refused while it filled (the last batch may be empty)."""
    batch: list[tuple[Record, PreparedOrder]] = []
    refused: Refused = []
    for record in _counted(read_records(path, "orders"), report, progress):
        prepared = _prepare(program, record, now, refused)
        if prepared is None:
            continue
        batch.append((record, prepared))
        if len(batch) >= batch_size:
            yield batch, refused
            batch, refused = [], []
    yield batch, refused


def _counted(
    records: Iterator[Record], report: ImportReport, progress: Progress | None
) -> Iterator[Record]:
    for record in records:
        report.read += 1
        if progress is not None and report.read % 1000 == 0:
            progress(report.read)
        yield record


def _prepare(
    program: CompiledProgram, record: Record, now: datetime, refused: Refused
) -> PreparedOrder | None:
    if record.data is None:
        refused.append((record, [{"loc": [], "msg": record.error or "unreadable"}]))
        return None
    try:
        # the plain common case without the model; anything else (and every error) through it
        payload = plain_order(record.data) or OrderCreate.model_validate(record.data)
        return prepare_order(
            program,
            payload,
            order_id=payload.id,
            now=now,
            loc_prefix="order",
            stored=record.data,
        )
    except (ValidationError, ValidationFailed) as exc:
        refused.append((record, _errors_of(exc)))
        return None


def _flush(
    engine: Engine | Connection,
    tenant_id: str,
    program: CompiledProgram,
    batch: list[tuple[Record, PreparedOrder]],
    now: datetime,
    report: ImportReport,
    rejects: _Rejects,
    emit_events: bool,
) -> None:
    # duplicates inside the batch: the first occurrence wins, later ones are rejected
    unique: dict[str, tuple[Record, PreparedOrder]] = {}
    for record, prepared in batch:
        if prepared.order_id in unique:
            rejects.write(record, [{"loc": ["id"], "msg": "order id appears twice in the file"}])
        else:
            unique[prepared.order_id] = (record, prepared)
    try:
        _book(engine, tenant_id, program, list(unique.values()), now, report, emit_events)
    except (IntegrityError, DomainError):
        # isolate the record that breaks the batch; book the others one by one
        for record, prepared in unique.values():
            try:
                _book(engine, tenant_id, program, [(record, prepared)], now, report, emit_events)
            except (IntegrityError, DomainError) as exc:
                rejects.write(record, _errors_of(exc))


def _book(
    engine: Engine | Connection,
    tenant_id: str,
    program: CompiledProgram,
    items: list[tuple[Record, PreparedOrder]],
    now: datetime,
    report: ImportReport,
    emit_events: bool,
) -> None:
    with write_session(engine) as session:
        existing = orders_repo.existing_order_ids(
            session, tenant_id, [p.order_id for _, p in items]
        )
        fresh = [p for _, p in items if p.order_id not in existing]
        bookings = (
            book_orders(
                session,
                tenant_id=tenant_id,
                program=program,
                orders=fresh,
                now=now,
                emit_events=emit_events,
            )
            if fresh
            else []
        )
    report.skipped += len(items) - len(fresh)
    report.booked += len(fresh)
    for booking in bookings:
        for wallet, amount in booking.evaluation.totals_minor.items():
            report.points[wallet] = report.points.get(wallet, 0) + amount


def import_members(
    engine: Engine,
    *,
    tenant_id: str,
    path: Path,
    now: datetime,
    batch_size: int = 500,
    progress: Progress | None = None,
) -> ImportReport:
    def parse(data: dict[str, Any]) -> tuple[str, MemberUpsert]:
        member_id = str(data.pop("member_id", "") or "").strip()
        if not member_id:
            raise ValidationFailed(
                "missing member id", errors=[{"loc": ["member_id"], "msg": "missing member id"}]
            )
        return member_id, MemberUpsert.model_validate(data)

    def flush(batch: list[tuple[Record, Any]], report: ImportReport, rejects: _Rejects) -> None:
        _upsert_members(engine, tenant_id, batch, now, report, rejects)

    return _read_in_batches(path, "members", parse, flush, batch_size=batch_size, progress=progress)


def _upsert_members(
    engine: Engine,
    tenant_id: str,
    batch: list[tuple[Record, Any]],
    now: datetime,
    report: ImportReport,
    rejects: _Rejects,
) -> None:
    try:
        with write_session(engine) as session:
            for _, (member_id, data) in batch:
                upsert_member(session, tenant_id=tenant_id, member_id=member_id, data=data, now=now)
        report.booked += len(batch)
    except (IntegrityError, DomainError):
        for record, (member_id, data) in batch:
            try:
                with write_session(engine) as session:
                    upsert_member(
                        session, tenant_id=tenant_id, member_id=member_id, data=data, now=now
                    )
                report.booked += 1
            except (IntegrityError, DomainError) as exc:
                rejects.write(record, _errors_of(exc))


# ---- refunds and events ----------------------------------------------------------------------


def import_refunds(
    engine: Engine,
    *,
    tenant_id: str,
    path: Path,
    now: datetime,
    batch_size: int = 500,
    progress: Progress | None = None,
) -> ImportReport:
    """Book refunds of booked orders (``order_id`` + the refund as the API takes it). A refund
    id already booked is skipped, so a re-run books nothing twice."""

    def parse(data: dict[str, Any]) -> tuple[str, RefundCreate]:
        order_id = str(data.pop("order_id", "") or "").strip()
        if not order_id:
            raise ValidationFailed(
                "missing order id", errors=[{"loc": ["order_id"], "msg": "missing order id"}]
            )
        refund = RefundCreate.model_validate(data)
        if not refund.id:
            raise ValidationFailed("missing refund id", errors=[{"loc": ["id"], "msg": "missing"}])
        return order_id, refund

    def book(session: Session, program: CompiledProgram, item: tuple[str, RefundCreate]) -> bool:
        order_id, refund = item
        if orders_repo.refund_exists(session, tenant_id, refund.id):
            return False
        refund_order(
            session, tenant_id=tenant_id, program=program, order_id=order_id, refund=refund,
            now=now,
        )  # fmt: skip
        return True

    return _import_one_by_one(
        engine, tenant_id, path, "refunds", parse, book, batch_size=batch_size, progress=progress
    )


def import_events(
    engine: Engine,
    *,
    tenant_id: str,
    path: Path,
    now: datetime,
    batch_size: int = 500,
    progress: Progress | None = None,
) -> ImportReport:
    """Book behaviour events (what they earn included). An event id already booked is
    skipped. Imports emit no domain events of their own beyond what booking writes."""

    def parse(data: dict[str, Any]) -> EventCreate:
        event = EventCreate.model_validate(data)
        if not event.id:
            raise ValidationFailed("missing event id", errors=[{"loc": ["id"], "msg": "missing"}])
        return event

    def book(session: Session, program: CompiledProgram, event: EventCreate) -> bool:
        if orders_repo.event_exists(session, tenant_id, event.id):
            return False
        record_event(session, tenant_id=tenant_id, program=program, event=event, now=now)
        return True

    return _import_one_by_one(
        engine, tenant_id, path, "events", parse, book, batch_size=batch_size, progress=progress
    )


def _import_one_by_one(
    engine: Engine,
    tenant_id: str,
    path: Path,
    kind: str,
    parse: Callable[[dict[str, Any]], Any],
    book: Callable[[Session, CompiledProgram, Any], bool],
    *,
    batch_size: int,
    progress: Progress | None,
) -> ImportReport:
    """Records booked in order, a batch per transaction, each record in its own savepoint: a
    record the service refuses (an unknown order, a refund above what is left) is written to
    the rejects file and the records around it are booked."""
    with read_session(engine) as session:
        require_program(session, tenant_id=tenant_id)

    def flush(batch: list[tuple[Record, Any]], report: ImportReport, rejects: _Rejects) -> None:
        _book_each(engine, tenant_id, batch, book, report, rejects)

    return _read_in_batches(path, kind, parse, flush, batch_size=batch_size, progress=progress)


def _read_in_batches(
    path: Path,
    kind: str,
    parse: Callable[[dict[str, Any]], Any],
    flush: Callable[[list[tuple[Record, Any]], ImportReport, _Rejects], None],
    *,
    batch_size: int,
    progress: Progress | None,
) -> ImportReport:
    """Read records, reject the ones that don't parse (with reasons), hand the others on in
    batches of ``batch_size``; the rejects file keeps only what was refused."""
    report = ImportReport()
    rejects = _Rejects(rejected_path(path))
    try:
        batch: list[tuple[Record, Any]] = []
        for record in _counted(read_records(path, kind), report, progress):
            if record.data is None:
                rejects.write(record, [{"loc": [], "msg": record.error or "unreadable"}])
                continue
            try:
                batch.append((record, parse(dict(record.data))))
            except (ValidationError, DomainError) as exc:
                rejects.write(record, _errors_of(exc))
                continue
            if len(batch) >= batch_size:
                flush(batch, report, rejects)
                batch = []
        if batch:
            flush(batch, report, rejects)
    finally:
        rejects.close()
    report.rejected = rejects.count
    report.rejected_file = str(rejects.path) if rejects.count else None
    return report


def _book_each(
    engine: Engine,
    tenant_id: str,
    batch: list[tuple[Record, Any]],
    book: Callable[[Session, CompiledProgram, Any], bool],
    report: ImportReport,
    rejects: _Rejects,
) -> None:
    with write_session(engine) as session:
        program = require_program(session, tenant_id=tenant_id)
        for record, item in batch:
            savepoint = session.begin_nested()
            try:
                booked = book(session, program, item)
                savepoint.commit()
            except (DomainError, IntegrityError) as exc:
                savepoint.rollback()
                rejects.write(record, _errors_of(exc))
                continue
            if booked:
                report.booked += 1
            else:
                report.skipped += 1
