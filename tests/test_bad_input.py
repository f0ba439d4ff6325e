"""Bad input is refused with a located problem+json and leaves no trace in the database."""

from __future__ import annotations

import copy
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from tests.conftest import BASIC_PROGRAM, Api, apply_program, ledger_ok, order

PROBLEM = "application/problem+json"

PROGRAM: dict[str, Any] = {
    **BASIC_PROGRAM,
    "wallets": {
        "points": {"precision": 0, "rounding": "floor"},
        "credit": {"precision": 2, "kind": "credit"},
    },
}


def tenant_rows(tenant_id: str) -> dict[str, int]:
    """How many rows of each kind the tenant has (members, orders, ledger, idempotency ...)."""
    from allegiance.db import get_engine, read_session
    from allegiance.models import (
        Event,
        IdempotencyRecord,
        LedgerAccount,
        Lot,
        Member,
        Order,
        OutboxEvent,
        Refund,
        Transfer,
    )

    counts: dict[str, int] = {}
    with read_session(get_engine()) as session:
        for model in (
            Member,
            Order,
            Refund,
            Event,
            Transfer,
            Lot,
            LedgerAccount,
            IdempotencyRecord,
            OutboxEvent,
        ):
            counts[model.__tablename__] = int(
                session.scalar(
                    select(func.count()).select_from(model).where(model.tenant_id == tenant_id)
                )
                or 0
            )
    return counts


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].split(";")[0] == PROBLEM, response.headers
    body = response.json()
    assert body["code"] == code, body
    assert body["status"] == status, body
    assert isinstance(body.get("detail"), str) and body["detail"]
    assert "Idempotent-Replayed" not in response.headers
    return body


def locs(body: dict[str, Any]) -> list[list[Any]]:
    assert isinstance(body.get("errors"), list) and body["errors"], body
    for err in body["errors"]:
        assert isinstance(err["loc"], list), err
        assert isinstance(err["msg"], str) and err["msg"], err
    return [err["loc"] for err in body["errors"]]


@pytest.fixture()
def shop(api: Api, tenant: tuple[str, str]) -> tuple[Api, str]:
    apply_program(api, PROGRAM)
    return api, tenant[0]


def assert_untouched(
    api: Api,
    tenant_id: str,
    before: dict[str, int],
    *,
    member_id: str | None = None,
    order_id: str | None = None,
) -> None:
    assert tenant_rows(tenant_id) == before
    if member_id is not None:
        response = api.get(f"/v1/members/{member_id}")
        assert_problem(response, 404, "member_not_found")
    if order_id is not None:
        response = api.post(f"/v1/orders/{order_id}/refunds", json={"id": "probe", "amount": "1"})
        assert_problem(response, 404, "order_not_found")
    assert ledger_ok(tenant_id) == []


def test_malformed_json_is_400_with_a_location(shop: tuple[Api, str]) -> None:
    api, tenant_id = shop
    before = tenant_rows(tenant_id)
    response = api.post(
        "/v1/orders",
        content=b'{"id": "o1", "member_id": "m1", "items": [',
        headers={"Content-Type": "application/json"},
    )
    body = assert_problem(response, 400, "malformed_json")
    assert all(loc and loc[0] == "body" for loc in locs(body))
    assert_untouched(api, tenant_id, before, member_id="m1", order_id="o1")


def test_malformed_json_on_every_create(shop: tuple[Api, str]) -> None:
    api, tenant_id = shop
    assert api.put("/v1/members/m1", json={}).status_code == 201
    before = tenant_rows(tenant_id)
    for path in (
        "/v1/orders/o1/refunds",
        "/v1/members/m1/adjustments",
        "/v1/events",
        "/v1/members/m2",
    ):
        method = "PUT" if path == "/v1/members/m2" else "POST"
        response = api.request(
            method, path, content=b"{not json}", headers={"Content-Type": "application/json"}
        )
        body = assert_problem(response, 400, "malformed_json")
        locs(body)
    assert_untouched(api, tenant_id, before, member_id="m2", order_id="o1")


