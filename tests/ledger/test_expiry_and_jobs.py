"""Pending points, expiry modes, lot order, expiry notices and refund policies (DESIGN.md §5).

Time is driven by ``X-Allegiance-Now`` for requests and by ``run_all(engine, now, tenant)``
for the periodic jobs. ``ledger_ok`` checks every invariant after each story.
"""

from __future__ import annotations

from typing import Any

import pytest

from allegiance.db import get_engine
from allegiance.kit.clock import parse_timestamp
from allegiance.worker.runner import run_all
from tests.conftest import Api, apply_program, ledger_ok, order


def program(
    wallet: dict[str, Any],
    *,
    timezone: str = "UTC",
    per_amount: float = 1,
    refund_policy: str | None = None,
) -> dict[str, Any]:
    document: dict[str, Any] = {
        "name": "Ledger",
        "currency": "USD",
        "timezone": timezone,
        "wallets": {"points": {"precision": 0, "rounding": "floor", **wallet}},
        "rules": [{"key": "base", "on": "order.completed", "earn": {"per_amount": per_amount}}],
    }
    if refund_policy:
        document["refund_policy"] = refund_policy
    return document


def book(api: Api, order_id: str, amount: str, at: str, member: str = "m1") -> dict[str, Any]:
    api.now = at
    response = api.post("/v1/orders", json=order(order_id, member, amount, placed_at=at))
    assert response.status_code == 201, response.text
    return response.json()


def balance(api: Api, at: str, member: str = "m1") -> tuple[Any, Any]:
    api.now = at
    response = api.get(f"/v1/members/{member}")
    assert response.status_code == 200, response.text
    points = response.json()["balances"]["points"]
    return points["active"], points["pending"]


def jobs(tenant_id: str, at: str) -> dict[str, int]:
    return run_all(get_engine(), parse_timestamp(at), tenant_id)


def transfers(api: Api, member: str = "m1") -> list[tuple[str, Any]]:
    """(code, signed amount) of the member's ledger, oldest first."""
    data = api.get(f"/v1/members/{member}/ledger?limit=100").json()["data"]
    return [(t["code"], t["amount"]) for t in reversed(data)]


def adjust(
    api: Api, adjustment_id: str, amount: int, at: str, member: str = "m1", **extra: Any
) -> Any:
    api.now = at
    return api.post(
        f"/v1/members/{member}/adjustments",
        json={"id": adjustment_id, "amount": amount, "reason": "test", **extra},
    )


def refund(api: Api, order_id: str, refund_id: str, amount: str, at: str) -> dict[str, Any]:
    api.now = at
    response = api.post(f"/v1/orders/{order_id}/refunds", json={"id": refund_id, "amount": amount})
    assert response.status_code == 201, response.text
    return response.json()


def reversed_amount(result: dict[str, Any]) -> Any:
    return sum(e["amount"] for e in result["effects"] if e["type"] == "points_reversed")


# ---- pending ---------------------------------------------------------------------------------


def test_pending_then_active_by_reading_later(api: Api, tenant: tuple[str, str]) -> None:
    apply_program(api, program({"pending_days": 14}))
    result = book(api, "o1", "100.00", "2026-03-01T10:00:00Z")
    assert result["effects"][0]["type"] == "points_pending"
    assert result["effects"][0]["available_at"] == "2026-03-15T10:00:00+00:00"
    assert balance(api, "2026-03-01T10:00:00Z") == (0, 100)
    assert balance(api, "2026-03-15T09:59:59Z") == (0, 100)
    assert balance(api, "2026-03-15T10:00:00Z") == (100, 0)
    assert balance(api, "2026-06-01T00:00:00Z") == (100, 0)
    assert ledger_ok(tenant[0]) == []


