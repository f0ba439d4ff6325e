"""SQL for webhook endpoints, deliveries and attempts."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, and_, bindparam, delete, func, or_, select, update
from sqlalchemy.orm import Session

from allegiance.db import bulk_insert, is_postgres
from allegiance.kit.orm import UTCDateTime
from allegiance.webhook.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint

# endpoints


def count_endpoints(session: Session, tenant_id: str) -> int:
    stmt = select(func.count()).where(WebhookEndpoint.tenant_id == tenant_id)
    return int(session.scalar(stmt) or 0)


def list_endpoints(session: Session, tenant_id: str, limit: int) -> list[WebhookEndpoint]:
    stmt = (
        select(WebhookEndpoint)
        .where(WebhookEndpoint.tenant_id == tenant_id)
        .order_by(WebhookEndpoint.created_at, WebhookEndpoint.id)
        .limit(limit)
    )
    return list(session.scalars(stmt))


def enabled_endpoints(session: Session, tenant_id: str, limit: int) -> list[WebhookEndpoint]:
    stmt = (
        select(WebhookEndpoint)
        .where(WebhookEndpoint.tenant_id == tenant_id, WebhookEndpoint.enabled.is_(True))
        .order_by(WebhookEndpoint.id)
        .limit(limit)
    )
    return list(session.scalars(stmt))


def get_endpoint(
    session: Session, tenant_id: str, endpoint_id: str, *, lock: bool = False
) -> WebhookEndpoint | None:
    stmt = select(WebhookEndpoint).where(
        WebhookEndpoint.tenant_id == tenant_id, WebhookEndpoint.id == endpoint_id
    )
    if lock and is_postgres(session):
        stmt = stmt.with_for_update()
    return session.scalars(stmt).first()


def endpoints_by_id(session: Session, ids: list[str]) -> dict[str, WebhookEndpoint]:
    if not ids:
        return {}
    stmt = select(WebhookEndpoint).where(WebhookEndpoint.id.in_(ids))
    return {e.id: e for e in session.scalars(stmt)}


def add_endpoint(session: Session, endpoint: WebhookEndpoint) -> None:
    session.add(endpoint)
    session.flush()


def delete_endpoint(session: Session, endpoint: WebhookEndpoint) -> None:
    deliveries = select(WebhookDelivery.id).where(WebhookDelivery.endpoint_id == endpoint.id)
    session.execute(delete(WebhookAttempt).where(WebhookAttempt.delivery_id.in_(deliveries)))
    session.execute(delete(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint.id))
    session.delete(endpoint)
    session.flush()


def disable_endpoint(session: Session, endpoint_id: str, reason: str, now: datetime) -> None:
    session.execute(
        update(WebhookEndpoint)
        .where(WebhookEndpoint.id == endpoint_id)
        .values(enabled=False, disabled_reason=reason, updated_at=now)
    )


# deliveries


def insert_deliveries(session: Session, rows: list[dict[str, Any]]) -> None:
    """New deliveries; one per (endpoint, event): a second dispatch of an event adds none."""
    bulk_insert(
        session, WebhookDelivery.__table__, rows, skip_conflicts_on=("endpoint_id", "event_id")
    )


def _due(tenant_id: str, now: datetime) -> Any:
    enabled = select(WebhookEndpoint.id).where(
        WebhookEndpoint.tenant_id == tenant_id, WebhookEndpoint.enabled.is_(True)
    )
    return and_(
        WebhookDelivery.tenant_id == tenant_id,
        or_(
            and_(WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= now),
            and_(WebhookDelivery.status == "sending", WebhookDelivery.lease_until <= now),
        ),
        WebhookDelivery.endpoint_id.in_(enabled),
    )


def tenants_with_due(session: Session, now: datetime, limit: int) -> list[str]:
    stmt = (
        select(WebhookDelivery.tenant_id)
        .where(
            or_(
                and_(WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= now),
                and_(WebhookDelivery.status == "sending", WebhookDelivery.lease_until <= now),
            )
        )
        .distinct()
        .limit(limit)
    )
    return list(session.scalars(stmt))


def any_due(session: Session, tenant_id: str, now: datetime) -> bool:
    stmt = select(WebhookDelivery.id).where(_due(tenant_id, now)).limit(1)
    return session.scalar(stmt) is not None


def claim_due(session: Session, tenant_id: str, now: datetime, limit: int) -> list[WebhookDelivery]:
    """Deliveries to send now, oldest first: pending ones whose time has come and sending
    ones whose lease ran out (their worker died). Row-locked with SKIP LOCKED on Postgres so
    concurrent workers claim disjoint batches; SQLite has one writer at a time."""
    stmt = (
        select(WebhookDelivery)
        .where(_due(tenant_id, now))
        .order_by(WebhookDelivery.id)
        .limit(limit)
    )
    if is_postgres(session):
        stmt = stmt.with_for_update(of=WebhookDelivery, skip_locked=True)
    return list(session.scalars(stmt))


def holders(session: Session, ids: list[int]) -> dict[int, str | None]:
    """The lease token each of these deliveries carries now (``None``: not being sent);
    deleted ones are missing."""
    if not ids:
        return {}
    stmt = select(WebhookDelivery.id, WebhookDelivery.lease_token, WebhookDelivery.status).where(
        WebhookDelivery.id.in_(ids)
    )
    if is_postgres(session):
        stmt = stmt.with_for_update()
    return {
        row.id: row.lease_token if row.status == "sending" else None
        for row in session.execute(stmt)
    }


_FINISHED = ("status", "attempts", "next_attempt_at", "last_status_code", "last_error")


def finish(session: Session, rows: list[dict[str, Any]]) -> None:
    """Record outcomes (one executemany); each row names its delivery (``did``) and the
    lease token (``token``) it must still carry."""
    if not rows:
        return
    table = cast(Table, WebhookDelivery.__table__)
    stmt = (
        update(table)
        .where(
            table.c.id == bindparam("did"),
            table.c.status == "sending",
            table.c.lease_token == bindparam("token"),
        )
        .values(
            lease_until=None,
            lease_token=None,
            # a replayed delivery that fails keeps the time it was first delivered
            delivered_at=func.coalesce(
                bindparam("finished_at", type_=UTCDateTime()), table.c.delivered_at
            ),
            **{name: bindparam("v_" + name, type_=table.c[name].type) for name in _FINISHED},
        )
    )
    session.connection().execute(stmt, rows)


def add_attempts(session: Session, rows: list[dict[str, Any]]) -> None:
    bulk_insert(session, WebhookAttempt.__table__, rows)


def first_created_since(session: Session, tenant_id: str, since: datetime) -> int | None:
    """The smallest id of the tenant's deliveries created at or after ``since``."""
    return session.scalar(
        select(func.min(WebhookDelivery.id)).where(
            WebhookDelivery.tenant_id == tenant_id, WebhookDelivery.created_at >= since
        )
    )