def test_malformed_program_json_keeps_the_previous_version(shop: tuple[Api, str]) -> None:
    api, tenant_id = shop
    before = tenant_rows(tenant_id)
    previous = api.get("/v1/program").json()
    response = api.put(
        "/v1/program", content=b'{"name": "x",', headers={"Content-Type": "application/json"}
    )
    body = assert_problem(response, 400, "malformed_json")
    locs(body)
    assert api.get("/v1/program").json() == previous
    assert tenant_rows(tenant_id) == before


@pytest.mark.parametrize(
    ("mutate", "loc"),
    [
        (lambda b: b.update(items="not a list"), ["body", "items"]),
        (lambda b: b["items"][0].update(quantity="three"), ["body", "items", 0, "quantity"]),
        (lambda b: b["items"][0].update(quantity=-1), ["body", "items", 0, "quantity"]),
        (lambda b: b["items"][0].update(amount="-5.00"), ["body", "items", 0, "amount"]),
        (lambda b: b["items"][0].update(amount=[1]), ["body", "items", 0, "amount"]),
        (lambda b: b["items"][0].update(amount="NaN"), ["body", "items", 0, "amount"]),
        (lambda b: b.update(placed_at="yesterday"), ["body", "placed_at"]),
        (lambda b: b.update(total={"x": 1}), ["body", "total"]),
        (lambda b: b.update(id=""), ["body", "id"]),
        (lambda b: b.pop("id"), ["body", "id"]),
        (lambda b: b.update(colour="red"), ["body", "colour"]),
        (lambda b: b["items"][0].update(colour="red"), ["body", "items", 0, "colour"]),
        (lambda b: b.update(currency="usd"), ["body", "currency"]),
    ],
    ids=[
        "items-not-list",
        "quantity-str",
        "negative-quantity",
        "negative-amount",
        "amount-list",
        "amount-nan",
        "bad-date",
        "total-object",
        "empty-id",
        "missing-id",
        "unknown-field",
        "unknown-item-field",
        "currency-lowercase",
    ],
)
def test_wrong_types_in_an_order(shop: tuple[Api, str], mutate: Any, loc: list[Any]) -> None:
    api, tenant_id = shop
    before = tenant_rows(tenant_id)
    body = order("o1", "m1", "10.00", "5.50")
    mutate(body)
    response = api.post("/v1/orders", json=body)
    problem = assert_problem(response, 422, "validation_error")
    assert loc in locs(problem), problem
    assert_untouched(api, tenant_id, before, member_id="m1", order_id="o1")


@pytest.mark.parametrize(
    ("mutate", "loc"),
    [
        (
            lambda b: b["items"][1].update(amount="1.005", unit_price="1.00"),
            ["body", "items", 1, "amount"],
        ),
        (lambda b: b["items"][0].update(unit_price="3.333"), ["body", "items", 0, "unit_price"]),
        (lambda b: b.update(total="15.501"), ["body", "total"]),
        (lambda b: b.update(shipping_amount="0.001"), ["body", "shipping_amount"]),
    ],
    ids=["item-amount", "unit-price", "total", "shipping"],
)
def test_more_decimals_than_the_currency_allows(
    shop: tuple[Api, str], mutate: Any, loc: list[Any]
) -> None:
    api, tenant_id = shop
    before = tenant_rows(tenant_id)
    body = order("o1", "m1", "10.00", "5.50")
    mutate(body)
    response = api.post("/v1/orders", json=body)
    problem = assert_problem(response, 422, "validation_error")
    assert locs(problem) == [loc], problem
    assert_untouched(api, tenant_id, before, member_id="m1", order_id="o1")
    # the id was not pinned to the refusal: the corrected order is accepted under the same id
    response = api.post("/v1/orders", json=order("o1", "m1", "10.00", "5.50"))
    assert response.status_code == 201, response.text
    assert ledger_ok(tenant_id) == []


def test_order_in_another_currency(shop: tuple[Api, str]) -> None:
    api, tenant_id = shop
    before = tenant_rows(tenant_id)
    response = api.post("/v1/orders", json=order("o1", "m1", "10.00", currency="EUR"))
    problem = assert_problem(response, 422, "validation_error")
    assert locs(problem) == [["body", "currency"]]
    assert_untouched(api, tenant_id, before, member_id="m1", order_id="o1")


