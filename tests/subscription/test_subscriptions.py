"""Paid membership through the HTTP API: start, renew, trial, cancel, expiry and renewal
notices by the jobs, the member view, and bad input.

Time is frozen with ``X-Allegiance-Now`` for requests and ``run_all(engine, now, tenant)`` for
the jobs. Most stories use a UTC program so the dates read plainly.
"""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from decimal import Decimal
from typing import Any

import httpx
import pytest

from allegiance.db import get_engine, read_session
from allegiance.kit.clock import parse_timestamp
from allegiance.subscription.service import active_membership, active_memberships
from allegiance.worker.runner import run_all
from tests.conftest import TEST_URL, Api, apply_program, ledger_ok, order

PROGRAM: dict[str, Any] = {
    "name": "Plus Shop",
    "currency": "USD",
    "timezone": "UTC",
    "wallets": {"points": {"precision": 0}},
    "tiers": {
        "levels": [{"key": "bronze", "threshold": 0}, {"key": "gold", "threshold": 1000}],
    },
    "rules": [{"key": "base", "on": "order.completed", "earn": {"per_amount": 1}}],
    "plans": [
        {
            "key": "plus",
            "name": "Plus",
            "fee": "9.99",
            "period": "month",
            "trial_days": 14,
            "tier": "gold",
            "benefits": {"earn_multiplier": 2, "perks": ["free_shipping", "early_access"]},
        },
        {"key": "plus-yearly", "fee": "99.00", "period": "year", "renewal_notice_days": 0},
        {"key": "weekly", "fee": "1.50", "period": {"days": 7}},
    ],
}


@pytest.fixture()
def shop(api: Api) -> Api:
    apply_program(api, PROGRAM)
    return api


def pay(
    api: Api,
    payment_id: str,
    at: str,
    *,
    plan: str = "plus",
    amount: str | None = "9.99",
    member: str = "m1",
    expect: int = 201,
    **extra: Any,
) -> dict[str, Any]:
    api.now = at
    body: dict[str, Any] = {"id": payment_id, "plan": plan, **extra}
    if amount is not None:
        body["amount"] = amount
    response = api.post(f"/v1/members/{member}/subscriptions", json=body)
    assert response.status_code == expect, response.text
    result: dict[str, Any] = response.json()
    return result


def trial(api: Api, trial_id: str, at: str, **kw: Any) -> dict[str, Any]:
    return pay(api, trial_id, at, amount=None, trial=True, **kw)


def cancel(
    api: Api, subscription_id: str, at: str, member: str = "m1", **body: Any
) -> httpx.Response:
    api.now = at
    return api.post(
        f"/v1/members/{member}/subscriptions/{subscription_id}/cancel", json=body or None
    )


def membership(api: Api, at: str, member: str = "m1") -> Any:
    api.now = at
    response = api.get(f"/v1/members/{member}")
    assert response.status_code == 200, response.text
    return response.json()["membership"]


def history(api: Api, at: str, member: str = "m1") -> list[dict[str, Any]]:
    api.now = at
    response = api.get(f"/v1/members/{member}/subscriptions")
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


def events(api: Api, type_: str) -> list[dict[str, Any]]:
    response = api.get(f"/v1/domain-events?type={type_}&limit=500")
    assert response.status_code == 200, response.text
    return [e["data"] for e in response.json()["data"]]


def jobs(tenant_id: str, at: str) -> dict[str, int]:
    return run_all(get_engine(), parse_timestamp(at), tenant_id)


def problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    return body


# ---- start and renew -------------------------------------------------------------------------


def test_start_creates_the_member_and_shows_the_membership(shop: Api) -> None:
    result = pay(shop, "ch_1", "2026-03-10T12:00:00Z")
    assert result["plan"] == "plus"
    assert result["name"] == "Plus"
    assert result["status"] == "active"
    assert result["renewed"] is False
    assert result["started_at"] == "2026-03-10T12:00:00+00:00"
    assert result["current_period_end"] == "2026-04-10T12:00:00+00:00"
    assert result["trial_ends_at"] is None
    assert result["cancel_at_period_end"] is False
    assert result["benefits"] == {
        "earn_multiplier": 2.0,
        "perks": ["free_shipping", "early_access"],
    }
    assert result["tier_floor"] == "gold"
    assert result["payment"] == {
        "payment_id": "ch_1",
        "kind": "payment",
        "amount": "9.99",
        "currency": "USD",
        "paid_at": "2026-03-10T12:00:00+00:00",
        "period_start": "2026-03-10T12:00:00+00:00",
        "period_end": "2026-04-10T12:00:00+00:00",
    }
    # the member did not exist: the payment created it, like an order does
    assert membership(shop, "2026-03-20T00:00:00Z") == {
        "subscription_id": result["subscription_id"],
        "plan": "plus",
        "name": "Plus",
        "status": "active",
        "current_period_end": "2026-04-10T12:00:00+00:00",
        "cancel_at_period_end": False,
        "benefits": {"earn_multiplier": 2.0, "perks": ["free_shipping", "early_access"]},
        "tier_floor": "gold",
    }
    started = events(shop, "subscription.started")
    assert started == [
        {
            "subscription_id": result["subscription_id"],
            "member_id": "m1",
            "plan": "plus",
            "trial": False,
            "payment_id": "ch_1",
            "amount": "9.99",
            "currency": "USD",
            "period_start": "2026-03-10T12:00:00+00:00",
            "current_period_end": "2026-04-10T12:00:00+00:00",
        }
    ]


