"""Retention jobs: dispatched events, finished webhook deliveries and processed shop webhook
ids are deleted once older than their setting; nothing still in flight is."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from allegiance.config import get_settings
from allegiance.db import get_engine, read_session, write_session
from allegiance.integration import repository as integrations
from allegiance.integration.models import IntegrationDelivery
from allegiance.outbox.models import OutboxEvent
from allegiance.webhook.models import WebhookAttempt, WebhookDelivery
from allegiance.worker.runner import run_all
from tests.conftest import BASIC_PROGRAM, Api, apply_program, order
from tests.webhook.receiver import Receiver

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def days(n: float) -> datetime:
    return T0 + timedelta(days=n)


def counts(tenant_id: str) -> tuple[int, int, int, int]:
    """(outbox events, deliveries, pending deliveries, attempts) of the tenant."""
    with read_session() as session:
        events = session.query(OutboxEvent).filter(OutboxEvent.tenant_id == tenant_id).count()
        mine = session.query(WebhookDelivery).filter(WebhookDelivery.tenant_id == tenant_id)
        pending = mine.filter(WebhookDelivery.status == "pending").count()
        attempts = (
            session.query(WebhookAttempt)
            .join(WebhookDelivery, WebhookDelivery.id == WebhookAttempt.delivery_id)
            .filter(WebhookDelivery.tenant_id == tenant_id)
            .count()
        )
        return events, mine.count(), pending, attempts


def test_old_events_and_finished_deliveries_go_pending_ones_stay(
    api: Api, tenant: tuple[str, str], receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(get_settings(), "job_batch_size", 2)  # several batches per run
    tenant_id = tenant[0]
    apply_program(api, BASIC_PROGRAM)
    live = api.post("/v1/webhook-endpoints", json={"url": receiver.url, "events": ["*"]})
    paused = api.post(
        "/v1/webhook-endpoints", json={"url": receiver.url, "events": ["*"], "enabled": False}
    )
    assert live.status_code == paused.status_code == 201
    receiver.secrets.append(live.json()["secret"])
    api.now = T0.isoformat()
    for n in range(3):
        assert api.post("/v1/orders", json=order(f"o{n}", "m1", "50.00")).status_code == 201
    run_all(get_engine(), days(0), tenant_id)
    events, sent, pending, attempts = counts(tenant_id)
    # member.enrolled once, order.completed and points.earned per order
    assert events == 7
    assert (sent, pending, attempts) == (7, 0, 7)  # the paused endpoint gets nothing new
    # a delivery waiting for its endpoint (disabled later) is pending however old it gets
    with write_session() as session:
        session.add(
            WebhookDelivery(
                message_id="msg_waiting",
                tenant_id=tenant_id,
                endpoint_id=paused.json()["id"],
                event_id="evt_waiting",
                event_type="order.completed",
                payload={},
                status="pending",
                attempts=0,
                next_attempt_at=days(0),
                created_at=days(0),
            )
        )
    run_all(get_engine(), days(29), tenant_id)
    assert counts(tenant_id) == (7, 8, 1, 7)  # nothing old enough yet
    run_all(get_engine(), days(31), tenant_id)
    assert counts(tenant_id) == (7, 1, 1, 0)  # finished deliveries gone with their attempts
    assert len(api.get("/v1/domain-events").json()["data"]) == 7  # events are kept 90 days
    run_all(get_engine(), days(91), tenant_id)
    assert counts(tenant_id) == (0, 1, 1, 0)
    assert api.get("/v1/domain-events").json()["data"] == []


def test_zero_days_keeps_everything(
    api: Api, tenant: tuple[str, str], receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = get_settings()
    monkeypatch.setattr(settings, "outbox_retention_days", 0)
    monkeypatch.setattr(settings, "webhook_delivery_retention_days", 0)
    tenant_id = tenant[0]
    apply_program(api, BASIC_PROGRAM)
    receiver.secrets.append(
        api.post("/v1/webhook-endpoints", json={"url": receiver.url, "events": ["*"]}).json()[
            "secret"
        ]
    )
    api.now = T0.isoformat()
    api.post("/v1/orders", json=order("o1", "m1", "50.00"))
    run_all(get_engine(), days(0), tenant_id)
    run_all(get_engine(), days(3650), tenant_id)
    assert counts(tenant_id) == (3, 3, 0, 3)


def test_processed_shop_webhook_ids_are_forgotten_after_their_retention(
    tenant: tuple[str, str],
) -> None:
    tenant_id = tenant[0]
    with write_session() as session:
        for n, received in enumerate((days(0), days(20))):
            assert integrations.insert_delivery_if_new(
                session,
                {
                    "tenant_id": tenant_id,
                    "platform": "shopify",
                    "delivery_id": f"d{n}",
                    "topic": "orders/paid",
                    "outcome": "booked",
                    "detail": {},
                    "received_at": received,
                },
            )

    def ids() -> list[str]:
        with read_session() as session:
            return sorted(
                d.delivery_id
                for d in session.query(IntegrationDelivery).filter(
                    IntegrationDelivery.tenant_id == tenant_id
                )
            )

    run_all(get_engine(), days(29), tenant_id)
    assert ids() == ["d0", "d1"]
    run_all(get_engine(), days(31), tenant_id)
    assert ids() == ["d1"]
    run_all(get_engine(), days(51), tenant_id)
    assert ids() == []
