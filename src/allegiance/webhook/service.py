"""Webhook endpoints and deliveries: who gets which event, and what to do with the answer.

Deliveries are written in the transaction that dispatches the event (``fan_out`` is an
outbox consumer), so an event is handed over once and never lost; ``tasks.deliver_due``
sends them outside any transaction and records each attempt here.
"""

from __future__ import annotations

import base64
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session
from standardwebhooks.webhooks import Webhook

from allegiance.config import get_settings
from allegiance.errors import Conflict, NotFound, invalid
from allegiance.kit.clock import as_utc
from allegiance.kit.ids import new_id
from allegiance.outbox.models import OutboxEvent
from allegiance.outbox.service import envelope
from allegiance.webhook import repository
from allegiance.webhook.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from allegiance.webhook.schemas import ReplayRequest, WebhookEndpointCreate, WebhookEndpointUpdate

log = logging.getLogger("allegiance.webhook")

STATUSES = ("pending", "sending", "delivered", "failed")


def new_secret() -> str:
    """A Standard Webhooks signing secret: ``whsec_`` and 32 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def matches(patterns: list[str], event_type: str) -> bool:
    """``*`` matches every type, ``points.*`` every type starting with ``points.``."""
    for pattern in patterns:
        if pattern == "*" or pattern == event_type:
            return True
        if pattern.endswith(".*") and event_type.startswith(pattern[:-1]):
            return True
    return False


# endpoints


def endpoint_view(endpoint: WebhookEndpoint, *, with_secret: bool = False) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": endpoint.id,
        "url": endpoint.url,
        "events": endpoint.events,
        "description": endpoint.description,
        "enabled": endpoint.enabled,
        "disabled_reason": endpoint.disabled_reason,
        "created_at": endpoint.created_at.isoformat(),
        "updated_at": endpoint.updated_at.isoformat(),
    }
    if with_secret:
        view["secret"] = endpoint.secret
    return view


def create_endpoint(
    session: Session, *, tenant_id: str, body: WebhookEndpointCreate, now: datetime
) -> dict[str, Any]:
    """Register an endpoint; the answer carries its signing secret, this once."""
    limit = get_settings().webhook_max_endpoints
    if repository.count_endpoints(session, tenant_id) >= limit:
        raise Conflict(
            f"a tenant has at most {limit} webhook endpoints", code="webhook_endpoint_limit"
        )
    endpoint = WebhookEndpoint(
        id=new_id("we"),
        tenant_id=tenant_id,
        url=body.url,
        events=body.events,
        description=body.description,
        enabled=body.enabled,
        disabled_reason=None if body.enabled else "manual",
        secret=new_secret(),
        previous_secret=None,
        previous_secret_until=None,
        created_at=now,
        updated_at=now,
    )
    repository.add_endpoint(session, endpoint)
    return endpoint_view(endpoint, with_secret=True)


def list_endpoints(session: Session, *, tenant_id: str) -> list[dict[str, Any]]:
    limit = get_settings().webhook_max_endpoints
    return [endpoint_view(e) for e in repository.list_endpoints(session, tenant_id, limit)]


def _endpoint(
    session: Session, tenant_id: str, endpoint_id: str, *, lock: bool = False
) -> WebhookEndpoint:
    endpoint = repository.get_endpoint(session, tenant_id, endpoint_id, lock=lock)
    if endpoint is None:
        raise NotFound(f"no webhook endpoint {endpoint_id!r}", code="webhook_endpoint_not_found")
    return endpoint


def get_endpoint(session: Session, *, tenant_id: str, endpoint_id: str) -> dict[str, Any]:
    return endpoint_view(_endpoint(session, tenant_id, endpoint_id))


def update_endpoint(
    session: Session,
    *,
    tenant_id: str,
    endpoint_id: str,
    body: WebhookEndpointUpdate,
    now: datetime,
) -> dict[str, Any]:
    """Change what was sent; enabling again clears the reason it was disabled (its pending
    deliveries then go out, retried ones on their schedule)."""
    endpoint = _endpoint(session, tenant_id, endpoint_id, lock=True)
    sent = body.model_fields_set
    if "url" in sent:
        if body.url is None:
            raise invalid(["body", "url"], "may not be null")
        endpoint.url = body.url
    if "events" in sent:
        if body.events is None:
            raise invalid(["body", "events"], "may not be null")
        endpoint.events = body.events
    if "description" in sent:
        endpoint.description = body.description
    if "enabled" in sent:
        if body.enabled is None:
            raise invalid(["body", "enabled"], "may not be null")
        endpoint.enabled = body.enabled
        endpoint.disabled_reason = None if body.enabled else "manual"
    endpoint.updated_at = now
    session.flush()
    return endpoint_view(endpoint)


def delete_endpoint(session: Session, *, tenant_id: str, endpoint_id: str) -> None:
    """Remove an endpoint with its deliveries and their history."""
    repository.delete_endpoint(session, _endpoint(session, tenant_id, endpoint_id, lock=True))


def rotate_secret(
    session: Session, *, tenant_id: str, endpoint_id: str, now: datetime
) -> dict[str, Any]:
    """A new signing secret (returned this once); the old one keeps signing alongside it
    for ``webhook_secret_overlap_hours`` so receivers can switch without losing messages."""
    endpoint = _endpoint(session, tenant_id, endpoint_id, lock=True)
    endpoint.previous_secret = endpoint.secret
    endpoint.previous_secret_until = now + timedelta(
        hours=get_settings().webhook_secret_overlap_hours
    )
    endpoint.secret = new_secret()
    endpoint.updated_at = now
    session.flush()
    return endpoint_view(endpoint, with_secret=True)


def signature(endpoint: WebhookEndpoint, message_id: str, body: str, at: datetime) -> str:
    """The ``webhook-signature`` header: ``v1,<base64>``, one per live secret."""
    secrets_ = [endpoint.secret]
    until = endpoint.previous_secret_until
    if endpoint.previous_secret and until is not None and as_utc(until) > at:
        secrets_.append(endpoint.previous_secret)
    return " ".join(Webhook(s).sign(message_id, at, body) for s in secrets_)


# deliveries


def _delivery_row(
    tenant_id: str, endpoint_id: str, event: dict[str, Any], now: datetime
) -> dict[str, Any]:
    return {
        "message_id": new_id("msg"),
        "tenant_id": tenant_id,
        "endpoint_id": endpoint_id,
        "event_id": str(event["id"]),
        "event_type": str(event["type"]),
        "payload": event,
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": now,
        "lease_until": None,
        "lease_token": None,
        "last_status_code": None,
        "last_error": None,
        "created_at": now,
        "delivered_at": None,
    }


_CACHE_KEY = "webhook_endpoints"


def fan_out(session: Session, event: OutboxEvent, now: datetime) -> None:
    """Outbox consumer: one delivery per enabled endpoint whose ``events`` match the event.

    Runs in the dispatching transaction; a second dispatch of the same event adds nothing
    (unique endpoint × event). The tenant's endpoints are read once per transaction.
    """
    cache: dict[str, list[WebhookEndpoint]] = session.info.setdefault(_CACHE_KEY, {})
    endpoints = cache.get(event.tenant_id)
    if endpoints is None:
        limit = get_settings().webhook_max_endpoints
        endpoints = cache[event.tenant_id] = repository.enabled_endpoints(
            session, event.tenant_id, limit
        )
    if not endpoints:
        return
    body = envelope(event)
    rows = [
        _delivery_row(event.tenant_id, e.id, body, now)
        for e in endpoints
        if matches(e.events, event.type)
    ]
    repository.insert_deliveries(session, rows)


def forget_endpoint_cache(session: Session) -> None:
    session.info.pop(_CACHE_KEY, None)


def enqueue_delivery(
    session: Session, *, tenant_id: str, endpoint_id: str, event: dict[str, Any], now: datetime
) -> None:
    """Deliver ``event`` (an envelope ``{id, type, created_at, tenant_id, data}``) to one
    endpoint, whatever its ``events`` filter says; in the caller's transaction.

    An unknown or disabled endpoint receives nothing (logged, not raised: a job calling this
    must not fail for a deleted endpoint). The same event id twice for one endpoint is one
    delivery."""
    if not event.get("id") or not event.get("type"):
        raise ValueError("a webhook event needs an 'id' and a 'type'")
    endpoint = repository.get_endpoint(session, tenant_id, endpoint_id)
    if endpoint is None or not endpoint.enabled:
        log.info("webhook endpoint %s missing or disabled: event %s dropped", endpoint_id, event)
        return
    body = dict(event)
    body.setdefault("tenant_id", tenant_id)
    body.setdefault("created_at", now.isoformat())
    body.setdefault("data", {})
    repository.insert_deliveries(session, [_delivery_row(tenant_id, endpoint_id, body, now)])


@dataclass(frozen=True)
class Claimed:
    """A delivery a worker holds the lease of, with its endpoint as it was at the claim."""

    delivery: WebhookDelivery
    endpoint: WebhookEndpoint


def claim_deliveries(
    session: Session,
    *,
    tenant_id: str,
    now: datetime,
    limit: int,
    lease_token: str,
    lease_until: datetime,
) -> list[Claimed]:
    """Take up to ``limit`` due deliveries (pending ones whose time has come, and sending
    ones whose lease ran out) for this worker: ``sending`` under ``lease_token`` until
    ``lease_until``. The caller commits before sending."""
    due = repository.claim_due(session, tenant_id, now, limit)
    for delivery in due:
        delivery.status = "sending"
        delivery.lease_until = lease_until
        delivery.lease_token = lease_token
    session.flush()
    endpoints = repository.endpoints_by_id(session, sorted({d.endpoint_id for d in due}))
    return [Claimed(d, endpoints[d.endpoint_id]) for d in due]


@dataclass(frozen=True)
class AttemptResult:
    """What one HTTP request of a delivery came back with."""

    status_code: int | None
    response_snippet: str | None
    duration_ms: int
    error: str | None

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def record_attempts(
    session: Session,
    *,
    sent: list[tuple[WebhookDelivery, AttemptResult]],
    lease_token: str,
    now: datetime,
) -> dict[str, int]:
    """Keep each attempt in its delivery's history and move the delivery on: ``delivered`` on
    a 2xx; ``failed`` (and the endpoint disabled) on 410 Gone; otherwise the next retry of
    the schedule, or ``failed`` once the schedule is spent. A delivery whose lease was taken
    over meanwhile (it ran out) is left to the new holder; one deleted meanwhile records
    nothing. Returns how many ended in each status."""
    schedule = get_settings().webhook_retry_schedule_seconds
    holders = repository.holders(session, [d.id for d, _ in sent])
    attempts: list[dict[str, Any]] = []
    finished: list[dict[str, Any]] = []
    gone: set[str] = set()
    counts: dict[str, int] = {}
    for delivery, result in sent:
        if delivery.id not in holders:
            continue
        attempts.append(
            {
                "delivery_id": delivery.id,
                "attempted_at": now,
                "succeeded": result.succeeded,
                "status_code": result.status_code,
                "response_snippet": result.response_snippet,
                "duration_ms": result.duration_ms,
                "error": result.error,
            }
        )
        if holders[delivery.id] != lease_token:
            continue
        number = delivery.attempts + 1
        next_at = None
        if result.succeeded:
            status = "delivered"
        elif result.status_code == 410:
            status = "failed"
            gone.add(delivery.endpoint_id)
        elif number <= len(schedule):
            status = "pending"
            next_at = now + timedelta(seconds=schedule[number - 1])
        else:
            status = "failed"
        counts[status] = counts.get(status, 0) + 1
        finished.append(
            {
                "did": delivery.id,
                "token": lease_token,
                "finished_at": now if result.succeeded else None,
                "v_status": status,
                "v_attempts": number,
                "v_next_attempt_at": next_at,
                "v_last_status_code": result.status_code,
                "v_last_error": result.error,
            }
        )
    repository.add_attempts(session, attempts)
    repository.finish(session, finished)
    for endpoint_id in sorted(gone):
        repository.disable_endpoint(session, endpoint_id, "gone", now)
    return counts


def delivery_view(
    delivery: WebhookDelivery, attempts: list[WebhookAttempt] | None = None
) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": delivery.message_id,
        "endpoint_id": delivery.endpoint_id,
        "event_id": delivery.event_id,
        "event_type": delivery.event_type,
        "status": delivery.status,
        "attempts": delivery.attempts,
        "next_attempt_at": (
            delivery.next_attempt_at.isoformat() if delivery.next_attempt_at else None
        ),
        "last_status_code": delivery.last_status_code,
        "last_error": delivery.last_error,
        "created_at": delivery.created_at.isoformat(),
        "delivered_at": delivery.delivered_at.isoformat() if delivery.delivered_at else None,
    }
    if attempts is not None:
        view["payload"] = delivery.payload
        view["attempt_history"] = [
            {
                "attempted_at": a.attempted_at.isoformat(),
                "succeeded": a.succeeded,
                "status_code": a.status_code,
                "response_snippet": a.response_snippet,
                "duration_ms": a.duration_ms,
                "error": a.error,
            }
            for a in attempts
        ]
    return view


def list_deliveries(
    session: Session,
    *,
    tenant_id: str,
    endpoint_id: str | None,
    status: str | None,
    event_type: str | None,
    before: int | None,
    limit: int,
) -> list[WebhookDelivery]:
    """Newest first; ``before`` is the internal id a previous page ended at."""
    if status is not None and status not in STATUSES:
        raise invalid(["query", "status"], f"one of {', '.join(STATUSES)}")
    return repository.list_deliveries(
        session,
        tenant_id,
        endpoint_id=endpoint_id,
        status=status,
        event_type=event_type,
        before=before,
        limit=limit,
    )


def _delivery(session: Session, tenant_id: str, message_id: str) -> WebhookDelivery:
    delivery = repository.get_delivery(session, tenant_id, message_id)
    if delivery is None:
        raise NotFound(f"no webhook delivery {message_id!r}", code="webhook_delivery_not_found")
    return delivery


def get_delivery(session: Session, *, tenant_id: str, message_id: str) -> dict[str, Any]:
    """A delivery with its payload and attempt history (the newest attempts, bounded)."""
    delivery = _delivery(session, tenant_id, message_id)
    shown = get_settings().webhook_attempts_shown
    view = delivery_view(delivery, repository.attempts_of(session, delivery.id, shown))
    view["attempts_total"] = repository.count_attempts(session, delivery.id)
    return view


def replay_delivery(
    session: Session, *, tenant_id: str, message_id: str, now: datetime
) -> dict[str, Any]:
    """Send a delivery again (same ``webhook-id``), with a fresh retry schedule."""
    delivery = _delivery(session, tenant_id, message_id)
    if delivery.status == "sending":
        raise Conflict("the delivery is being sent right now", code="webhook_delivery_in_flight")
    repository.replay(session, tenant_id, now, 1, message_ids=[message_id])
    session.refresh(delivery)
    return delivery_view(delivery)


def replay_deliveries(
    session: Session, *, tenant_id: str, body: ReplayRequest, now: datetime
) -> dict[str, Any]:
    """Send many deliveries again: the listed ``ids``, or those matching the filter. At most
    ``webhook_replay_max`` per call; call again while ``replayed`` equals that limit."""
    if body.ids is None and body.status is None and body.since is None and not body.endpoint_id:
        raise invalid(["body"], "give 'ids' or a filter (status, since, endpoint_id)")
    limit = get_settings().webhook_replay_max
    count = repository.replay(
        session,
        tenant_id,
        now,
        limit,
        message_ids=body.ids,
        status=body.status,
        since=as_utc(body.since) if body.since else None,
        endpoint_id=body.endpoint_id,
    )
    return {"replayed": count, "limit": limit}
