"""Books what the webhooks missed: orders pulled from a platform's REST API (reconciliation)
or read from exported files (Magento import). Each record is applied like a webhook snapshot in
a transaction of its own, so a re-run books nothing twice and one bad record stops nothing."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from allegiance.db import read_session, write_session
from allegiance.errors import Conflict, invalid
from allegiance.integration import service
from allegiance.integration.models import Integration
from allegiance.integration.service import Context, Result

MAX_ATTEMPTS = 5
MAX_FAILURES_LISTED = 100

Progress = Callable[[int], None]


@dataclass
class Report:
    fetched: int = 0
    booked: int = 0  # records that booked something new (an order, a refund, a cancellation)
    skipped: int = 0  # nothing new: booked before, not bookable yet, ignored
    failed: int = 0
    failures: list[dict[str, str]] = field(default_factory=list)  # {id, reason}, the first 100

    def view(self) -> dict[str, Any]:
        return {
            "fetched": self.fetched,
            "booked": self.booked,
            "skipped": self.skipped,
            "failed": self.failed,
            "failures": self.failures,
        }


Apply = Callable[[Session, Context, dict[str, Any]], Result]


def _applier(platform: str) -> Apply:
    if platform == "shopify":
        from allegiance.integration.shopify.service import apply_order as shopify

        # reconciliation sees the order as it is now: paid ones book, cancelled ones cancel
        return lambda session, ctx, record: shopify(session, ctx, record, paid=False, cancels=True)
    if platform == "woocommerce":
        from allegiance.integration.woocommerce.service import apply_order as woocommerce

        return woocommerce
    from allegiance.integration.magento.service import apply_order as magento

    return magento


def apply_records(
    engine: Engine,
    *,
    integration: Integration,
    records: Iterable[Any],
    now: datetime,
    progress: Progress | None = None,
) -> Report:
    """Apply each record in its own transaction and count what happened."""
    report = Report()
    apply = _applier(integration.platform)
    for record in records:
        report.fetched += 1
        record_id = _record_id(record)
        try:
            result = _apply_one(engine, integration, apply, record, now)
        except Conflict as exc:
            result = service.failure(exc)
        if result.outcome == "failed":
            report.failed += 1
            if len(report.failures) < MAX_FAILURES_LISTED:
                report.failures.append({"id": record_id, "reason": _reason(result)})
        elif result.booked:
            report.booked += 1
        else:
            report.skipped += 1
        if progress is not None:
            progress(report.fetched)
    return report


@dataclass(frozen=True)
class Unreadable:
    """A line of an import file that is not JSON."""

    line: int


def _record_id(record: Any) -> str:
    if isinstance(record, Unreadable):
        return f"line {record.line}"
    if isinstance(record, dict):
        return str(record.get("id", record.get("entity_id", "?")))
    return "?"


def _apply_one(
    engine: Engine, integration: Integration, apply: Apply, record: Any, now: datetime
) -> Result:
    for _ in range(MAX_ATTEMPTS):
        try:
            with write_session(engine) as session:
                ctx = service.context_of(integration, now)
                if not isinstance(record, dict):
                    return service.failure(invalid(["record"], "not a JSON order object"))
                return apply(session, ctx, record)
        except IntegrityError:  # a webhook booked the same id meanwhile: look again
            continue
    raise Conflict("the record is being booked by another request", code="concurrent_request")


def _reason(result: Result) -> str:
    detail = result.detail
    for step in detail.get("steps", []):
        if step.get("outcome") == "failed":
            detail = step
            break
    errors = detail.get("errors") or []
    located = "; ".join(
        f"{'.'.join(str(p) for p in e.get('loc', []))}: {e.get('msg')}" for e in errors[:3]
    )
    return f"{detail.get('reason', 'failed')}" + (f" ({located})" if located else "")


def load_integration(engine: Engine, *, tenant_id: str, platform: str) -> Integration:
    with read_session(engine) as session:
        return service.get_integration(session, tenant_id=tenant_id, platform=platform)


def reconcile(
    engine: Engine,
    *,
    tenant_id: str,
    platform: str,
    since: datetime,
    now: datetime,
    progress: Progress | None = None,
    fetch: Callable[[Integration, datetime], Iterator[dict[str, Any]]] | None = None,
) -> Report:
    """Pull the platform's orders since ``since`` and book what is missing."""
    integration = load_integration(engine, tenant_id=tenant_id, platform=platform)
    if fetch is None:
        if platform == "shopify":
            from allegiance.integration.shopify.client import orders_since
        elif platform == "woocommerce":
            from allegiance.integration.woocommerce.client import orders_since
        else:
            raise invalid(["platform"], "reconciliation pulls from shopify or woocommerce")
        fetch = orders_since
    return apply_records(
        engine,
        integration=integration,
        records=fetch(integration, since),
        now=now,
        progress=progress,
    )


def magento_records(path: Path) -> Iterator[Any]:
    """Orders in a file: JSON (one order, a list, or a REST search result ``{"items": [...]}``)
    or JSON Lines (one order per line). Numbers stay exact."""
    from allegiance.integration.magento.service import orders_in

    text = path.read_text(encoding="utf-8")
    try:
        yield from orders_in(json.loads(text, parse_float=Decimal))
        return
    except ValueError:
        pass
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield json.loads(line, parse_float=Decimal)
        except ValueError:
            yield Unreadable(number)


def import_magento(
    engine: Engine, *, tenant_id: str, path: Path, now: datetime, progress: Progress | None = None
) -> Report:
    integration = load_integration(engine, tenant_id=tenant_id, platform="magento")
    return apply_records(
        engine, integration=integration, records=magento_records(path), now=now, progress=progress
    )
