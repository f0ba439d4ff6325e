"""Partner keys: scoped to their own partner's orders, refunds and settlement row."""

from __future__ import annotations

from tests.conftest import Api, order
from tests.partners.helpers import COALITION, setup_coalition


def test_a_partner_key_cannot_read_another_partners_data(api: Api) -> None:
    cafe, books = setup_coalition(api)
    assert cafe.post("/v1/orders", json=order("c-1", "m1", "20.00")).status_code == 201
    assert books.post("/v1/orders", json=order("b-1", "m1", "50.00")).status_code == 201

    own = cafe.get("/v1/orders/c-1")
    assert own.status_code == 200, own.text
    assert own.json()["partner"] == "cafe"
    assert own.json()["points"] == {"points": {"earned": 25, "reversed": 0}}
    # another partner's order does not exist for this key, whatever the verb
    for response in (
        cafe.get("/v1/orders/b-1"),
        cafe.post("/v1/orders/b-1/refunds", json={"id": "x-1", "amount": "5.00"}),
        cafe.post("/v1/orders/b-1/cancel"),
    ):
        assert response.status_code == 404, response.text
        assert response.json()["code"] == "order_not_found"
    assert books.get("/v1/orders/b-1").json()["status"] == "completed"
    # nor do the program's own orders
    assert api.post("/v1/orders", json=order("shop-1", "m1", "9.00")).status_code == 201
    assert cafe.get("/v1/orders/shop-1").status_code == 404
    assert api.get("/v1/orders/shop-1").json()["partner"] is None
    assert api.get("/v1/orders/b-1").json()["points"]["points"]["earned"] == 50  # admin: all

    # the settlement shows a partner its own row, against the program alone
    settlement = cafe.get("/v1/analytics/partner-settlement?from=2020-01-01&to=2030-12-31")
    assert settlement.status_code == 200, settlement.text
    body = settlement.json()
    assert [row["partner"] for row in body["partners"]] == ["cafe"]
    assert body["partners"][0]["net_amount"] == "0.25"
    assert body["program"]["net_amount"] == "-0.25" and body["total"] == "0.00"
    everyone = api.get("/v1/analytics/partner-settlement?from=2020-01-01&to=2030-12-31").json()
    assert [row["partner"] for row in everyone["partners"]] == ["cafe", "books"]
    assert everyone["program"]["net_amount"] == "-1.25"  # 0.25 + 50 × 0.02

    # a partner books for itself only
    r = cafe.post("/v1/orders", json=order("c-2", "m1", "5.00", partner="books"))
    assert r.status_code == 403 and r.json()["code"] == "partner_mismatch"
    # order ids are shared: another partner's id is refused, never replayed
    r = cafe.post("/v1/orders", json=order("b-1", "m1", "50.00"))
    assert r.status_code == 409 and r.json()["code"] == "order_already_booked"


def test_what_a_partner_key_may_do(api: Api) -> None:
    cafe, _ = setup_coalition(api)
    assert cafe.post("/v1/orders", json=order("c-1", "m1", "20.00")).status_code == 201
    assert cafe.get("/v1/members/m1").json()["balances"]["points"]["active"] == 25
    assert cafe.post("/v1/evaluate", json=order("cart", "m1", "10.00")).json()["points"] == {
        "points": 15
    }
    refund = cafe.post("/v1/orders/c-1/refunds", json={"id": "c-1-r", "amount": "20.00"})
    assert refund.status_code == 201, refund.text
    for response in (
        cafe.put("/v1/program", json=COALITION),
        cafe.get("/v1/program"),
        cafe.post("/v1/api-keys", json={"scope": "partner", "partner": "cafe"}),
        cafe.put("/v1/members/m1", json={"email": "x@example.com"}),
        cafe.post("/v1/members/m1/adjustments", json={"id": "a", "amount": 5, "reason": "x"}),
        cafe.post("/v1/events", json={"id": "e", "type": "review.created", "member_id": "m1"}),
        cafe.get("/v1/members/m1/ledger"),
    ):
        assert response.status_code == 403, response.text
        assert response.json()["code"] == "insufficient_scope"
    # other keys cannot read the settlement
    ingest = api.post("/v1/api-keys", json={"scope": "ingest"}).json()["api_key"]
    r = api.with_key(ingest).get("/v1/analytics/partner-settlement?from=2026-01-01&to=2026-01-31")
    assert r.status_code == 403


def test_partner_keys_are_checked_when_created(api: Api) -> None:
    r = api.post("/v1/api-keys", json={"scope": "partner", "partner": "cafe"})
    assert r.status_code == 422  # no program yet, so no partners
    setup_coalition(api)
    for body, loc in (
        ({"scope": "partner"}, ["body", "partner"]),
        ({"scope": "partner", "partner": "bakery"}, ["body", "partner"]),
        ({"scope": "ingest", "partner": "cafe"}, ["body", "partner"]),
    ):
        r = api.post("/v1/api-keys", json=body)
        assert r.status_code == 422, r.text
        assert r.json()["errors"][0]["loc"] == loc
    listed = api.get("/v1/api-keys").json()["data"]
    assert sorted(k["partner"] or "" for k in listed) == ["", "books", "cafe"]


def test_orders_name_only_declared_partners(api: Api) -> None:
    cafe, _ = setup_coalition(api)
    r = api.post("/v1/orders", json=order("o-1", "m1", "5.00", partner="bakery"))
    assert r.status_code == 422
    assert r.json()["errors"][0]["loc"] == ["body", "partner"]
    # a partner dropped from the program can no longer book
    document = {**COALITION, "partners": [{"key": "books", "point_value": "0.02"}]}
    assert api.put("/v1/program", json=document).status_code == 200
    r = cafe.post("/v1/orders", json=order("o-2", "m1", "5.00"))
    assert r.status_code == 403 and r.json()["code"] == "partner_not_in_program"


def test_partner_section_is_validated(api: Api) -> None:
    document = {
        **COALITION,
        "wallets": {"points": {}, "credit": {"kind": "credit", "precision": 2}},
        "partners": [
            {"key": "cafe"},  # no point_value anywhere
            {"key": "cafe", "point_value": "0.01"},
            {"key": "books", "wallet": "miles", "point_value": "0.01"},
            {"key": "bank", "wallet": "credit"},  # credit wallets are worth 1 a unit
        ],
    }
    r = api.put("/v1/program", json=document)
    assert r.status_code == 422
    locs = [e["loc"] for e in r.json()["errors"]]
    assert locs == [
        ["partners", 0, "point_value"],
        ["partners", 1, "key"],
        ["partners", 2, "wallet"],
    ]


def test_cli_creates_a_partner_key(api: Api, tenant: tuple[str, str]) -> None:
    import json

    from typer.testing import CliRunner

    from allegiance.cli import app

    setup_coalition(api)
    runner = CliRunner()
    args = ["keys", "create", "--tenant", tenant[0], "--scope", "partner"]
    result = runner.invoke(app, [*args, "--partner", "cafe", "--json"])
    assert result.exit_code == 0, result.output
    created = json.loads(result.output)
    assert created["partner"] == "cafe" and created["scope"] == "partner"
    key = api.with_key(created["api_key"])
    assert key.post("/v1/orders", json=order("c-1", "m1", "1.00")).json()["partner"] == "cafe"
    result = runner.invoke(app, [*args, "--partner", "bakery"])
    assert result.exit_code == 1
