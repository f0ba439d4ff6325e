"""Consent: set through the member upsert, respected by mails (marketing needs marketing
consent), withdrawn by the signed unsubscribe link, exported and erased with the member."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from tests.conftest import BASIC_PROGRAM, Api, apply_program
from tests.email.mailbox import Inbox, jobs, parts, smtp

__all__ = ["smtp"]

WIN_BACK: dict[str, Any] = {
    **BASIC_PROGRAM,
    "automations": [
        {
            "key": "win-back",
            "trigger": {"event": "customer.inactive"},
            "actions": [{"send_email": {"template": "win_back"}}],
        },
        {
            "key": "points",
            "trigger": {"event": "points.earned"},
            "actions": [{"send_email": {"template": "points_earned"}}],
        },
    ],
}


def test_consent_fields_on_the_member(api: Api) -> None:
    api.now = "2026-03-01T10:00:00Z"
    created = api.put("/v1/members/m1", json={"email": "m1@example.com"}).json()
    assert created["email_consent"] is True and created["marketing_consent"] is False
    assert created["marketing_consent_at"] is None
    api.now = "2026-03-02T10:00:00Z"
    updated = api.put("/v1/members/m1", json={"marketing_consent": True}).json()
    assert updated["marketing_consent"] is True
    assert updated["marketing_consent_at"] == "2026-03-02T10:00:00+00:00"
    api.now = "2026-03-03T10:00:00Z"
    same = api.put("/v1/members/m1", json={"marketing_consent": True, "name": "A"}).json()
    assert same["marketing_consent_at"] == "2026-03-02T10:00:00+00:00"  # unchanged: kept
    assert api.put("/v1/members/m1", json={"marketing_consent": "maybe"}).status_code == 422

    export = api.get("/v1/members/m1/export").json()["profile"]
    assert export["marketing_consent"] is True and export["email_consent"] is True
    assert api.delete("/v1/members/m1").status_code == 204
    erased = api.get("/v1/members/m1/export").json()["profile"]
    assert erased["marketing_consent"] is False and erased["email_consent"] is False
    assert erased["marketing_consent_at"] is None and erased["email_consent_at"] is None


def test_marketing_mail_needs_marketing_consent(
    api: Api, tenant: tuple[str, str], smtp: Inbox
) -> None:
    apply_program(api, WIN_BACK)
    api.put("/v1/members/no", json={"email": "no@example.com"})
    api.put("/v1/members/yes", json={"email": "yes@example.com", "marketing_consent": True})
    for member in ("no", "yes"):
        event = {"id": f"inactive-{member}", "type": "customer.inactive", "member_id": member}
        assert api.post("/v1/events", json=event).status_code in (200, 201)
    jobs(tenant[0], "2026-03-01T10:00:00Z")
    assert smtp.to("no@example.com") == []
    (mail,) = smtp.to("yes@example.com")
    runs = {
        r["member_id"]: r for r in api.get("/v1/automation-runs?automation=win-back").json()["data"]
    }
    assert runs["no"]["status"] == "done"
    assert runs["no"]["result"][0] == {
        "action": "send_email", "template": "win_back", "status": "skipped",
        "reason": "no_marketing_consent",
    }  # fmt: skip

    # the link in the mail (and the header) withdraws marketing consent
    text, html = parts(mail)
    header = mail["List-Unsubscribe"].strip("<>")
    assert header in html and header in text
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    path = urlsplit(header).path
    page = api.with_key(None).get(path)
    assert page.status_code == 200 and "unsubscribed" in page.text
    assert api.get("/v1/members/yes").json()["marketing_consent"] is False

    # a second marketing mail is not sent; transactional mail still is
    again = {"id": "inactive-yes-2", "type": "customer.inactive", "member_id": "yes"}
    api.post("/v1/events", json=again)
    api.post("/v1/orders", json={"id": "o1", "member_id": "yes", "items": [
        {"sku": "a", "quantity": 1, "unit_price": "10", "amount": "10"}]})  # fmt: skip
    jobs(tenant[0], "2026-03-02T10:00:00Z")
    subjects = [m["Subject"] for m in smtp.to("yes@example.com")]
    assert subjects == [mail["Subject"], "You earned 10 points"]


def test_unsubscribe_link_is_signed(api: Api, tenant: tuple[str, str], smtp: Inbox) -> None:
    apply_program(api, WIN_BACK)
    api.put("/v1/members/m1", json={"email": "m1@example.com", "marketing_consent": True})
    api.post("/v1/events", json={"id": "e1", "type": "customer.inactive", "member_id": "m1"})
    jobs(tenant[0], "2026-03-01T10:00:00Z")
    token = urlsplit(smtp.messages[0]["List-Unsubscribe"].strip("<>")).path.rsplit("/", 1)[1]
    payload, signature = token.split(".")
    anonymous = api.with_key(None)
    for forged in (f"{payload}.{signature[:-2]}xx", "garbage", f"{payload}", "a.b.c"):
        assert anonymous.get(f"/unsubscribe/{forged}").status_code == 404
    assert api.get("/v1/members/m1").json()["marketing_consent"] is True
    # one-click (RFC 8058) works too
    assert anonymous.post(f"/unsubscribe/{token}").status_code == 200
    assert api.get("/v1/members/m1").json()["marketing_consent"] is False


def test_no_mail_without_email_consent(api: Api, tenant: tuple[str, str], smtp: Inbox) -> None:
    apply_program(api, WIN_BACK)
    api.put("/v1/members/m1", json={"email": "m1@example.com", "email_consent": False})
    api.post("/v1/orders", json={"id": "o1", "member_id": "m1", "items": [
        {"sku": "a", "quantity": 1, "unit_price": "10", "amount": "10"}]})  # fmt: skip
    jobs(tenant[0], "2026-03-01T10:00:00Z")
    assert smtp.messages == []
    (run,) = api.get("/v1/automation-runs?automation=points").json()["data"]
    assert run["result"][0]["reason"] == "no_email_consent"
