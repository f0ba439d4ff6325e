"""Client ids may come from the ``Idempotency-Key`` header instead of the body's ``id``."""

from __future__ import annotations

from tests.conftest import BASIC_PROGRAM, Api, apply_program, ledger_ok, order


def test_header_key_books_once_and_replays(api: Api, tenant: tuple[str, str]) -> None:
    apply_program(api, {**BASIC_PROGRAM, "rules": [
        *BASIC_PROGRAM["rules"],
        {"key": "review", "on": "review.created", "earn": {"fixed": 5}},
    ]})  # fmt: skip
    assert api.post("/v1/orders", json=order("o1", "m1", "40.00")).status_code == 201
    header = {"Idempotency-Key": "refund-key-1"}
    first = api.post("/v1/orders/o1/refunds", json={"amount": "10.00"}, headers=header)
    assert first.status_code == 201, first.text
    assert first.json()["refund_id"] == "refund-key-1"
    again = api.post("/v1/orders/o1/refunds", json={"amount": "10.00"}, headers=header)
    assert again.status_code == 200
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    other = api.post("/v1/orders/o1/refunds", json={"amount": "5.00"}, headers=header)
    assert other.status_code == 409
    assert other.json()["code"] == "idempotency_conflict"

    event = {"type": "review.created", "member_id": "m1"}
    ev_header = {"Idempotency-Key": "ev-1"}
    assert api.post("/v1/events", json=event, headers=ev_header).status_code == 201
    assert api.post("/v1/events", json=event, headers=ev_header).status_code == 200
    credit = {"amount": 7, "reason": "goodwill"}
    adj_header = {"Idempotency-Key": "adj-1"}
    assert (
        api.post("/v1/members/m1/adjustments", json=credit, headers=adj_header).status_code == 201
    )
    assert (
        api.post("/v1/members/m1/adjustments", json=credit, headers=adj_header).status_code == 200
    )
    balance = api.get("/v1/members/m1").json()["balances"]["points"]["active"]
    assert balance == 40 - 10 + 5 + 7
    assert ledger_ok(tenant[0]) == []


def test_missing_or_contradicting_ids_are_422(api: Api) -> None:
    apply_program(api, BASIC_PROGRAM)
    assert api.post("/v1/orders", json=order("o1", "m1", "40.00")).status_code == 201
    missing = api.post("/v1/orders/o1/refunds", json={"amount": "1.00"})
    assert missing.status_code == 422
    assert missing.json()["errors"][0]["loc"] == ["body", "id"]
    both = api.post(
        "/v1/orders/o1/refunds",
        json={"id": "r1", "amount": "1.00"},
        headers={"Idempotency-Key": "r2"},
    )
    assert both.status_code == 422
    assert both.json()["errors"][0]["loc"] == ["header", "Idempotency-Key"]
    no_order_id = api.post(
        "/v1/orders",
        json={"member_id": "m1", "items": [{"amount": "1.00"}]},
        headers={"Idempotency-Key": "o2"},
    )
    assert no_order_id.status_code == 422
    assert api.get("/v1/members/m1").json()["balances"]["points"]["active"] == 40
