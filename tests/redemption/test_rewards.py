"""The reward catalog through the API: costs, limits, stock, reward types, fulfilment."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from tests.conftest import IS_POSTGRES, Api, apply_program, ledger_ok, new_tenant

PROGRAM: dict[str, Any] = {
    "name": "Catalog",
    "currency": "USD",
    "wallets": {
        "points": {"precision": 0, "point_value": 2},
        "credit": {"kind": "credit", "precision": 2},
    },
    "tiers": {
        "metric": "spend",
        "levels": [{"key": "base", "threshold": 0}, {"key": "gold", "threshold": 1000}],
    },
    "rules": [
        {"key": "base", "on": "order.completed", "earn": {"per_amount": 1}},
        {
            "key": "insider",
            "on": "order.completed",
            "when": "'preview:vinyl' in member.perks",
            "earn": {"fixed": 3},
        },
    ],
    "rewards": [
        {"key": "twenty", "cost": 20, "type": "custom"},
        {"key": "ten", "cost": 10, "type": "custom", "limit": {"per_member": 1, "period": "month"}},
        {"key": "scarce", "cost": 1, "type": "custom", "stock": 2},
        {"key": "pay-with-points", "type": "cashback"},
        {"key": "credit-5", "cost": 5, "type": "store_credit", "value": "2.50"},
        {"key": "tote", "cost": 3, "type": "physical"},
        {"key": "masterclass", "cost": 4, "type": "experience"},
        {"key": "preview", "cost": 1, "type": "access", "perk": "preview:vinyl", "days": 7},
        {"key": "gold-only", "cost": 1, "eligible": "member.tier == 'gold'"},
    ],
}

ADDRESS = {"name": "Ann", "line1": "1 Main St", "city": "Oslo", "country": "NO"}


def seed(api: Api, member_id: str, points: int) -> None:
    response = api.post(
        f"/v1/members/{member_id}/adjustments",
        json={"id": f"seed-{member_id}-{points}", "amount": points, "reason": "seed"},
    )
    assert response.status_code == 201, response.text


def redeem(api: Api, member_id: str, rid: str, reward: str, **kw: Any) -> httpx.Response:
    return api.post(
        f"/v1/members/{member_id}/redemptions", json={"id": rid, "reward": reward, **kw}
    )


@pytest.fixture()
def shop(api: Api) -> Api:
    apply_program(api, PROGRAM)
    api.put("/v1/members/m1", json={"email": "m1@example.com"})
    return api


def test_open_loyalty_redemption_checks(shop: Api, tenant: tuple[str, str]) -> None:
    seed(shop, "m1", 10)
    poor = redeem(shop, "m1", "r1", "twenty")
    assert poor.status_code == 409
    assert poor.json()["code"] == "insufficient_points"
    ok = redeem(shop, "m1", "r2", "ten")
    assert ok.status_code == 201, ok.text
    assert ok.json()["balances"]["points"]["active"] == 0
    seed(shop, "m1", 100)
    assert redeem(shop, "m1", "r3", "ten").json()["code"] == "limit_exceeded"
    assert redeem(shop, "m1", "r4", "scarce", quantity=2).status_code == 201
    assert redeem(shop, "m1", "r5", "scarce").json()["code"] == "out_of_stock"
    # cashback: 2 money units per point turn 20 points into 40 off
    cash = redeem(shop, "m1", "r6", "pay-with-points", points=20)
    assert cash.status_code == 201, cash.text
    assert cash.json()["issued"] == {"value": "40.00"}
    assert cash.json()["points_spent"] == 20
    assert ledger_ok(tenant[0]) == []


def test_catalog_shows_eligibility_affordability_and_limits(shop: Api) -> None:
    seed(shop, "m1", 12)
    redeem(shop, "m1", "r1", "ten")
    rewards = {r["key"]: r for r in shop.get("/v1/members/m1/rewards").json()["data"]}
    assert rewards["twenty"]["affordable"] is False
    assert rewards["twenty"]["reasons"] == ["insufficient_points"]
    assert rewards["ten"]["limits"]["per_member"] == {
        "limit": 1,
        "period": "month",
        "used": 1,
        "remaining": 0,
    }
    assert rewards["ten"]["redeemable"] is False
    assert rewards["scarce"]["stock_left"] == 2
    assert rewards["scarce"]["max_quantity"] == 2
    assert rewards["gold-only"]["eligible"] is False
    assert rewards["gold-only"]["reasons"] == ["not_eligible"]
    assert rewards["pay-with-points"]["max_points"] == 2
    assert rewards["pay-with-points"]["max_value"] == "4.00"
    assert shop.get("/v1/members/ghost/rewards").json()["code"] == "member_not_found"


def test_store_credit_reward_and_its_cancellation(shop: Api, tenant: tuple[str, str]) -> None:
    seed(shop, "m1", 20)
    body = redeem(shop, "m1", "c1", "credit-5", quantity=2).json()
    assert body["issued"] == {"credit": {"wallet": "credit", "amount": 5.0}}
    assert body["balances"] == {
        "points": {"active": 10, "pending": 0},
        "credit": {"active": 5.0, "pending": 0.0},
    }
    cancelled = shop.patch("/v1/redemptions/c1", json={"fulfilment": "cancelled"})
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    assert cancelled.json()["balances"]["points"]["active"] == 20
    assert cancelled.json()["balances"]["credit"]["active"] == 0.0
    # once the credit is spent, cancelling cannot take it back
    redeem(shop, "m1", "c2", "credit-5")
    shop.post(
        "/v1/members/m1/adjustments",
        json={"id": "spend-credit", "wallet": "credit", "amount": "-2.00", "reason": "used"},
    )
    refused = shop.patch("/v1/redemptions/c2", json={"fulfilment": "cancelled"})
    assert refused.json()["code"] == "credit_spent"
    assert ledger_ok(tenant[0]) == []


def test_physical_reward_fulfilment(shop: Api, tenant: tuple[str, str]) -> None:
    seed(shop, "m1", 10)
    missing = redeem(shop, "m1", "t0", "tote")
    assert missing.status_code == 422
    assert missing.json()["errors"][0]["loc"] == ["body", "shipping_address"]
    body = redeem(shop, "m1", "t1", "tote", shipping_address=ADDRESS).json()
    assert body["fulfilment"] == "pending"
    assert body["shipping_address"]["city"] == "Oslo"
    shipped = shop.patch("/v1/redemptions/t1", json={"fulfilment": "shipped", "tracking": "Z1"})
    assert shipped.json()["fulfilment"] == "shipped"
    assert shipped.json()["tracking"] == "Z1"
    again = shop.patch("/v1/redemptions/t1", json={"fulfilment": "shipped"})
    assert again.status_code == 200  # asking for the state it is in is harmless
    delivered = shop.patch("/v1/redemptions/t1", json={"fulfilment": "delivered"})
    assert delivered.json()["fulfilment"] == "delivered"
    late = shop.patch("/v1/redemptions/t1", json={"fulfilment": "cancelled"})
    assert late.json()["code"] == "invalid_fulfilment"
    # an experience cancelled before it happens gives the points back
    redeem(shop, "m1", "x1", "masterclass")
    back = shop.patch("/v1/redemptions/x1", json={"fulfilment": "cancelled"}).json()
    assert back["fulfilment"] == "cancelled"
    assert back["balances"]["points"]["active"] == 7
    codes = [t["code"] for t in shop.get("/v1/members/m1/ledger").json()["data"]]
    assert codes[:2] == ["return", "spend"]
    assert ledger_ok(tenant[0]) == []


def test_access_reward_gives_a_perk_for_some_days(shop: Api) -> None:
    shop.now = "2026-03-01T10:00:00Z"
    seed(shop, "m1", 5)
    body = redeem(shop, "m1", "p1", "preview").json()
    assert body["perk"] == {"perk": "preview:vinyl", "until": "2026-03-08T10:00:00+00:00"}
    first = shop.post("/v1/orders", json={"id": "o1", "member_id": "m1", "items": [
        {"sku": "a", "amount": "10"}]}).json()  # fmt: skip
    assert first["rules_applied"] == ["base", "insider"]
    shop.now = "2026-03-09T10:00:00Z"
    later = shop.post("/v1/orders", json={"id": "o2", "member_id": "m1", "items": [
        {"sku": "a", "amount": "10"}]}).json()  # fmt: skip
    assert later["rules_applied"] == ["base"]


def test_reward_document_errors_are_located(api: Api) -> None:
    bad = {
        **PROGRAM,
        "rewards": [
            {"key": "a", "type": "discount_fixed", "cost": 5},
            {"key": "b", "type": "store_credit", "cost": 5, "value": 1, "credit_wallet": "points"},
            {"key": "c", "type": "access", "cost": 1, "perk": "x"},
            {"key": "d", "cost": 1.5},
            {"key": "e", "type": "cashback", "wallet": "credit", "point_value": None},
        ],
        "wallets": {"points": {"precision": 0}, "credit": {"kind": "credit", "precision": 2}},
    }
    response = api.put("/v1/program", json=bad)
    assert response.status_code == 422
    locs = {tuple(e["loc"]) for e in response.json()["errors"]}
    assert ("rewards", 0, "value") in locs
    assert ("rewards", 2, "days") in locs
    bad["rewards"] = bad["rewards"][1:2] + bad["rewards"][3:]
    response = api.put("/v1/program", json=bad)
    locs = {tuple(e["loc"]) for e in response.json()["errors"]}
    assert ("rewards", 0, "credit_wallet") in locs
    assert ("rewards", 1, "cost") in locs


@pytest.mark.skipif(not IS_POSTGRES, reason="row-lock race on Postgres")
def test_parallel_redemptions_never_exceed_stock(live_server: str) -> None:
    tenant_id, key = new_tenant("stock-race")
    client = httpx.Client(
        base_url=live_server, timeout=120, headers={"Authorization": f"Bearer {key}"}
    )
    program = {**PROGRAM, "rewards": [{"key": "limited", "cost": 1, "stock": 5}]}
    client.put("/v1/program", json=program).raise_for_status()
    for n in range(20):
        client.put(f"/v1/members/m{n}", json={}).raise_for_status()
        client.post(
            f"/v1/members/m{n}/adjustments", json={"id": f"s{n}", "amount": 10, "reason": "seed"}
        ).raise_for_status()

    def attempt(i: int) -> httpx.Response:
        return client.post(
            f"/v1/members/m{i}/redemptions", json={"id": f"r{i}", "reward": "limited"}
        )

    with ThreadPoolExecutor(max_workers=20) as pool:
        responses = list(pool.map(attempt, range(20)))
    codes = sorted(r.status_code for r in responses)
    assert codes.count(201) == 5, [r.text for r in responses]
    assert {r.json()["code"] for r in responses if r.status_code != 201} == {"out_of_stock"}
    assert ledger_ok(tenant_id) == []
    client.close()


def test_evaluate_lists_the_rewards_the_member_can_redeem(shop: Api) -> None:
    seed(shop, "m1", 10)
    cart = {"member_id": "m1", "items": [{"sku": "a", "amount": "5"}]}
    keys = [r["key"] for r in shop.post("/v1/evaluate", json=cart).json()["rewards"]]
    assert keys == [
        "ten",
        "scarce",
        "pay-with-points",
        "credit-5",
        "tote",
        "masterclass",
        "preview",
    ]
    anonymous = shop.post("/v1/evaluate", json={"items": cart["items"]}).json()
    assert anonymous["rewards"] == []


def test_shipping_address_is_exported_and_erased(shop: Api) -> None:
    seed(shop, "m1", 10)
    redeem(shop, "m1", "t1", "tote", shipping_address=ADDRESS)
    exported = shop.get("/v1/members/m1/export").json()
    assert exported["redemptions"][0]["shipping_address"]["line1"] == "1 Main St"
    assert shop.delete("/v1/members/m1").status_code == 204
    assert shop.get("/v1/redemptions/t1").json()["shipping_address"] is None


COUPON_REWARDS: list[dict[str, Any]] = [
    {"key": "ten-off", "cost": 5, "type": "discount_fixed", "value": 10,
     "coupon": {"prefix": "TEN-", "valid_days": 30}},
    {"key": "gift", "cost": 5, "type": "gift_card", "value": 25},
    {"key": "pwp", "type": "cashback", "coupon": {"valid_days": 1}},
]  # fmt: skip


def test_coupon_rewards_issue_codes_the_checkout_uses(shop: Api, tenant: tuple[str, str]) -> None:
    apply_program(shop, {**PROGRAM, "rewards": PROGRAM["rewards"] + COUPON_REWARDS})
    shop.now = "2026-04-01T10:00:00Z"
    seed(shop, "m1", 50)
    body = redeem(shop, "m1", "c1", "ten-off").json()
    code = body["coupon"]["code"]
    assert code.startswith("TEN-")
    assert body["coupon"]["expires_at"] == "2026-05-01T10:00:00+00:00"
    cart = {"items": [{"sku": "a", "amount": "40.00"}]}
    check = shop.post("/v1/coupons/validate", json={"code": code, "member_id": "m1", "cart": cart})
    assert check.json()["valid"] is True
    assert check.json()["discount"] == "10.00"
    preview = shop.post("/v1/evaluate", json={"member_id": "m1", "coupon_codes": [code], **cart})
    assert [c["code"] for c in preview.json()["coupons"]] == [code]
    assert preview.json()["codes"] == []  # not an unknown promotion code
    # cancelled before use: the coupon is void and the points come back
    back = shop.patch("/v1/redemptions/c1", json={"fulfilment": "cancelled"}).json()
    assert back["balances"]["points"]["active"] == 50
    assert shop.get(f"/v1/coupons/{code}").json()["status"] == "void"
    # used at checkout: the redemption can no longer be cancelled
    code = redeem(shop, "m1", "c2", "ten-off").json()["coupon"]["code"]
    order = {"id": "o1", "member_id": "m1", "coupon_codes": [code], **cart}
    booked = shop.post("/v1/orders", json=order).json()
    assert {"type": "coupon_used", "code": code, "discount": "10.00"} in booked["effects"]
    late = shop.patch("/v1/redemptions/c2", json={"fulfilment": "cancelled"})
    assert late.json()["code"] == "coupon_used"
    gift = redeem(shop, "m1", "g1", "gift").json()["coupon"]
    assert gift["balance"] == "25.00"
    # pay with points as a code: 20 points at 2.00 = 40.00 off
    pwp = redeem(shop, "m1", "p1", "pwp", points=20).json()
    assert pwp["issued"]["value"] == "40.00"
    assert shop.get(f"/v1/coupons/{pwp['coupon']['code']}").json()["discount"]["value"] == "40.00"
    assert ledger_ok(tenant[0]) == []


def test_a_rule_gives_a_catalog_rewards_coupon_for_the_next_order(
    shop: Api, tenant: tuple[str, str]
) -> None:
    program = {
        **PROGRAM,
        "rewards": PROGRAM["rewards"] + COUPON_REWARDS,
        "rules": PROGRAM["rules"]
        + [
            {
                "key": "thank-you",
                "on": "order.completed",
                "when": "order.total >= 50.0",
                "issue_reward": {"reward": "ten-off"},
                "limit": {"per_member": 1, "period": "lifetime"},
            }
        ],
    }
    apply_program(shop, program)
    shop.now = "2026-04-01T10:00:00Z"
    first = shop.post("/v1/orders", json={"id": "o1", "member_id": "m1", "items": [
        {"sku": "a", "amount": "60.00"}]}).json()  # fmt: skip
    issued = [e for e in first["effects"] if e["type"] == "reward_issued"]
    assert issued[0]["rule"] == "thank-you"
    assert issued[0]["code"].startswith("TEN-")
    assert issued[0]["expires_at"] == "2026-05-01T10:00:00+00:00"
    second = shop.post("/v1/orders", json={"id": "o2", "member_id": "m1", "items": [
        {"sku": "a", "amount": "60.00"}], "coupon_codes": [issued[0]["code"]]}).json()  # fmt: skip
    assert {"type": "coupon_used", "code": issued[0]["code"], "discount": "10.00"} in (
        second["effects"]
    )
    assert not [e for e in second["effects"] if e["type"] == "reward_issued"]  # limit: once
    bad = {**program, "rules": [{**program["rules"][-1], "issue_reward": {"reward": "tote"}}]}
    refused = shop.put("/v1/program", json=bad)
    assert refused.json()["errors"][0]["loc"] == ["rules", 0, "issue_reward", "reward"]
    assert ledger_ok(tenant[0]) == []


def test_store_credit_is_spent_through_a_cashback_reward(
    shop: Api, tenant: tuple[str, str]
) -> None:
    """Cashback earned as store credit pays part of an order like points do."""
    cashback = {
        "key": "cashback",
        "on": "order.completed",
        "earn": {"wallet": "credit", "percent": 5},
    }
    program = {
        **PROGRAM,
        "rules": [cashback],
        "rewards": [{"key": "use-credit", "type": "cashback", "wallet": "credit", "cost": 0.01}],
    }
    apply_program(shop, program)
    booked = shop.post("/v1/orders", json={"id": "o1", "member_id": "m1", "items": [
        {"sku": "a", "amount": "100.00"}]}).json()  # fmt: skip
    assert booked["balances"]["credit"]["active"] == 5.0
    catalog = shop.get("/v1/members/m1/rewards").json()["data"][0]
    assert (catalog["max_points"], catalog["max_value"]) == (5.0, "5.00")
    paid = redeem(shop, "m1", "u1", "use-credit", points="3.50").json()
    assert paid["issued"] == {"value": "3.50"}
    assert paid["balances"]["credit"]["active"] == 1.5
    assert redeem(shop, "m1", "u2", "use-credit", points="9.00").json()["code"] == (
        "insufficient_points"
    )
    assert ledger_ok(tenant[0]) == []
