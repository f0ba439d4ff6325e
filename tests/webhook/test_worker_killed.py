"""A worker process killed with SIGKILL in the middle of a batch loses nothing: its leased
deliveries go out again, under the same webhook-id, once the lease has run out."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

from allegiance.config import get_settings
from allegiance.db import get_engine, read_session
from allegiance.webhook.models import WebhookDelivery
from allegiance.webhook.tasks import deliver_due
from tests.conftest import BASIC_PROGRAM, Api, apply_program, order
from tests.webhook.receiver import Receiver

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def test_killed_worker_loses_no_delivery(api: Api, tenant: tuple[str, str]) -> None:
    tenant_id = tenant[0]
    receiver = Receiver(delay=1.0).start()  # a wide window to kill in
    try:
        apply_program(api, BASIC_PROGRAM)
        response = api.post(
            "/v1/webhook-endpoints", json={"url": receiver.url, "events": ["order.completed"]}
        )
        receiver.secrets.append(response.json()["secret"])
        api.now = T0.isoformat()
        for i in range(12):
            assert api.post("/v1/orders", json=order(f"o{i}", f"m{i}", "10.00")).status_code == 201

        env = dict(os.environ)
        env.update(ALLEGIANCE_WEBHOOK_BATCH_SIZE="4", ALLEGIANCE_WEBHOOK_CONCURRENCY="2")
        worker = subprocess.Popen(
            [sys.executable, "-m", "allegiance.cli", "jobs", "run", "--now", T0.isoformat(),
             "--tenant", tenant_id],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        # kill it once a batch is done and the next one is on the wire
        while time.monotonic() < deadline and worker.poll() is None:
            with receiver.lock:
                busy = sum(receiver.in_flight.values())
                seen = len(receiver.received)
            if seen >= 4 and busy > 0:
                break
            time.sleep(0.01)
        assert worker.poll() is None, worker.stderr.read() if worker.stderr else ""
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
        time.sleep(receiver.delay + 0.2)  # requests it had in flight finish at the receiver

        with read_session() as session:
            states = Counter(
                d.status
                for d in session.query(WebhookDelivery).filter(
                    WebhookDelivery.tenant_id == tenant_id
                )
            )
        assert states["sending"] > 0  # the kill did land mid-batch
        assert sum(states.values()) == 12

        # a restart before the lease runs out leaves the claimed ones alone ...
        receiver.delay = 0.0
        engine = get_engine()
        deliver_due(engine, tenant_id, T0 + timedelta(seconds=1))
        with read_session() as session:
            leased = session.query(WebhookDelivery).filter(
                WebhookDelivery.tenant_id == tenant_id, WebhookDelivery.status == "sending"
            )
            assert leased.count() == states["sending"]
        # ... and after it, sends them again
        # (a lease counts from its claim; the worker lived well under two minutes)
        later = T0 + timedelta(seconds=get_settings().webhook_lease_seconds + 120)
        deliver_due(engine, tenant_id, later)

        with read_session() as session:
            rows = list(
                session.query(WebhookDelivery).filter(WebhookDelivery.tenant_id == tenant_id)
            )
        assert {d.status for d in rows} == {"delivered"}
        received = Counter(receiver.ids(ok_only=True))
        assert set(received) == {d.message_id for d in rows}  # every event arrived
        duplicates = {m for m, n in received.items() if n > 1}
        assert len(duplicates) <= 4  # at most the batch that was in flight
        bodies: dict[str, list[dict]] = {}
        for item in receiver.received:
            bodies.setdefault(item.message_id, []).append(item.body)
        for message_id in duplicates:  # a duplicate is the same message, same id
            assert all(b == bodies[message_id][0] for b in bodies[message_id])
    finally:
        receiver.stop()
