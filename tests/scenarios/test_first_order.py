"""A merchant's first day: program, member, order, refund, ledger."""

from __future__ import annotations

from tests.conftest import BASIC_PROGRAM, Api, apply_program, ledger_ok, order


def test_order_earns_and_refund_reverses(api: Api, tenant: tuple[str, str]) -> None:
    apply_program(api, BASIC_PROGRAM)
    assert api.put("/v1/members/m1", json={"email": "a@example.com"}).status_code == 201
    response = api.post("/v1/orders", json=order("o1", "m1", "40.00", "60.50"))
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["effects"] == [
        {"type": "points_earned", "wallet": "points", "amount": 100, "rule": "base"}
    ]
    assert body["balances"] == {"points": {"active": 100, "pending": 0}}
    refund = api.post("/v1/orders/o1/refunds", json={"id": "r1", "amount": "50.25"})
    assert refund.status_code == 201, refund.text
    assert refund.json()["effects"][0]["amount"] == 50  # 100 * 50.25 / 100.50
    member = api.get("/v1/members/m1").json()
    assert member["balances"]["points"]["active"] == 50
    ledger = api.get("/v1/members/m1/ledger").json()["data"]
    assert [t["code"] for t in ledger] == ["reverse", "earn"]
    assert ledger_ok(tenant[0]) == []