def test_member_without_membership_shows_null(shop: Api) -> None:
    assert shop.put("/v1/members/m2", json={"email": "b@example.com"}).status_code == 201
    assert membership(shop, "2026-03-01T00:00:00Z", member="m2") is None


def test_early_renewals_extend_from_the_period_end_on_the_anchor_day(shop: Api) -> None:
    first = pay(shop, "ch_1", "2026-01-31T09:00:00Z")
    assert first["current_period_end"] == "2026-02-28T09:00:00+00:00"  # no 31 February
    second = pay(shop, "ch_2", "2026-02-10T00:00:00Z")  # early: starts where the first ends
    assert second["renewed"] is True
    assert second["subscription_id"] == first["subscription_id"]
    assert second["payment"]["period_start"] == "2026-02-28T09:00:00+00:00"
    assert second["current_period_end"] == "2026-03-31T09:00:00+00:00"  # back on the 31st
    third = pay(shop, "ch_3", "2026-02-11T00:00:00Z")
    assert third["current_period_end"] == "2026-04-30T09:00:00+00:00"
    subs = history(shop, "2026-02-12T00:00:00Z")
    assert len(subs) == 1
    assert [(p["payment_id"], p["period_start"], p["period_end"]) for p in subs[0]["payments"]] == [
        ("ch_1", "2026-01-31T09:00:00+00:00", "2026-02-28T09:00:00+00:00"),
        ("ch_2", "2026-02-28T09:00:00+00:00", "2026-03-31T09:00:00+00:00"),
        ("ch_3", "2026-03-31T09:00:00+00:00", "2026-04-30T09:00:00+00:00"),
    ]
    renewed = events(shop, "subscription.renewed")
    assert [e["payment_id"] for e in renewed] == ["ch_2", "ch_3"]
    assert renewed[-1]["current_period_end"] == "2026-04-30T09:00:00+00:00"


def test_calendar_periods_follow_the_program_time_zone(api: Api) -> None:
    document = copy.deepcopy(PROGRAM)
    document["timezone"] = "Europe/Warsaw"
    apply_program(api, document)
    # 31 January 00:30 in Warsaw is still 30 January in UTC: the anchor is the local 31st
    first = pay(api, "ch_1", "2026-01-30T23:30:00Z")
    assert first["current_period_end"] == "2026-02-27T23:30:00+00:00"  # 28 Feb 00:30 CET
    second = pay(api, "ch_2", "2026-02-01T00:00:00Z")
    # 31 March 00:30 CEST (summer time since 29 March) is 30 March 22:30 UTC
    assert second["current_period_end"] == "2026-03-30T22:30:00+00:00"


def test_year_and_day_periods(shop: Api) -> None:
    yearly = pay(shop, "ch_y", "2028-02-29T10:00:00Z", plan="plus-yearly", amount="99.00")
    assert yearly["current_period_end"] == "2029-02-28T10:00:00+00:00"
    weekly = pay(shop, "ch_w", "2026-03-01T10:00:00Z", plan="weekly", amount="1.5", member="m2")
    assert weekly["current_period_end"] == "2026-03-08T10:00:00+00:00"


def test_late_payment_renews_the_period_it_was_paid_for(shop: Api, tenant: tuple[str, str]) -> None:
    first = pay(shop, "ch_1", "2026-03-01T00:00:00Z")
    # charged on 31 March, reported on 2 April (after the period end, before the job ran)
    late = pay(shop, "ch_2", "2026-04-02T00:00:00Z", paid_at="2026-03-31T00:00:00Z")
    assert late["renewed"] is True
    assert late["subscription_id"] == first["subscription_id"]
    assert late["payment"]["period_start"] == "2026-04-01T00:00:00+00:00"
    assert late["current_period_end"] == "2026-05-01T00:00:00+00:00"
    assert jobs(tenant[0], "2026-04-02T00:00:00Z")["subscription_expiry"] == 0


