"""A real HTTP receiver for webhook tests: verifies every request with the
``standardwebhooks`` library and records what it saw."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


@dataclass
class Received:
    message_id: str
    body: dict[str, Any]
    verified: bool


@dataclass
class Receiver:
    """``answer`` decides the status of each request (default 200); ``delay`` seconds of
    sleep before answering; a request signed with one of ``secrets`` is verified."""

    secrets: list[str] = field(default_factory=list)
    answer: Callable[[Received], int] = lambda r: 200
    delay: float = 0.0
    received: list[Received] = field(default_factory=list)
    in_flight: dict[str, int] = field(default_factory=dict)
    overlaps: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""
    _server: ThreadingHTTPServer | None = None

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("content-length") or 0))
                message_id = self.headers.get("webhook-id") or ""
                with receiver.lock:
                    if receiver.in_flight.get(message_id):
                        receiver.overlaps.append(message_id)
                    receiver.in_flight[message_id] = receiver.in_flight.get(message_id, 0) + 1
                try:
                    body, verified = json.loads(raw or b"null"), False
                    for secret in receiver.secrets:
                        try:
                            body = Webhook(secret).verify(raw, dict(self.headers.items()))
                            verified = True
                        except WebhookVerificationError:
                            continue
                    item = Received(message_id, body, verified)
                    if receiver.delay:
                        time.sleep(receiver.delay)
                    status = receiver.answer(item) if verified else 400
                    with receiver.lock:
                        receiver.received.append(item)
                    try:
                        self.send_response(status)
                        self.send_header("content-type", "text/plain")
                        self.end_headers()
                        self.wfile.write(b"ok" if status < 300 else b"no thanks")
                    except (BrokenPipeError, ConnectionResetError):
                        pass  # the sender gave up waiting (a timeout, a killed worker)
                finally:
                    with receiver.lock:
                        receiver.in_flight[message_id] -= 1

            def log_message(self, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        self._server = server
        self.url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def ids(self, *, ok_only: bool = False) -> list[str]:
        with self.lock:
            return [r.message_id for r in self.received if r.verified or not ok_only]
