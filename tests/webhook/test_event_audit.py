"""Every domain event of the catalogue is written when its action happens, and reaches a
webhook endpoint that listens to ``*``."""

from __future__ import annotations

from typing import Any

from allegiance.db import get_engine
from allegiance.kit.clock import parse_timestamp
from allegiance.worker.runner import run_all
from tests.conftest import BASIC_PROGRAM, Api, apply_program, ledger_ok, order
from tests.webhook.receiver import Receiver

PROGRAM: dict[str, Any] = {
    "name": "Audit",
    "currency": "USD",
    "timezone": "UTC",
    "wallets": {"points": {"precision": 0, "rounding": "floor", "pending_days": 2,
                           "expiry": {"mode": "rolling_days", "days": 30, "notify_days": 7}}},
    "tiers": {"metric": "spend", "downgrade": {"mode": "immediate"},
              "levels": [{"key": "bronze", "threshold": 0}, {"key": "gold", "threshold": 100}]},
    "rules": [{"key": "base", "on": "order.completed", "earn": {"per_amount": 1}},
              {"key": "review", "on": "review.created", "earn": {"fixed": 5}}],
    "rewards": [{"key": "ten-off", "cost": 5, "type": "discount_fixed", "value": 10,
                 "coupon": {"valid_days": 30}}],
    "referral": {"referee": {"points": 10}, "referrer": {"points": 50},
                 "qualifying": "order.total >= 50.0", "hold_days": 14},
    "badges": [{"key": "first-order", "name": "First order", "on": "order.completed",
                "when": "member.stats.orders >= 1"}],
    "challenges": [{"key": "march", "name": "March", "starts_at": "2026-03-01T00:00:00Z",
                    "ends_at": "2026-04-01T00:00:00Z",
                    "steps": [{"key": "buy", "on": "order.completed", "count": 1}],
                    "reward": {"points": 10}}],
}  # fmt: skip


def written(api: Api) -> list[dict[str, Any]]:
    response = api.get("/v1/domain-events?limit=500")
    assert response.status_code == 200, response.text
    return response.json()["data"]


class Audit:
    def __init__(self, api: Api) -> None:
        self.api = api
        self.seen = 0

    def new_types(self) -> set[str]:
        events = written(self.api)
        fresh = events[self.seen :]
        self.seen = len(events)
        for e in fresh:
            assert set(e) == {"id", "type", "created_at", "tenant_id", "data"}
        return {e["type"] for e in fresh}


def call(api: Api, method: str, path: str, at: str, body: Any = None) -> dict[str, Any]:
    api.now = at
    response = api.request(method, path, json=body)
    assert response.status_code in (200, 201), response.text
    return response.json()


def jobs(tenant_id: str, at: str) -> None:
    run_all(get_engine(), parse_timestamp(at), tenant_id)