def test_payment_after_a_lapse_starts_a_new_subscription(
    shop: Api, tenant: tuple[str, str]
) -> None:
    first = pay(shop, "ch_1", "2026-03-01T00:00:00Z")
    again = pay(shop, "ch_2", "2026-04-05T00:00:00Z")  # lapsed on 1 April; the job never ran
    assert again["renewed"] is False
    assert again["subscription_id"] != first["subscription_id"]
    assert again["started_at"] == "2026-04-05T00:00:00+00:00"
    assert events(shop, "subscription.expired") == [
        {
            "subscription_id": first["subscription_id"],
            "member_id": "m1",
            "plan": "plus",
            "ended_at": "2026-04-01T00:00:00+00:00",
            "reason": "not_renewed",
        }
    ]
    subs = history(shop, "2026-04-05T00:00:00Z")
    assert [(s["subscription_id"], s["status"]) for s in subs] == [
        (again["subscription_id"], "active"),
        (first["subscription_id"], "expired"),
    ]
    assert jobs(tenant[0], "2026-04-06T00:00:00Z")["subscription_expiry"] == 0
    assert len(events(shop, "subscription.expired")) == 1


def test_payment_recorded_after_its_whole_period_is_expired_at_once(shop: Api) -> None:
    result = pay(shop, "ch_old", "2026-06-01T00:00:00Z", paid_at="2026-01-01T00:00:00Z")
    assert result["status"] == "expired"
    assert result["ended_at"] == "2026-02-01T00:00:00+00:00"
    assert membership(shop, "2026-06-01T00:00:00Z") is None
    assert [e["reason"] for e in events(shop, "subscription.expired")] == ["not_renewed"]


# ---- idempotency -----------------------------------------------------------------------------


def test_same_payment_id_replays_and_another_body_conflicts(shop: Api) -> None:
    first = pay(shop, "ch_1", "2026-03-01T00:00:00Z")
    shop.now = "2026-03-02T00:00:00Z"
    body = {"id": "ch_1", "plan": "plus", "amount": "9.99"}
    replay = shop.post("/v1/members/m1/subscriptions", json=body)
    assert replay.status_code == 200, replay.text
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json() == first
    # nothing was extended by the replay
    assert membership(shop, "2026-03-02T00:00:00Z")["current_period_end"] == (
        "2026-04-01T00:00:00+00:00"
    )
    other = shop.post("/v1/members/m1/subscriptions", json={**body, "amount": "9.990", "x": 1})
    assert other.status_code == 422  # unknown field: the payload is checked before the id
    conflict = shop.post("/v1/members/m1/subscriptions", json={**body, "plan": "weekly"})
    problem(conflict, 409, "idempotency_conflict")
    elsewhere = shop.post("/v1/members/m2/subscriptions", json=body)
    problem(elsewhere, 409, "idempotency_conflict")
    assert len(events(shop, "subscription.started")) == 1
    assert events(shop, "subscription.renewed") == []


def test_idempotency_key_header_is_the_payment_id(shop: Api) -> None:
    shop.now = "2026-03-01T00:00:00Z"
    body = {"plan": "plus", "amount": "9.99"}
    headers = {"Idempotency-Key": "ch_h"}
    created = shop.post("/v1/members/m1/subscriptions", json=body, headers=headers)
    assert created.status_code == 201, created.text
    assert created.json()["payment"]["payment_id"] == "ch_h"
    again = shop.post("/v1/members/m1/subscriptions", json=body, headers=headers)
    assert again.status_code == 200
    assert again.headers["Idempotent-Replayed"] == "true"
    missing = shop.post("/v1/members/m1/subscriptions", json=body)
    assert missing.status_code == 422
    assert missing.json()["errors"][0]["loc"] == ["body", "id"]


# ---- trial -----------------------------------------------------------------------------------


def test_trial_once_per_member_and_plan_then_paid_from_its_end(
    shop: Api, tenant: tuple[str, str]
) -> None:
    started = trial(shop, "tr_1", "2026-03-01T10:00:00Z")
    assert started["status"] == "trialing"
    assert started["trial_ends_at"] == "2026-03-15T10:00:00+00:00"
    assert started["current_period_end"] == "2026-03-15T10:00:00+00:00"
    assert started["payment"]["kind"] == "trial"
    assert started["payment"]["amount"] == "0.00"
    assert membership(shop, "2026-03-02T00:00:00Z")["status"] == "trialing"
    # a second trial while in the trial: refused and pinned to its id
    again = trial(shop, "tr_2", "2026-03-02T00:00:00Z", expect=409)
    assert again["code"] == "trial_used"
    # the first charge, taken during the trial, starts when the trial ends
    paid = pay(shop, "ch_1", "2026-03-10T00:00:00Z")
    assert paid["renewed"] is True
    assert paid["payment"]["period_start"] == "2026-03-15T10:00:00+00:00"
    assert paid["current_period_end"] == "2026-04-15T10:00:00+00:00"
    assert paid["status"] == "trialing"
    assert membership(shop, "2026-03-15T10:00:00Z")["status"] == "active"
    # after the membership ends, no second trial of the same plan
    jobs(tenant[0], "2026-04-15T10:00:00Z")
    assert membership(shop, "2026-04-16T00:00:00Z") is None
    assert trial(shop, "tr_3", "2026-05-01T00:00:00Z", expect=409)["code"] == "trial_used"
    # another member may have its own trial
    assert trial(shop, "tr_4", "2026-05-01T00:00:00Z", member="m2")["status"] == "trialing"


