"""Two partners over a month: earnings, refunds and redemptions settle to zero."""

from __future__ import annotations

from decimal import Decimal

from tests.conftest import Api, ledger_ok, order
from tests.partners.helpers import setup_coalition, spend_at, system_balance


def test_two_partners_over_a_month_balance_to_zero(api: Api, tenant: tuple[str, str]) -> None:
    cafe, books = setup_coalition(api)
    tenant_id = tenant[0]

    def at(client: Api, moment: str) -> Api:
        client.now = moment
        return client

    # 1 March 00:30 in Warsaw is still February in UTC: it belongs to March
    r = at(cafe, "2026-02-28T23:30:00Z").post(
        "/v1/orders", json=order("cafe-1", "m1", "10.00", placed_at="2026-02-28T23:30:00Z")
    )
    assert r.status_code == 201, r.text
    assert r.json()["partner"] == "cafe"
    assert r.json()["effects"][0]["amount"] + r.json()["effects"][1]["amount"] == 15
    r = at(cafe, "2026-03-05T10:00:00Z").post("/v1/orders", json=order("cafe-2", "m1", "100.00"))
    assert r.status_code == 201, r.text  # 100 + 5
    # an admin (a coalition hub) may attribute an order to a partner
    r = at(api, "2026-03-06T10:00:00Z").post(
        "/v1/orders", json=order("cafe-3", "m2", "40.00", partner="cafe")
    )
    assert r.status_code == 201, r.text  # 40 + 5
    r = at(books, "2026-03-07T10:00:00Z").post("/v1/orders", json=order("books-1", "m1", "250.00"))
    assert r.status_code == 201, r.text
    r = at(books, "2026-03-08T10:00:00Z").post("/v1/orders", json=order("books-2", "m3", "60.00"))
    assert r.status_code == 201, r.text
    # the program's own shop: not part of any partner's settlement
    r = at(api, "2026-03-09T10:00:00Z").post("/v1/orders", json=order("shop-1", "m2", "500.00"))
    assert r.status_code == 201, r.text

    r = at(books, "2026-03-10T10:00:00Z").post("/v1/orders/books-2/cancel")
    assert r.status_code == 201, r.text  # -60
    r = at(cafe, "2026-03-15T10:00:00Z").post(
        "/v1/orders/cafe-2/refunds", json={"id": "cafe-2-r1", "amount": "20.00"}
    )
    assert r.status_code == 201, r.text
    assert r.json()["effects"][0]["amount"] == 21  # 105 × 20 / 100

    spend_at(cafe, "m1", 100, "2026-03-20T12:00:00Z", "red-1")
    spend_at(books, "m2", 30, "2026-03-25T12:00:00Z", "red-2")
    spend_at(api, "m2", 7, "2026-03-26T12:00:00Z", "red-3")
    # a partner sees the redemptions made at it, not the others'
    assert books.get("/v1/redemptions/red-2").json()["partner"] == "books"
    assert cafe.get("/v1/redemptions/red-2").status_code == 404
    assert cafe.get("/v1/redemptions/red-3").status_code == 404
    # April (local time): outside the period
    r = at(books, "2026-03-31T22:30:00Z").post("/v1/orders", json=order("books-3", "m1", "30.00"))
    assert r.status_code == 201, r.text
    spend_at(cafe, "m1", 10, "2026-03-31T22:30:00Z", "red-4")

    api.now = "2026-04-02T10:00:00Z"
    r = api.get("/v1/analytics/partner-settlement?from=2026-03-01&to=2026-03-31")
    assert r.status_code == 200, r.text
    body = r.json()
    rows = {row["partner"]: row for row in body["partners"]}
    assert rows["cafe"] == {
        "partner": "cafe",
        "name": "Corner Cafe",
        "wallet": "points",
        "point_value": "0.01",
        "points_issued": 144,  # 15 + 105 + 45 - 21
        "points_redeemed": 100,
        "issued_value": "1.44",
        "redeemed_value": "1.00",
        "net_amount": "0.44",
    }
    assert rows["books"] == {
        "partner": "books",
        "name": "Book Nook",
        "wallet": "points",
        "point_value": "0.02",
        "points_issued": 250,  # 250 + 60 - 60
        "points_redeemed": 30,
        "issued_value": "5.00",
        "redeemed_value": "0.60",
        "net_amount": "4.40",
    }
    assert body["program"]["net_amount"] == "-4.84"
    assert body["total"] == "0.00" and body["balanced"] is True
    nets = [Decimal(row["net_amount"]) for row in body["partners"]]
    assert sum(nets) + Decimal(body["program"]["net_amount"]) == 0

    # the whole year includes April's order and spend
    year = api.get("/v1/analytics/partner-settlement?from=2026-01-01&to=2026-12-31").json()
    rows = {row["partner"]: row for row in year["partners"]}
    assert rows["books"]["points_issued"] == 280 and rows["cafe"]["points_redeemed"] == 110
    assert year["balanced"] is True

    # the ledger agrees: each partner's account funded exactly its net points
    assert system_balance(tenant_id, "points", "partner:cafe") == (-144, 0)
    assert system_balance(tenant_id, "points", "partner:books") == (-280, 0)
    assert system_balance(tenant_id, "points", "issued") == (-500, 0)
    assert ledger_ok(tenant_id) == []
    history = api.get("/v1/members/m1/ledger").json()["data"]
    assert [(t["code"], t["partner"], t["amount"]) for t in history if t["code"] != "earn"] == [
        ("spend", "cafe", -10),
        ("spend", "cafe", -100),
        ("reverse", "cafe", -21),
    ]
    assert {t["partner"] for t in history if t["code"] == "earn"} == {"cafe", "books"}