def test_pending_then_active_by_the_job(api: Api, tenant: tuple[str, str]) -> None:
    apply_program(api, program({"pending_days": 14}))
    book(api, "o1", "100.00", "2026-03-01T10:00:00Z")
    book(api, "o2", "40.00", "2026-03-05T10:00:00Z")
    jobs(tenant[0], "2026-03-10T00:00:00Z")  # nothing due yet
    assert [c for c, _ in transfers(api)] == ["earn", "earn"]
    jobs(tenant[0], "2026-03-15T10:00:00Z")  # o1 matures
    assert transfers(api) == [("earn", 100), ("earn", 40), ("activate", 100)]
    assert ledger_ok(tenant[0]) == []
    jobs(tenant[0], "2026-03-15T10:00:00Z")  # idempotent
    jobs(tenant[0], "2026-03-20T00:00:00Z")  # o2 matures
    assert transfers(api) == [("earn", 100), ("earn", 40), ("activate", 100), ("activate", 40)]
    # the booked balances (what the next order answers with) now agree with the ledger
    result = book(api, "o3", "1.00", "2026-03-21T00:00:00Z")
    assert result["balances"]["points"] == {"active": 140, "pending": 1}
    assert ledger_ok(tenant[0]) == []


# ---- expiry modes ----------------------------------------------------------------------------


def test_expiry_never(api: Api, tenant: tuple[str, str]) -> None:
    apply_program(api, program({"expiry": {"mode": "never"}}))
    book(api, "o1", "100.00", "2026-03-01T10:00:00Z")
    assert balance(api, "2036-03-01T10:00:00Z") == (100, 0)
    jobs(tenant[0], "2036-03-01T10:00:00Z")
    assert [c for c, _ in transfers(api)] == ["earn"]
    assert api.get("/v1/members/m1").json()["balances"]["points"]["expiring"] == []
    assert ledger_ok(tenant[0]) == []


def test_expiry_rolling_days(api: Api, tenant: tuple[str, str]) -> None:
    apply_program(api, program({"expiry": {"mode": "rolling_days", "days": 30}}))
    book(api, "o1", "100.00", "2026-03-01T10:00:00Z")
    book(api, "o2", "50.00", "2026-03-10T10:00:00Z")
    api.now = "2026-03-11T00:00:00Z"
    expiring = api.get("/v1/members/m1").json()["balances"]["points"]["expiring"]
    assert expiring == [
        {"amount": 100, "expires_at": "2026-03-31T10:00:00+00:00"},
        {"amount": 50, "expires_at": "2026-04-09T10:00:00+00:00"},
    ]
    assert balance(api, "2026-03-31T09:59:59Z") == (150, 0)
    assert balance(api, "2026-03-31T10:00:00Z") == (50, 0)
    jobs(tenant[0], "2026-03-31T10:00:00Z")
    assert transfers(api) == [("earn", 100), ("earn", 50), ("expire", -100)]
    assert ledger_ok(tenant[0]) == []
    assert balance(api, "2026-04-09T10:00:00Z") == (0, 0)
    jobs(tenant[0], "2026-04-10T00:00:00Z")
    assert transfers(api)[-1] == ("expire", -50)
    assert ledger_ok(tenant[0]) == []


def test_expiry_end_of_month_in_program_timezone(api: Api, tenant: tuple[str, str]) -> None:
    apply_program(api, program({"expiry": {"mode": "end_of_month"}}, timezone="Europe/Warsaw"))
    book(api, "march", "10.00", "2026-03-31T21:30:00Z")  # 23:30 on 31 March in Warsaw
    api.now = "2026-03-31T21:30:00Z"
    expiring = api.get("/v1/members/m1").json()["balances"]["points"]["expiring"]
    # the March lot expires at midnight Warsaw time (22:00 UTC)
    assert expiring == [{"amount": 10, "expires_at": "2026-03-31T22:00:00+00:00"}]
    assert balance(api, "2026-03-31T21:59:59Z") == (10, 0)
    assert balance(api, "2026-03-31T22:00:00Z") == (0, 0)
    book(api, "april", "20.00", "2026-03-31T22:30:00Z")  # 00:30 on 1 April in Warsaw
    api.now = "2026-03-31T22:30:00Z"
    expiring = api.get("/v1/members/m1").json()["balances"]["points"]["expiring"]
    # the April lot lasts the month
    assert expiring == [{"amount": 20, "expires_at": "2026-04-30T22:00:00+00:00"}]
    assert balance(api, "2026-04-30T21:59:59Z") == (20, 0)
    assert balance(api, "2026-04-30T22:00:00Z") == (0, 0)
    jobs(tenant[0], "2026-05-01T00:00:00Z")
    assert transfers(api) == [("earn", 10), ("expire", -10), ("earn", 20), ("expire", -20)]
    assert ledger_ok(tenant[0]) == []


