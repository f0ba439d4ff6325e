"""Coupons through the HTTP API: windows, binding, conditions, usage, booking, gift cards,
campaign batches."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any

from allegiance.coupon.schemas import CouponSettings, DiscountSpec
from allegiance.coupon.service import issue_coupon
from allegiance.db import get_engine, write_session
from tests.conftest import BASIC_PROGRAM, Api, apply_program, ledger_ok, order

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def at(api: Api, moment: datetime) -> Api:
    api.now = moment.isoformat()
    return api


def batch(
    api: Api, batch_id: str, discount: dict[str, Any], count: int = 1, **extra: Any
) -> list[str]:
    response = api.post(
        "/v1/coupon-batches", json={"id": batch_id, "count": count, "discount": discount, **extra}
    )
    assert response.status_code == 201, response.text
    assert response.json()["count"] == count
    codes = api.get(f"/v1/coupon-batches/{batch_id}/codes.csv")
    assert codes.status_code == 200, codes.text
    return [row["code"] for row in csv.DictReader(io.StringIO(codes.text))]


def cart(*amounts: str, **extra: Any) -> dict[str, Any]:
    body = order("x", None, *amounts, **extra)
    body.pop("id")
    body.pop("member_id")
    return body


def validate(api: Api, code: str, body: dict[str, Any], member_id: str | None = None) -> dict:
    response = api.post(
        "/v1/coupons/validate", json={"code": code, "member_id": member_id, "cart": body}
    )
    assert response.status_code == 200, response.text
    return response.json()


def issue(tenant_id: str, spec: dict[str, Any], member_id: str | None, **settings: Any) -> str:
    with write_session(get_engine()) as session:
        coupon = issue_coupon(
            session,
            tenant_id=tenant_id,
            spec=DiscountSpec.model_validate(spec),
            settings=CouponSettings.model_validate(settings),
            member_id=member_id,
            source_type="redemption",
            source_id="r1",
            now=T0,
        )
    return str(coupon["code"])


def test_a_coupon_with_10_inactive_days_and_20_valid_days_is_active_from_day_10_to_day_30(
    api: Api,
) -> None:
    apply_program(api, BASIC_PROGRAM)
    at(api, T0)
    [code] = batch(
        api,
        "b1",
        {"type": "discount_fixed", "value": 5},
        settings={"inactive_days": 10, "valid_days": 20},
    )
    coupon = api.get(f"/v1/coupons/{code}").json()
    assert coupon["starts_at"] == (T0 + timedelta(days=10)).isoformat()
    assert coupon["expires_at"] == (T0 + timedelta(days=30)).isoformat()
    expected = {
        timedelta(0): "not_yet_active",
        timedelta(days=10) - timedelta(seconds=1): "not_yet_active",
        timedelta(days=10): None,
        timedelta(days=30) - timedelta(seconds=1): None,
        timedelta(days=30): "expired",
    }
    for offset, reason in expected.items():
        result = validate(at(api, T0 + offset), code, cart("20.00"))
        assert (result["valid"], result["reason"]) == (reason is None, reason), offset


def test_codes_follow_the_settings_and_lookups_ignore_case(api: Api) -> None:
    apply_program(api, BASIC_PROGRAM)
    codes = batch(
        api,
        "b1",
        {"type": "discount_fixed", "value": 5},
        count=50,
        settings={"prefix": "sum-", "length": 10},
    )
    assert len(set(codes)) == 50
    for code in codes:
        assert code.startswith("SUM-") and len(code) == 14
        assert not set(code[4:]) & set("0O1IL")
    assert validate(api, codes[0].lower(), cart("20.00"))["valid"] is True


def test_member_binding(api: Api, tenant: tuple[str, str]) -> None:
    apply_program(api, BASIC_PROGRAM)
    at(api, T0)
    code = issue(tenant[0], {"type": "discount_fixed", "value": 5}, "m1")
    assert validate(api, code, cart("20.00"), "m1")["valid"] is True
    assert validate(api, code, cart("20.00"), "m2")["reason"] == "wrong_member"
    assert validate(api, code, cart("20.00"))["reason"] == "wrong_member"


def test_minimum_order_and_products_and_categories(api: Api) -> None:
    apply_program(api, BASIC_PROGRAM)
    [min_order] = batch(api, "b1", {"type": "discount_fixed", "value": 10, "min_order": 50})
    assert validate(api, min_order, cart("49.99"))["reason"] == "min_order_not_met"
    assert validate(api, min_order, cart("30.00", "20.00"))["discount"] == "10.00"

    [on_sku] = batch(api, "b2", {"type": "discount_percent", "value": 50, "skus": ["sku-1"]})
    result = validate(api, on_sku, cart("30.00", "20.00"))
    assert result == {"code": on_sku, "valid": True, "discount": "10.00", "reason": None}
    assert validate(api, on_sku, cart("30.00"))["reason"] == "no_matching_items"

    [on_category] = batch(
        api, "b3", {"type": "discount_fixed", "value": 100, "categories": ["shoes"]}
    )
    shoes = cart("30.00", "20.00")
    shoes["items"][0]["category"] = "shoes"
    # never more than the amount it applies to
    assert validate(api, on_category, shoes)["discount"] == "30.00"

    [capped] = batch(api, "b4", {"type": "discount_percent", "value": 33, "max_amount": 5})
    assert validate(api, capped, cart("10.00"))["discount"] == "3.30"
    assert validate(api, capped, cart("100.00"))["discount"] == "5.00"

    [shipping] = batch(api, "b5", {"type": "free_shipping"})
    assert validate(api, shipping, cart("10.00", shipping_amount="4.95"))["discount"] == "4.95"

    [product] = batch(api, "b6", {"type": "free_product", "sku": "sku-1", "quantity": 1})
    two = cart("10.00", "6.00")
    two["items"][1]["quantity"] = 2
    two["items"][1]["unit_price"] = "3.00"
    assert validate(api, product, two)["discount"] == "3.00"
    missing = validate(api, product, cart("10.00"))
    assert missing["valid"] is True
    assert missing["discount"] == "0.00"
    assert missing["free_item"] == {"sku": "sku-1", "quantity": 1}


def test_unknown_code_and_bad_input(api: Api) -> None:
    apply_program(api, BASIC_PROGRAM)
    assert validate(api, "NOPE", cart("10.00"))["reason"] == "not_found"
    response = api.post("/v1/coupons/validate", json={"cart": {}})
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"][:2] == ["body", "code"]
    bad = api.post(
        "/v1/coupon-batches",
        json={"id": "b", "count": 100_001, "discount": {"type": "discount_fixed", "value": 1}},
    )
    assert bad.status_code == 422
    small = api.post(
        "/v1/coupon-batches",
        json={
            "id": "b",
            "count": 5000,
            "settings": {"length": 4, "charset": "numeric"},
            "discount": {"type": "discount_fixed", "value": 1},
        },
    )
    assert small.status_code == 422, small.text
    assert small.json()["errors"][0]["loc"] == ["body", "settings", "length"]
    cents = api.post(
        "/v1/coupons/validate", json={"code": "X", "cart": {"items": [{"amount": "1.001"}]}}
    )
    assert cents.status_code == 422, cents.text
    assert cents.json()["errors"][0]["loc"] == ["cart", "items", 0, "amount"]
    money = api.post(
        "/v1/coupon-batches",
        json={"id": "b", "count": 1, "discount": {"type": "discount_fixed", "value": "1.005"}},
    )
    assert money.status_code == 422, money.text
    assert money.json()["errors"][0]["loc"] == ["body", "discount", "value"]
    assert api.get("/v1/coupons/NOPE").json()["code"] == "coupon_not_found"
    assert api.get("/v1/coupon-batches/none/codes.csv").status_code == 404


def test_booking_uses_the_coupon_once_and_cancel_releases_it(
    api: Api, tenant: tuple[str, str]
) -> None:
    apply_program(api, BASIC_PROGRAM)
    [code] = batch(api, "b1", {"type": "discount_fixed", "value": 5})
    first = api.post("/v1/orders", json=order("o1", "m1", "20.00", coupon_codes=[code, "PROMO"]))
    assert first.status_code == 201, first.text
    used = [e for e in first.json()["effects"] if e["type"].startswith("coupon_")]
    assert used == [{"type": "coupon_used", "code": code, "discount": "5.00"}]

    second = api.post("/v1/orders", json=order("o2", "m1", "20.00", coupon_codes=[code]))
    assert second.status_code == 201, second.text
    rejected = [e for e in second.json()["effects"] if e["type"].startswith("coupon_")]
    assert rejected == [{"type": "coupon_rejected", "code": code, "reason": "used_up"}]
    assert validate(api, code, cart("20.00"))["reason"] == "used_up"

    cancel = api.post("/v1/orders/o1/cancel")
    assert cancel.status_code == 201, cancel.text
    assert {"type": "coupon_released", "code": code, "discount": "5.00"} in cancel.json()["effects"]
    assert validate(api, code, cart("20.00"))["valid"] is True
    coupon = api.get(f"/v1/coupons/{code}").json()
    assert coupon["uses"] == 0 and coupon["status"] == "active"
    assert ledger_ok(tenant[0]) == []


def test_evaluate_lists_the_cart_coupons(api: Api) -> None:
    apply_program(api, BASIC_PROGRAM)
    [code] = batch(api, "b1", {"type": "discount_percent", "value": 10})
    [big] = batch(api, "b2", {"type": "discount_fixed", "value": 5, "min_order": 100})
    body = cart("40.00", coupon_codes=[code.lower(), "PROMO", big])
    response = api.post("/v1/evaluate", json=body)
    assert response.status_code == 200, response.text
    assert response.json()["coupons"] == [
        {"code": code, "valid": True, "discount": "4.00", "reason": None},
        {"code": big, "valid": False, "discount": "0.00", "reason": "min_order_not_met"},
    ]
    # a dry run: nothing used
    assert api.get(f"/v1/coupons/{code}").json()["uses"] == 0


def test_explicit_redeem_and_release(api: Api) -> None:
    apply_program(api, BASIC_PROGRAM)
    [code] = batch(api, "b1", {"type": "discount_fixed", "value": 5}, settings={"max_uses": 2})
    for order_id in ("o1", "o1", "o2"):
        response = api.post(f"/v1/coupons/{code}/redeem", json={"order_id": order_id})
        assert response.status_code == 200, response.text
    assert response.json()["coupon"]["uses"] == 2
    third = api.post(f"/v1/coupons/{code}/redeem", json={"order_id": "o3"})
    assert third.status_code == 409
    assert third.json()["code"] == "coupon_used_up"
    released = api.post(f"/v1/coupons/{code}/release", json={"order_id": "o1"})
    assert released.status_code == 200, released.text
    again = api.post(f"/v1/coupons/{code}/release", json={"order_id": "o1"})
    assert again.json()["coupon"]["uses"] == 1
    assert api.post(f"/v1/coupons/{code}/redeem", json={"order_id": "o3"}).status_code == 200
    unknown = api.post(f"/v1/coupons/{code}/release", json={"order_id": "o9"})
    assert unknown.status_code == 404
    assert unknown.json()["code"] == "coupon_use_not_found"


def test_gift_card_partial_use(api: Api, tenant: tuple[str, str]) -> None:
    apply_program(api, BASIC_PROGRAM)
    code = issue(tenant[0], {"type": "gift_card", "value": 50}, None, max_uses=1000)
    first = api.post("/v1/orders", json=order("o1", "m1", "30.00", coupon_codes=[code]))
    effects = [e for e in first.json()["effects"] if e["type"] == "coupon_used"]
    assert effects == [
        {"type": "coupon_used", "code": code, "discount": "30.00", "balance": "20.00"}
    ]
    assert validate(api, code, cart("45.00"))["discount"] == "20.00"
    second = api.post("/v1/orders", json=order("o2", "m1", "45.00", coupon_codes=[code]))
    used = next(e for e in second.json()["effects"] if e["type"] == "coupon_used")
    assert (used["discount"], used["balance"]) == ("20.00", "0.00")
    third = api.post("/v1/orders", json=order("o3", "m1", "5.00", coupon_codes=[code]))
    assert {"type": "coupon_rejected", "code": code, "reason": "no_balance"} in third.json()[
        "effects"
    ]
    api.post("/v1/orders/o1/cancel")
    assert api.get(f"/v1/coupons/{code}").json()["balance"] == "30.00"
    over = api.post(f"/v1/coupons/{code}/redeem", json={"order_id": "shop-1", "amount": "31"})
    assert over.json()["code"] == "coupon_insufficient_balance"
    ok = api.post(f"/v1/coupons/{code}/redeem", json={"order_id": "shop-1", "amount": "12.50"})
    assert ok.json()["coupon"]["balance"] == "17.50"


def test_batch_is_idempotent_on_its_id_and_exports_csv(api: Api) -> None:
    apply_program(api, BASIC_PROGRAM)
    body = {
        "id": "spring",
        "count": 2000,
        "settings": {"length": 6, "charset": "numeric"},
        "discount": {"type": "discount_fixed", "value": 5},
    }
    first = api.post("/v1/coupon-batches", json=body)
    assert first.status_code == 201, first.text
    again = api.post("/v1/coupon-batches", json=body)
    assert again.status_code == 200
    assert again.headers["Idempotent-Replayed"] == "true"
    other = api.post("/v1/coupon-batches", json={**body, "count": 3})
    assert other.status_code == 409
    export = api.get("/v1/coupon-batches/spring/codes.csv")
    assert export.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(export.text)))
    assert len(rows) == 2000
    assert len({r["code"] for r in rows}) == 2000
    assert all(r["code"].isdigit() and len(r["code"]) == 6 for r in rows)


def test_reward_coupon_settings_are_checked(api: Api) -> None:
    reward = {"key": "ten-off", "cost": 1000, "type": "discount_fixed", "value": 10}
    ok = {**BASIC_PROGRAM, "rewards": [{**reward, "coupon": {"valid_days": 30, "prefix": "R"}}]}
    assert apply_program(api, ok)["rewards"][0]["coupon"]["valid_days"] == 30
    for coupon, loc in (
        ({"length": 3}, ["rewards", 0, "coupon", "length"]),
        ({"charset": "emoji"}, ["rewards", 0, "coupon", "charset"]),
    ):
        bad = {**BASIC_PROGRAM, "rewards": [{**reward, "coupon": coupon}]}
        response = api.put("/v1/program", json=bad)
        assert response.status_code == 422, response.text
        assert response.json()["errors"][0]["loc"] == loc
    no_value = {**reward, "coupon": {}}
    no_value.pop("value")
    response = api.put("/v1/program", json={**BASIC_PROGRAM, "rewards": [no_value]})
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["loc"] == ["rewards", 0, "value"]


def test_a_batch_tops_up_codes_taken_by_an_earlier_batch(api: Api) -> None:
    apply_program(api, BASIC_PROGRAM)
    settings = {"length": 4, "charset": "numeric"}
    # 1,000 of 10,000 possible codes are taken: the second batch draws about 100 of them again
    first = set(batch(api, "b1", {"type": "free_shipping"}, count=1000, settings=settings))
    second = set(batch(api, "b2", {"type": "free_shipping"}, count=1000, settings=settings))
    assert len(first) == len(second) == 1000
    assert not first & second
