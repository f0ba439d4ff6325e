"""WooCommerce webhooks: signed order snapshots, refunds by diff, the unsigned ping."""

from __future__ import annotations

import json
from typing import Any

import httpx

from tests.conftest import BASIC_PROGRAM, Api, apply_program, ledger_ok
from tests.integration.platforms import connect, counts, points, sample, woo_post

ORDER = "727"


def setup(api: Api, **mapping: Any) -> None:
    apply_program(api, BASIC_PROGRAM)
    connect(api, "woocommerce", **mapping)


def member_order(**changes: Any) -> dict[str, Any]:
    body = sample("woocommerce_order.json")
    body["customer_id"] = 42
    body.update(changes)
    return body


def test_sample_guest_order_is_recorded_without_points(
    api: Api, http: httpx.Client, tenant: tuple[str, str]
) -> None:
    setup(api)
    response = woo_post(http, tenant[0], "order.created", sample("woocommerce_order.json"))
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "booked"
    order = api.get(f"/v1/orders/{ORDER}").json()
    assert order["member_id"] is None  # customer_id 0 is a guest
    assert counts(tenant[0]) == (1, 0)


def test_member_order_earns_on_the_lines(
    api: Api, http: httpx.Client, tenant: tuple[str, str]
) -> None:
    setup(api)
    assert woo_post(http, tenant[0], "order.created", member_order()).json()["status"] == "booked"
    assert points(api, "42") == 18  # lines 6.00 + 12.00 after coupons, before tax
    order = api.get(f"/v1/orders/{ORDER}").json()
    assert order["member_id"] == "42"
    assert ledger_ok(tenant[0]) == []


def test_earning_on_the_total(api: Api, http: httpx.Client, tenant: tuple[str, str]) -> None:
    setup(api, earn_on="total")
    woo_post(http, tenant[0], "order.created", member_order())
    assert points(api, "42") == 29  # 29.35 with shipping and tax


def test_bad_signature_is_401_and_books_nothing(
    api: Api, http: httpx.Client, tenant: tuple[str, str]
) -> None:
    setup(api)
    raw = json.dumps(member_order()).encode()
    for signature in ("", "bm90IHRoZSBzaWduYXR1cmU=", "garbage"):
        response = woo_post(http, tenant[0], "order.created", raw, signature=signature)
        assert response.status_code == 401
        assert response.json()["code"] == "invalid_signature"
    assert counts(tenant[0]) == (0, 0)


def test_ping_when_saving_the_webhook_gets_200(
    api: Api, http: httpx.Client, tenant: tuple[str, str]
) -> None:
    setup(api)
    response = http.post(
        f"/integrations/woocommerce/{tenant[0]}",
        content=b"webhook_id=17",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 200
    assert response.json()["status"] == "ping"
    assert counts(tenant[0]) == (0, 0)
    # anything else unsigned is refused
    response = http.post(
        f"/integrations/woocommerce/{tenant[0]}",
        content=b"webhook_id=17&x=1",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 401


def test_snapshot_with_a_new_refund_books_it_once(
    api: Api, http: httpx.Client, tenant: tuple[str, str]
) -> None:
    setup(api)
    woo_post(http, tenant[0], "order.created", member_order())
    refunded = member_order(refunds=[{"id": 730, "reason": "damaged", "total": "-5.00"}])
    response = woo_post(http, tenant[0], "order.updated", refunded)
    assert response.json()["status"] == "refunded", response.text
    # floor(18 x 5.00 / 29.35) = 3 points reversed
    assert points(api, "42") == 15
    # WooCommerce sends the whole order again on every change: nothing is booked twice
    assert woo_post(http, tenant[0], "order.updated", refunded).json()["status"] == "duplicate"
    assert counts(tenant[0]) == (1, 1)
    two = member_order(
        status="refunded",
        refunds=[
            {"id": 731, "reason": "", "total": "-24.35"},
            {"id": 730, "reason": "damaged", "total": "-5.00"},
        ],
    )
    assert woo_post(http, tenant[0], "order.updated", two).json()["status"] == "refunded"
    assert counts(tenant[0]) == (1, 2)
    assert points(api, "42") == 0
    assert ledger_ok(tenant[0]) == []


def test_status_decides_booking_and_cancellation(
    api: Api, http: httpx.Client, tenant: tuple[str, str]
) -> None:
    setup(api)
    pending = member_order(status="pending")
    assert woo_post(http, tenant[0], "order.created", pending).json()["status"] == "recorded"
    assert counts(tenant[0]) == (0, 0)
    processing = member_order(status="processing")
    assert woo_post(http, tenant[0], "order.updated", processing).json()["status"] == "booked"
    completed = member_order(status="completed")
    assert woo_post(http, tenant[0], "order.updated", completed).json()["status"] == "duplicate"
    assert points(api, "42") == 18
    cancelled = member_order(status="cancelled")
    assert woo_post(http, tenant[0], "order.updated", cancelled).json()["status"] == "cancelled"
    assert points(api, "42") == 0
    assert woo_post(http, tenant[0], "order.updated", cancelled).json()["status"] == "duplicate"
    assert counts(tenant[0]) == (1, 1)  # the cancellation is booked as one full reversal
    assert ledger_ok(tenant[0]) == []


def test_customer_webhook_upserts_the_member(
    api: Api, http: httpx.Client, tenant: tuple[str, str]
) -> None:
    setup(api)
    customer = {
        "id": 25,
        "date_created_gmt": "2017-03-21T19:09:28",
        "email": "john.doe@example.com",
        "first_name": "John",
        "last_name": "Doe",
        "billing": {"phone": "(555) 555-5555"},
    }
    response = woo_post(http, tenant[0], "customer.created", customer)
    assert response.json()["status"] == "member_created", response.text
    member = api.get("/v1/members/25").json()
    assert member["email"] == "john.doe@example.com"
    assert member["phone"] == "(555) 555-5555"
