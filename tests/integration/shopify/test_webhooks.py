"""Shopify webhooks (DESIGN.md §7) with Shopify's published example payloads."""

from __future__ import annotations

import copy
import json
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from allegiance.config import get_settings
from allegiance.db import get_engine, read_session
from allegiance.integration.models import IntegrationDelivery
from allegiance.kit.clock import utcnow
from allegiance.worker.runner import run_all
from tests.conftest import BASIC_PROGRAM, Api, apply_program, ledger_ok, new_tenant
from tests.integration.platforms import SECRET, connect, counts, points, sample, shopify_post

# the sample's customer id (rounded in the published copy; the exact one is in its gid)
CUSTOMER = "115310627314723950"
ORDER = "820982911946154500"


def setup(api: Api, **mapping: Any) -> None:
    apply_program(api, BASIC_PROGRAM)
    connect(api, "shopify", **mapping)


def deliveries(tenant_id: str) -> int:
    with read_session(get_engine()) as session:
        found = session.scalar(
            select(func.count())
            .select_from(IntegrationDelivery)
            .where(IntegrationDelivery.tenant_id == tenant_id)
        )
    return int(found or 0)


def test_paid_order_books_the_lines_after_discounts(
    api: Api, http: httpx.Client, tenant: tuple[str, str]
) -> None:
    setup(api)
    response = shopify_post(http, tenant[0], "orders/paid", sample("shopify_orders_paid.json"))
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "booked"
    # lines 414.95 before the order's 20.00 of unallocated discounts; subtotal_price 404.95
    assert points(api, CUSTOMER) == 404
    assert counts(tenant[0]) == (1, 0)
    booked = api.get(f"/v1/orders/{ORDER}").json()
    assert booked["member_id"] == CUSTOMER
    assert ledger_ok(tenant[0]) == []


def test_earning_on_the_total_adds_shipping_and_tax(
    api: Api, http: httpx.Client, tenant: tuple[str, str]
) -> None:
    setup(api, earn_on="total")
    body = sample("shopify_orders_paid.json")
    body["shipping_lines"][0]["discounted_price"] = "10.00"
    body["total_tax"] = "5.55"
    response = shopify_post(http, tenant[0], "orders/paid", body)
    assert response.json()["status"] == "booked", response.text
    assert points(api, CUSTOMER) == 420  # 404.95 + 10.00 + 5.55


def test_bad_or_missing_signature_is_401_and_books_nothing(
    api: Api, http: httpx.Client, tenant: tuple[str, str]
) -> None:
    setup(api)
    body = sample("shopify_orders_paid.json")
    raw = json.dumps(body).encode()
    wrong = shopify_post(http, tenant[0], "orders/paid", raw, secret="another-secret-entirely")
    missing = shopify_post(http, tenant[0], "orders/paid", raw, signature="")
    # signed, then altered in transit
    from tests.integration.platforms import sign

    altered = shopify_post(
        http, tenant[0], "orders/paid", raw.replace(b"404.95", b"999.95"), signature=sign(raw)
    )
    other_tenant, _ = new_tenant()
    unconfigured = shopify_post(http, other_tenant, "orders/paid", raw)
    unknown = shopify_post(http, "ten_doesnotexist", "orders/paid", raw)
    for response in (wrong, missing, altered, unconfigured, unknown):
        assert response.status_code == 401, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["code"] == "invalid_signature"
    assert counts(tenant[0]) == (0, 0)
    assert deliveries(tenant[0]) == 0
    # the same bytes correctly signed are booked
    assert shopify_post(http, tenant[0], "orders/paid", raw).json()["status"] == "booked"