def get_delivery(
    session: Session, tenant_id: str, message_id: str, *, lock: bool = False
) -> WebhookDelivery | None:
    stmt = select(WebhookDelivery).where(
        WebhookDelivery.tenant_id == tenant_id, WebhookDelivery.message_id == message_id
    )
    if lock and is_postgres(session):
        stmt = stmt.with_for_update()
    return session.scalars(stmt).first()


def list_deliveries(
    session: Session,
    tenant_id: str,
    *,
    endpoint_id: str | None,
    status: str | None,
    event_type: str | None,
    before: int | None,
    limit: int,
) -> list[WebhookDelivery]:
    stmt = select(WebhookDelivery).where(WebhookDelivery.tenant_id == tenant_id)
    if endpoint_id:
        stmt = stmt.where(WebhookDelivery.endpoint_id == endpoint_id)
    if status:
        stmt = stmt.where(WebhookDelivery.status == status)
    if event_type:
        stmt = stmt.where(WebhookDelivery.event_type == event_type)
    if before is not None:
        stmt = stmt.where(WebhookDelivery.id < before)
    return list(session.scalars(stmt.order_by(WebhookDelivery.id.desc()).limit(limit)))


def attempts_of(session: Session, delivery_id: int, limit: int) -> list[WebhookAttempt]:
    """The newest ``limit`` attempts, oldest first."""
    stmt = (
        select(WebhookAttempt)
        .where(WebhookAttempt.delivery_id == delivery_id)
        .order_by(WebhookAttempt.id.desc())
        .limit(limit)
    )
    return list(reversed(list(session.scalars(stmt))))


def count_attempts(session: Session, delivery_id: int) -> int:
    stmt = select(func.count()).where(WebhookAttempt.delivery_id == delivery_id)
    return int(session.scalar(stmt) or 0)


def replay(
    session: Session,
    tenant_id: str,
    now: datetime,
    limit: int,
    *,
    message_ids: list[str] | None = None,
    status: str | None = None,
    since: datetime | None = None,
    endpoint_id: str | None = None,
) -> int:
    """Queue matching deliveries again (not those being sent right now); at most ``limit``."""
    chosen = select(WebhookDelivery.id).where(
        WebhookDelivery.tenant_id == tenant_id, WebhookDelivery.status != "sending"
    )
    if message_ids is not None:
        chosen = chosen.where(WebhookDelivery.message_id.in_(message_ids))
    if status:
        chosen = chosen.where(WebhookDelivery.status == status)
    if since is not None:
        chosen = chosen.where(WebhookDelivery.created_at >= since)
    if endpoint_id:
        chosen = chosen.where(WebhookDelivery.endpoint_id == endpoint_id)
    ids = list(session.scalars(chosen.order_by(WebhookDelivery.id).limit(limit)))
    if not ids:
        return 0
    session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id.in_(ids), WebhookDelivery.status != "sending")
        .values(
            status="pending",
            attempts=0,
            next_attempt_at=now,
            lease_until=None,
            lease_token=None,
        )
        .execution_options(synchronize_session=False)
    )
    return len(ids)