def test_expiry_end_of_year_in_program_timezone(api: Api, tenant: tuple[str, str]) -> None:
    apply_program(api, program({"expiry": {"mode": "end_of_year"}}, timezone="Europe/Warsaw"))
    book(api, "old-year", "10.00", "2026-12-31T22:30:00Z")  # 23:30 on 31 Dec 2026 in Warsaw
    book(api, "new-year", "20.00", "2026-12-31T23:30:00Z")  # 00:30 on 1 Jan 2027 in Warsaw
    api.now = "2026-12-31T23:30:00Z"
    expiring = api.get("/v1/members/m1").json()["balances"]["points"]["expiring"]
    assert expiring == [{"amount": 20, "expires_at": "2027-12-31T23:00:00+00:00"}]
    assert balance(api, "2027-12-31T22:59:59Z") == (20, 0)
    assert balance(api, "2027-12-31T23:00:00Z") == (0, 0)
    jobs(tenant[0], "2028-01-01T00:00:00Z")
    assert sorted(c for c, _ in transfers(api)) == ["earn", "earn", "expire", "expire"]
    assert ledger_ok(tenant[0]) == []


def test_expiry_inactivity_days_activity_resets_the_clock(
    api: Api, tenant: tuple[str, str]
) -> None:
    apply_program(api, program({"expiry": {"mode": "inactivity_days", "days": 90}}))
    book(api, "o1", "100.00", "2026-01-01T00:00:00Z")
    assert balance(api, "2026-03-31T23:59:59Z") == (100, 0)  # day 89
    book(api, "o2", "50.00", "2026-03-02T00:00:00Z")  # day 60: activity, the clock restarts
    assert balance(api, "2026-04-15T00:00:00Z") == (150, 0)  # 104 days after o1
    jobs(tenant[0], "2026-04-15T00:00:00Z")
    assert [c for c, _ in transfers(api)] == ["earn", "earn"]
    assert balance(api, "2026-05-30T23:59:59Z") == (150, 0)  # 89 days after o2
    assert balance(api, "2026-05-31T00:00:00Z") == (0, 0)  # 90 days after o2
    jobs(tenant[0], "2026-06-01T00:00:00Z")
    assert sorted(transfers(api)) == sorted(
        [("earn", 100), ("earn", 50), ("expire", -100), ("expire", -50)]
    )
    assert ledger_ok(tenant[0]) == []
    # expired points do not come back with the next activity
    result = book(api, "o3", "10.00", "2026-07-01T00:00:00Z")
    assert result["balances"]["points"] == {"active": 10, "pending": 0}
    assert balance(api, "2026-07-01T00:00:00Z") == (10, 0)
    assert ledger_ok(tenant[0]) == []


def test_inactivity_expiry_after_event(api: Api, tenant: tuple[str, str]) -> None:
    document = program({"expiry": {"mode": "inactivity_days", "days": 30}})
    document["rules"].append({"key": "review", "on": "review.created", "earn": {"fixed": 40}})
    apply_program(api, document)
    api.now = "2026-01-01T00:00:00Z"
    event = api.post("/v1/events", json={"id": "e1", "type": "review.created", "member_id": "m1"})
    assert event.status_code == 201, event.text
    assert balance(api, "2026-01-30T00:00:00Z") == (40, 0)
    assert balance(api, "2026-01-31T00:00:00Z") == (0, 0)
    jobs(tenant[0], "2026-02-01T00:00:00Z")
    assert transfers(api) == [("earn", 40), ("expire", -40)]
    assert ledger_ok(tenant[0]) == []