def test_refund_with_too_many_decimals(shop: tuple[Api, str]) -> None:
    api, tenant_id = shop
    assert api.post("/v1/orders", json=order("o1", "m1", "10.00")).status_code == 201
    before = tenant_rows(tenant_id)
    response = api.post("/v1/orders/o1/refunds", json={"id": "r1", "amount": "1.005"})
    problem = assert_problem(response, 422, "validation_error")
    assert locs(problem) == [["body", "amount"]]
    response = api.post(
        "/v1/orders/o1/refunds", json={"id": "r1", "items": [{"sku": "sku-0", "amount": "0.123"}]}
    )
    problem = assert_problem(response, 422, "validation_error")
    assert locs(problem) == [["body", "items", 0, "amount"]]
    assert tenant_rows(tenant_id) == before
    assert ledger_ok(tenant_id) == []


@pytest.mark.parametrize(
    ("payload", "loc"),
    [
        ({"id": "r1"}, ["body"]),
        ({"id": "r1", "amount": "2.00", "items": [{"amount": "2.00"}]}, ["body"]),
        ({"id": "r1", "amount": "-2.00"}, ["body", "amount"]),
        (
            {"id": "r1", "items": [{"amount": "1.00", "quantity": 0}]},
            ["body", "items", 0, "quantity"],
        ),
    ],
    ids=["neither", "both", "negative", "zero-quantity"],
)
def test_refund_payload_errors(
    shop: tuple[Api, str], payload: dict[str, Any], loc: list[Any]
) -> None:
    api, tenant_id = shop
    assert api.post("/v1/orders", json=order("o1", "m1", "10.00")).status_code == 201
    before = tenant_rows(tenant_id)
    problem = assert_problem(
        api.post("/v1/orders/o1/refunds", json=payload), 422, "validation_error"
    )
    assert loc in locs(problem), problem
    assert tenant_rows(tenant_id) == before


def test_refund_exceeding_the_order_writes_nothing(shop: tuple[Api, str]) -> None:
    api, tenant_id = shop
    assert api.post("/v1/orders", json=order("o1", "m1", "10.00", "5.50")).status_code == 201
    assert (
        api.post("/v1/orders/o1/refunds", json={"id": "r1", "amount": "10.00"}).status_code == 201
    )
    member_before = api.get("/v1/members/m1").json()
    ledger_before = api.get("/v1/members/m1/ledger").json()
    rows_before = tenant_rows(tenant_id)
    response = api.post("/v1/orders/o1/refunds", json={"id": "r2", "amount": "5.51"})
    problem = assert_problem(response, 409, "refund_exceeds_order")
    # nothing booked: no refund row, no transfer, no lot, no outbox event, same balances
    after = tenant_rows(tenant_id)
    assert after["refunds"] == rows_before["refunds"]
    assert after["ledger_transfers"] == rows_before["ledger_transfers"]
    assert after["ledger_lots"] == rows_before["ledger_lots"]
    assert after["outbox_events"] == rows_before["outbox_events"]
    assert api.get("/v1/members/m1").json() == member_before
    assert api.get("/v1/members/m1/ledger").json() == ledger_before
    # a business refusal stays failed under its id (replayed), a new id may refund the rest
    again = api.post("/v1/orders/o1/refunds", json={"id": "r2", "amount": "5.51"})
    assert again.status_code == 409
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.json() == problem
    ok = api.post("/v1/orders/o1/refunds", json={"id": "r3", "amount": "5.50"})
    assert ok.status_code == 201, ok.text
    assert ledger_ok(tenant_id) == []
    assert api.get("/v1/members/m1").json()["balances"]["points"]["active"] == 0


