"""Tenant templates: stored per name and locale, checked for syntax (422 with the place),
sandboxed, and used instead of the shipped ones."""

from __future__ import annotations

from typing import Any

from tests.conftest import BASIC_PROGRAM, Api, apply_program
from tests.email.mailbox import Inbox, jobs, parts, smtp

__all__ = ["smtp"]

OVERRIDE = {
    "subject": "Hi {{ member.name }}, welcome aboard",
    "html": "<p>Custom welcome for {{ member.name }} in {{ lang }}</p>",
    "text": "Custom welcome for {{ member.name }}",
}


def test_put_get_delete_template(api: Api) -> None:
    shipped = api.get("/v1/email-templates/welcome/ar").json()
    assert shipped["source"] == "default" and 'dir="rtl"' not in shipped["html"]  # via layout
    assert api.get("/v1/email-templates/welcome/ar").json()["marketing"] is False
    assert api.get("/v1/email-templates/birthday/en").json()["marketing"] is True

    response = api.put("/v1/email-templates/welcome/en", json=OVERRIDE)
    assert response.status_code == 200, response.text
    assert response.json()["source"] == "override"
    got = api.get("/v1/email-templates/welcome/en").json()
    assert got["subject"] == OVERRIDE["subject"] and got["source"] == "override"
    listed = api.get("/v1/email-templates").json()["data"]
    assert [(t["name"], t["locale"]) for t in listed] == [("welcome", "en")]

    assert api.delete("/v1/email-templates/welcome/en").status_code == 204
    assert api.get("/v1/email-templates/welcome/en").json()["source"] == "default"
    assert api.delete("/v1/email-templates/welcome/en").status_code == 404
    missing = api.get("/v1/email-templates/nothing-here/en")
    assert missing.status_code == 404 and missing.json()["code"] == "template_not_found"


def test_bad_template_is_422_with_location(api: Api) -> None:
    bad = {**OVERRIDE, "html": "<p>{% if member.name %}unclosed</p>"}
    response = api.put("/v1/email-templates/welcome/en", json=bad)
    assert response.status_code == 422
    errors = response.json()["errors"]
    assert errors[0]["loc"] == ["body", "html"]
    assert "line 1" in errors[0]["msg"]
    bad_subject = {**OVERRIDE, "subject": "{{ member.name "}
    response = api.put("/v1/email-templates/welcome/en", json=bad_subject)
    assert response.status_code == 422 and response.json()["errors"][0]["loc"] == [
        "body",
        "subject",
    ]
    # the sandbox refuses to reach Python internals
    unsafe = {
        **OVERRIDE,
        "text": "{{ member.__class__.__mro__ }}{{ ''.__class__.__subclasses__() }}",
    }
    response = api.put("/v1/email-templates/welcome/en", json=unsafe)
    assert response.status_code == 422
    assert api.put("/v1/email-templates/Bad Name/en", json=OVERRIDE).status_code == 422
    assert api.put("/v1/email-templates/welcome/english!", json=OVERRIDE).status_code == 422
    assert api.put("/v1/email-templates/welcome/en", json={"subject": "x"}).status_code == 422
    # nothing was stored
    assert api.get("/v1/email-templates").json()["data"] == []


def test_override_is_used_for_its_locale_only(
    api: Api, tenant: tuple[str, str], smtp: Inbox
) -> None:
    document: dict[str, Any] = {
        **BASIC_PROGRAM,
        "automations": [
            {
                "key": "welcome",
                "trigger": {"event": "member.enrolled"},
                "actions": [{"send_email": {"template": "welcome"}}],
            }
        ],
    }
    apply_program(api, document)
    assert api.put("/v1/email-templates/welcome/en", json=OVERRIDE).status_code == 200
    api.put("/v1/members/m1", json={"email": "m1@example.com", "name": "Ada"})
    api.put("/v1/members/m2", json={"email": "m2@example.com", "name": "Li", "locale": "zh"})
    jobs(tenant[0], "2026-03-01T10:00:00Z")
    en = smtp.to("m1@example.com")[0]
    assert en["Subject"] == "Hi Ada, welcome aboard"
    text, html = parts(en)
    assert "Custom welcome for Ada in en" in html and text.strip() == "Custom welcome for Ada"
    zh = smtp.to("m2@example.com")[0]
    assert zh["Subject"] == "欢迎加入Test Rewards"  # the shipped Chinese template still applies


def test_templates_need_the_admin_key(api: Api, http: Any) -> None:
    anonymous = api.with_key(None)
    assert anonymous.get("/v1/email-templates/welcome/en").status_code == 401
