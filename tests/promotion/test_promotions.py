"""Automatic cart promotions: exact amounts (Odoo's promotion numbers), stacking, codes,
windows, limits counted on booking and given back on cancel."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import BASIC_PROGRAM, Api, apply_program, order


def promo(key: str, type_: str, **fields: Any) -> dict[str, Any]:
    return {"key": key, "type": type_, **fields}


def program(*promotions: dict[str, Any]) -> dict[str, Any]:
    return {**BASIC_PROGRAM, "promotions": list(promotions)}


def cart(*amounts: str, **extra: Any) -> dict[str, Any]:
    member_id = extra.pop("member_id", "m1")
    body = order("cart", member_id, *amounts, **extra)
    del body["id"]
    return body


def lines(*specs: tuple[str, int, str]) -> list[dict[str, Any]]:
    """Items as (sku, quantity, unit_price), without amount (the undiscounted line)."""
    return [
        {"sku": sku, "category": "general", "quantity": quantity, "unit_price": price}
        for sku, quantity, price in specs
    ]


def evaluate(api: Api, body: dict[str, Any]) -> dict[str, Any]:
    response = api.post("/v1/evaluate", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def test_ten_percent_and_a_rejected_exclusive_code(api: Api) -> None:
    apply_program(
        api,
        program(
            promo("ten-percent", "discount_percent", value=10, priority=1,
                  when="order.subtotal >= 100.0"),
            promo("summer", "discount_percent", value=10, code="SUMMER10", priority=2),
        ),
    )  # fmt: skip
    result = evaluate(api, cart("200.00", "120.00", coupon_codes=["summer10", "NOPE"]))
    assert result["totals"]["subtotal"] == "320.00"
    assert result["totals"]["discount"] == "32.00"
    assert result["totals"]["total_after_discounts"] == "288.00"
    assert result["discounts"] == [
        {
            "type": "discount",
            "promotion": "ten-percent",
            "target": "order",
            "amount": "32.00",
            "lines": [{"index": 0, "amount": "20.00"}, {"index": 1, "amount": "12.00"}],
        }
    ]
    assert result["codes"][0]["code"] == "summer10"
    assert result["codes"][0]["status"] == "rejected"
    assert "exclusive" in result["codes"][0]["reason"]
    assert "ten-percent" in result["codes"][0]["reason"]
    assert result["codes"][1] == {
        "code": "NOPE",
        "status": "unknown",
        "reason": "no promotion has this code",
    }
    # below the condition the code promotion applies instead
    result = evaluate(api, cart("50.00", coupon_codes=["Summer10"]))
    assert [d["promotion"] for d in result["discounts"]] == ["summer"]
    assert result["discounts"][0]["amount"] == "5.00"
    assert result["codes"] == [{"code": "Summer10", "status": "applied", "reason": None}]
    # without the code the code promotion is not considered at all
    result = evaluate(api, cart("50.00"))
    assert result["discounts"] == [] and result["codes"] == []
    assert result["totals"]["total_after_discounts"] == "50.00"


def test_fixed_discount_never_below_zero(api: Api) -> None:
    apply_program(api, program(promo("minus-249", "discount_fixed", value="249")))
    small = evaluate(api, cart("25.00"))
    assert small["totals"]["discount"] == "25.00"
    assert small["totals"]["total_after_discounts"] == "0.00"
    assert small["discounts"][0]["lines"] == [{"index": 0, "amount": "25.00"}]
    big = evaluate(api, cart("400.00", "25.00"))
    assert big["totals"]["total_after_discounts"] == "176.00"
    assert big["discounts"][0]["amount"] == "249.00"
    # 249 × 400/425 = 234.3529… and 249 × 25/425 = 14.6470…: the larger remainder gets the cent
    assert big["discounts"][0]["lines"] == [
        {"index": 0, "amount": "234.35"},
        {"index": 1, "amount": "14.65"},
    ]


def test_steps_by_order_amount_before_discount(api: Api) -> None:
    steps = [
        {"min_amount": "1500", "percent": 10},
        {"min_amount": "1750", "percent": 15},
        {"min_amount": "2000", "percent": 20},
        {"min_amount": "2500", "percent": 25},
    ]
    apply_program(api, program(promo("steps", "discount_steps", steps=steps)))
    result = evaluate(api, {"member_id": "m1", "items": lines(("chair", 14, "118.00"))})
    assert result["totals"]["subtotal"] == "1652.00"
    assert result["totals"]["discount"] == "165.20"
    assert result["totals"]["total_after_discounts"] == "1486.80"
    result = evaluate(api, {"member_id": "m1", "items": lines(("chair", 20, "118.00"))})
    assert result["totals"]["discount"] == "472.00"
    assert result["totals"]["total_after_discounts"] == "1888.00"
    result = evaluate(api, {"member_id": "m1", "items": lines(("chair", 12, "118.00"))})
    assert result["discounts"] == []
    assert result["totals"]["total_after_discounts"] == "1416.00"


def test_half_off_the_cheapest_item_capped(api: Api) -> None:
    apply_program(
        api,
        program(promo("cheapest", "discount_percent", value=50, target="cheapest", max_amount=30)),
    )
    result = evaluate(
        api, {"member_id": "m1", "items": lines(("desk", 2, "200.00"), ("lamp", 3, "80.00"))}
    )
    assert result["totals"]["subtotal"] == "640.00"
    assert result["discounts"][0]["amount"] == "30.00"
    assert result["discounts"][0]["lines"] == [{"index": 1, "amount": "30.00"}]
    assert result["totals"]["total_after_discounts"] == "610.00"
    # uncapped it is half of one unit of the cheapest line
    apply_program(api, program(promo("cheapest", "discount_percent", value=50, target="cheapest")))
    result = evaluate(
        api, {"member_id": "m1", "items": lines(("desk", 2, "200.00"), ("lamp", 3, "80.00"))}
    )
    assert result["totals"]["discount"] == "40.00"


def test_buy_two_get_one_free_on_matching_items(api: Api) -> None:
    apply_program(
        api,
        program(promo("b2g1", "buy_x_get_y", buy=2, get=1, items="item.category == 'shirts'")),
    )
    items = [
        {"sku": "a", "category": "shirts", "quantity": 2, "unit_price": "30.00"},
        {"sku": "b", "category": "shirts", "quantity": 2, "unit_price": "20.00"},
        {"sku": "c", "category": "shoes", "quantity": 1, "unit_price": "5.00"},
        {"sku": "d", "category": "shirts", "quantity": 2, "unit_price": "25.00"},
    ]
    # 6 shirts: two groups of three, the two cheapest units (20 + 20) free; shoes never
    result = evaluate(api, {"member_id": "m1", "items": items})
    assert result["discounts"][0]["amount"] == "40.00"
    assert result["discounts"][0]["target"] == "items"
    assert result["discounts"][0]["lines"] == [{"index": 1, "amount": "40.00"}]
    # 5 shirts: one group, one unit free
    items[0]["quantity"] = 1
    result = evaluate(api, {"member_id": "m1", "items": items})
    assert result["discounts"][0]["amount"] == "20.00"
    # 2 shirts: nothing
    result = evaluate(api, {"member_id": "m1", "items": items[:2][:1] + items[2:3]})
    assert result["discounts"] == []


def test_free_product_and_free_shipping_thresholds(api: Api) -> None:
    apply_program(
        api,
        program(
            promo("gift", "free_item", when="order.subtotal >= 100.0",
                  free_items=[{"sku": "tote", "quantity": 1, "name": "Tote bag"}]),
            promo("ship", "free_shipping", when="order.subtotal >= 50.0", stacking="stackable"),
        ),
    )  # fmt: skip
    result = evaluate(api, cart("60.00", shipping_amount="4.95"))
    assert result["free_items"] == []
    assert result["discounts"] == [
        {"type": "discount", "promotion": "ship", "target": "shipping", "amount": "4.95",
         "lines": []}
    ]  # fmt: skip
    assert result["totals"]["shipping"] == "0.00"
    assert result["totals"]["total_after_discounts"] == "60.00"
    result = evaluate(api, cart("120.00", shipping_amount="4.95", tax_amount="10.00"))
    assert result["free_items"] == [
        {"type": "free_item", "promotion": "gift", "sku": "tote", "quantity": 1, "name": "Tote bag"}
    ]
    assert result["totals"]["discount"] == "4.95"
    assert result["totals"]["total_after_discounts"] == "130.00"
    # the free product already in the cart: that line is discounted, nothing more to add
    body = cart("120.00", shipping_amount="4.95")
    body["items"].append({"sku": "tote", "quantity": 2, "unit_price": "7.50"})
    result = evaluate(api, body)
    assert result["free_items"] == []
    gift = [d for d in result["discounts"] if d["promotion"] == "gift"]
    assert gift == [
        {"type": "discount", "promotion": "gift", "target": "free_item", "amount": "7.50",
         "lines": [{"index": 1, "amount": "7.50"}]}
    ]  # fmt: skip
    result = evaluate(api, cart("30.00", shipping_amount="4.95"))
    assert result["discounts"] == [] and result["totals"]["shipping"] == "4.95"


def test_stacking_priority_and_caps(api: Api) -> None:
    apply_program(
        api,
        program(
            promo("five-off", "discount_fixed", value="5", priority=1),
            promo("fifteen", "discount_percent", value=15, priority=2, max_amount="12"),
            promo("extra", "discount_percent", value=10, stacking="stackable", priority=5),
            promo("shoes", "discount_fixed", value="3", stacking="stackable", priority=3,
                  items="item.sku == 'sku-1'"),
        ),
    )  # fmt: skip
    # best exclusive: 15 % of 100 = 15, capped at 12 (beats 5); then stackables by priority:
    # shoes (3 off line 1), then extra 10 % of what is left (100 - 12 - 3 = 85): 8.50
    result = evaluate(api, cart("60.00", "40.00"))
    assert [(d["promotion"], d["amount"]) for d in result["discounts"]] == [
        ("fifteen", "12.00"),
        ("shoes", "3.00"),
        ("extra", "8.50"),
    ]
    assert result["totals"]["discount"] == "23.50"
    assert result["totals"]["total_after_discounts"] == "76.50"
    for d in result["discounts"]:
        assert sum(float(x["amount"]) for x in d["lines"]) == pytest.approx(float(d["amount"]))
    # a small cart: 15 % of 20 = 3 < 5 fixed
    result = evaluate(api, cart("20.00"))
    assert result["discounts"][0]["promotion"] == "five-off"


def test_window_and_conditions_on_member(api: Api) -> None:
    apply_program(
        api,
        program(
            promo("spring", "discount_percent", value=20, starts_at="2026-03-01T00:00:00Z",
                  ends_at="2026-06-01T00:00:00Z"),
            promo("vip", "discount_fixed", value="1", stacking="stackable",
                  when="'vip' in member.tags && now >= order.placed_at"),
        ),
    )  # fmt: skip
    assert api.put("/v1/members/m1", json={"tags": ["vip"]}).status_code in (200, 201)
    result = evaluate(api, cart("10.00", placed_at="2026-05-31T23:59:59Z"))
    assert [d["promotion"] for d in result["discounts"]] == ["spring", "vip"]
    result = evaluate(api, cart("10.00", placed_at="2026-06-01T00:00:00Z", member_id="m2"))
    assert result["discounts"] == []


def test_booking_counts_limits_and_cancel_gives_back(api: Api) -> None:
    apply_program(
        api,
        program(
            promo("welcome", "discount_percent", value=10, limit={"per_member": 1}),
            promo("first-100", "discount_fixed", value="2", stacking="stackable",
                  limit={"total": 2}),
        ),
    )  # fmt: skip
    for m in ("m1", "m2", "m3"):
        assert api.put(f"/v1/members/{m}", json={}).status_code == 201
    # evaluate counts nothing
    for _ in range(2):
        result = evaluate(api, cart("100.00"))
        assert [d["promotion"] for d in result["discounts"]] == ["welcome", "first-100"]
    response = api.post("/v1/orders", json=order("o1", "m1", "100.00"))
    assert response.status_code == 201, response.text
    body = response.json()
    discounts = [e for e in body["effects"] if e["type"] == "discount"]
    assert [(d["promotion"], d["amount"]) for d in discounts] == [
        ("welcome", "10.00"),
        ("first-100", "2.00"),
    ]
    stored = api.get("/v1/orders/o1").json()["promotions"]
    assert stored == [
        {"promotion": "welcome", "amount": "10.00"},
        {"promotion": "first-100", "amount": "2.00"},
    ]
    # points still come from what the shop says was paid
    earned = [e for e in body["effects"] if e["type"] == "points_earned"]
    assert earned[0]["amount"] == 100
    result = evaluate(api, cart("100.00"))
    assert [d["promotion"] for d in result["discounts"]] == ["first-100"]
    assert api.post("/v1/orders", json=order("o2", "m2", "100.00")).status_code == 201
    # the total limit of 2 is used up
    result = evaluate(api, cart("100.00", member_id="m3"))
    assert [d["promotion"] for d in result["discounts"]] == ["welcome"]
    body = api.post("/v1/orders", json=order("o3", "m3", "100.00")).json()
    assert [e["promotion"] for e in body["effects"] if e["type"] == "discount"] == ["welcome"]
    # cancelling o1 gives back m1's welcome and one of the two total uses
    assert api.post("/v1/orders/o1/cancel", json={}).status_code in (200, 201)
    result = evaluate(api, cart("100.00"))
    assert [d["promotion"] for d in result["discounts"]] == ["welcome", "first-100"]
    # a refund gives nothing back
    assert api.post("/v1/orders/o2/refunds", json={"id": "r1", "amount": "10"}).status_code == 201
    result = evaluate(api, cart("100.00", member_id="m2"))
    assert [d["promotion"] for d in result["discounts"]] == ["first-100"]


def test_limited_code_reports_why(api: Api) -> None:
    apply_program(
        api,
        program(promo("once", "discount_fixed", value="5", code="ONCE", limit={"per_member": 1})),
    )
    assert api.put("/v1/members/m1", json={}).status_code == 201
    body = order("o1", "m1", "50.00", coupon_codes=["once"])
    response = api.post("/v1/orders", json=body)
    assert [e["promotion"] for e in response.json()["effects"] if e["type"] == "discount"] == [
        "once"
    ]
    result = evaluate(api, cart("50.00", coupon_codes=["ONCE"]))
    assert result["codes"] == [
        {
            "code": "ONCE",
            "status": "rejected",
            "reason": "the member has used this promotion as often as allowed",
        }
    ]
    # a cart without a member cannot use a per-member promotion
    result = evaluate(api, cart("50.00", coupon_codes=["ONCE"], member_id=None))
    assert result["codes"][0]["status"] == "rejected"
    assert "no member" in result["codes"][0]["reason"]


@pytest.mark.parametrize(
    ("promotion", "loc", "fragment"),
    [
        (promo("p", "discount_percent"), ["promotions", 0, "value"], "needs 'value'"),
        (promo("p", "discount_percent", value=120), ["promotions", 0, "value"], "at most 100"),
        (promo("p", "discount_fixed", value="1.005"), ["promotions", 0, "value"], "decimal"),
        (promo("p", "buy_x_get_y", buy=2), ["promotions", 0, "get"], "needs 'get'"),
        (promo("p", "free_shipping", value=3), ["promotions", 0, "value"], "not used"),
        (promo("p", "free_item"), ["promotions", 0, "free_items"], "needs"),
        (
            promo("p", "discount_steps", steps=[{"min_amount": 2, "percent": 5},
                                                {"min_amount": 1, "percent": 9}]),
            ["promotions", 0, "steps"],
            "increasing",
        ),
        (promo("p", "discount_percent", value=5, when="order.nope >"), ["promotions", 0, "when"],
         "CEL"),
        (promo("p", "discount_percent", value=5, when="item.sku == 'a'"),
         ["promotions", 0, "when"], "CEL"),
        (promo("p", "discount_percent", value=5, items="item.skew == 1"),
         ["promotions", 0, "items"], "CEL"),
        (promo("p", "discount_percent", value=5, target="items"), ["promotions", 0, "target"],
         "items"),
        (promo("p", "discount_percent", value=5, stacking="maybe"),
         ["promotions", 0, "stacking"], ""),
        (promo("p", "discount_percent", value=5, starts_at="2026-02-01T00:00:00Z",
               ends_at="2026-01-01T00:00:00Z"), ["promotions", 0, "ends_at"], "after"),
    ],
)  # fmt: skip
def test_invalid_promotions_are_located(
    api: Api, promotion: dict[str, Any], loc: list[Any], fragment: str
) -> None:
    response = api.put("/v1/program", json=program(promotion))
    assert response.status_code == 422, response.text
    errors = response.json()["errors"]
    assert any(e["loc"] == loc and fragment in e["msg"] for e in errors), errors


def test_duplicate_promotion_keys(api: Api) -> None:
    response = api.put(
        "/v1/program",
        json=program(promo("p", "free_shipping"), promo("p", "free_shipping")),
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["promotions", 1, "key"]