def test_trial_not_offered_and_not_while_subscribed(shop: Api) -> None:
    refused = trial(shop, "tr_1", "2026-03-01T00:00:00Z", plan="weekly", expect=422)
    assert refused["errors"] == [{"loc": ["body", "trial"], "msg": "plan weekly offers no trial"}]
    pay(shop, "ch_1", "2026-03-01T00:00:00Z")
    assert trial(shop, "tr_2", "2026-03-02T00:00:00Z", expect=409)["code"] == ("already_subscribed")


def test_trial_that_is_not_converted_expires(shop: Api, tenant: tuple[str, str]) -> None:
    started = trial(shop, "tr_1", "2026-03-01T00:00:00Z")
    notices = jobs(tenant[0], "2026-03-13T00:00:00Z")  # 2 days before the trial ends
    assert notices["subscription_renewal_notices"] == 1
    assert events(shop, "subscription.renewal_due")[0]["trial"] is True
    assert jobs(tenant[0], "2026-03-15T00:00:00Z")["subscription_expiry"] == 1
    assert events(shop, "subscription.expired") == [
        {
            "subscription_id": started["subscription_id"],
            "member_id": "m1",
            "plan": "plus",
            "ended_at": "2026-03-15T00:00:00+00:00",
            "reason": "not_renewed",
        }
    ]


# ---- cancel ----------------------------------------------------------------------------------


def test_cancel_at_period_end_keeps_the_membership_until_then(
    shop: Api, tenant: tuple[str, str]
) -> None:
    sub = pay(shop, "ch_1", "2026-03-01T00:00:00Z")["subscription_id"]
    response = cancel(shop, sub, "2026-03-10T00:00:00Z", at_period_end=True, reason="too dear")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "active"
    assert body["cancel_at_period_end"] is True
    assert body["cancelled_at"] == "2026-03-10T00:00:00+00:00"
    assert body["cancel_reason"] == "too dear"
    assert body["ended_at"] is None
    held = membership(shop, "2026-03-31T23:59:59Z")
    assert held["status"] == "active"
    assert held["cancel_at_period_end"] is True
    # a repeated cancel changes nothing and writes no second event
    assert cancel(shop, sub, "2026-03-11T00:00:00Z").json()["cancelled_at"] == (
        "2026-03-10T00:00:00+00:00"
    )
    assert events(shop, "subscription.cancelled") == [
        {
            "subscription_id": sub,
            "member_id": "m1",
            "plan": "plus",
            "at_period_end": True,
            "ends_at": "2026-04-01T00:00:00+00:00",
            "reason": "too dear",
        }
    ]
    # no renewal notice for a subscription that will not renew
    assert jobs(tenant[0], "2026-03-30T00:00:00Z")["subscription_renewal_notices"] == 0
    # before the job runs, reads already show it ended
    assert membership(shop, "2026-04-01T00:00:00Z") is None
    assert jobs(tenant[0], "2026-04-01T00:00:00Z")["subscription_expiry"] == 1
    assert [e["reason"] for e in events(shop, "subscription.expired")] == ["cancelled"]
    ended = history(shop, "2026-04-02T00:00:00Z")[0]
    assert ended["status"] == "expired"
    assert ended["ended_at"] == "2026-04-01T00:00:00+00:00"
    # cancelling what has ended answers with it as it is
    late = cancel(shop, sub, "2026-04-03T00:00:00Z", at_period_end=False)
    assert late.status_code == 200
    assert late.json()["status"] == "expired"
    assert len(events(shop, "subscription.cancelled")) == 1


def test_renewal_after_cancel_at_period_end_resumes(shop: Api) -> None:
    sub = pay(shop, "ch_1", "2026-03-01T00:00:00Z")["subscription_id"]
    assert cancel(shop, sub, "2026-03-10T00:00:00Z").json()["cancel_at_period_end"] is True
    renewed = pay(shop, "ch_2", "2026-03-20T00:00:00Z")
    assert renewed["subscription_id"] == sub
    assert renewed["cancel_at_period_end"] is False
    assert renewed["cancelled_at"] is None
    assert renewed["current_period_end"] == "2026-05-01T00:00:00+00:00"


