"""Shopify delivers at least once and retries in parallel: the same order booked once."""

from __future__ import annotations

import json
import threading
import uuid

from tests.conftest import BASIC_PROGRAM, Api, apply_program
from tests.integration.platforms import connect, counts, points, sample, shopify_post_live


def test_concurrent_deliveries_of_one_order_book_it_once(
    api: Api, live_server: str, tenant: tuple[str, str]
) -> None:
    apply_program(api, BASIC_PROGRAM)
    connect(api, "shopify")
    raw = json.dumps(sample("shopify_orders_paid.json")).encode()
    same_webhook = str(uuid.uuid4())
    statuses: list[str] = []
    lock = threading.Lock()

    def deliver(index: int) -> None:
        # half repeat one delivery id, half are new deliveries of the same order
        webhook_id = same_webhook if index % 2 else str(uuid.uuid4())
        topic = "orders/paid" if index % 3 else "orders/create"
        response = shopify_post_live(live_server, tenant[0], topic, raw, webhook_id=webhook_id)
        assert response.status_code == 200, response.text
        with lock:
            statuses.append(response.json()["status"])

    threads = [threading.Thread(target=deliver, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses.count("booked") == 1, statuses
    assert set(statuses) <= {"booked", "duplicate", "recorded"}
    assert counts(tenant[0]) == (1, 0)
    assert points(api, "115310627314723950") == 404
