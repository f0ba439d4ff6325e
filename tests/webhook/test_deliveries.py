"""Webhook deliveries end to end: a real receiver verifies every request with the
``standardwebhooks`` library; time is driven through the job functions."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from allegiance.config import get_settings
from allegiance.db import get_engine, read_session, write_session
from allegiance.outbox.models import OutboxEvent
from allegiance.webhook import service
from allegiance.webhook.models import WebhookDelivery
from allegiance.webhook.tasks import deliver_due
from allegiance.worker.runner import run_all
from tests.conftest import BASIC_PROGRAM, Api, apply_program, order
from tests.webhook.receiver import Receiver

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def register(api: Api, receiver: Receiver, events: list[str] | None = None) -> dict[str, Any]:
    response = api.post(
        "/v1/webhook-endpoints", json={"url": receiver.url, "events": events or ["*"]}
    )
    assert response.status_code == 201, response.text
    receiver.secrets.append(response.json()["secret"])
    return response.json()


def deliveries(tenant_id: str) -> list[WebhookDelivery]:
    with read_session() as session:
        return list(
            session.query(WebhookDelivery)
            .filter(WebhookDelivery.tenant_id == tenant_id)
            .order_by(WebhookDelivery.id)
        )


def book(api: Api, order_id: str, member_id: str = "m1", amount: str = "50.00") -> None:
    api.now = T0.isoformat()
    response = api.post("/v1/orders", json=order(order_id, member_id, amount))
    assert response.status_code == 201, response.text


def test_events_are_delivered_signed_and_filtered(
    api: Api, tenant: tuple[str, str], receiver: Receiver
) -> None:
    apply_program(api, BASIC_PROGRAM)
    everything = register(api, receiver)
    only_orders = register(api, receiver, ["order.*"])
    book(api, "o1")
    tenant_id = tenant[0]
    counts = run_all(get_engine(), at(0), tenant_id)
    assert counts["webhook_deliveries"] == 4  # the "*" endpoint: 3 events, order.*: 1
    assert all(r.verified for r in receiver.received)
    by_endpoint: dict[str, list[str]] = {}
    for d in deliveries(tenant_id):
        by_endpoint.setdefault(d.endpoint_id, []).append(d.event_type)
        assert d.status == "delivered"
        assert d.message_id in receiver.ids()
    assert sorted(by_endpoint[everything["id"]]) == [
        "member.enrolled",  # the order created the member
        "order.completed",
        "points.earned",
    ]
    assert by_endpoint[only_orders["id"]] == ["order.completed"]
    body = next(r.body for r in receiver.received if r.body["type"] == "order.completed")
    assert set(body) == {"id", "type", "created_at", "tenant_id", "data"}
    assert body["tenant_id"] == tenant_id
    assert body["data"]["order_id"] == "o1"
    # nothing more to send, and handing the same event over again adds no delivery
    assert run_all(get_engine(), at(60), tenant_id)["webhook_deliveries"] == 0
    with write_session() as session:
        event = session.query(OutboxEvent).filter(OutboxEvent.tenant_id == tenant_id).first()
        assert event is not None
        service.fan_out(session, event, at(60))
    assert len(deliveries(tenant_id)) == 4


def test_the_frequent_round_finds_tenants_with_work(
    api: Api, tenant: tuple[str, str], receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(get_settings(), "job_batch_size", 100_000)  # every tenant of the run
    from allegiance.outbox.tasks import dispatch, tenants_with_pending
    from allegiance.webhook.tasks import tenants_with_due

    apply_program(api, BASIC_PROGRAM)
    register(api, receiver, ["order.completed"])
    book(api, "o1")
    tenant_id, engine = tenant[0], get_engine()
    assert tenant_id in tenants_with_pending(engine)
    assert tenant_id not in tenants_with_due(engine, at(0))
    dispatch(engine, tenant_id, at(0))
    assert tenant_id not in tenants_with_pending(engine)
    assert tenant_id in tenants_with_due(engine, at(0))
    assert tenant_id not in tenants_with_due(engine, at(-1))  # not due before its time
    deliver_due(engine, tenant_id, at(0))
    assert tenant_id not in tenants_with_due(engine, at(10**6))


def test_failing_receiver_is_retried_until_it_recovers(
    api: Api, tenant: tuple[str, str], receiver: Receiver
) -> None:
    apply_program(api, BASIC_PROGRAM)
    register(api, receiver, ["order.completed"])
    calls: list[str] = []

    def answer(item: Any) -> int:
        calls.append(item.message_id)
        return 500 if len(calls) <= 2 else 204

    receiver.answer = answer
    book(api, "o1")
    tenant_id = tenant[0]
    engine = get_engine()
    run_all(engine, at(0), tenant_id)  # attempt 1: 500
    (d,) = deliveries(tenant_id)
    assert (d.status, d.attempts, d.last_status_code) == ("pending", 1, 500)
    assert d.next_attempt_at == at(5)
    assert deliver_due(engine, tenant_id, at(4)) == 0  # not yet due
    assert deliver_due(engine, tenant_id, at(5)) == 1  # attempt 2: 500, next in 5 minutes
    (d,) = deliveries(tenant_id)
    assert d.next_attempt_at == at(5 + 300)
    assert deliver_due(engine, tenant_id, at(5 + 299)) == 0
    assert deliver_due(engine, tenant_id, at(5 + 300)) == 1  # attempt 3: 204
    (d,) = deliveries(tenant_id)
    assert d.status == "delivered"
    assert len(set(calls)) == 1 and len(calls) == 3  # one webhook-id on every attempt

    shown = api.get(f"/v1/webhook-deliveries/{d.message_id}").json()
    assert [a["status_code"] for a in shown["attempt_history"]] == [500, 500, 204]
    assert [a["succeeded"] for a in shown["attempt_history"]] == [False, False, True]
    assert shown["attempt_history"][0]["response_snippet"] == "no thanks"
    assert shown["payload"]["type"] == "order.completed"


def test_after_the_schedule_a_delivery_fails_and_replay_delivers_it(
    api: Api, tenant: tuple[str, str], receiver: Receiver
) -> None:
    apply_program(api, BASIC_PROGRAM)
    register(api, receiver, ["order.completed"])
    receiver.answer = lambda item: 503
    book(api, "o1")
    tenant_id = tenant[0]
    engine = get_engine()
    run_all(engine, at(0), tenant_id)
    schedule = get_settings().webhook_retry_schedule_seconds
    elapsed = 0
    for delay in schedule:
        elapsed += delay
        assert deliver_due(engine, tenant_id, at(elapsed)) == 1
    assert 24 * 3600 <= elapsed <= 30 * 3600  # about a day of retries
    (d,) = deliveries(tenant_id)
    assert (d.status, d.attempts) == ("failed", len(schedule) + 1)
    assert deliver_due(engine, tenant_id, at(elapsed + 10**6)) == 0
    assert len(receiver.received) == len(schedule) + 1

    failed = api.get("/v1/webhook-deliveries?status=failed").json()["data"]
    assert [f["id"] for f in failed] == [d.message_id]
    receiver.answer = lambda item: 200
    api.now = at(elapsed + 100).isoformat()
    replayed = api.post(f"/v1/webhook-deliveries/{d.message_id}/replay")
    assert replayed.status_code == 200, replayed.text
    assert replayed.json()["status"] == "pending"
    assert deliver_due(engine, tenant_id, at(elapsed + 100)) == 1
    (d,) = deliveries(tenant_id)
    assert d.status == "delivered"
    assert set(receiver.ids()) == {d.message_id}  # the replay kept the webhook-id


def test_bulk_replay_of_failed_deliveries(
    api: Api, tenant: tuple[str, str], receiver: Receiver
) -> None:
    apply_program(api, BASIC_PROGRAM)
    endpoint = register(api, receiver, ["order.completed"])
    receiver.answer = lambda item: 500
    for i in range(3):
        book(api, f"o{i}")
    tenant_id = tenant[0]
    engine = get_engine()
    run_all(engine, at(0), tenant_id)
    elapsed = 0
    for delay in get_settings().webhook_retry_schedule_seconds:
        elapsed += delay
        deliver_due(engine, tenant_id, at(elapsed))
    assert {d.status for d in deliveries(tenant_id)} == {"failed"}

    receiver.answer = lambda item: 200
    assert api.post("/v1/webhook-deliveries/replay", json={}).status_code == 422
    response = api.post(
        "/v1/webhook-deliveries/replay",
        json={"status": "failed", "endpoint_id": endpoint["id"], "since": T0.isoformat()},
    )
    assert response.json()["replayed"] == 3
    assert deliver_due(engine, tenant_id, at(elapsed + 1)) == 3
    assert {d.status for d in deliveries(tenant_id)} == {"delivered"}
    one = deliveries(tenant_id)[0].message_id
    response = api.post("/v1/webhook-deliveries/replay", json={"ids": [one]})
    assert response.json()["replayed"] == 1
    assert deliver_due(engine, tenant_id, at(elapsed + 2)) == 1
    assert receiver.ids().count(one) == 1 + len(get_settings().webhook_retry_schedule_seconds) + 2


def test_gone_disables_the_endpoint(api: Api, tenant: tuple[str, str], receiver: Receiver) -> None:
    apply_program(api, BASIC_PROGRAM)
    endpoint = register(api, receiver, ["order.completed"])
    receiver.answer = lambda item: 410
    book(api, "o1")
    tenant_id = tenant[0]
    run_all(get_engine(), at(0), tenant_id)
    (d,) = deliveries(tenant_id)
    assert d.status == "failed"
    shown = api.get(f"/v1/webhook-endpoints/{endpoint['id']}").json()
    assert (shown["enabled"], shown["disabled_reason"]) == (False, "gone")
    book(api, "o2")
    run_all(get_engine(), at(10), tenant_id)
    assert len(deliveries(tenant_id)) == 1  # a disabled endpoint gets nothing new


def test_two_workers_never_send_one_delivery_at_once(
    api: Api, tenant: tuple[str, str], receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(get_settings(), "webhook_batch_size", 4)  # many claims, interleaved
    apply_program(api, BASIC_PROGRAM)
    register(api, receiver, ["order.completed"])
    receiver.delay = 0.02
    for i in range(30):
        book(api, f"o{i}", member_id=f"m{i}")
    tenant_id = tenant[0]
    engine = get_engine()
    from allegiance.outbox.tasks import dispatch

    dispatch(engine, tenant_id, at(0))
    sent: list[int] = []
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def work() -> None:
        try:
            start.wait()
            sent.append(deliver_due(engine, tenant_id, at(0)))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sum(sent) == 30
    assert receiver.overlaps == []
    ids = receiver.ids()
    assert len(ids) == len(set(ids)) == 30
    assert {d.status for d in deliveries(tenant_id)} == {"delivered"}


def test_enqueue_delivery_sends_to_one_endpoint(
    api: Api, tenant: tuple[str, str], receiver: Receiver
) -> None:
    apply_program(api, BASIC_PROGRAM)
    endpoint = register(api, receiver, ["order.completed"])  # the filter does not apply
    tenant_id = tenant[0]
    event = {"id": "auto_1", "type": "automation.fired", "data": {"member_id": "m1"}}
    with write_session() as session:
        for _ in range(2):  # the same event twice is one delivery
            service.enqueue_delivery(
                session, tenant_id=tenant_id, endpoint_id=endpoint["id"], event=event, now=at(0)
            )
        service.enqueue_delivery(
            session, tenant_id=tenant_id, endpoint_id="we_missing", event=event, now=at(0)
        )
    assert deliver_due(get_engine(), tenant_id, at(0)) == 1
    (item,) = receiver.received
    assert item.verified
    assert item.body["type"] == "automation.fired"
    assert item.body["tenant_id"] == tenant_id
    assert item.body["data"] == {"member_id": "m1"}


def test_endpoint_deleted_while_sending(
    api: Api, tenant: tuple[str, str], receiver: Receiver
) -> None:
    apply_program(api, BASIC_PROGRAM)
    endpoint = register(api, receiver, ["order.completed"])
    tenant_id = tenant[0]

    def answer(item: Any) -> int:
        with write_session() as session:
            service.delete_endpoint(session, tenant_id=tenant_id, endpoint_id=endpoint["id"])
        return 200

    receiver.answer = answer
    book(api, "o1")
    assert run_all(get_engine(), at(0), tenant_id)["webhook_deliveries"] == 1
    assert deliveries(tenant_id) == []
    assert api.get(f"/v1/webhook-endpoints/{endpoint['id']}").status_code == 404


def test_a_slow_or_unreachable_receiver_is_a_failed_attempt(
    api: Api, tenant: tuple[str, str], receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(get_settings(), "webhook_timeout_seconds", 0.3)
    apply_program(api, BASIC_PROGRAM)
    register(api, receiver, ["order.completed"])
    closed = Receiver().start()
    closed.stop()  # nothing listens on its port any more
    response = api.post("/v1/webhook-endpoints", json={"url": closed.url, "events": ["*"]})
    assert response.status_code == 201
    receiver.delay = 1.0
    book(api, "o1")
    tenant_id = tenant[0]
    run_all(get_engine(), at(0), tenant_id)
    errors = sorted(str(d.last_error).split(":")[0] for d in deliveries(tenant_id))
    assert errors[-1] == "timeout"
    assert errors[0] == "ConnectError"
    assert {d.status for d in deliveries(tenant_id)} == {"pending"}
    for d in deliveries(tenant_id):
        shown = api.get(f"/v1/webhook-deliveries/{d.message_id}").json()
        (attempt,) = shown["attempt_history"]
        assert attempt["status_code"] is None and attempt["succeeded"] is False