def test_cancel_immediately_ends_now(shop: Api, tenant: tuple[str, str]) -> None:
    sub = pay(shop, "ch_1", "2026-03-01T00:00:00Z")["subscription_id"]
    response = cancel(shop, sub, "2026-03-10T00:00:00Z", at_period_end=False)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "cancelled"
    assert body["ended_at"] == "2026-03-10T00:00:00+00:00"
    assert membership(shop, "2026-03-10T00:00:00Z") is None
    again = cancel(shop, sub, "2026-03-11T00:00:00Z", at_period_end=False)
    assert again.status_code == 200
    assert again.json() == {**body}
    cancelled = events(shop, "subscription.cancelled")
    assert cancelled == [
        {
            "subscription_id": sub,
            "member_id": "m1",
            "plan": "plus",
            "at_period_end": False,
            "ends_at": "2026-03-10T00:00:00+00:00",
            "reason": None,
        }
    ]
    assert jobs(tenant[0], "2026-04-02T00:00:00Z")["subscription_expiry"] == 0
    assert events(shop, "subscription.expired") == []


def test_cancel_unknown(shop: Api) -> None:
    sub = pay(shop, "ch_1", "2026-03-01T00:00:00Z")["subscription_id"]
    problem(cancel(shop, "sub_nope", "2026-03-02T00:00:00Z"), 404, "subscription_not_found")
    assert shop.put("/v1/members/m2", json={}).status_code == 201
    problem(cancel(shop, sub, "2026-03-02T00:00:00Z", member="m2"), 404, "subscription_not_found")
    problem(cancel(shop, sub, "2026-03-02T00:00:00Z", member="m9"), 404, "member_not_found")
    bad = cancel(shop, sub, "2026-03-02T00:00:00Z", at_period_end="soon")
    assert bad.status_code == 422


# ---- plan switch -----------------------------------------------------------------------------


def test_switching_plans_needs_a_cancel_first(shop: Api) -> None:
    sub = pay(shop, "ch_1", "2026-03-01T00:00:00Z")["subscription_id"]
    refused = pay(
        shop, "ch_2", "2026-03-10T00:00:00Z", plan="plus-yearly", amount="99.00", expect=409
    )
    assert refused["code"] == "plan_switch"
    assert refused["errors"][0]["loc"] == ["body", "plan"]
    # a business refusal stays with its id
    shop.now = "2026-03-11T00:00:00Z"
    replay = shop.post(
        "/v1/members/m1/subscriptions",
        json={"id": "ch_2", "plan": "plus-yearly", "amount": "99.00"},
    )
    assert replay.status_code == 409
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert cancel(shop, sub, "2026-03-12T00:00:00Z", at_period_end=False).status_code == 200
    yearly = pay(shop, "ch_3", "2026-03-12T00:00:00Z", plan="plus-yearly", amount="99.00")
    assert yearly["current_period_end"] == "2027-03-12T00:00:00+00:00"
    assert membership(shop, "2026-03-13T00:00:00Z")["plan"] == "plus-yearly"
    # a payment for a new plan once the old one has run out needs no cancel
    pay(shop, "ch_4", "2026-03-12T00:00:00Z", plan="weekly", amount="1.50", member="m2")
    moved = pay(shop, "ch_5", "2026-03-20T00:00:00Z", member="m2")
    assert moved["plan"] == "plus"
    assert moved["renewed"] is False
    assert [s["status"] for s in history(shop, "2026-03-20T00:00:00Z", member="m2")] == [
        "active",
        "expired",
    ]


# ---- jobs ------------------------------------------------------------------------------------


def test_renewal_due_once_per_period(shop: Api, tenant: tuple[str, str]) -> None:
    sub = pay(shop, "ch_1", "2026-03-01T00:00:00Z")["subscription_id"]
    pay(shop, "ch_y", "2026-03-01T00:00:00Z", plan="plus-yearly", amount="99", member="m2")
    assert jobs(tenant[0], "2026-03-28T23:59:59Z")["subscription_renewal_notices"] == 0
    assert jobs(tenant[0], "2026-03-29T00:00:00Z")["subscription_renewal_notices"] == 1
    assert jobs(tenant[0], "2026-03-30T00:00:00Z")["subscription_renewal_notices"] == 0
    assert events(shop, "subscription.renewal_due") == [
        {
            "subscription_id": sub,
            "member_id": "m1",
            "plan": "plus",
            "current_period_end": "2026-04-01T00:00:00+00:00",
            "trial": False,
            "fee": "9.99",
            "currency": "USD",
        }
    ]
    pay(shop, "ch_2", "2026-03-31T00:00:00Z")  # renewed: the next period gets its own notice
    assert jobs(tenant[0], "2026-04-01T00:00:00Z")["subscription_renewal_notices"] == 0
    assert jobs(tenant[0], "2026-04-28T00:00:00Z")["subscription_renewal_notices"] == 1
    found = events(shop, "subscription.renewal_due")
    assert [e["current_period_end"] for e in found] == [
        "2026-04-01T00:00:00+00:00",
        "2026-05-01T00:00:00+00:00",
    ]
    # renewal_notice_days: 0 turns notices off for the yearly plan
    assert jobs(tenant[0], "2027-02-28T00:00:00Z")["subscription_renewal_notices"] == 0
    assert all(e["member_id"] == "m1" for e in events(shop, "subscription.renewal_due"))