def test_same_delivery_twice_is_booked_once(
    api: Api, http: httpx.Client, tenant: tuple[str, str]
) -> None:
    setup(api)
    body = sample("shopify_orders_paid.json")
    first = shopify_post(http, tenant[0], "orders/paid", body, webhook_id="w-1", event_id="e-1")
    again = shopify_post(http, tenant[0], "orders/paid", body, webhook_id="w-1", event_id="e-1")
    assert first.json()["status"] == "booked"
    assert again.status_code == 200
    assert again.json()["status"] == "duplicate"
    # a new delivery of the same event (another webhook id) is caught by the event id too
    third = shopify_post(http, tenant[0], "orders/paid", body, webhook_id="w-2", event_id="e-1")
    assert third.json()["status"] == "duplicate"
    assert counts(tenant[0]) == (1, 0)
    assert points(api, CUSTOMER) == 404


def test_same_order_through_other_deliveries_is_booked_once(
    api: Api, http: httpx.Client, tenant: tuple[str, str]
) -> None:
    setup(api)
    created = sample("shopify_orders_paid.json")  # financial_status "voided": not paid
    response = shopify_post(http, tenant[0], "orders/create", created)
    assert response.json()["status"] == "recorded"
    assert counts(tenant[0]) == (0, 0)
    assert shopify_post(http, tenant[0], "orders/paid", created).json()["status"] == "booked"
    paid_again = copy.deepcopy(created)
    paid_again["financial_status"] = "paid"
    paid_again["cancelled_at"] = None  # orders/updated of a cancelled order cancels it
    for topic in ("orders/paid", "orders/create", "orders/updated"):
        assert shopify_post(http, tenant[0], topic, paid_again).json()["status"] == "duplicate"
    assert counts(tenant[0]) == (1, 0)
    assert points(api, CUSTOMER) == 404


def test_book_on_created(api: Api, http: httpx.Client, tenant: tuple[str, str]) -> None:
    setup(api, book_on="created")
    response = shopify_post(http, tenant[0], "orders/create", sample("shopify_orders_paid.json"))
    assert response.json()["status"] == "booked"
    assert points(api, CUSTOMER) == 404


def test_ids_above_2_53_stay_exact(api: Api, http: httpx.Client, tenant: tuple[str, str]) -> None:
    setup(api)
    body = sample("shopify_orders_paid.json")
    # the exact ids of the example (its gids); a float would round both
    body["id"] = 820982911946154508
    body["customer"]["id"] = 115310627314723954
    raw = json.dumps(body).encode()
    assert b"820982911946154508" in raw
    assert shopify_post(http, tenant[0], "orders/paid", raw).json()["status"] == "booked"
    order = api.get("/v1/orders/820982911946154508")
    assert order.status_code == 200, order.text
    assert order.json()["order_id"] == "820982911946154508"
    assert order.json()["member_id"] == "115310627314723954"
    assert points(api, "115310627314723954") == 404
    assert api.get("/v1/orders/820982911946154500").status_code == 404
    refund = sample("shopify_refunds_create.json")
    refund["id"] = 890088186047892319
    refund["order_id"] = 820982911946154508
    response = shopify_post(http, tenant[0], "refunds/create", refund)
    assert response.json()["status"] == "refunded", response.text
    assert response.json()["refund_id"] == "890088186047892319"


def test_refund_is_mapped_and_booked_once(
    api: Api, http: httpx.Client, tenant: tuple[str, str]
) -> None:
    setup(api)
    shopify_post(http, tenant[0], "orders/paid", sample("shopify_orders_paid.json"))
    refund = sample("shopify_refunds_create.json")
    response = shopify_post(http, tenant[0], "refunds/create", refund)
    assert response.json()["status"] == "refunded", response.text
    # the money returned (two refund transactions, 75.00 + 10.00) of the 404.95 order:
    # floor(404 x 85 / 404.95) = 84 points reversed
    assert points(api, CUSTOMER) == 320
    again = shopify_post(http, tenant[0], "refunds/create", refund)
    assert again.json()["status"] == "duplicate"
    assert counts(tenant[0]) == (1, 1)
    assert points(api, CUSTOMER) == 320
    assert ledger_ok(tenant[0]) == []


