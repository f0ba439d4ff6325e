"""Next-order coupons issued by an earning rule (``issue_coupon``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tests.conftest import BASIC_PROGRAM, Api, apply_program, ledger_ok, order

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

PROGRAM: dict[str, Any] = {
    **BASIC_PROGRAM,
    "rules": [
        *BASIC_PROGRAM["rules"],
        {
            "key": "come-back",
            "on": "order.completed",
            "when": "order.subtotal >= 50.0",
            "issue_coupon": {
                "discount": {"type": "discount_fixed", "value": 5},
                "settings": {"prefix": "NEXT-", "inactive_days": 1, "valid_days": 30},
            },
            "limit": {"per_member": 1, "period": "month"},
        },
    ],
}


def effects_of(response: Any, kind: str) -> list[dict[str, Any]]:
    assert response.status_code == 201, response.text
    return [e for e in response.json()["effects"] if e["type"] == kind]


def test_a_rule_issues_a_coupon_for_the_next_order(api: Api, tenant: tuple[str, str]) -> None:
    apply_program(api, PROGRAM)
    api.now = T0.isoformat()
    small = api.post("/v1/orders", json=order("o0", "m1", "20.00", placed_at=T0.isoformat()))
    assert effects_of(small, "reward_issued") == []

    first = api.post("/v1/orders", json=order("o1", "m1", "60.00", placed_at=T0.isoformat()))
    [issued] = effects_of(first, "reward_issued")
    assert issued["rule"] == "come-back"
    assert issued["code"].startswith("NEXT-")
    assert issued["starts_at"] == (T0 + timedelta(days=1)).isoformat()
    assert issued["expires_at"] == (T0 + timedelta(days=31)).isoformat()
    assert "come-back" in first.json()["rules_applied"]
    # points still come from the other rules
    assert effects_of(first, "points_earned")[0]["amount"] == 60

    # the rule's limit: once a month
    again = api.post("/v1/orders", json=order("o2", "m1", "80.00", placed_at=T0.isoformat()))
    assert effects_of(again, "reward_issued") == []

    coupon = api.get(f"/v1/coupons/{issued['code']}").json()
    assert coupon["member_id"] == "m1"
    assert coupon["kind"] == "rule"

    later = T0 + timedelta(days=2)
    api.now = later.isoformat()
    other = api.post(
        "/v1/orders",
        json=order("o3", "m2", "30.00", placed_at=later.isoformat(), coupon_codes=[issued["code"]]),
    )
    assert effects_of(other, "coupon_rejected")[0]["reason"] == "wrong_member"
    mine = api.post(
        "/v1/orders",
        json=order("o4", "m1", "30.00", placed_at=later.isoformat(), coupon_codes=[issued["code"]]),
    )
    assert effects_of(mine, "coupon_used") == [
        {"type": "coupon_used", "code": issued["code"], "discount": "5.00"}
    ]
    assert ledger_ok(tenant[0]) == []


def test_cancelling_the_order_voids_its_unused_coupon(api: Api) -> None:
    apply_program(api, PROGRAM)
    first = api.post("/v1/orders", json=order("o1", "m1", "60.00"))
    [issued] = effects_of(first, "reward_issued")
    cancel = api.post("/v1/orders/o1/cancel")
    assert {"type": "coupon_voided", "code": issued["code"]} in cancel.json()["effects"]
    assert api.get(f"/v1/coupons/{issued['code']}").json()["status"] == "void"
    check = api.post(
        "/v1/coupons/validate",
        json={"code": issued["code"], "member_id": "m1", "cart": {"items": [{"amount": "9"}]}},
    )
    assert check.json()["reason"] == "void"


def test_issue_coupon_rules_are_checked(api: Api) -> None:
    bad = {
        **BASIC_PROGRAM,
        "rules": [
            {
                "key": "x",
                "on": "review.created",
                "issue_coupon": {"discount": {"type": "discount_fixed", "value": 5}},
            },
            {
                "key": "y",
                "on": "order.completed",
                "earn": {"fixed": 1},
                "issue_coupon": {"discount": {"type": "discount_fixed", "value": 5}},
            },
            {
                "key": "z",
                "on": "order.completed",
                "issue_coupon": {"discount": {"type": "discount_fixed", "value": "5.001"}},
            },
        ],
    }
    response = api.put("/v1/program", json=bad)
    assert response.status_code == 422, response.text
    text = response.text
    assert "order.completed only" in text
    assert "exactly one of 'earn', 'multiply', 'issue_coupon' or 'issue_reward'" in text
    z = {**bad, "rules": bad["rules"][2:]}
    response = api.put("/v1/program", json=z)
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["loc"] == [
        "rules",
        0,
        "issue_coupon",
        "discount",
        "value",
    ]