def test_pending_points_activate_and_void_against_the_partner(
    api: Api, tenant: tuple[str, str]
) -> None:
    from tests.partners.helpers import COALITION

    document = {**COALITION, "wallets": {"points": {"pending_days": 14, "point_value": "0.01"}}}
    cafe, _ = setup_coalition(api, document)
    cafe.now = "2026-03-01T10:00:00Z"
    r = cafe.post("/v1/orders", json=order("c1", "m1", "100.00"))
    assert r.status_code == 201, r.text
    assert r.json()["effects"][0]["type"] == "points_pending"
    assert system_balance(tenant[0], "points", "partner:cafe") == (0, -105)
    cafe.now = "2026-03-03T10:00:00Z"
    r = cafe.post("/v1/orders/c1/refunds", json={"id": "c1-r", "amount": "40.00"})
    assert r.status_code == 201, r.text
    assert r.json()["effects"][0]["pending_voided"] == 42
    assert system_balance(tenant[0], "points", "partner:cafe") == (0, -63)
    # a later order of the member settles the matured lot: activated from the partner's account
    cafe.now = "2026-03-20T10:00:00Z"
    assert cafe.post("/v1/orders", json=order("c2", "m1", "10.00")).status_code == 201
    assert system_balance(tenant[0], "points", "partner:cafe") == (-63, -15)
    assert system_balance(tenant[0], "points", "issued") == (0, 0)
    cafe.now = "2026-03-21T10:00:00Z"
    r = cafe.post("/v1/orders/c1/cancel")
    assert r.status_code == 201, r.text
    assert system_balance(tenant[0], "points", "partner:cafe") == (0, -15)
    assert ledger_ok(tenant[0]) == []
    settlement = cafe.get("/v1/analytics/partner-settlement?from=2026-03-01&to=2026-03-31")
    assert settlement.json()["partners"][0]["points_issued"] == 15


def test_settlement_period_is_checked(api: Api) -> None:
    setup_coalition(api)
    r = api.get("/v1/analytics/partner-settlement?from=2026-03-31&to=2026-03-01")
    assert r.status_code == 422
    assert r.json()["errors"][0]["loc"] == ["query", "from"]
    r = api.get("/v1/analytics/partner-settlement?from=2026-13-01&to=2026-03-01")
    assert r.status_code == 422
    assert r.json()["errors"][0]["loc"] == ["query", "from"]
    assert api.get("/v1/analytics/partner-settlement?from=2026-03-01").status_code == 422
    r = api.get("/v1/analytics/partner-settlement?from=2026-03-01&to=2026-03-01")
    assert r.status_code == 200
    assert r.json()["total"] == "0.00" and r.json()["balanced"] is True