def test_refund_without_transactions_uses_the_lines(
    api: Api, http: httpx.Client, tenant: tuple[str, str]
) -> None:
    setup(api)
    shopify_post(http, tenant[0], "orders/paid", sample("shopify_orders_paid.json"))
    refund = sample("shopify_refunds_create.json")
    refund["transactions"] = []
    refund["refund_line_items"] = refund["refund_line_items"][:1]  # the 89.99 sunglasses
    assert shopify_post(http, tenant[0], "refunds/create", refund).json()["status"] == "refunded"
    # floor(404 x 89.99 / 404.95) = 89
    assert points(api, CUSTOMER) == 404 - 89
    # the published refund's lines (414.95) exceed the order: booked for what is left
    whole = sample("shopify_refunds_create.json")
    whole["id"] = 1
    whole["transactions"] = []
    assert shopify_post(http, tenant[0], "refunds/create", whole).json()["status"] == "refunded"
    assert points(api, CUSTOMER) == 0
    assert ledger_ok(tenant[0]) == []


def test_refund_of_an_order_not_booked_is_recorded(
    api: Api, http: httpx.Client, tenant: tuple[str, str]
) -> None:
    setup(api)
    response = shopify_post(
        http, tenant[0], "refunds/create", sample("shopify_refunds_create.json")
    )
    assert response.status_code == 200
    assert response.json()["status"] == "order_not_booked"
    assert counts(tenant[0]) == (0, 0)


def test_cancelled_order_reverses_its_points(
    api: Api, http: httpx.Client, tenant: tuple[str, str]
) -> None:
    setup(api)
    body = sample("shopify_orders_paid.json")
    shopify_post(http, tenant[0], "orders/paid", body)
    assert points(api, CUSTOMER) == 404
    assert shopify_post(http, tenant[0], "orders/cancelled", body).json()["status"] == "cancelled"
    assert points(api, CUSTOMER) == 0
    assert shopify_post(http, tenant[0], "orders/cancelled", body).json()["status"] == "duplicate"
    assert api.get(f"/v1/orders/{ORDER}").json()["status"] == "cancelled"
    assert ledger_ok(tenant[0]) == []


def test_guest_order_is_recorded_and_earns_nothing(
    api: Api, http: httpx.Client, tenant: tuple[str, str]
) -> None:
    setup(api)
    body = sample("shopify_orders_paid.json")
    body["customer"] = None
    response = shopify_post(http, tenant[0], "orders/paid", body)
    assert response.json()["status"] == "booked"
    order = api.get(f"/v1/orders/{ORDER}").json()
    assert order["member_id"] is None
    assert counts(tenant[0]) == (1, 0)
    assert api.get(f"/v1/members/{CUSTOMER}").status_code == 404


def test_test_orders_can_be_ignored(api: Api, http: httpx.Client, tenant: tuple[str, str]) -> None:
    setup(api, ignore_test_orders=True)
    body = sample("shopify_orders_paid.json")  # "test": true
    assert shopify_post(http, tenant[0], "orders/paid", body).json()["status"] == "ignored"
    body["test"] = False
    assert shopify_post(http, tenant[0], "orders/paid", body).json()["status"] == "booked"
    assert counts(tenant[0]) == (1, 0)


def test_unmappable_order_is_recorded_as_failed(
    api: Api, http: httpx.Client, tenant: tuple[str, str]
) -> None:
    setup(api)
    body = sample("shopify_orders_paid.json")
    body["currency"] = "EUR"  # the program is in USD
    response = shopify_post(http, tenant[0], "orders/paid", body)
    assert response.status_code == 200
    assert response.json()["status"] == "failed"
    assert counts(tenant[0]) == (0, 0)
    listed = api.get("/v1/integrations/shopify/deliveries").json()["data"]
    assert listed[0]["outcome"] == "failed"
    bad_json = shopify_post(http, tenant[0], "orders/paid", b"{not json")
    assert bad_json.status_code == 400
    assert bad_json.json()["code"] == "malformed_json"