def test_adjustment_errors(shop: tuple[Api, str]) -> None:
    api, tenant_id = shop
    assert api.put("/v1/members/m1", json={}).status_code == 201
    before = tenant_rows(tenant_id)
    cases: list[tuple[dict[str, Any], list[Any]]] = [
        ({"id": "a1", "wallet": "gold", "amount": 10, "reason": "x"}, ["body", "wallet"]),
        ({"id": "a1", "wallet": "points", "amount": "1.5", "reason": "x"}, ["body", "amount"]),
        ({"id": "a1", "wallet": "credit", "amount": "1.505", "reason": "x"}, ["body", "amount"]),
        ({"id": "a1", "amount": 0, "reason": "x"}, ["body", "amount"]),
        ({"id": "a1", "amount": "ten", "reason": "x"}, ["body", "amount"]),
        ({"id": "a1", "amount": 5}, ["body", "reason"]),
        (
            {"id": "a1", "amount": 5, "reason": "x", "expires_at": "2000-01-01T00:00:00Z"},
            ["body", "expires_at"],
        ),
    ]
    for payload, loc in cases:
        response = api.post("/v1/members/m1/adjustments", json=payload)
        problem = assert_problem(response, 422, "validation_error")
        assert loc in locs(problem), (payload, problem)
    assert tenant_rows(tenant_id) == before
    # none of them pinned the id
    ok = api.post(
        "/v1/members/m1/adjustments",
        json={"id": "a1", "wallet": "credit", "amount": "1.50", "reason": "x"},
    )
    assert ok.status_code == 201, ok.text
    assert ok.json()["balances"]["credit"]["active"] == 1.5
    assert ledger_ok(tenant_id) == []


def test_adjustment_for_an_unknown_member(shop: tuple[Api, str]) -> None:
    api, tenant_id = shop
    before = tenant_rows(tenant_id)
    response = api.post(
        "/v1/members/ghost/adjustments", json={"id": "a1", "amount": 10, "reason": "x"}
    )
    assert_problem(response, 404, "member_not_found")
    assert_untouched(api, tenant_id, before, member_id="ghost")


def test_debit_over_the_balance_writes_nothing(shop: tuple[Api, str]) -> None:
    api, tenant_id = shop
    assert api.put("/v1/members/m1", json={}).status_code == 201
    assert (
        api.post(
            "/v1/members/m1/adjustments", json={"id": "a1", "amount": 10, "reason": "x"}
        ).status_code
        == 201
    )
    before = tenant_rows(tenant_id)
    response = api.post(
        "/v1/members/m1/adjustments", json={"id": "a2", "amount": -11, "reason": "x"}
    )
    assert_problem(response, 409, "insufficient_points")
    after = tenant_rows(tenant_id)
    assert after["idempotency_records"] == before["idempotency_records"] + 1  # pinned refusal
    assert {k: v for k, v in after.items() if k != "idempotency_records"} == {
        k: v for k, v in before.items() if k != "idempotency_records"
    }
    assert api.get("/v1/members/m1").json()["balances"]["points"]["active"] == 10
    assert ledger_ok(tenant_id) == []


def _bad_program(mutate: Any) -> dict[str, Any]:
    document = copy.deepcopy(PROGRAM)
    document["rules"] = [
        {"key": "base", "on": "order.completed", "earn": {"per_amount": 1}},
        {
            "key": "bonus",
            "on": "order.completed",
            "when": "order.total > 10.0",
            "earn": {"fixed": 5},
        },
    ]
    mutate(document)
    return document


@pytest.mark.parametrize(
    ("mutate", "loc"),
    [
        (lambda d: d["rules"][0].update(when="order.total >"), ["rules", 0, "when"]),
        (lambda d: d["rules"][0].update(when="order.total - 2 > 0.0"), ["rules", 0, "when"]),
        (lambda d: d["rules"][1].update(when="order.totl > 1.0"), ["rules", 1, "when"]),
        (lambda d: d["rules"][1].update(when="order.total"), ["rules", 1, "when"]),
        (
            lambda d: d["rules"][0]["earn"].update(items="item.price ==="),
            ["rules", 0, "earn", "items"],
        ),
        (lambda d: d.update(colour="red"), ["colour"]),
        (lambda d: d["rules"][0].update(earnings=1), ["rules", 0, "earnings"]),
        (
            lambda d: d["wallets"]["points"].update(precision="two"),
            ["wallets", "points", "precision"],
        ),
        (lambda d: d["rules"][1]["earn"].update(wallet="gold"), ["rules", 1, "earn", "wallet"]),
        (lambda d: d.update(refund_policy="sometimes"), ["refund_policy"]),
        (lambda d: d["rules"][1].update(key="base"), ["rules", 1, "key"]),
    ],
    ids=[
        "cel-syntax",
        "cel-int-double",
        "cel-unknown-field",
        "cel-not-bool",
        "cel-items-syntax",
        "unknown-top-key",
        "unknown-rule-key",
        "wrong-type",
        "unknown-wallet",
        "bad-enum",
        "duplicate-rule",
    ],
)
def test_invalid_program_is_422_located_and_not_applied(
    shop: tuple[Api, str], mutate: Any, loc: list[Any]
) -> None:
    api, tenant_id = shop
    previous = api.get("/v1/program").json()
    versions = api.get("/v1/program/versions").json()
    document = _bad_program(mutate)
    for dry_run in (True, False):
        response = api.put("/v1/program", json=document, params={"dry_run": str(dry_run).lower()})
        problem = assert_problem(response, 422, "invalid_program")
        assert loc in locs(problem), problem
    assert api.get("/v1/program").json() == previous
    assert api.get("/v1/program/versions").json() == versions
    assert tenant_rows(tenant_id)["ledger_transfers"] == 0


