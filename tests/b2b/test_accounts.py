"""B2B accounts through the API: pooled wallets and tiers, approvals, timeouts, races."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from allegiance.db import read_session
from allegiance.kit.clock import parse_timestamp
from allegiance.outbox.models import OutboxEvent
from allegiance.worker.runner import run_all
from tests.conftest import IS_POSTGRES, Api, apply_program, get_engine, ledger_ok, new_tenant, order

PROGRAM: dict[str, Any] = {
    "name": "Trade Rewards",
    "currency": "USD",
    "wallets": {"points": {"precision": 0}},
    "tiers": {
        "metric": "spend",
        "levels": [
            {"key": "standard", "threshold": 0},
            {"key": "preferred", "threshold": 1000, "benefits": {"earn_multiplier": 2}},
        ],
    },
    "rules": [
        {"key": "base", "on": "order.completed", "earn": {"per_amount": 1}},
        {
            "key": "wholesale-bonus",
            "on": "order.completed",
            "when": "account.group == 'wholesale'",
            "earn": {"fixed": 10},
        },
    ],
    "rewards": [
        {"key": "pallet-discount", "cost": 300, "type": "discount_fixed", "value": 30},
        {"key": "mug", "cost": 50, "type": "physical", "shipping": False, "stock": 3},
        {
            "key": "dealer-trip",
            "cost": 10,
            "type": "experience",
            "eligible": "account.group == 'dealer'",
            "limit": {"per_member": 1, "period": "year"},
        },
    ],
}


def account(api: Api, account_id: str = "acme", **extra: Any) -> dict[str, Any]:
    body = {
        "name": "Acme Corp",
        "group": "wholesale",
        "pooled": True,
        "approval_threshold": 200,
        "members": [
            {"member_id": "boss", "role": "admin"},
            {"member_id": "b1", "role": "buyer"},
            {"member_id": "b2"},
        ],
        **extra,
    }
    response = api.put(f"/v1/accounts/{account_id}", json=body)
    assert response.status_code in (200, 201), response.text
    return response.json()


def redeem(
    api: Api, member_id: str, rid: str, reward: str = "pallet-discount", **kw: Any
) -> httpx.Response:
    return api.post(
        f"/v1/members/{member_id}/redemptions", json={"id": rid, "reward": reward, **kw}
    )


def test_account_upsert_links_members_with_roles(api: Api) -> None:
    apply_program(api, PROGRAM)
    view = account(api)
    assert view["members"] == [
        {"member_id": "b1", "role": "buyer"},
        {"member_id": "b2", "role": "buyer"},
        {"member_id": "boss", "role": "admin"},
    ]
    assert view["approval_threshold"] == 200
    member = api.get("/v1/members/b1").json()
    assert member["account"]["account_id"] == "acme"
    assert member["account"]["role"] == "buyer"
    assert member["account"]["group"] == "wholesale"
    # replacing the member list unlinks who is no longer on it
    view = account(api, members=[{"member_id": "boss", "role": "admin"}])
    assert [m["member_id"] for m in view["members"]] == ["boss"]
    assert api.get("/v1/members/b1").json()["account"] is None
    response = api.put("/v1/accounts/acme/members/b1", json={"role": "buyer"})
    assert [m["member_id"] for m in response.json()["members"]] == ["b1", "boss"]
    assert api.delete("/v1/accounts/acme/members/b2").json()["code"] == "account_member_not_found"
    assert api.get("/v1/accounts/nope").json()["code"] == "account_not_found"
    bad = api.put("/v1/accounts/acme", json={"name": "", "pooled": "maybe"})
    assert bad.status_code == 422
    assert {tuple(e["loc"]) for e in bad.json()["errors"]} >= {("body", "name"), ("body", "pooled")}


def test_account_upsert_enrols_unknown_members_with_an_event(
    api: Api, tenant: tuple[str, str]
) -> None:
    apply_program(api, PROGRAM)
    api.put("/v1/members/boss", json={"locale": "en"})
    account(api)  # boss exists; b1 and b2 come to exist through the account
    with read_session() as session:
        enrolled = sorted(
            e.data["member_id"]
            for e in session.query(OutboxEvent).filter(
                OutboxEvent.tenant_id == tenant[0], OutboxEvent.type == "member.enrolled"
            )
        )
    assert enrolled == ["b1", "b2", "boss"]  # boss once, from its own upsert
    account(api)  # the same list again creates nobody
    with read_session() as session:
        count = (
            session.query(OutboxEvent)
            .filter(OutboxEvent.tenant_id == tenant[0], OutboxEvent.type == "member.enrolled")
            .count()
        )
    assert count == 3


def test_pooled_account_earns_and_qualifies_at_account_level(
    api: Api, tenant: tuple[str, str]
) -> None:
    apply_program(api, PROGRAM)
    account(api)
    first = api.post("/v1/orders", json=order("o1", "b1", "600")).json()
    assert first["account_id"] == "acme"
    assert first["balances"]["points"]["active"] == 610  # 600 + wholesale bonus
    api.post("/v1/orders", json=order("o2", "b2", "500"))
    acct = api.get("/v1/accounts/acme").json()
    assert acct["balances"]["points"]["active"] == 1120
    assert acct["tier"]["key"] == "preferred"  # 1,100 spent by two buyers together
    # any buyer sees the account balance and the account's tier
    for buyer in ("b1", "b2", "boss"):
        member = api.get(f"/v1/members/{buyer}").json()
        assert member["account"]["balances"]["points"]["active"] == 1120
        assert member["tier"]["key"] == "preferred"
        assert member["balances"]["points"]["active"] == 0  # nothing in their own wallets
    # the account's multiplier applies to the next order of any buyer
    third = api.post("/v1/orders", json=order("o3", "boss", "100")).json()
    assert third["balances"]["points"]["active"] == 1120 + 200 + 10
    # refunds reverse from the account wallet
    refund = api.post("/v1/orders/o3/refunds", json={"id": "r3", "amount": "100"}).json()
    assert refund["balances"]["points"]["active"] == 1120
    # a buyer's ledger lists what its orders did in the account's wallet, signed as usual
    entries = api.get("/v1/members/boss/ledger").json()["data"]
    assert [(t["code"], t["amount"]) for t in entries] == [
        ("reverse", -210),
        ("earn", 10),
        ("earn", 200),
    ]
    assert ledger_ok(tenant[0]) == []


def test_non_pooled_account_group_is_visible_to_rules(api: Api) -> None:
    apply_program(api, PROGRAM)
    account(api, pooled=False)
    response = api.post("/v1/orders", json=order("o1", "b1", "10")).json()
    assert response["rules_applied"] == ["base", "wholesale-bonus"]
    assert response["account_id"] is None
    assert api.get("/v1/members/b1").json()["balances"]["points"]["active"] == 20


def seeded(api: Api) -> None:
    apply_program(api, PROGRAM)
    account(api)
    api.post("/v1/orders", json=order("o1", "b1", "990"))  # 1,000 points in the account


def test_redemption_above_threshold_waits_and_holds_points(
    api: Api, tenant: tuple[str, str]
) -> None:
    seeded(api)
    small = redeem(api, "b1", "small", reward="mug")
    assert small.status_code == 201, small.text
    assert small.json()["status"] == "completed"  # 50 points: under the threshold
    waiting = redeem(api, "b1", "big")
    assert waiting.status_code == 201, waiting.text
    body = waiting.json()
    assert body["status"] == "awaiting_approval"
    assert body["points_spent"] == 300
    assert body["balances"]["points"]["active"] == 650  # held points are not spendable
    listed = api.get("/v1/accounts/acme/redemptions?status=awaiting_approval").json()["data"]
    assert [r["redemption_id"] for r in listed] == ["big"]
    # a buyer cannot approve; the admin can, once
    refused = api.post("/v1/redemptions/big/approve", json={"approver_id": "b2"})
    assert refused.status_code == 403
    assert refused.json()["code"] == "not_account_admin"
    approved = api.post("/v1/redemptions/big/approve", json={"approver_id": "boss", "note": "ok"})
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "completed"
    assert approved.json()["approval"]["decided_by"] == "boss"
    assert approved.json()["balances"]["points"]["active"] == 650
    assert api.post("/v1/redemptions/big/approve", json={"approver_id": "boss"}).status_code == 200
    again = api.post("/v1/redemptions/big/reject", json={"approver_id": "boss"})
    assert again.json()["code"] == "redemption_not_pending"
    events = [e["type"] for e in api.get("/v1/domain-events?limit=100").json()["data"]]
    assert events.count("reward.redeemed") == 2
    assert "redemption.approval_requested" in events
    assert ledger_ok(tenant[0]) == []


def test_reject_releases_points_and_stock(api: Api, tenant: tuple[str, str]) -> None:
    seeded(api)
    assert redeem(api, "b1", "m1", reward="mug", quantity=3).json()["status"] == "completed"
    assert redeem(api, "b1", "m2", reward="mug").json()["code"] == "out_of_stock"
    waiting = redeem(api, "b2", "big").json()
    assert waiting["status"] == "awaiting_approval"
    rejected = api.post("/v1/redemptions/big/reject", json={"approver_id": "boss", "note": "no"})
    assert rejected.status_code == 200, rejected.text
    assert rejected.json()["status"] == "rejected"
    assert rejected.json()["balances"]["points"]["active"] == 850
    assert ledger_ok(tenant[0]) == []
    ledger_codes = [t["code"] for t in api.get("/v1/members/b2/ledger").json()["data"]]
    assert ledger_codes == ["release", "hold"]


def test_admin_key_may_decide_without_approver_but_storefront_needs_one(
    api: Api, tenant: tuple[str, str]
) -> None:
    from allegiance.db import write_session
    from allegiance.tenant.service import create_api_key

    seeded(api)
    redeem(api, "b1", "big")
    with write_session(get_engine()) as session:
        key = create_api_key(
            session,
            tenant_id=tenant[0],
            scope="storefront",
            name="shop",
            now=parse_timestamp("2026-01-01"),
        )
    storefront = api.with_key(key.api_key)
    response = storefront.post("/v1/redemptions/big/approve", json={})
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["body", "approver_id"]
    assert api.post("/v1/redemptions/big/approve", json={}).json()["status"] == "completed"


def test_waiting_redemption_times_out_and_points_return(api: Api, tenant: tuple[str, str]) -> None:
    api.now = "2026-05-01T10:00:00Z"
    seeded(api)
    account(api, approval_timeout_hours=24)
    body = redeem(api, "b1", "big").json()
    assert body["approval"]["expires_at"] == "2026-05-02T10:00:00+00:00"
    api.now = "2026-05-02T11:00:00Z"
    late = api.post("/v1/redemptions/big/approve", json={"approver_id": "boss"})
    assert late.json()["code"] == "approval_expired"
    run_all(get_engine(), parse_timestamp("2026-05-02T11:00:00Z"), tenant[0])
    assert api.get("/v1/redemptions/big").json()["status"] == "expired"
    assert api.get("/v1/accounts/acme").json()["balances"]["points"]["active"] == 1000
    assert ledger_ok(tenant[0]) == []


def test_pooled_pending_points_activate_by_the_account_job(
    api: Api, tenant: tuple[str, str]
) -> None:
    program = {**PROGRAM, "wallets": {"points": {"pending_days": 14}}}
    api.now = "2026-05-01T10:00:00Z"
    apply_program(api, program)
    account(api)
    api.post("/v1/orders", json=order("o1", "b1", "100"))
    pending = api.get("/v1/accounts/acme").json()["balances"]["points"]
    assert (pending["active"], pending["pending"]) == (0, 110)
    run_all(get_engine(), parse_timestamp("2026-05-16T00:00:00Z"), tenant[0])
    api.now = "2026-05-16T00:00:00Z"
    active = api.get("/v1/accounts/acme").json()["balances"]["points"]
    assert (active["active"], active["pending"]) == (110, 0)
    # the job booked the activation: the ledger agrees with what GET shows
    assert ledger_ok(tenant[0]) == []
    spent = redeem(api, "boss", "r1", reward="mug").json()
    assert spent["balances"]["points"]["active"] == 60


def test_account_tier_is_reviewed_like_a_members(api: Api, tenant: tuple[str, str]) -> None:
    program = {
        **PROGRAM,
        "tiers": {**PROGRAM["tiers"], "downgrade": {"mode": "period_end", "review_days": 30}},
    }
    api.now = "2026-01-01T10:00:00Z"
    apply_program(api, program)
    account(api)
    api.post("/v1/orders", json=order("o1", "b1", "1200"))
    assert api.get("/v1/accounts/acme").json()["tier"]["key"] == "preferred"
    api.post("/v1/orders/o1/refunds", json={"id": "r1", "amount": "600"})
    run_all(get_engine(), parse_timestamp("2026-02-01T00:00:00Z"), tenant[0])
    api.now = "2026-02-01T00:00:00Z"
    assert api.get("/v1/accounts/acme").json()["tier"]["key"] == "standard"
    assert api.get("/v1/members/b2").json()["tier"]["key"] == "standard"
    events = api.get("/v1/domain-events?type=tier.downgraded").json()["data"]
    assert events[0]["data"]["account_id"] == "acme"


def test_released_points_keep_their_expiry(api: Api, tenant: tuple[str, str]) -> None:
    """A hold does not extend a lot's life: points whose lot expired while they were held
    come back and expire at once."""
    program = {**PROGRAM, "wallets": {"points": {"expiry": {"mode": "end_of_month"}}}}
    api.now = "2026-05-20T10:00:00Z"
    apply_program(api, program)
    account(api, approval_timeout_hours=24 * 30)
    api.post("/v1/orders", json=order("o1", "b1", "990"))
    assert redeem(api, "b1", "big").json()["status"] == "awaiting_approval"
    run_all(get_engine(), parse_timestamp("2026-06-02T00:00:00Z"), tenant[0])
    api.now = "2026-06-02T00:00:00Z"
    rejected = api.post("/v1/redemptions/big/reject", json={"approver_id": "boss"}).json()
    assert rejected["balances"]["points"]["active"] == 0
    assert ledger_ok(tenant[0]) == []


def test_redemption_errors(api: Api) -> None:
    seeded(api)
    assert redeem(api, "b1", "x", reward="nope").status_code == 422
    assert redeem(api, "ghost", "y").json()["code"] == "member_not_found"
    trip = redeem(api, "b1", "z", reward="dealer-trip")
    assert trip.status_code == 403
    assert trip.json()["code"] == "not_eligible"
    poor = redeem(api, "b1", "w", quantity=10)
    assert poor.json()["code"] == "insufficient_points"
    # a refused request stays refused under its id
    assert redeem(api, "b1", "w", quantity=10).headers.get("Idempotent-Replayed") == "true"
    assert redeem(api, "b1", "w", quantity=2).json()["code"] == "idempotency_conflict"


DEALER_PROGRAM: dict[str, Any] = {
    "name": "Dealer Rewards",
    "currency": "EUR",
    "wallets": {"points": {"precision": 0}},
    "rules": [
        {
            "key": "sell-through",
            "on": "sellthrough.reported",
            "when": "account.group == 'dealer' && member.account_role == 'buyer'",
            "earn": {"percent": 5},
            "limit": {"per_member": 20, "period": "month"},
        }
    ],
    "rewards": [
        {
            "key": "dealer-trip",
            "cost": 100,
            "type": "experience",
            "eligible": "account.group == 'dealer'",
            "limit": {"per_member": 1, "period": "year"},
        }
    ],
}


def test_dealer_sell_through_program(api: Api, tenant: tuple[str, str]) -> None:
    """The worked example of docs/b2b.md: a dealer's sales reps report sell-through; points
    go to the dealer's pooled wallet; the dealer redeems a trip."""
    apply_program(api, DEALER_PROGRAM)
    api.put(
        "/v1/accounts/dealer-42",
        json={
            "name": "Bike Shop Kraków",
            "group": "dealer",
            "pooled": True,
            "members": [{"member_id": "owner", "role": "admin"}, {"member_id": "rep-1"}],
        },
    )
    for n, amount in enumerate(("1200.00", "800.00")):
        response = api.post(
            "/v1/events",
            json={
                "id": f"st-{n}",
                "type": "sellthrough.reported",
                "member_id": "rep-1",
                "properties": {"amount": amount, "sku": "BIKE-1", "serial": f"SN{n}"},
            },
        )
        assert response.status_code == 201, response.text
    dealer = api.get("/v1/accounts/dealer-42").json()
    assert dealer["balances"]["points"]["active"] == 100  # 5 % of 2,000
    trip = redeem(api, "owner", "trip-1", reward="dealer-trip")
    assert trip.json()["status"] == "completed"
    assert trip.json()["balances"]["points"]["active"] == 0
    assert ledger_ok(tenant[0]) == []


