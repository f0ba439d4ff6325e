"""Runs: conditions, delays, guards (also under concurrency), idempotent actions, rewards,
tags, webhooks, member.enrolled, and program validation."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from sqlalchemy import text

from allegiance.db import get_engine, write_session
from allegiance.kit.clock import parse_timestamp
from tests.conftest import BASIC_PROGRAM, Api, apply_program, ledger_ok, order
from tests.email.mailbox import jobs


def program(*automations: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {**BASIC_PROGRAM, **extra, "automations": list(automations)}


def runs(api: Api, automation: str) -> list[dict[str, Any]]:
    return api.get(f"/v1/automation-runs?automation={automation}").json()["data"]


def post_event(api: Api, event_id: str, member: str, at: str, **properties: Any) -> None:
    api.now = at
    body = {"id": event_id, "type": "review.created", "member_id": member, "properties": properties}
    assert api.post("/v1/events", json=body).status_code in (200, 201)


def balance(api: Api, member: str) -> Any:
    return api.get(f"/v1/members/{member}").json()["balances"]["points"]["active"]


def test_delay(api: Api, tenant: tuple[str, str]) -> None:
    later = {
        "key": "later",
        "trigger": {"event": "review.created"},
        "delay": "2d",
        "actions": [{"add_tag": "reviewed"}],
    }
    apply_program(api, program(later))
    post_event(api, "e1", "m1", "2026-03-01T10:00:00Z")
    jobs(tenant[0], "2026-03-01T10:00:00Z")
    (run,) = runs(api, "later")
    assert run["status"] == "pending" and run["due_at"] == "2026-03-03T10:00:00+00:00"
    jobs(tenant[0], "2026-03-03T09:59:00Z")
    assert runs(api, "later")[0]["status"] == "pending"
    assert api.get("/v1/members/m1").json()["tags"] == []
    jobs(tenant[0], "2026-03-03T10:00:00Z")
    assert runs(api, "later")[0]["status"] == "done"
    assert api.get("/v1/members/m1").json()["tags"] == ["reviewed"]


@pytest.mark.parametrize("delay", ["PT3H", "3h", "180m"])
def test_delay_forms(api: Api, tenant: tuple[str, str], delay: str) -> None:
    apply_program(
        api,
        program({"key": "d", "trigger": {"event": "review.created"}, "delay": delay,
                 "actions": [{"add_tag": "x"}]}),
    )  # fmt: skip
    post_event(api, "e1", "m1", "2026-03-01T10:00:00Z")
    jobs(tenant[0], "2026-03-01T10:00:00Z")
    assert runs(api, "d")[0]["due_at"] == "2026-03-01T13:00:00+00:00"


def test_condition_over_event_and_member(api: Api, tenant: tuple[str, str]) -> None:
    five_stars = {
        "key": "five",
        "trigger": {"event": "review.created"},
        "condition": "event.properties.rating >= 5 && member.locale == 'de'",
        "actions": [{"award_points": {"amount": 10}}],
    }
    apply_program(api, program(five_stars))
    api.put("/v1/members/de", json={"locale": "de"})
    api.put("/v1/members/fr", json={"locale": "fr"})
    post_event(api, "e1", "de", "2026-03-01T10:00:00Z", rating=5)
    post_event(api, "e2", "de", "2026-03-01T10:00:00Z", rating=3)
    post_event(api, "e3", "fr", "2026-03-01T10:00:00Z", rating=5)
    jobs(tenant[0], "2026-03-01T10:00:00Z")
    assert [r["trigger"]["id"] for r in runs(api, "five")] == [
        api.get("/v1/domain-events?type=review.created").json()["data"][0]["id"]
    ]
    assert balance(api, "de") == 10 and balance(api, "fr") == 0


def test_condition_sees_the_members_tier(api: Api, tenant: tuple[str, str]) -> None:
    gold_only = {
        "key": "gold",
        "trigger": {"event": "review.created"},
        "condition": "member.tier == 'gold'",
        "actions": [{"add_tag": "gold-reviewer"}],
    }
    levels = [{"key": "base", "threshold": 0}, {"key": "gold", "threshold": 100}]
    tiers = {"metric": "spend", "window": {"mode": "lifetime"}, "levels": levels}
    apply_program(api, program(gold_only, tiers=tiers))
    api.now = "2026-03-01T09:00:00Z"
    assert api.post("/v1/orders", json=order("o1", "rich", "150")).status_code == 201
    assert api.post("/v1/orders", json=order("o2", "poor", "10")).status_code == 201
    post_event(api, "e1", "rich", "2026-03-01T10:00:00Z")
    post_event(api, "e2", "poor", "2026-03-01T10:00:00Z")
    jobs(tenant[0], "2026-03-01T10:00:00Z")
    assert [r["member_id"] for r in runs(api, "gold")] == ["rich"]


def test_guards(api: Api, tenant: tuple[str, str]) -> None:
    monthly = {
        "key": "monthly",
        "trigger": {"event": "review.created"},
        "guard": {"once_per": "month"},
        "actions": [{"award_points": {"amount": 5}}],
    }
    once = {
        "key": "once",
        "trigger": {"event": "review.created"},
        "guard": {"once_per_member": True},
        "actions": [{"award_points": {"amount": 100}}],
    }
    apply_program(api, program(monthly, once))
    for i, at in enumerate(
        ["2026-03-01T10:00:00Z", "2026-03-20T10:00:00Z", "2026-04-02T10:00:00Z"]
    ):
        post_event(api, f"e{i}", "m1", at)
        jobs(tenant[0], at)
    assert balance(api, "m1") == 100 + 5 + 5
    assert len(runs(api, "monthly")) == 2 and len(runs(api, "once")) == 1
    assert ledger_ok(tenant[0]) == []


def test_award_points_is_idempotent_per_run(api: Api, tenant: tuple[str, str]) -> None:
    award = {
        "key": "award",
        "trigger": {"event": "review.created"},
        "actions": [{"award_points": {"amount": 30, "expires_days": 10}}],
    }
    apply_program(api, program(award))
    post_event(api, "e1", "m1", "2026-03-01T10:00:00Z")
    jobs(tenant[0], "2026-03-01T10:00:00Z")
    assert balance(api, "m1") == 30
    (run,) = runs(api, "award")
    assert run["result"][0]["status"] == "awarded"
    # a crash after the award but before the run was marked done: the run comes back
    with write_session(get_engine()) as session:
        session.execute(
            text("UPDATE automation_runs SET status = 'pending' WHERE id = :id"), {"id": run["id"]}
        )
    jobs(tenant[0], "2026-03-01T11:00:00Z")
    (run,) = runs(api, "award")
    assert run["status"] == "done" and run["result"][0]["status"] == "already_awarded"
    assert balance(api, "m1") == 30
    ledger = api.get("/v1/members/m1/ledger").json()["data"]
    assert [t["amount"] for t in ledger if t["code"] == "adjust"] == [30]
    expiring = api.get("/v1/members/m1").json()["balances"]["points"]["expiring"]
    assert expiring[0]["expires_at"].startswith("2026-03-11")
    assert ledger_ok(tenant[0]) == []


def test_concurrent_workers_run_each_run_once(api: Api, tenant: tuple[str, str]) -> None:
    from allegiance.automation.tasks import execute_due
    from allegiance.outbox.tasks import dispatch

    award = {
        "key": "award",
        "trigger": {"event": "review.created"},
        "guard": {"once_per": "day"},
        "actions": [{"award_points": {"amount": 1}}],
    }
    apply_program(api, program(award))
    for i in range(20):
        post_event(api, f"e{i}", f"m{i % 5}", "2026-03-01T10:00:00Z")
        post_event(api, f"f{i}", f"m{i % 5}", "2026-03-01T10:00:00Z")
    now = parse_timestamp("2026-03-01T10:00:00Z")
    errors: list[BaseException] = []

    def work(fn: Any) -> None:
        try:
            fn(get_engine(), tenant[0], now)
        except BaseException as exc:
            errors.append(exc)

    for fn in (dispatch, execute_due):
        threads = [threading.Thread(target=work, args=(fn,)) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert errors == []
    assert len(runs(api, "award")) == 5  # one per member and day
    assert all(r["status"] == "done" for r in runs(api, "award"))
    assert [balance(api, f"m{i}") for i in range(5)] == [1] * 5
    assert ledger_ok(tenant[0]) == []


def test_issue_reward_and_tags(api: Api, tenant: tuple[str, str]) -> None:
    rewards = [{"key": "five-off", "cost": 100, "type": "discount_fixed", "value": 5,
                "coupon": {"valid_days": 30}}]  # fmt: skip
    gift = {
        "key": "gift",
        "trigger": {"event": "review.created"},
        "actions": [
            {"issue_reward": {"reward": "five-off"}},
            {"add_tag": {"tag": "gifted"}},
            {"remove_tag": "new"},
        ],
    }
    apply_program(api, program(gift, rewards=rewards))
    api.put("/v1/members/m1", json={"tags": ["new", "vip"]})
    post_event(api, "e1", "m1", "2026-03-01T10:00:00Z")
    jobs(tenant[0], "2026-03-01T10:00:00Z")
    (run,) = runs(api, "gift")
    coupon = run["result"][0]["coupon"]
    assert run["result"][0]["status"] == "issued" and coupon["expires_at"].startswith("2026-03-31")
    assert api.get("/v1/members/m1").json()["tags"] == ["vip", "gifted"]
    checked = api.post("/v1/coupons/validate", json={
        "code": coupon["code"], "member_id": "m1", "cart": {"items": [
            {"sku": "a", "quantity": 1, "unit_price": "20", "amount": "20"}]}})  # fmt: skip
    assert checked.status_code == 200 and checked.json()["valid"] is True
    # re-executing the run gives the same coupon, not a second one
    with write_session(get_engine()) as session:
        session.execute(
            text("UPDATE automation_runs SET status = 'pending' WHERE id = :id"), {"id": run["id"]}
        )
    jobs(tenant[0], "2026-03-01T11:00:00Z")
    again = runs(api, "gift")[0]["result"][0]
    assert again["status"] == "already_issued" and again["coupon"]["code"] == coupon["code"]


def test_member_enrolled_once(api: Api, tenant: tuple[str, str]) -> None:
    welcome = {"key": "w", "trigger": {"event": "member.enrolled"}, "actions": [{"add_tag": "w"}]}
    apply_program(api, program(welcome))
    api.put("/v1/members/m1", json={"name": "A"})
    api.put("/v1/members/m1", json={"name": "B"})
    assert api.post("/v1/orders", json=order("o1", "m2", "10")).status_code == 201  # implicit
    assert api.post("/v1/orders", json=order("o2", "m2", "10")).status_code == 201
    assert api.post("/v1/orders", json=order("o3", "m1", "10")).status_code == 201
    enrolled = api.get("/v1/domain-events?type=member.enrolled").json()["data"]
    assert sorted(e["data"]["member_id"] for e in enrolled) == ["m1", "m2"]
    jobs(tenant[0], "2026-03-01T10:00:00Z")
    assert api.get("/v1/members/m2").json()["tags"] == ["w"]


def test_run_without_member_fails_after_attempts(api: Api, tenant: tuple[str, str]) -> None:
    cancelled = {"key": "c", "trigger": {"event": "order.cancelled"}, "actions": [{"add_tag": "x"}]}
    apply_program(api, program(cancelled))
    api.now = "2026-03-01T10:00:00Z"
    api.post("/v1/orders", json=order("o1", None, "10"))
    api.post("/v1/orders/o1/cancel", json={})
    jobs(tenant[0], "2026-03-01T10:00:00Z")
    (run,) = runs(api, "c")
    if run["status"] == "pending":  # retried with backoff until the last attempt
        for hour in range(1, 8):
            jobs(tenant[0], f"2026-03-01T{10 + hour:02d}:00:00Z")
        (run,) = runs(api, "c")
    assert run["status"] == "failed" and "needs a member" in run["error"]
    assert run["attempts"] == 5


def test_webhook_action(api: Api, tenant: tuple[str, str]) -> None:
    pytest.importorskip("allegiance.webhook.service")
    created = api.post(
        "/v1/webhook-endpoints",
        json={"url": "http://127.0.0.1:9/hook", "events": ["review.created"]},
    ).json()
    endpoint_id = created.get("id") or created.get("endpoint_id")
    hook = {
        "key": "hook",
        "trigger": {"event": "review.created"},
        "actions": [{"webhook": {"endpoint": endpoint_id}}],
    }
    apply_program(api, program(hook))
    post_event(api, "e1", "m1", "2026-03-01T10:00:00Z")
    jobs(tenant[0], "2026-03-01T10:00:00Z")
    (run,) = runs(api, "hook")
    assert run["status"] == "done", run["error"]
    assert run["result"][0]["endpoint"] == endpoint_id


@pytest.mark.parametrize(
    ("automation", "loc"),
    [
        ({"condition": "member.nope +"}, ["automations", 0, "condition"]),
        ({"condition": "order.total > 1.0"}, ["automations", 0, "condition"]),
        ({"delay": "2 days"}, ["automations", 0, "delay"]),
        ({"delay": "P1M"}, ["automations", 0, "delay"]),
        ({"guard": {"once_per": "hour"}}, ["automations", 0, "guard", "once_per"]),
        ({"trigger": {"birthday": True, "event": "a.b"}}, ["automations", 0, "trigger"]),
        ({"trigger": {"date": "13-45"}}, ["automations", 0, "trigger"]),
        (
            {"trigger": {"points_milestone": {"thresholds": [100, 50]}}},
            ["automations", 0, "trigger", "points_milestone", "thresholds"],
        ),
        ({"actions": [{"issue_reward": {"reward": "nope"}}]}, ["automations", 0, "actions", 0,
                                                               "issue_reward", "reward"]),
        ({"actions": [{"award_points": {"amount": 1, "wallet": "miles"}}]},
         ["automations", 0, "actions", 0, "award_points", "wallet"]),
        ({"actions": [{"award_points": {"amount": 1.5}}]},
         ["automations", 0, "actions", 0, "award_points", "amount"]),
        ({"actions": []}, ["automations", 0, "actions"]),
        ({"actions": [{"send_email": {"template": "welcome"}, "add_tag": "x"}]},
         ["automations", 0, "actions", 0]),
    ],
)  # fmt: skip
def test_program_validation(api: Api, automation: dict[str, Any], loc: list[Any]) -> None:
    base = {"key": "a", "trigger": {"event": "review.created"}, "actions": [{"add_tag": "x"}]}
    response = api.put("/v1/program", json=program({**base, **automation}))
    assert response.status_code == 422, response.text
    locs = [e["loc"][: len(loc)] for e in response.json()["errors"]]
    assert loc in locs, response.json()["errors"]


def test_duplicate_keys_refused(api: Api) -> None:
    a = {"key": "a", "trigger": {"event": "review.created"}, "actions": [{"add_tag": "x"}]}
    response = api.put("/v1/program", json=program(a, a))
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["automations", 1, "key"]


def test_member_enrolled_once_under_concurrent_creation(
    api: Api, tenant: tuple[str, str], live_server: str
) -> None:
    import httpx

    apply_program(api, program())
    headers = {"Authorization": f"Bearer {tenant[1]}"}

    def place(i: int) -> None:
        with httpx.Client(base_url=live_server, headers=headers, timeout=30) as client:
            body = order(f"race-{i}", "racer", "10")
            assert client.post("/v1/orders", json=body).status_code == 201
            upsert = client.put("/v1/members/racer2", json={"name": f"n{i}"})
            assert upsert.status_code in (200, 201)

    threads = [threading.Thread(target=place, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    enrolled = api.get("/v1/domain-events?type=member.enrolled").json()["data"]
    assert sorted(e["data"]["member_id"] for e in enrolled) == ["racer", "racer2"]