def test_customer_create_and_update_upsert_the_member(
    api: Api, http: httpx.Client, tenant: tuple[str, str]
) -> None:
    setup(api)
    customer = sample("shopify_customers_create.json")
    response = shopify_post(http, tenant[0], "customers/create", customer)
    assert response.json()["status"] == "member_created", response.text
    member = api.get("/v1/members/706405506930370000").json()
    assert member["email"] == "bob@biller.com"
    assert member["name"] == "Bob Biller"
    updated = dict(customer, phone="+16135550199", tags="vip, newsletter")
    updated["email_marketing_consent"] = {"state": "subscribed", "opt_in_level": "single_opt_in"}
    updated["sms_marketing_consent"] = {"state": "not_subscribed"}
    response = shopify_post(http, tenant[0], "customers/update", updated)
    assert response.json()["status"] == "member_updated"
    member = api.get("/v1/members/706405506930370000").json()
    assert member["phone"] == "+16135550199"
    assert member["tags"] == ["vip", "newsletter"]
    assert member["attributes"]["email_marketing_consent"] is True
    assert member["attributes"]["sms_marketing_consent"] is False


def test_gdpr_data_request_and_customer_redact(
    api: Api, http: httpx.Client, tenant: tuple[str, str]
) -> None:
    setup(api)
    shopify_post(http, tenant[0], "customers/create", sample("shopify_customers_create.json"))
    order = sample("shopify_orders_paid.json")
    order["customer"]["id"] = 706405506930370000
    shopify_post(http, tenant[0], "orders/paid", order)
    request = {
        "shop_id": 954889,
        "shop_domain": "example.myshopify.com",
        "orders_requested": [820982911946154500],
        "customer": {"id": 706405506930370000, "email": "bob@biller.com", "phone": None},
        "data_request": {"id": 9999},
    }
    response = shopify_post(http, tenant[0], "customers/data_request", request)
    assert response.json()["status"] == "data_request_recorded", response.text
    listed = api.get("/v1/integrations/shopify/data-requests").json()["data"]
    assert [r["kind"] for r in listed] == ["access"]
    found = api.get(f"/v1/integrations/shopify/data-requests/{listed[0]['request_id']}").json()
    assert found["platform_request_id"] == "9999"
    assert found["export"]["profile"]["email"] == "bob@biller.com"
    assert [o["order_id"] for o in found["export"]["orders"]] == [ORDER]

    redact = {
        "shop_id": 954889,
        "shop_domain": "example.myshopify.com",
        "customer": {"id": 706405506930370000, "email": "bob@biller.com", "phone": None},
        "orders_to_redact": [820982911946154500],
    }
    response = shopify_post(http, tenant[0], "customers/redact", redact)
    assert response.json()["status"] == "member_erased"
    member = api.get("/v1/members/706405506930370000").json()
    assert member["email"] is None and member["name"] is None
    assert points(api, "706405506930370000") == 404  # ledger totals stay
    # the export made earlier is personal data too: gone
    again = api.get(f"/v1/integrations/shopify/data-requests/{listed[0]['request_id']}").json()
    assert again["export"] is None
    kinds = [r["kind"] for r in api.get("/v1/integrations/shopify/data-requests").json()["data"]]
    assert sorted(kinds) == ["access", "erasure"]
    assert ledger_ok(tenant[0]) == []