@pytest.mark.skipif(not IS_POSTGRES, reason="row-lock race on Postgres")
def test_two_buyers_redeeming_concurrently_never_overdraw(live_server: str) -> None:
    tenant_id, key = new_tenant("b2b-race")
    client = httpx.Client(
        base_url=live_server, timeout=120, headers={"Authorization": f"Bearer {key}"}
    )
    client.put("/v1/program", json=PROGRAM).raise_for_status()
    client.put(
        "/v1/accounts/acme",
        json={
            "name": "Acme",
            "pooled": True,
            "members": [{"member_id": "b1"}, {"member_id": "b2"}],
        },
    ).raise_for_status()
    client.post("/v1/orders", json=order("seed", "b1", "1000")).raise_for_status()  # 1,000
    n = 24

    def attempt(i: int) -> httpx.Response:
        return client.post(
            f"/v1/members/b{i % 2 + 1}/redemptions",
            json={"id": f"r{i}", "reward": "pallet-discount"},
        )

    with ThreadPoolExecutor(max_workers=n) as pool:
        responses = list(pool.map(attempt, range(n)))
    codes = sorted(r.status_code for r in responses)
    assert all(c < 500 for c in codes), [r.text for r in responses if r.status_code >= 500]
    assert codes.count(201) == 3  # 3 × 300 of 1,000
    assert {r.json()["code"] for r in responses if r.status_code != 201} == {"insufficient_points"}
    balance = client.get("/v1/accounts/acme").json()["balances"]["points"]["active"]
    assert balance == 100
    assert ledger_ok(tenant_id) == []
    client.close()