def test_expiry_job_runs_once_and_is_listed(shop: Api, tenant: tuple[str, str]) -> None:
    sub = pay(shop, "ch_1", "2026-03-01T00:00:00Z")["subscription_id"]
    counts = jobs(tenant[0], "2026-03-31T23:59:59Z")
    assert counts["subscription_expiry"] == 0
    assert jobs(tenant[0], "2026-04-01T00:00:00Z")["subscription_expiry"] == 1
    assert jobs(tenant[0], "2026-04-02T00:00:00Z")["subscription_expiry"] == 0
    assert events(shop, "subscription.expired") == [
        {
            "subscription_id": sub,
            "member_id": "m1",
            "plan": "plus",
            "ended_at": "2026-04-01T00:00:00+00:00",
            "reason": "not_renewed",
        }
    ]
    assert history(shop, "2026-04-02T00:00:00Z")[0]["status"] == "expired"


def test_jobs_run_command_expires_subscriptions(shop: Api, tenant: tuple[str, str]) -> None:
    pay(shop, "ch_1", "2026-03-01T00:00:00Z")
    env = {k: v for k, v in os.environ.items() if k != "ALLEGIANCE_DATABASE_URL"}
    env["COLUMNS"] = "400"
    result = subprocess.run(
        [
            *(sys.executable, "-m", "allegiance.cli", "jobs", "run"),
            *("--now", "2026-04-01T00:00:00Z", "--tenant", tenant[0]),
            *("--database-url", TEST_URL),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "subscription_expiry: 1" in result.stdout
    assert len(events(shop, "subscription.expired")) == 1


# ---- benefits for earning and tiers ----------------------------------------------------------


def test_active_membership_for_the_earning_engine(shop: Api, tenant: tuple[str, str]) -> None:
    trial(shop, "tr_1", "2026-03-01T00:00:00Z")
    with read_session(get_engine()) as session:
        found = active_membership(
            session,
            tenant_id=tenant[0],
            member_id="m1",
            now=parse_timestamp("2026-03-05T00:00:00Z"),
        )
        assert found is not None
        assert found.plan == "plus"
        assert found.status == "trialing"
        assert found.tier_floor == "gold"
        assert found.earn_multiplier == Decimal(2)
        assert found.perks == ("free_shipping", "early_access")
        # computed on read: the trial is over even though no job has run
        over = active_membership(
            session,
            tenant_id=tenant[0],
            member_id="m1",
            now=parse_timestamp("2026-03-15T00:00:00Z"),
        )
        assert over is None
        assert (
            active_membership(
                session,
                tenant_id=tenant[0],
                member_id="m2",
                now=parse_timestamp("2026-03-05T00:00:00Z"),
            )
            is None
        )
    pay(shop, "ch_2", "2026-03-05T00:00:00Z", plan="weekly", amount="1.50", member="m3")
    with read_session(get_engine()) as session:
        batch = active_memberships(
            session,
            tenant_id=tenant[0],
            member_ids=["m1", "m2", "m3"],
            now=parse_timestamp("2026-03-06T00:00:00Z"),
        )
    assert {k: (v.plan, v.status, v.earn_multiplier) for k, v in batch.items()} == {
        "m1": ("plus", "trialing", Decimal(2)),
        "m3": ("weekly", "active", Decimal(1)),
    }


def test_plan_benefits_apply_to_earning_tiers_and_conditions(
    shop: Api, tenant: tuple[str, str]
) -> None:
    """Plus: a gold floor, double points and perks while subscribed; none after it ends."""
    document = copy.deepcopy(PROGRAM)
    document["tiers"]["levels"][1]["benefits"] = {"earn_multiplier": 1.5, "perks": ["lounge"]}
    document["rules"].append(
        {
            "key": "plus-bonus",
            "on": "order.completed",
            "when": "member.plan == 'plus' && 'early_access' in member.perks",
            "earn": {"fixed": 7},
        }
    )
    apply_program(shop, document)
    shop.now = "2026-02-20T00:00:00Z"
    before = shop.post("/v1/orders", json=order("o0", "m1", "10.00")).json()
    assert before["balances"]["points"]["active"] == 10  # bronze, no plan
    pay(shop, "ch_1", "2026-03-01T00:00:00Z")
    shop.now = "2026-03-02T00:00:00Z"
    member = shop.get("/v1/members/m1").json()
    assert member["tier"]["key"] == "gold"
    assert member["tier"]["source"] == "plan"
    assert member["tier"]["earned"] == "bronze"
    booked = shop.post("/v1/orders", json=order("o1", "m1", "10.00")).json()
    # 10 × 1.5 (gold, the plan's floor) × 2 (the plan) + 7 (rule on plan and perks)
    assert [e["amount"] for e in booked["effects"] if e["type"] == "points_earned"] == [30, 7]
    factors = {
        e["rule"]: e["factor"] for e in booked["effects"] if e["type"] == "points_multiplied"
    }
    assert factors == {"tier:gold": 1.5, "plan:plus": 2.0}
    assert booked["rules_applied"] == ["base", "plus-bonus"]
    # the month ends without a renewal: back to bronze, single points
    shop.now = "2026-04-02T00:00:00Z"
    after = shop.post("/v1/orders", json=order("o2", "m1", "10.00")).json()
    assert [e["amount"] for e in after["effects"] if e["type"] == "points_earned"] == [10]
    assert shop.get("/v1/members/m1").json()["tier"]["key"] == "bronze"
    assert ledger_ok(tenant[0]) == []


def test_plan_removed_from_the_program_runs_out_without_benefits(shop: Api) -> None:
    pay(shop, "ch_1", "2026-03-01T00:00:00Z")
    document = copy.deepcopy(PROGRAM)
    document["plans"] = document["plans"][1:]
    apply_program(shop, document)
    held = membership(shop, "2026-03-05T00:00:00Z")
    assert held["plan"] == "plus"
    assert held["benefits"] == {"earn_multiplier": 1.0, "perks": []}
    assert held["tier_floor"] is None
    refused = pay(shop, "ch_2", "2026-03-05T00:00:00Z", expect=422)
    assert refused["errors"][0]["loc"] == ["body", "plan"]


# ---- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"plan": "gold"}, ["body", "plan"]),
        ({"plan": "Bad Key!"}, ["body", "plan"]),
        ({"amount": "10.00"}, ["body", "amount"]),
        ({"amount": "9.999"}, ["body", "amount"]),
        ({"amount": "-9.99"}, ["body", "amount"]),
        ({"amount": None}, ["body"]),
        ({"trial": True}, ["body"]),
        ({"currency": "EUR"}, ["body", "currency"]),
        ({"paid_at": "2026-03-02T00:00:00Z"}, ["body", "paid_at"]),
        ({"paid_at": "yesterday"}, ["body", "paid_at"]),
        ({"extra": 1}, ["body", "extra"]),
    ],
)
def test_bad_input_is_a_located_422(shop: Api, body: dict[str, Any], loc: list[Any]) -> None:
    shop.now = "2026-03-01T00:00:00Z"
    payload = {"id": "ch_1", "plan": "plus", "amount": "9.99", **body}
    payload = {k: v for k, v in payload.items() if v is not None}
    response = shop.post("/v1/members/m1/subscriptions", json=payload)
    found = problem(response, 422, "validation_error")
    assert any(e["loc"][: len(loc)] == loc for e in found["errors"]), found
    # not pinned: the same id can still be used
    assert shop.get("/v1/members/m1").status_code == 404
    pay(shop, "ch_1", "2026-03-01T00:00:00Z")