def test_gdpr_shop_redact_erases_every_member(
    api: Api, http: httpx.Client, tenant: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(get_settings(), "job_batch_size", 2)  # several batches
    setup(api)
    customer = sample("shopify_customers_create.json")
    for customer_id in (1001, 1002, 1003):
        shopify_post(http, tenant[0], "customers/create", dict(customer, id=customer_id))
    body = {"shop_id": 954889, "shop_domain": "example.myshopify.com"}
    response = shopify_post(http, tenant[0], "shop/redact", body)
    # answered at once; the erasure itself is the data_erasures job's
    assert response.json()["status"] == "shop_erasure_started"
    assert response.json()["members_to_erase"] == 3
    request_id = response.json()["request_id"]
    again = shopify_post(http, tenant[0], "shop/redact", body).json()
    assert again["request_id"] == request_id  # one request while it runs
    assert api.get("/v1/members/1001").json()["email"] is not None
    found = api.get(f"/v1/integrations/shopify/data-requests/{request_id}").json()
    assert (found["kind"], found["status"]) == ("shop_erasure", "in_progress")
    counts = run_all(get_engine(), utcnow(), tenant[0])
    assert counts["data_erasures"] == 3
    for customer_id in (1001, 1002, 1003):
        assert api.get(f"/v1/members/{customer_id}").json()["email"] is None
    found = api.get(f"/v1/integrations/shopify/data-requests/{request_id}").json()
    assert found["status"] == "completed"
    assert run_all(get_engine(), utcnow(), tenant[0])["data_erasures"] == 0


def test_unknown_topic_is_acknowledged(
    api: Api, http: httpx.Client, tenant: tuple[str, str]
) -> None:
    setup(api)
    response = shopify_post(http, tenant[0], "products/update", {"id": 1})
    assert response.status_code == 200
    assert response.json()["status"] == "ignored"


def test_connection_settings_hide_secrets(api: Api, tenant: tuple[str, str]) -> None:
    assert api.put("/v1/integrations/shopify", json={"mapping": {}}).status_code == 422
    body = {
        "webhook_secret": SECRET,
        "shop_domain": "example.myshopify.com",
        "access_token": "shpat_abcdefghijklmnopqrstuvwxyz",
        "mapping": {"earn_on": "total", "channel": "web"},
    }
    response = api.put("/v1/integrations/shopify", json=body)
    assert response.status_code == 200, response.text
    shown = api.get("/v1/integrations/shopify").json()
    assert SECRET not in json.dumps(shown)
    assert "shpat_abcdefghijklmnopqrstuvwxyz" not in json.dumps(shown)
    assert shown["webhook_secret"] == "****" + SECRET[-4:]
    assert shown["access_token"].startswith("****")
    assert shown["mapping"]["earn_on"] == "total"
    assert shown["webhook_url"] == f"/integrations/shopify/{tenant[0]}"
    # a PUT without secrets keeps them
    assert api.put("/v1/integrations/shopify", json={"mapping": {}}).status_code == 200
    assert api.get("/v1/integrations/shopify").json()["webhook_secret"] == shown["webhook_secret"]
    bad = api.put("/v1/integrations/shopify", json={"mapping": {"earn_on": "gross"}})
    assert bad.status_code == 422
    assert api.put("/v1/integrations/ebay", json={}).status_code == 422
    storefront = api.post("/v1/api-keys", json={"scope": "ingest"})
    if storefront.status_code == 201:
        ingest = api.with_key(storefront.json()["api_key"])
        assert ingest.get("/v1/integrations/shopify").status_code == 403
    assert api.delete("/v1/integrations/shopify").status_code == 204
    assert api.get("/v1/integrations/shopify").status_code == 404
    assert api.delete("/v1/integrations/shopify").status_code == 404


def test_a_delivery_from_another_shop_is_refused(
    api: Api, http: httpx.Client, tenant: tuple[str, str]
) -> None:
    apply_program(api, BASIC_PROGRAM)
    body = {"webhook_secret": SECRET, "shop_domain": "other.myshopify.com"}
    assert api.put("/v1/integrations/shopify", json=body).status_code == 200
    # the helper sends X-Shopify-Shop-Domain: example.myshopify.com
    response = shopify_post(http, tenant[0], "orders/paid", sample("shopify_orders_paid.json"))
    assert response.status_code == 401
    assert counts(tenant[0]) == (0, 0)
    assert deliveries(tenant[0]) == 0
