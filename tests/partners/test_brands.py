"""A multi-brand program: one shared wallet and a wallet only one brand's orders earn."""

from __future__ import annotations

from typing import Any

from tests.conftest import Api, apply_program, ledger_ok, order

MULTI_BRAND: dict[str, Any] = {
    "name": "Acme Group Rewards",
    "currency": "USD",
    "brands": [{"key": "acme", "name": "Acme"}, {"key": "zest", "name": "Zest"}],
    "wallets": {
        "points": {},  # shared: every brand earns here
        "stars": {"brands": ["acme"]},  # Acme's own currency
    },
    "rules": [
        {"key": "base", "on": "order.completed", "earn": {"per_amount": 1}},
        {"key": "acme-stars", "on": "order.completed", "earn": {"wallet": "stars", "fixed": 10}},
        {
            "key": "zest-double",
            "on": "order.completed",
            "when": "order.brand == 'zest'",
            "multiply": {"factor": 2},
        },
    ],
}


def test_brand_scoped_wallet_earns_only_from_its_brands(api: Api, tenant: tuple[str, str]) -> None:
    apply_program(api, MULTI_BRAND)
    acme = api.post("/v1/orders", json=order("o-1", "m1", "30.00", brand="acme")).json()
    assert acme["rules_applied"] == ["base", "acme-stars"]
    assert acme["balances"] == {
        "points": {"active": 30, "pending": 0},
        "stars": {"active": 10, "pending": 0},
    }
    zest = api.post("/v1/orders", json=order("o-2", "m1", "20.00", brand="zest")).json()
    assert zest["rules_applied"] == ["base", "zest-double"]
    assert zest["balances"]["points"]["active"] == 70 and zest["balances"]["stars"]["active"] == 10
    # no brand sent: only shared wallets earn
    plain = api.post("/v1/orders", json=order("o-3", "m1", "5.00")).json()
    assert plain["rules_applied"] == ["base"]
    evaluated = api.post("/v1/evaluate", json=order("cart", "m1", "5.00", brand="acme")).json()
    assert evaluated["points"] == {"points": 5, "stars": 10}
    assert ledger_ok(tenant[0]) == []


def test_unknown_brand_is_refused(api: Api) -> None:
    apply_program(api, MULTI_BRAND)
    r = api.post("/v1/orders", json=order("o-1", "m1", "30.00", brand="acne"))
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["loc"] == ["body", "brand"]
    r = api.post("/v1/evaluate", json=order(None, "m1", "30.00", brand="acne"))
    assert r.status_code == 422
    # nothing was booked under the refused id
    assert api.post("/v1/orders", json=order("o-1", "m1", "30.00")).status_code == 201


def test_brands_without_declaration_are_free_text(api: Api) -> None:
    apply_program(
        api,
        {
            "name": "One shop",
            "currency": "USD",
            "rules": [{"key": "base", "on": "order.completed", "earn": {"per_amount": 1}}],
        },
    )
    assert api.post("/v1/orders", json=order("o-1", "m1", "3.00", brand="any")).status_code == 201


def test_brand_section_is_validated(api: Api) -> None:
    document = {
        **MULTI_BRAND,
        "brands": [{"key": "acme"}, {"key": "acme"}],
        "wallets": {"points": {"brands": []}, "stars": {"brands": ["acme", "zest"]}},
    }
    r = api.put("/v1/program", json=document)
    assert r.status_code == 422
    assert [e["loc"] for e in r.json()["errors"]] == [
        ["brands", 1, "key"],
        ["wallets", "points", "brands"],
        ["wallets", "stars", "brands", 1],
    ]