def test_before_any_program(api: Api) -> None:
    api.now = "2026-03-01T00:00:00Z"
    response = api.post(
        "/v1/members/m1/subscriptions", json={"id": "ch_1", "plan": "plus", "amount": "9.99"}
    )
    problem(response, 409, "program_not_found")


def test_scopes(shop: Api) -> None:
    pay(shop, "ch_1", "2026-03-01T00:00:00Z")
    response = shop.post("/v1/api-keys", json={"scope": "storefront"})
    storefront = shop.with_key(response.json()["api_key"])
    assert storefront.get("/v1/members/m1/subscriptions").status_code == 200
    refused = storefront.post(
        "/v1/members/m1/subscriptions", json={"id": "ch_2", "plan": "plus", "amount": "9.99"}
    )
    problem(refused, 403, "insufficient_scope")
    problem(storefront.get("/v1/members/m9/subscriptions"), 404, "member_not_found")


def test_history_pages(shop: Api) -> None:
    for i in range(3):  # three stretches of membership, each cancelled at once
        sub = pay(shop, f"ch_{i}", f"2026-03-0{i + 1}T00:00:00Z")["subscription_id"]
        assert cancel(shop, sub, f"2026-03-0{i + 1}T01:00:00Z", at_period_end=False).is_success
    shop.now = "2026-03-05T00:00:00Z"
    first = shop.get("/v1/members/m1/subscriptions?limit=2").json()
    assert [s["payments"][0]["payment_id"] for s in first["data"]] == ["ch_2", "ch_1"]
    assert first["next_cursor"]
    rest = shop.get(f"/v1/members/m1/subscriptions?limit=2&cursor={first['next_cursor']}").json()
    assert [s["payments"][0]["payment_id"] for s in rest["data"]] == ["ch_0"]
    assert rest["next_cursor"] is None
    assert shop.get("/v1/members/m1/subscriptions?cursor=zzz").status_code == 422