def test_inactivity_expiry_after_adjustment(api: Api, tenant: tuple[str, str]) -> None:
    apply_program(api, program({"expiry": {"mode": "inactivity_days", "days": 30}}))
    assert api.put("/v1/members/m1", json={}).status_code == 201
    assert adjust(api, "a1", 70, "2026-01-01T00:00:00Z").status_code == 201
    assert balance(api, "2026-01-30T00:00:00Z") == (70, 0)
    jobs(tenant[0], "2026-02-01T00:00:00Z")
    assert transfers(api) == [("adjust", 70), ("expire", -70)]
    assert ledger_ok(tenant[0]) == []


# ---- lots: earliest expiry first ---------------------------------------------------------------


def test_spending_takes_the_soonest_expiring_lot_first(api: Api, tenant: tuple[str, str]) -> None:
    apply_program(api, program({"expiry": {"mode": "rolling_days", "days": 30}}))
    book(api, "late", "100.00", "2026-03-10T10:00:00Z")  # expires 9 April
    # a manual credit that expires sooner than both orders
    early = adjust(api, "bonus", 30, "2026-03-12T00:00:00Z", expires_at="2026-03-20T00:00:00Z")
    assert early.status_code == 201, early.text
    book(api, "later", "100.00", "2026-03-12T10:00:00Z")  # expires 11 April
    debit = adjust(api, "spend", -120, "2026-03-15T00:00:00Z")
    assert debit.status_code == 201, debit.text
    assert debit.json()["balances"]["points"]["active"] == 110
    api.now = "2026-03-15T00:00:00Z"
    expiring = api.get("/v1/members/m1").json()["balances"]["points"]["expiring"]
    # 30 from the bonus lot, then 90 from the order lot that expires on 9 April
    assert expiring == [
        {"amount": 10, "expires_at": "2026-04-09T10:00:00+00:00"},
        {"amount": 100, "expires_at": "2026-04-11T10:00:00+00:00"},
    ]
    jobs(tenant[0], "2026-03-21T00:00:00Z")  # the bonus lot's expiry: nothing left there
    assert [c for c, _ in transfers(api)].count("expire") == 0
    jobs(tenant[0], "2026-04-10T00:00:00Z")
    assert transfers(api)[-1] == ("expire", -10)
    assert balance(api, "2026-04-10T00:00:00Z") == (100, 0)
    jobs(tenant[0], "2026-04-12T00:00:00Z")
    assert transfers(api)[-1] == ("expire", -100)
    assert balance(api, "2026-04-12T00:00:00Z") == (0, 0)
    assert ledger_ok(tenant[0]) == []


def test_debit_more_than_balance_is_refused(api: Api, tenant: tuple[str, str]) -> None:
    apply_program(api, program({}))
    book(api, "o1", "10.00", "2026-03-01T00:00:00Z")
    response = adjust(api, "too-much", -11, "2026-03-02T00:00:00Z")
    assert response.status_code == 409, response.text
    assert response.json()["code"] == "insufficient_points"
    assert balance(api, "2026-03-02T00:00:00Z") == (10, 0)
    assert ledger_ok(tenant[0]) == []


def test_manual_credit_with_and_without_expires_at(api: Api, tenant: tuple[str, str]) -> None:
    apply_program(api, program({"expiry": {"mode": "rolling_days", "days": 365}}))
    assert api.put("/v1/members/m1", json={}).status_code == 201
    explicit = adjust(api, "a1", 25, "2026-03-01T00:00:00Z", expires_at="2026-05-01T00:00:00Z")
    assert explicit.status_code == 201, explicit.text
    policy = adjust(api, "a2", 5, "2026-03-01T00:00:00Z")
    assert policy.status_code == 201, policy.text
    api.now = "2026-03-01T00:00:00Z"
    assert api.get("/v1/members/m1").json()["balances"]["points"]["expiring"] == [
        {"amount": 25, "expires_at": "2026-05-01T00:00:00+00:00"},
        {"amount": 5, "expires_at": "2027-03-01T00:00:00+00:00"},
    ]
    past = adjust(api, "a3", 5, "2026-03-01T00:00:00Z", expires_at="2026-02-01T00:00:00Z")
    assert past.status_code == 422
    jobs(tenant[0], "2026-05-01T00:00:00Z")
    assert transfers(api) == [("adjust", 25), ("adjust", 5), ("expire", -25)]
    assert balance(api, "2026-05-01T00:00:00Z") == (5, 0)
    assert ledger_ok(tenant[0]) == []


