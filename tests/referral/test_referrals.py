"""Referrals through the API: enrollment with a code, fraud rules with their reason codes,
qualification on the referee's first order, conversion by the job after the hold, voiding on
a refund inside the hold. Time is driven by ``X-Allegiance-Now`` and ``run_all``."""

from __future__ import annotations

from typing import Any

import pytest

from allegiance.db import get_engine
from allegiance.kit.clock import parse_timestamp
from allegiance.worker.runner import run_all
from tests.conftest import Api, apply_program, ledger_ok, order

T0 = "2026-03-01T10:00:00Z"  # referrer enrolls
T1 = "2026-03-02T10:00:00Z"  # referee enrolls
T2 = "2026-03-03T10:00:00Z"  # referee's first order; hold ends 2026-03-17T10:00:00Z
HOLD_END = "2026-03-17T10:00:00Z"


def program(**referral: Any) -> dict[str, Any]:
    section: dict[str, Any] = {
        "share_url": "https://shop.example/r/{code}",
        "code": {"prefix": "REF", "length": 8},
        "referee": {"points": 100},
        "referrer": {"points": 500},
        "qualifying": "order.total >= 50.0",
        "hold_days": 14,
        **referral,
    }
    return {
        "name": "Referrals",
        "currency": "USD",
        "timezone": "UTC",
        "wallets": {"points": {"precision": 0, "rounding": "floor"}},
        "rules": [{"key": "base", "on": "order.completed", "earn": {"per_amount": 1}}],
        "referral": section,
    }


def enroll(api: Api, member_id: str, at: str, status: int = 201, **fields: Any) -> dict[str, Any]:
    api.now = at
    response = api.put(f"/v1/members/{member_id}", json=fields)
    assert response.status_code == status, response.text
    return response.json()


def card(api: Api, member_id: str) -> dict[str, Any]:
    response = api.get(f"/v1/members/{member_id}/referral")
    assert response.status_code == 200, response.text
    return response.json()


def referral(api: Api, referee: str) -> dict[str, Any]:
    response = api.get(f"/v1/referrals/{referee}")
    assert response.status_code == 200, response.text
    return response.json()


def active(api: Api, member_id: str) -> Any:
    response = api.get(f"/v1/members/{member_id}")
    assert response.status_code == 200, response.text
    return response.json()["balances"]["points"]["active"]


def book(api: Api, order_id: str, member_id: str, amount: str, at: str) -> None:
    api.now = at
    response = api.post("/v1/orders", json=order(order_id, member_id, amount, placed_at=at))
    assert response.status_code == 201, response.text


def jobs(tenant_id: str, at: str) -> dict[str, int]:
    return run_all(get_engine(), parse_timestamp(at), tenant_id)


def referred(api: Api, referrer: str = "alice", referee: str = "bob", **fields: Any) -> str:
    """The referrer enrolls and shares its code; the referee enrolls with it."""
    enroll(api, referrer, T0, email="alice@example.com")
    code = card(api, referrer)["code"]
    enroll(api, referee, T1, referral_code=code, **fields)
    return code


# ---- happy path ------------------------------------------------------------------------------


def test_happy_path(api: Api, tenant: tuple[str, str]) -> None:
    apply_program(api, program())
    code = referred(api, email="bob@example.com")
    assert code.startswith("REF") and len(code) == 11
    assert card(api, "alice")["share_url"] == f"https://shop.example/r/{code}"
    assert card(api, "alice")["code"] == code  # stable
    # the referee is rewarded at enrollment
    assert active(api, "bob") == 100
    r = referral(api, "bob")
    assert (r["status"], r["reason"], r["referrer_id"]) == ("pending", None, "alice")
    assert r["referee_reward"] == {"wallet": "points", "points": 100}
    # the first order qualifies it; the hold runs from the order's time
    book(api, "o1", "bob", "80.00", T2)
    r = referral(api, "bob")
    assert (r["status"], r["order_id"]) == ("qualified", "o1")
    assert r["convert_at"] == "2026-03-17T10:00:00+00:00"
    assert r["referrer_reward"] == {"wallet": "points", "points": 500}
    jobs(tenant[0], "2026-03-17T09:59:59Z")
    assert referral(api, "bob")["status"] == "qualified"
    assert active(api, "alice") == 0
    counts = jobs(tenant[0], HOLD_END)
    assert counts["referral_conversions"] == 1
    r = referral(api, "bob")
    assert (r["status"], r["converted_at"]) == ("converted", "2026-03-17T10:00:00+00:00")
    assert active(api, "alice") == 500
    assert jobs(tenant[0], "2026-03-18T00:00:00Z")["referral_conversions"] == 0
    assert active(api, "alice") == 500
    ledger = api.get("/v1/members/alice/ledger").json()["data"]
    assert [(t["code"], t["amount"], t["source"]["type"]) for t in ledger] == [
        ("earn", 500, "referral")
    ]
    events = api.get("/v1/domain-events?type=referral.converted").json()["data"]
    assert len(events) == 1
    assert events[0]["data"]["referrer_id"] == "alice"
    assert events[0]["data"]["referee_id"] == "bob"
    assert events[0]["data"]["points"] == 500
    stats = card(api, "alice")["stats"]
    assert stats["referred"]["converted"] == 1 and stats["referred"]["total"] == 1
    assert stats["points_earned"] == {"points": 500}
    bob = card(api, "bob")
    assert bob["referred_by"] == {"referrer_id": "alice", "status": "converted", "reason": None}
    assert bob["stats"]["points_earned"] == {"points": 100}
    assert bob["code"] != code
    exported = api.get("/v1/members/alice/export").json()["referrals"]
    assert [(r["referee_id"], r["status"]) for r in exported] == [("bob", "converted")]
    exported = api.get("/v1/members/bob/export").json()["referrals"]
    assert [(r["referrer_id"], r["referee_id"]) for r in exported] == [("alice", "bob")]
    assert ledger_ok(tenant[0]) == []