# ---- program document ------------------------------------------------------------------------


def test_plans_are_checked_when_the_program_is_applied(api: Api) -> None:
    document = copy.deepcopy(PROGRAM)
    document["plans"] = [
        {"key": "plus", "fee": "9.999", "tier": "platinum"},
        {"key": "plus", "fee": "1", "period": "fortnight"},
        {"key": "p3", "fee": "1", "period": {"days": 3, "months": 1}},
    ]
    response = api.put("/v1/program", json=document)
    body = problem(response, 422, "invalid_program")
    assert body["errors"] == [
        {
            "loc": ["plans", 1, "period"],
            "msg": "a period is day, week, month, year or one of {days|weeks|months|years: N}",
        },
        {
            "loc": ["plans", 2, "period"],
            "msg": "a period has exactly one of days, weeks, months, years",
        },
    ]
    document["plans"] = [
        {"key": "plus", "fee": "9.999", "tier": "platinum"},
        {"key": "plus", "fee": "100", "currency": "JPY"},
    ]
    body = problem(api.put("/v1/program", json=document), 422, "invalid_program")
    assert body["errors"] == [
        {"loc": ["plans", 0, "fee"], "msg": "more than 2 decimal places for USD"},
        {
            "loc": ["plans", 0, "tier"],
            "msg": "unknown tier 'platinum'; tier levels: bronze, gold",
        },
        {"loc": ["plans", 1, "key"], "msg": "duplicate plan key 'plus'"},
    ]
    no_tiers = {k: v for k, v in PROGRAM.items() if k != "tiers"}
    body = problem(api.put("/v1/program", json=no_tiers), 422, "invalid_program")
    assert body["errors"] == [
        {
            "loc": ["plans", 0, "tier"],
            "msg": "unknown tier 'gold'; tier levels: none (the program has no tiers)",
        }
    ]


def test_plan_in_its_own_currency(api: Api) -> None:
    document = copy.deepcopy(PROGRAM)
    document["plans"] = [{"key": "jp", "fee": "1000", "currency": "JPY"}]
    apply_program(api, document)
    refused = pay(api, "ch_1", "2026-03-01T00:00:00Z", plan="jp", amount="1000.5", expect=422)
    assert refused["errors"][0]["loc"] == ["body", "amount"]
    wrong = pay(api, "ch_1", "2026-03-01T00:00:00Z", plan="jp", amount="1000", currency="USD",
                expect=422)  # fmt: skip
    assert wrong["errors"][0]["loc"] == ["body", "currency"]
    paid = pay(api, "ch_1", "2026-03-01T00:00:00Z", plan="jp", amount="1000", currency="JPY")
    assert paid["payment"]["amount"] == "1000"
    assert paid["payment"]["currency"] == "JPY"
    assert paid["benefits"] == {"earn_multiplier": 1.0, "perks": []}
    assert paid["tier_floor"] is None


def test_a_payment_is_activity_for_inactivity_expiry(api: Api, tenant: tuple[str, str]) -> None:
    document = copy.deepcopy(PROGRAM)
    document["wallets"] = {"points": {"expiry": {"mode": "inactivity_days", "days": 60}}}
    apply_program(api, document)
    api.now = "2026-01-01T00:00:00Z"
    assert api.post("/v1/orders", json=order("o1", "m1", "100.00")).status_code == 201
    pay(api, "ch_1", "2026-02-15T00:00:00Z")  # idle since 1 January, but paying
    jobs(tenant[0], "2026-03-05T00:00:00Z")  # 63 days after the order
    api.now = "2026-03-05T00:00:00Z"
    assert api.get("/v1/members/m1").json()["balances"]["points"]["active"] == 100
    jobs(tenant[0], "2026-04-16T00:00:00Z")  # 60 days after the payment
    api.now = "2026-04-16T00:00:00Z"
    assert api.get("/v1/members/m1").json()["balances"]["points"]["active"] == 0
    assert ledger_ok(tenant[0]) == []


def test_gdpr_export_lists_subscriptions(shop: Api) -> None:
    sub = pay(shop, "ch_1", "2026-03-01T00:00:00Z")["subscription_id"]
    exported = shop.get("/v1/members/m1/export").json()
    assert [s["subscription_id"] for s in exported["subscriptions"]] == [sub]
    assert [p["payment_id"] for p in exported["subscriptions"][0]["payments"]] == ["ch_1"]


def test_malformed_json_is_400(shop: Api) -> None:
    shop.now = "2026-03-01T00:00:00Z"
    for path in ("/v1/members/m1/subscriptions", "/v1/members/m1/subscriptions/sub_x/cancel"):
        response = shop.post(
            path, content=b"{not json}", headers={"Content-Type": "application/json"}
        )
        problem(response, 400, "malformed_json")
    assert shop.get("/v1/members/m1").status_code == 404
    assert events(shop, "subscription.started") == []
