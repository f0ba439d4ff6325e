"""Scheduled triggers run by the jobs: birthdays and anniversaries in the program's time
zone (with member.birthday / member.anniversary events), fixed dates, expiring points and the
n-th order."""

from __future__ import annotations

from typing import Any

from tests.conftest import BASIC_PROGRAM, Api, apply_program, order
from tests.email.mailbox import Inbox, jobs, smtp

__all__ = ["smtp"]


def program(*automations: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {**BASIC_PROGRAM, **extra, "automations": list(automations)}


def runs(api: Api, automation: str) -> list[dict[str, Any]]:
    return api.get(f"/v1/automation-runs?automation={automation}").json()["data"]


def events(api: Api, type_: str) -> list[dict[str, Any]]:
    return api.get(f"/v1/domain-events?type={type_}").json()["data"]


def test_birthday_in_the_program_time_zone(api: Api, tenant: tuple[str, str], smtp: Inbox) -> None:
    birthday = {
        "key": "birthday",
        "trigger": {"birthday": True},
        "actions": [{"send_email": {"template": "birthday"}}, {"award_points": {"amount": 100}}],
    }
    apply_program(api, program(birthday, timezone="Asia/Tokyo"))
    api.now = "2026-01-10T00:00:00Z"
    for member, born in (("m1", "1990-03-15"), ("m2", "1985-03-16"), ("m3", None)):
        body = {"email": f"{member}@example.com", "birthdate": born, "marketing_consent": True}
        api.put(f"/v1/members/{member}", json=body)
    tid = tenant[0]
    jobs(tid, "2026-03-14T14:00:00Z")  # 23:00 on the 14th in Tokyo
    assert smtp.messages == [] and events(api, "member.birthday") == []
    jobs(tid, "2026-03-14T15:30:00Z")  # 00:30 on the 15th in Tokyo
    assert [m["To"] for m in smtp.messages] == ["m1@example.com"]
    assert smtp.messages[0]["Subject"] == "Happy birthday, friend!"
    jobs(tid, "2026-03-15T08:00:00Z")  # same day again: nothing twice
    assert len(smtp.messages) == 1
    (event,) = events(api, "member.birthday")
    assert event["data"]["member_id"] == "m1" and event["data"]["date"] == "2026-03-15"
    assert api.get("/v1/members/m1").json()["balances"]["points"]["active"] == 100
    jobs(tid, "2026-03-15T15:30:00Z")  # the 16th in Tokyo: m2
    assert [m["To"] for m in smtp.messages] == ["m1@example.com", "m2@example.com"]
    jobs(tid, "2027-03-14T15:30:00Z")  # next year again
    assert len(smtp.messages) == 3 and len(runs(api, "birthday")) == 3


def test_leap_day_birthday_on_february_28(api: Api, tenant: tuple[str, str]) -> None:
    birthday = {"key": "bd", "trigger": {"birthday": {}}, "actions": [{"add_tag": "birthday"}]}
    apply_program(api, program(birthday))
    api.put("/v1/members/leap", json={"birthdate": "2000-02-29"})
    jobs(tenant[0], "2027-02-28T12:00:00Z")
    assert [r["member_id"] for r in runs(api, "bd")] == ["leap"]
    assert api.get("/v1/members/leap").json()["tags"] == ["birthday"]


def test_anniversary(api: Api, tenant: tuple[str, str]) -> None:
    anniversary = {
        "key": "anniversary",
        "trigger": {"anniversary": True},
        "actions": [{"award_points": {"amount": 25, "reason": "membership anniversary"}}],
    }
    apply_program(api, program(anniversary))
    api.now = "2025-06-01T09:00:00Z"
    api.put("/v1/members/m1", json={"email": "m1@example.com"})
    api.put("/v1/members/m2", json={"enrolled_at": "2024-06-02T12:00:00Z"})
    tid = tenant[0]
    jobs(tid, "2025-06-01T12:00:00Z")  # enrolment day itself is no anniversary
    assert runs(api, "anniversary") == []
    jobs(tid, "2026-06-01T12:00:00Z")
    jobs(tid, "2026-06-01T18:00:00Z")
    (run,) = runs(api, "anniversary")
    assert run["member_id"] == "m1" and run["status"] == "done"
    (event,) = events(api, "member.anniversary")
    assert event["data"]["years"] == 1
    assert api.get("/v1/members/m1").json()["balances"]["points"]["active"] == 25
    jobs(tid, "2026-06-02T12:00:00Z")
    assert [r["member_id"] for r in runs(api, "anniversary")] == ["m2", "m1"]
    assert events(api, "member.anniversary")[1]["data"]["years"] == 2


def test_fixed_dates(api: Api, tenant: tuple[str, str]) -> None:
    holiday = {
        "key": "xmas",
        "trigger": {"date": ["12-25", "2026-11-27"]},
        "condition": "'vip' in member.tags",
        "actions": [{"add_tag": "greeted"}],
    }
    apply_program(api, program(holiday))
    api.put("/v1/members/vip", json={"tags": ["vip"]})
    api.put("/v1/members/other", json={})
    jobs(tenant[0], "2026-12-24T12:00:00Z")
    assert runs(api, "xmas") == []
    jobs(tenant[0], "2026-12-25T12:00:00Z")
    assert [r["member_id"] for r in runs(api, "xmas")] == ["vip"]
    jobs(tenant[0], "2026-11-27T12:00:00Z")
    jobs(tenant[0], "2027-11-27T12:00:00Z")  # a full date happens once
    assert len(runs(api, "xmas")) == 2
    assert api.get("/v1/members/vip").json()["tags"] == ["vip", "greeted"]


def test_points_expiring(api: Api, tenant: tuple[str, str], smtp: Inbox) -> None:
    expiring = {
        "key": "expiring",
        "trigger": {"points_expiring": {"days": 7}},
        "actions": [{"send_email": {"template": "points_expiring"}}],
    }
    wallets = {"points": {"expiry": {"mode": "rolling_days", "days": 30, "notify_days": 0}}}
    apply_program(api, program(expiring, wallets=wallets))
    api.now = "2026-03-01T10:00:00Z"
    api.put("/v1/members/m1", json={"email": "m1@example.com"})
    assert api.post("/v1/orders", json=order("o1", "m1", "40")).status_code == 201
    jobs(tenant[0], "2026-03-20T10:00:00Z")  # expires 03-31: not yet within 7 days
    assert smtp.messages == []
    jobs(tenant[0], "2026-03-25T10:00:00Z")
    jobs(tenant[0], "2026-03-26T10:00:00Z")
    (mail,) = smtp.messages
    assert mail["Subject"] == "40 of your points expire soon"
    (run,) = runs(api, "expiring")
    assert run["trigger"]["data"]["expires_at"].startswith("2026-03-31")


def test_nth_order(api: Api, tenant: tuple[str, str]) -> None:
    nth = {"key": "nth", "trigger": {"nth_order": {"n": [1, 3]}}, "actions": [{"add_tag": "x"}]}
    apply_program(api, program(nth))
    for i in range(1, 5):
        api.now = f"2026-03-0{i}T10:00:00Z"
        assert api.post("/v1/orders", json=order(f"o{i}", "m1", "10")).status_code == 201
    jobs(tenant[0], "2026-03-05T10:00:00Z")
    keys = sorted(r["trigger_key"] for r in runs(api, "nth"))
    assert keys == ["m1:order:1", "m1:order:3"]
    assert sorted(r["trigger"]["data"]["order_id"] for r in runs(api, "nth")) == ["o1", "o3"]