def test_repeated_enrollment_and_later_orders_change_nothing(
    api: Api, tenant: tuple[str, str]
) -> None:
    apply_program(api, program())
    code = referred(api)
    enroll(api, "bob", T1, status=200, referral_code=code)  # a retried upsert
    enroll(api, "bob", T1, status=200, referral_code=code.lower(), name="Bob")
    assert active(api, "bob") == 100
    book(api, "o1", "bob", "80.00", T2)
    book(api, "o2", "bob", "10.00", "2026-03-04T10:00:00Z")
    assert referral(api, "bob")["order_id"] == "o1"
    jobs(tenant[0], HOLD_END)
    jobs(tenant[0], HOLD_END)
    assert active(api, "alice") == 500
    listed = api.get("/v1/members/alice/referrals").json()["data"]
    assert [(r["referee_id"], r["status"]) for r in listed] == [("bob", "converted")]
    assert ledger_ok(tenant[0]) == []


def test_codes_are_case_insensitive_and_unique(api: Api, tenant: tuple[str, str]) -> None:
    apply_program(api, program(code={"length": 6}))
    codes = set()
    for i in range(5):
        enroll(api, f"m{i}", T0)
        codes.add(card(api, f"m{i}")["code"])
    assert len(codes) == 5 and all(len(c) == 6 for c in codes)
    enroll(api, "bob", T1, referral_code=f"  {card(api, 'm0')['code'].lower()} ")
    assert referral(api, "bob")["status"] == "pending"


# ---- fraud rules -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("referrer", "referee", "reason"),
    [
        ({"email": "Jane.Doe+shop@Gmail.com"}, {"email": "janedoe@googlemail.com"}, "same_email"),
        ({"email": "JANE@Example.com"}, {"email": "jane+x@example.com"}, "same_email"),
        ({"phone": "+1 (555) 010-2030"}, {"phone": "15550102030"}, "same_phone"),
        (
            {"attributes": {"address_hash": "a1"}},
            {"attributes": {"address_hash": "a1"}},
            "same_address",
        ),
        (
            {"attributes": {"device_hash": "d1"}},
            {"attributes": {"device_hash": "d1"}},
            "same_device",
        ),
        ({"attributes": {"ip_hash": "i1"}}, {"attributes": {"ip_hash": "i1"}}, "same_device"),
        # controls: dots count outside Gmail; different hashes differ
        ({"email": "jane.doe@example.com"}, {"email": "janedoe@example.com"}, None),
        ({"attributes": {"device_hash": "d1"}}, {"attributes": {"device_hash": "d2"}}, None),
    ],
)
def test_fraud_rules_on_shared_identity(
    api: Api,
    tenant: tuple[str, str],
    referrer: dict[str, Any],
    referee: dict[str, Any],
    reason: str | None,
) -> None:
    apply_program(api, program())
    enroll(api, "alice", T0, **referrer)
    code = card(api, "alice")["code"]
    enroll(api, "bob", T1, referral_code=code, **referee)
    r = referral(api, "bob")
    assert (r["status"], r["reason"]) == ("rejected" if reason else "pending", reason)
    assert active(api, "bob") == (0 if reason else 100)
    assert r["referee_reward"] == (None if reason else {"wallet": "points", "points": 100})
    book(api, "o1", "bob", "80.00", T2)
    jobs(tenant[0], HOLD_END)
    assert active(api, "alice") == (0 if reason else 500)
    assert ledger_ok(tenant[0]) == []