def test_cel_int_double_error_says_what_to_do(shop: tuple[Api, str]) -> None:
    api, _ = shop
    document = _bad_program(lambda d: d["rules"][0].update(when="order.total - 2 > 0.0"))
    problem = assert_problem(api.put("/v1/program", json=document), 422, "invalid_program")
    [err] = [e for e in problem["errors"] if e["loc"] == ["rules", 0, "when"]]
    assert "2.0" in err["msg"] or "double" in err["msg"], err


def test_body_over_the_size_limit_is_413(shop: tuple[Api, str]) -> None:
    api, tenant_id = shop
    before = tenant_rows(tenant_id)
    big = order("o1", "m1", "10.00", attributes={"blob": "x" * 250_000})
    response = api.post("/v1/orders", json=big)
    problem = assert_problem(response, 413, "body_too_large")
    locs(problem)
    assert_untouched(api, tenant_id, before, member_id="m1", order_id="o1")
    previous = api.get("/v1/program").json()
    response = api.put("/v1/program", json={**PROGRAM, "description": "y" * 250_000})
    assert_problem(response, 413, "body_too_large")
    assert api.get("/v1/program").json() == previous


def test_body_over_the_size_limit_without_content_length(shop: tuple[Api, str]) -> None:
    api, tenant_id = shop
    before = tenant_rows(tenant_id)
    import orjson

    raw = orjson.dumps(order("o1", "m1", "10.00", attributes={"blob": "x" * 250_000}))

    def chunks() -> Any:
        for start in range(0, len(raw), 16_384):
            yield raw[start : start + 16_384]

    response = api.post(
        "/v1/orders", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert_problem(response, 413, "body_too_large")
    assert_untouched(api, tenant_id, before, member_id="m1", order_id="o1")


def test_unknown_route_is_404_problem(api: Api) -> None:
    assert_problem(api.get("/v1/nothing-here"), 404, "not_found")
    assert_problem(api.post("/v1/orders/o1/nothing", json={}), 404, "not_found")
    assert_problem(api.request("PATCH", "/v1/orders"), 405, "method_not_allowed")


def test_unknown_order_refund_and_cancel_are_404(shop: tuple[Api, str]) -> None:
    api, tenant_id = shop
    before = tenant_rows(tenant_id)
    assert_problem(
        api.post("/v1/orders/nope/refunds", json={"id": "r1", "amount": "1.00"}),
        404,
        "order_not_found",
    )
    assert_problem(api.post("/v1/orders/nope/cancel"), 404, "order_not_found")
    assert tenant_rows(tenant_id) == before


def test_order_before_any_program_is_refused_and_not_pinned(
    api: Api, tenant: tuple[str, str]
) -> None:
    tenant_id = tenant[0]
    before = tenant_rows(tenant_id)
    response = api.post("/v1/orders", json=order("o1", "m1", "10.00"))
    assert_problem(response, 409, "program_not_found")
    assert tenant_rows(tenant_id) == before
    apply_program(api, PROGRAM)
    response = api.post("/v1/orders", json=order("o1", "m1", "10.00"))
    assert response.status_code == 201, response.text


def test_bad_clock_header_is_422(shop: tuple[Api, str]) -> None:
    api, tenant_id = shop
    before = tenant_rows(tenant_id)
    response = api.post(
        "/v1/orders", json=order("o1", "m1", "10.00"), headers={"X-Allegiance-Now": "not a time"}
    )
    problem = assert_problem(response, 422, "validation_error")
    assert locs(problem) == [["header", "X-Allegiance-Now"]]
    assert tenant_rows(tenant_id) == before
