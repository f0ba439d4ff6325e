"""Outbound webhooks: how fast events fan out to deliveries and deliveries go out.

Writes N domain events for one tenant (as bookings would), then times the outbox dispatcher
(fan-out to E endpoints) and the delivery job against a local receiver on 127.0.0.1 that
verifies every signature. Bounded: N is capped, the receiver stops with the script.

    python bench/webhooks_delivery.py                     # temp SQLite file, 2,000 events
    python bench/webhooks_delivery.py --events 5000 --endpoints 2 \
        --database-url postgresql://postgres@127.0.0.1:5432/allegiance_bench_webhooks

Prints a Markdown report; exit 0 when every delivery arrived verified, 1 otherwise.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import BenchError, PgTarget, log


def _receive(ready: Any, control: Any, results: Any) -> None:
    """The receiver, in a process of its own (as a real one would be): verifies every request
    with the ``standardwebhooks`` library and counts them by ``webhook-id``."""
    from standardwebhooks.webhooks import Webhook, WebhookVerificationError

    verifiers: list[Webhook] = []
    seen: dict[str, int] = {}
    bad = [0]
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as a production receiver would

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("content-length") or 0))
            ok = False
            for verifier in verifiers:
                try:
                    verifier.verify(raw, dict(self.headers.items()))
                    ok = True
                    break
                except WebhookVerificationError:
                    continue
            with lock:
                if ok:
                    key = self.headers["webhook-id"]
                    seen[key] = seen.get(key, 0) + 1
                else:
                    bad[0] += 1
            self.send_response(200 if ok else 400)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *a: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    ready.put(server.server_address[1])
    secrets = control.get()
    if secrets is not None:
        verifiers.extend(Webhook(s) for s in secrets)
        control.get()  # stop
    server.shutdown()
    server.server_close()
    results.put((seen, bad[0]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--endpoints", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    events = max(1, min(args.events, 50_000))
    url = args.database_url or f"sqlite:///{tempfile.mkdtemp(prefix='bench-webhooks-')}/b.db"
    if url.startswith("postgres"):
        PgTarget.from_url(url).recreate()  # refuses any host but loopback
    os.environ["ALLEGIANCE_DATABASE_URL"] = url
    os.environ["ALLEGIANCE_WEBHOOK_CONCURRENCY"] = str(args.concurrency)

    from allegiance.config import reset_settings

    reset_settings()
    from allegiance.db import get_engine, write_session
    from allegiance.migrate import upgrade
    from allegiance.outbox import service as outbox
    from allegiance.outbox.tasks import dispatch
    from allegiance.tenant.service import create_tenant
    from allegiance.webhook import service as webhooks
    from allegiance.webhook.schemas import WebhookEndpointCreate
    from allegiance.webhook.tasks import deliver_due

    upgrade(url)
    engine = get_engine()
    now = datetime.now(UTC)
    secrets: list[str] = []
    ready: Any = multiprocessing.Queue()
    results: Any = multiprocessing.Queue()
    control: Any = multiprocessing.Queue()
    receiver = multiprocessing.Process(target=_receive, args=(ready, control, results))
    receiver.start()
    port = ready.get(timeout=30)
    try:
        with write_session(engine) as session:
            tenant_id, _ = create_tenant(session, name="bench", now=now)
            for _ in range(args.endpoints):
                created = webhooks.create_endpoint(
                    session,
                    tenant_id=tenant_id,
                    body=WebhookEndpointCreate(url=f"http://127.0.0.1:{port}/h", events=["*"]),
                    now=now,
                )
                secrets.append(created["secret"])
        control.put(secrets)
        log(f"writing {events} events")
        for start in range(0, events, 1000):
            with write_session(engine) as session:
                outbox.emit_many(
                    session,
                    [
                        outbox.event_row(
                            tenant_id,
                            "points.earned",
                            {"member_id": f"m{i}", "wallet": "points", "amount": 10},
                            now,
                        )
                        for i in range(start, min(start + 1000, events))
                    ],
                )
        started = time.perf_counter()
        dispatched = dispatch(engine, tenant_id, now)
        fan_out_s = time.perf_counter() - started
        log(f"dispatched {dispatched} events in {fan_out_s:.2f}s; sending")
        started = time.perf_counter()
        sent = deliver_due(engine, tenant_id, now)
        send_s = time.perf_counter() - started
    finally:
        control.put(None)
        seen, bad = results.get(timeout=30)
        receiver.join(timeout=10)
    expected = events * args.endpoints
    passed = sent == expected and len(seen) == expected and bad == 0
    backend = "Postgres" if url.startswith("postgres") else "SQLite"
    print(f"## Webhooks: fan-out and delivery ({backend})\n")
    print("| measure | value |\n|---|---|")
    print(f"| events | {events} |\n| endpoints | {args.endpoints} |")
    print(f"| fan-out (dispatch) | {fan_out_s:.2f} s, {dispatched / fan_out_s:,.0f} events/s |")
    print(f"| delivery (job, concurrency {args.concurrency}) | {send_s:.2f} s, "
          f"{sent / send_s:,.0f} deliveries/s |")  # fmt: skip
    print(f"| verified at the receiver | {len(seen)} of {expected} (rejected {bad}) |")
    print(f"\n{'PASS' if passed else 'FAIL'}")
    return 0 if passed else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as exc:
        print(f"setup error: {exc}", file=sys.stderr)
        sys.exit(2)