def test_self_referral(api: Api, tenant: tuple[str, str]) -> None:
    apply_program(api, program())
    enroll(api, "alice", T0)
    code = card(api, "alice")["code"]
    enroll(api, "alice", T1, status=200, referral_code=code)
    r = referral(api, "alice")
    assert (r["status"], r["reason"]) == ("rejected", "self_referral")
    assert active(api, "alice") == 0


def test_unknown_code(api: Api, tenant: tuple[str, str]) -> None:
    apply_program(api, program())
    enroll(api, "bob", T1, referral_code="NOPE1234")
    r = referral(api, "bob")
    assert (r["status"], r["reason"], r["referrer_id"]) == ("rejected", "unknown_code", None)
    assert active(api, "bob") == 0


def test_referee_with_earlier_orders(api: Api, tenant: tuple[str, str]) -> None:
    apply_program(api, program())
    enroll(api, "alice", T0)
    code = card(api, "alice")["code"]
    book(api, "o0", "bob", "80.00", T0)  # the order creates the member
    enroll(api, "bob", T1, status=200, referral_code=code)
    r = referral(api, "bob")
    assert (r["status"], r["reason"]) == ("rejected", "referee_has_orders")
    assert active(api, "bob") == 80  # the order's points only


def test_existing_member_is_not_new(api: Api, tenant: tuple[str, str]) -> None:
    apply_program(api, program())
    enroll(api, "alice", T0)
    code = card(api, "alice")["code"]
    enroll(api, "bob", T0)
    enroll(api, "bob", T1, status=200, referral_code=code)
    assert (referral(api, "bob")["status"], referral(api, "bob")["reason"]) == (
        "rejected",
        "not_new_member",
    )


def test_cap_per_referrer_per_month(api: Api, tenant: tuple[str, str]) -> None:
    apply_program(api, program(cap_per_month=2))
    enroll(api, "alice", T0)
    code = card(api, "alice")["code"]
    enroll(api, "b1", "2026-03-05T00:00:00Z", referral_code=code)
    enroll(api, "b2", "2026-03-20T00:00:00Z", referral_code=code)
    enroll(api, "b3", "2026-03-31T23:59:59Z", referral_code=code)
    enroll(api, "b4", "2026-04-01T00:00:00Z", referral_code=code)  # a new month
    reasons = [referral(api, m)["reason"] for m in ("b1", "b2", "b3", "b4")]
    assert reasons == [None, None, "referrer_cap_reached", None]
    # rejected referrals do not use up the cap
    enroll(api, "b5", "2026-04-02T00:00:00Z", referral_code=code, email="x@example.com")
    enroll(api, "b6", "2026-04-02T00:00:00Z", referral_code=code)
    enroll(api, "b7", "2026-04-02T00:00:00Z", referral_code=code)
    assert [referral(api, m)["reason"] for m in ("b5", "b6", "b7")] == [
        None,
        "referrer_cap_reached",
        "referrer_cap_reached",
    ]
    stats = card(api, "alice")["stats"]["referred"]
    assert (stats["pending"], stats["rejected"], stats["total"]) == (4, 3, 7)
    rejected = api.get("/v1/members/alice/referrals?status=rejected").json()["data"]
    assert {r["referee_id"] for r in rejected} == {"b3", "b6", "b7"}


def test_cap_month_follows_the_program_timezone(api: Api, tenant: tuple[str, str]) -> None:
    document = program(cap_per_month=1)
    document["timezone"] = "America/New_York"
    apply_program(api, document)
    enroll(api, "alice", T0)
    code = card(api, "alice")["code"]
    enroll(api, "b1", "2026-03-31T12:00:00Z", referral_code=code)
    # 2026-04-01T02:00Z is still March 31 in New York
    enroll(api, "b2", "2026-04-01T02:00:00Z", referral_code=code)
    enroll(api, "b3", "2026-04-01T05:00:00Z", referral_code=code)
    assert [referral(api, m)["reason"] for m in ("b1", "b2", "b3")] == [
        None,
        "referrer_cap_reached",
        None,
    ]


def test_first_order_must_qualify(api: Api, tenant: tuple[str, str]) -> None:
    apply_program(api, program())
    referred(api)
    book(api, "o1", "bob", "49.99", T2)
    book(api, "o2", "bob", "200.00", "2026-03-04T10:00:00Z")  # too late: the first decides
    r = referral(api, "bob")
    assert (r["status"], r["reason"], r["order_id"]) == (
        "rejected",
        "first_order_not_qualifying",
        "o1",
    )
    jobs(tenant[0], "2026-04-01T00:00:00Z")
    assert active(api, "alice") == 0
    assert active(api, "bob") == 100 + 49 + 200  # the referee keeps its welcome points
    assert ledger_ok(tenant[0]) == []


