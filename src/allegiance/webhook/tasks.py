"""The delivery job: claim due deliveries with a lease, send them outside any transaction,
record what came back.

A claim commits before any request goes out, so a worker that dies mid-batch leaves its
deliveries ``sending`` with a lease that runs out; the next run sends them again under the
same ``webhook-id`` (at-least-once). While a lease holds, no other worker touches them.
"""

from __future__ import annotations

import functools
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

import httpx
import orjson
from sqlalchemy import Engine

from allegiance import __version__
from allegiance.config import get_settings
from allegiance.db import read_session, write_session
from allegiance.kit import retention
from allegiance.kit.clock import utcnow
from allegiance.kit.ids import new_id
from allegiance.webhook import repository, service
from allegiance.webhook.models import WebhookDelivery


def tenants_with_due(engine: Engine, now: datetime) -> set[str]:
    """Tenants with deliveries due as of ``now`` (at most a batch of them)."""
    with read_session(engine) as session:
        return set(repository.tenants_with_due(session, now, get_settings().job_batch_size))


def deliver_due(engine: Engine, tenant_id: str, now: datetime) -> int:
    """Send the tenant's due deliveries as of ``now``, a leased batch at a time; returns how
    many requests were made."""
    settings = get_settings()
    with read_session(engine) as session:
        # most rounds have nothing to send: no write transaction, no HTTP client then
        if not repository.any_due(session, tenant_id, now):
            return 0
    batch = settings.webhook_batch_size
    sent = 0
    client: httpx.Client | None = None
    started = time.monotonic()
    try:
        while True:
            token = new_id("lease")
            # ``now`` stays fixed for the whole backlog: a later batch's lease counts from when
            # it is claimed, or it could run out while being sent
            elapsed = time.monotonic() - started
            lease_until = now + timedelta(seconds=settings.webhook_lease_seconds + elapsed)
            with write_session(engine) as session:
                claimed = service.claim_deliveries(
                    session,
                    tenant_id=tenant_id,
                    now=now,
                    limit=batch,
                    lease_token=token,
                    lease_until=lease_until,
                )
            if not claimed:
                return sent
            client = client or _client()
            workers = max(1, min(settings.webhook_concurrency, len(claimed)))
            with ThreadPoolExecutor(max_workers=workers) as pool:
                results = list(pool.map(functools.partial(_send, client), claimed))
            with write_session(engine) as session:
                service.record_attempts(
                    session,
                    sent=[(c.delivery, r) for c, r in zip(claimed, results, strict=True)],
                    lease_token=token,
                    now=now,
                )
            sent += len(claimed)
            if len(claimed) < batch:
                return sent
    finally:
        if client is not None:
            client.close()


def _client() -> httpx.Client:
    settings = get_settings()
    # headers and body leave in separate writes: without TCP_NODELAY, Nagle's algorithm and
    # the receiver's delayed ACK add about 40 ms to every request
    transport = httpx.HTTPTransport(socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)])
    return httpx.Client(
        transport=transport,
        timeout=settings.webhook_timeout_seconds,
        follow_redirects=False,
        headers={"user-agent": f"Allegiance-Webhooks/{__version__}"},
    )


def _send(client: httpx.Client, item: service.Claimed) -> service.AttemptResult:
    """One signed POST. The signature's timestamp is the wall clock (receivers reject
    stale timestamps), whatever time the job runs as."""
    settings = get_settings()
    body = orjson.dumps(item.delivery.payload).decode()
    at = utcnow()
    headers = {
        "content-type": "application/json",
        "webhook-id": item.delivery.message_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": service.signature(item.endpoint, item.delivery.message_id, body, at),
    }
    started = time.monotonic()
    limit = min(settings.webhook_response_snippet_chars, 2000)  # the column's size
    timeout = settings.webhook_timeout_seconds
    try:
        with client.stream("POST", item.endpoint.url, content=body, headers=headers) as response:
            snippet = b""
            for chunk in response.iter_bytes():
                snippet += chunk
                # the rest of a large answer is not read, nor a body trickling in slowly
                # (the timeout is per read; the lease must outlast the whole request)
                if len(snippet) >= limit or time.monotonic() - started > timeout:
                    break
            text = snippet.decode("utf-8", errors="replace")[:limit]
            return service.AttemptResult(
                status_code=response.status_code,
                response_snippet=text,
                duration_ms=_ms(started),
                error=None if response.is_success else f"HTTP {response.status_code}",
            )
    except httpx.TimeoutException:
        return service.AttemptResult(None, None, _ms(started), "timeout")
    except Exception as exc:  # any failure is the attempt's outcome, never the batch's
        message = f"{type(exc).__name__}: {exc}"[:500]
        return service.AttemptResult(None, None, _ms(started), message)


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def prune_finished(engine: Engine, tenant_id: str, now: datetime) -> int:
    """Delete the tenant's deliveries (with their attempts) that were created more than
    ``webhook_delivery_retention_days`` ago and are done with: delivered or failed. A pending
    delivery (a disabled endpoint's, say) stays whatever its age."""
    settings = get_settings()
    before = retention.cutoff(now, settings.webhook_delivery_retention_days)
    if before is None:
        return 0
    conditions = [
        WebhookDelivery.tenant_id == tenant_id,
        WebhookDelivery.created_at < before,
        WebhookDelivery.status.in_(("delivered", "failed")),
    ]
    with read_session(engine) as session:
        # ids grow with time: the first young delivery bounds the scan of the old ones, read
        # through the (tenant, id) index
        young = repository.first_created_since(session, tenant_id, before)
    if young is not None:
        conditions.append(WebhookDelivery.id < young)
    return retention.delete_in_batches(
        engine,
        WebhookDelivery,
        [WebhookDelivery.id],
        conditions,
        batch=settings.job_batch_size,
        max_batches=settings.job_max_batches,
    )