# ---- notices ---------------------------------------------------------------------------------


def test_points_expiring_event_once_before_expiry(api: Api, tenant: tuple[str, str]) -> None:
    apply_program(api, program({"expiry": {"mode": "rolling_days", "days": 30, "notify_days": 7}}))
    book(api, "o1", "100.00", "2026-03-01T10:00:00Z")  # expires 31 March 10:00

    def notices() -> list[dict[str, Any]]:
        response = api.get("/v1/domain-events?type=points.expiring")
        assert response.status_code == 200, response.text
        return response.json()["data"]

    jobs(tenant[0], "2026-03-20T00:00:00Z")
    assert notices() == []
    jobs(tenant[0], "2026-03-24T10:00:01Z")  # less than 7 days before
    jobs(tenant[0], "2026-03-25T00:00:00Z")
    jobs(tenant[0], "2026-03-30T00:00:00Z")
    found = notices()
    assert len(found) == 1, found
    assert found[0]["type"] == "points.expiring"
    assert found[0]["data"] == {
        "member_id": "m1",
        "wallet": "points",
        "amount": 100,
        "expires_at": "2026-03-31T10:00:00+00:00",
    }
    # no domain event of any other type is of this kind
    everything = api.get("/v1/domain-events?limit=100").json()["data"]
    assert [e["type"] for e in everything].count("points.expiring") == 1
    jobs(tenant[0], "2026-04-01T00:00:00Z")
    assert len(notices()) == 1
    assert ledger_ok(tenant[0]) == []


# ---- refund policies -------------------------------------------------------------------------


def test_refund_only_pending(api: Api, tenant: tuple[str, str]) -> None:
    apply_program(api, program({"pending_days": 14}, refund_policy="only_pending"))
    book(api, "o1", "100.00", "2026-03-01T10:00:00Z")
    first = refund(api, "o1", "r1", "50.00", "2026-03-05T00:00:00Z")
    assert reversed_amount(first) == 50  # voided while pending
    assert first["balances"]["points"] == {"active": 0, "pending": 50}
    jobs(tenant[0], "2026-03-15T10:00:00Z")
    assert balance(api, "2026-03-16T00:00:00Z") == (50, 0)
    second = refund(api, "o1", "r2", "25.00", "2026-03-16T00:00:00Z")
    assert reversed_amount(second) == 0  # active points are never taken back
    assert second["balances"]["points"] == {"active": 50, "pending": 0}
    assert balance(api, "2026-03-16T00:00:00Z") == (50, 0)
    assert ledger_ok(tenant[0]) == []


def test_refund_within_balance_stops_at_the_balance(api: Api, tenant: tuple[str, str]) -> None:
    apply_program(api, program({}, refund_policy="within_balance"))
    book(api, "o1", "100.00", "2026-03-01T10:00:00Z")
    assert adjust(api, "spend", -80, "2026-03-02T00:00:00Z").status_code == 201
    result = refund(api, "o1", "r1", "100.00", "2026-03-03T00:00:00Z")
    assert reversed_amount(result) == 20
    assert result["balances"]["points"] == {"active": 0, "pending": 0}
    assert balance(api, "2026-03-03T00:00:00Z") == (0, 0)
    assert ledger_ok(tenant[0]) == []