# ---- refunds ---------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["partial_refund", "full_refund", "cancel"])
def test_refund_inside_the_hold_voids(api: Api, tenant: tuple[str, str], how: str) -> None:
    apply_program(api, program())
    referred(api)
    book(api, "o1", "bob", "80.00", T2)
    api.now = "2026-03-10T00:00:00Z"
    if how == "cancel":
        response = api.post("/v1/orders/o1/cancel", json={"reason": "changed mind"})
    else:
        amount = "10.00" if how == "partial_refund" else "80.00"
        response = api.post("/v1/orders/o1/refunds", json={"id": "r1", "amount": amount})
    assert response.status_code in (200, 201), response.text
    r = referral(api, "bob")
    assert (r["status"], r["reason"], r["voided_at"]) == (
        "voided",
        "refunded_in_hold",
        "2026-03-10T00:00:00+00:00",
    )
    assert jobs(tenant[0], "2026-04-01T00:00:00Z")["referral_conversions"] == 0
    assert active(api, "alice") == 0
    assert card(api, "alice")["stats"]["referred"]["voided"] == 1
    assert ledger_ok(tenant[0]) == []


def test_refund_after_the_hold_keeps_the_reward(api: Api, tenant: tuple[str, str]) -> None:
    apply_program(api, program())
    referred(api)
    book(api, "o1", "bob", "80.00", T2)
    # the hold is over but the job has not run yet: the refund no longer voids
    api.now = HOLD_END
    response = api.post("/v1/orders/o1/refunds", json={"id": "r1", "amount": "80.00"})
    assert response.status_code == 201, response.text
    assert referral(api, "bob")["status"] == "qualified"
    jobs(tenant[0], HOLD_END)
    assert referral(api, "bob")["status"] == "converted"
    api.now = "2026-03-20T00:00:00Z"
    response = api.post("/v1/orders/o1/cancel", json={})
    assert response.status_code in (200, 201), response.text
    assert referral(api, "bob")["status"] == "converted"  # no claw-back after conversion
    assert active(api, "alice") == 500
    assert ledger_ok(tenant[0]) == []


# ---- program, endpoints ----------------------------------------------------------------------


def test_without_a_referral_section_the_code_is_only_stored(
    api: Api, tenant: tuple[str, str]
) -> None:
    document = program()
    del document["referral"]
    apply_program(api, document)
    view = enroll(api, "bob", T1, referral_code="ANY")
    assert view["referral_code"] == "ANY"
    response = api.get("/v1/members/bob/referral")
    assert response.status_code == 404
    assert response.json()["code"] == "referrals_not_configured"
    assert api.get("/v1/referrals/bob").status_code == 404


@pytest.mark.parametrize(
    ("change", "loc"),
    [
        ({"qualifying": "order.totl >= 1.0"}, ["referral", "qualifying"]),
        ({"qualifying": "event.type == 'x'"}, ["referral", "qualifying"]),
        ({"share_url": "https://shop.example/r/"}, ["referral", "share_url"]),
        ({"referrer": {"points": 5, "wallet": "miles"}}, ["referral", "referrer", "wallet"]),
        ({"referee": {"points": "1.5"}}, ["referral", "referee", "points"]),
        ({"hold_days": -1}, ["referral", "hold_days"]),
        ({"code": {"prefix": "bad prefix"}}, ["referral", "code", "prefix"]),
        ({"cap_per_month": 0}, ["referral", "cap_per_month"]),
        ({"bonus": 1}, ["referral", "bonus"]),
    ],
)
def test_program_checks(api: Api, change: dict[str, Any], loc: list[Any]) -> None:
    response = api.put("/v1/program", json=program(**change))
    assert response.status_code == 422, response.text
    assert loc in [e["loc"] for e in response.json()["errors"]], response.text


def test_endpoints_404_and_scopes(api: Api, tenant: tuple[str, str]) -> None:
    apply_program(api, program())
    assert api.get("/v1/members/ghost/referral").json()["code"] == "member_not_found"
    assert api.get("/v1/members/ghost/referrals").status_code == 404
    assert api.get("/v1/referrals/ghost").json()["code"] == "referral_not_found"
    assert api.get("/v1/members/ghost/referrals?status=bogus").status_code == 422
    assert api.get("/v1/members/ghost/referrals?cursor=zzz").status_code in (404, 422)


def test_list_pages(api: Api, tenant: tuple[str, str]) -> None:
    apply_program(api, program())
    enroll(api, "alice", T0)
    code = card(api, "alice")["code"]
    for i in range(3):
        enroll(api, f"b{i}", T1, referral_code=code)
    first = api.get("/v1/members/alice/referrals?limit=2").json()
    assert [r["referee_id"] for r in first["data"]] == ["b2", "b1"]
    rest = api.get(f"/v1/members/alice/referrals?limit=2&cursor={first['next_cursor']}").json()
    assert [r["referee_id"] for r in rest["data"]] == ["b0"] and rest["next_cursor"] is None