def test_each_action_writes_its_event(
    api: Api, tenant: tuple[str, str], receiver: Receiver
) -> None:
    apply_program(api, PROGRAM)
    endpoint = call(api, "POST", "/v1/webhook-endpoints", "2026-03-01T09:00:00Z",
                    {"url": receiver.url, "events": ["*"]})  # fmt: skip
    receiver.secrets.append(endpoint["secret"])
    audit = Audit(api)

    call(api, "PUT", "/v1/members/alice", "2026-03-01T10:00:00Z", {})
    code = call(api, "GET", "/v1/members/alice/referral", "2026-03-01T10:00:00Z")["code"]
    call(api, "PUT", "/v1/members/bob", "2026-03-01T11:00:00Z", {"referral_code": code})
    audit.new_types()

    call(api, "POST", "/v1/orders", "2026-03-02T10:00:00Z", order("o1", "m1", "150.00"))
    assert {"order.completed", "points.earned", "tier.upgraded", "badge.awarded",
            "challenge.completed"} <= audit.new_types()  # fmt: skip
    call(api, "POST", "/v1/orders", "2026-03-02T11:00:00Z", order("ob", "bob", "60.00"))

    review = {"id": "e1", "type": "review.created", "member_id": "m1",
              "occurred_at": "2026-03-02T12:00:00Z", "properties": {"stars": 5}}  # fmt: skip
    call(api, "POST", "/v1/events", "2026-03-02T12:00:00Z", review)
    earned = [e["data"] for e in written(api) if e["type"] == "points.earned"]
    assert {"member_id": "m1", "wallet": "points", "amount": 5, "event_id": "e1",
            "event_type": "review.created"} in earned  # fmt: skip
    audit.new_types()

    jobs(tenant[0], "2026-03-05T10:00:00Z")  # the two pending days are over
    assert "points.activated" in audit.new_types()

    redeemed = call(api, "POST", "/v1/members/m1/redemptions", "2026-03-05T11:00:00Z",
                    {"id": "r1", "reward": "ten-off"})  # fmt: skip
    assert "reward.redeemed" in audit.new_types()

    with_coupon = order("o2", "m1", "20.00", coupon_codes=[redeemed["coupon"]["code"]])
    call(api, "POST", "/v1/orders", "2026-03-06T10:00:00Z", with_coupon)
    assert "coupon.used" in audit.new_types()

    call(api, "POST", "/v1/orders/o2/refunds", "2026-03-06T11:00:00Z",
         {"id": "rf1", "amount": "5.00"})  # fmt: skip
    assert "order.refunded" in audit.new_types()

    call(api, "POST", "/v1/orders/o1/cancel", "2026-03-07T10:00:00Z", {"id": "c1"})
    assert {"order.cancelled", "tier.downgraded"} <= audit.new_types()

    jobs(tenant[0], "2026-03-20T10:00:00Z")  # the referral's hold is over
    assert "referral.converted" in audit.new_types()

    jobs(tenant[0], "2026-04-02T10:00:00Z")  # bob's points expire on 3 April
    assert "points.expiring" in audit.new_types()

    jobs(tenant[0], "2026-05-01T10:00:00Z")
    assert "points.expired" in audit.new_types()

    catalogue = {
        "order.completed", "order.refunded", "order.cancelled", "points.earned",
        "points.activated", "points.expiring", "points.expired", "tier.upgraded",
        "tier.downgraded", "reward.redeemed", "coupon.used", "referral.converted",
        "badge.awarded", "challenge.completed",
    }  # fmt: skip
    assert catalogue <= {r.body["type"] for r in receiver.received if r.verified}
    assert len(receiver.ids()) == len(written(api))  # every event, once
    assert ledger_ok(tenant[0]) == []


def test_the_feed_pages_forward_and_keeps_its_place(api: Api) -> None:
    """``?limit=&cursor=``: pages run forward; an empty page hands the same cursor back, so a
    poller resumes where it was; a cursor this API did not return is a 422 naming it."""
    apply_program(api, BASIC_PROGRAM)
    for n in range(3):
        assert api.post("/v1/orders", json=order(f"f{n}", "m1", "10.00")).status_code == 201
    seen: list[str] = []
    cursor = None
    while True:
        query = "/v1/domain-events?type=order.completed&limit=2"
        body = api.get(query + (f"&cursor={cursor}" if cursor else "")).json()
        seen += [e["data"]["order_id"] for e in body["data"]]
        if not body["has_more"]:
            break
        cursor = body["next_cursor"]
    assert seen == ["f0", "f1", "f2"]
    last = body["next_cursor"]
    empty = api.get(f"/v1/domain-events?type=order.completed&cursor={last}").json()
    assert empty["data"] == [] and empty["next_cursor"] == last
    assert api.get("/v1/domain-events").json()["next_cursor"] is not None
    bad = api.get("/v1/domain-events?cursor=not-a-cursor")
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["loc"] == ["query", "cursor"]