def test_refund_unlimited_goes_negative_and_later_earnings_pay_the_debt(
    api: Api, tenant: tuple[str, str]
) -> None:
    apply_program(api, program({}, refund_policy="unlimited"))
    book(api, "o1", "100.00", "2026-03-01T10:00:00Z")
    assert adjust(api, "spend", -80, "2026-03-02T00:00:00Z").status_code == 201
    result = refund(api, "o1", "r1", "100.00", "2026-03-03T00:00:00Z")
    assert reversed_amount(result) == 100
    assert result["balances"]["points"]["active"] == -80
    assert balance(api, "2026-03-03T00:00:00Z") == (-80, 0)
    assert ledger_ok(tenant[0]) == []
    second = book(api, "o2", "50.00", "2026-03-04T00:00:00Z")
    assert second["balances"]["points"]["active"] == -30
    assert balance(api, "2026-03-04T00:00:00Z") == (-30, 0)
    assert ledger_ok(tenant[0]) == []
    third = book(api, "o3", "100.00", "2026-03-05T00:00:00Z")
    assert third["balances"]["points"]["active"] == 70
    assert balance(api, "2026-03-05T00:00:00Z") == (70, 0)
    # all 70 can be spent: the lots agree with the balance
    assert adjust(api, "spend-2", -70, "2026-03-06T00:00:00Z").status_code == 201
    assert balance(api, "2026-03-06T00:00:00Z") == (0, 0)
    assert ledger_ok(tenant[0]) == []


def test_refund_unlimited_debt_paid_by_pending_points_on_activation(
    api: Api, tenant: tuple[str, str]
) -> None:
    apply_program(api, program({"pending_days": 7}, refund_policy="unlimited"))
    book(api, "o1", "100.00", "2026-03-01T00:00:00Z")
    jobs(tenant[0], "2026-03-08T00:00:00Z")
    assert adjust(api, "spend", -100, "2026-03-09T00:00:00Z").status_code == 201
    refund(api, "o1", "r1", "40.00", "2026-03-10T00:00:00Z")
    assert balance(api, "2026-03-10T00:00:00Z") == (-40, 0)
    book(api, "o2", "100.00", "2026-03-10T00:00:00Z")
    assert balance(api, "2026-03-10T00:00:00Z") == (-40, 100)
    jobs(tenant[0], "2026-03-17T00:00:00Z")
    assert balance(api, "2026-03-17T00:00:00Z") == (60, 0)
    assert adjust(api, "spend-2", -60, "2026-03-18T00:00:00Z").status_code == 201
    assert ledger_ok(tenant[0]) == []


@pytest.mark.parametrize("policy", ["within_balance", "unlimited"])
def test_three_partial_refunds_sum_to_a_full_reversal(
    api: Api, tenant: tuple[str, str], policy: str
) -> None:
    apply_program(api, program({}, per_amount=0.99, refund_policy=policy))
    earned = book(api, "o1", "100.00", "2026-03-01T10:00:00Z")
    assert earned["balances"]["points"]["active"] == 99
    amounts = [
        reversed_amount(refund(api, "o1", f"r{n}", value, "2026-03-02T00:00:00Z"))
        for n, value in enumerate(["33.33", "33.33", "33.34"])
    ]
    # floor(99 × 0.3333) = 32, floor(99 × 0.6666) = 65, then all 99: 32 + 33 + 34
    assert amounts == [32, 33, 34]
    assert sum(amounts) == 99
    assert balance(api, "2026-03-02T00:00:00Z") == (0, 0)
    over = api.post("/v1/orders/o1/refunds", json={"id": "r9", "amount": "0.01"})
    assert over.status_code == 409
    assert over.json()["code"] == "refund_exceeds_order"
    assert ledger_ok(tenant[0]) == []


def test_cancel_reverses_everything(api: Api, tenant: tuple[str, str]) -> None:
    apply_program(api, program({"pending_days": 10}))
    book(api, "o1", "100.00", "2026-03-01T00:00:00Z")
    book(api, "o2", "60.00", "2026-03-15T00:00:00Z")
    jobs(tenant[0], "2026-03-11T00:00:00Z")  # o1 active, o2 still pending
    partial = refund(api, "o1", "r1", "30.00", "2026-03-16T00:00:00Z")
    assert reversed_amount(partial) == 30
    api.now = "2026-03-16T00:00:00Z"
    cancelled = api.post("/v1/orders/o1/cancel", json={"reason": "fraud"})
    assert cancelled.status_code == 201, cancelled.text
    body = cancelled.json()
    assert body["status"] == "cancelled"
    assert reversed_amount(body) == 70
    assert body["balances"]["points"] == {"active": 0, "pending": 60}
    cancel_o2 = api.post("/v1/orders/o2/cancel", json={})
    assert cancel_o2.status_code == 201, cancel_o2.text
    assert cancel_o2.json()["effects"][0]["pending_voided"] == 60
    assert cancel_o2.json()["balances"]["points"] == {"active": 0, "pending": 0}
    again = api.post("/v1/orders/o1/refunds", json={"id": "r2", "amount": "1.00"})
    assert again.status_code == 409
    assert again.json()["code"] == "order_cancelled"
    jobs(tenant[0], "2026-04-01T00:00:00Z")  # nothing left to activate
    assert balance(api, "2026-04-01T00:00:00Z") == (0, 0)
    assert ledger_ok(tenant[0]) == []


def test_refund_by_items_reverses_the_same_share(api: Api, tenant: tuple[str, str]) -> None:
    apply_program(api, program({}))
    api.now = "2026-03-01T00:00:00Z"
    body = order("o1", "m1", "40.00", "60.00", placed_at="2026-03-01T00:00:00Z")
    assert api.post("/v1/orders", json=body).status_code == 201
    response = api.post(
        "/v1/orders/o1/refunds",
        json={"id": "r1", "items": [{"sku": "sku-1", "quantity": 1, "amount": "60.00"}]},
    )
    assert response.status_code == 201, response.text
    assert reversed_amount(response.json()) == 60
    assert response.json()["refunded_total"] == "60.00"
    assert balance(api, "2026-03-01T00:00:00Z") == (40, 0)
    assert ledger_ok(tenant[0]) == []


def test_read_nets_a_debt_against_maturing_points_as_the_settlement_will(
    api: Api, tenant: tuple[str, str]
) -> None:
    """``unlimited``: a reversal past the balance leaves a debt, paid from the next points to
    activate. Reads before the job already show what the job will book: the balance and which
    points are still due to expire."""
    wallet = {"pending_days": 3, "expiry": {"mode": "rolling_days", "days": 20}}
    apply_program(api, program(wallet, refund_policy="unlimited"))
    book(api, "o1", "100.00", "2026-03-01T12:00:00+00:00")
    jobs(tenant[0], "2026-03-04T13:00:00+00:00")  # 100 active
    api.now = "2026-03-04T14:00:00+00:00"
    spent = api.post(
        "/v1/members/m1/adjustments",
        json={"id": "a1", "wallet": "points", "amount": -100, "reason": "spent in store"},
    )
    assert spent.status_code == 201, spent.text
    book(api, "o2", "60.00", "2026-03-04T15:00:00+00:00")  # 60 pending until 03-07 15:00
    api.now = "2026-03-04T16:00:00+00:00"
    refund = api.post("/v1/orders/o1/refunds", json={"id": "r1", "amount": "100.00"})
    assert refund.status_code == 201, refund.text
    assert balance(api, "2026-03-04T16:00:00+00:00") == (-100, 60)  # a debt of 100

    def view(at: str) -> dict[str, Any]:
        api.now = at
        return api.get("/v1/members/m1").json()["balances"]["points"]

    at = "2026-03-08T12:00:00+00:00"
    before = view(at)
    assert before["active"] == -40 and before["pending"] == 0
    assert before["expiring"] == []  # the 60 go to the debt, none is left to expire
    jobs(tenant[0], at)
    assert view(at) == before
    assert ledger_ok(tenant[0]) == []
