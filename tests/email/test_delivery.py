"""Mails reach a real SMTP server in the member's language (Arabic right-to-left, Chinese),
or land as .eml files in the mail folder when no SMTP server is configured."""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import BASIC_PROGRAM, Api, apply_program
from tests.email.mailbox import Inbox, jobs, mail_folder, parts, smtp

__all__ = ["mail_folder", "smtp"]

WELCOME: dict[str, Any] = {
    **BASIC_PROGRAM,
    "automations": [
        {
            "key": "welcome",
            "trigger": {"event": "member.enrolled"},
            "actions": [{"send_email": {"template": "welcome"}}],
        }
    ],
}


def test_welcome_mail_in_the_members_language(
    api: Api, tenant: tuple[str, str], smtp: Inbox
) -> None:
    api.now = "2026-03-01T10:00:00Z"
    apply_program(api, WELCOME)
    for member_id, locale in (("m-ar", "ar"), ("m-zh", "zh-CN"), ("m-en", None), ("m-fr", "fr")):
        body = {"email": f"{member_id}@example.com", "name": "Sam", "locale": locale}
        assert api.put(f"/v1/members/{member_id}", json=body).status_code == 201
    jobs(tenant[0], "2026-03-01T10:00:00Z")
    assert len(smtp.messages) == 4

    ar = smtp.to("m-ar@example.com")[0]
    text, html = parts(ar)
    assert 'dir="rtl"' in html and 'lang="ar"' in html
    assert ar["Subject"] == "مرحبًا بك في Test Rewards"
    assert "أهلًا بك في Test Rewards" in text

    zh = smtp.to("m-zh@example.com")[0]
    text, html = parts(zh)
    assert zh["Subject"] == "欢迎加入Test Rewards"
    assert 'lang="zh"' in html and 'dir="ltr"' in html and "欢迎加入Test Rewards" in text

    # no locale, and a locale without templates: the program default (English)
    for member_id in ("m-en", "m-fr"):
        message = smtp.to(f"{member_id}@example.com")[0]
        assert message["Subject"] == "Welcome to Test Rewards"
        assert 'lang="en"' in parts(message)[1]
    # transactional: no unsubscribe header
    assert ar["List-Unsubscribe"] is None


def test_program_default_locale_applies_before_english(
    api: Api, tenant: tuple[str, str], smtp: Inbox
) -> None:
    apply_program(api, {**WELCOME, "email": {"default_locale": "zh", "from": "club@shop.example"}})
    api.put("/v1/members/m1", json={"email": "m1@example.com", "locale": "fr"})
    jobs(tenant[0], "2026-03-01T10:00:00Z")
    (message,) = smtp.messages
    assert message["Subject"] == "欢迎加入Test Rewards"
    assert message["From"] == "club@shop.example"


def test_mail_folder_mode_writes_eml_files(
    api: Api, tenant: tuple[str, str], mail_folder: Path
) -> None:
    apply_program(api, WELCOME)
    api.put("/v1/members/m1", json={"email": "m1@example.com", "name": "Ada"})
    jobs(tenant[0], "2026-03-01T10:00:00Z")
    files = list(mail_folder.glob("*.eml"))
    assert len(files) == 1
    message = email.message_from_bytes(files[0].read_bytes(), policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    assert message["To"] == "m1@example.com"
    assert message["Subject"] == "Welcome to Test Rewards"
    assert "Hello Ada" in parts(message)[0]


def test_html_escapes_member_data(api: Api, tenant: tuple[str, str], smtp: Inbox) -> None:
    apply_program(api, WELCOME)
    api.put("/v1/members/m1", json={"email": "m1@example.com", "name": "<script>x</script>"})
    jobs(tenant[0], "2026-03-01T10:00:00Z")
    text, html = parts(smtp.messages[0])
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "<script>x</script>" in text  # plain text is not HTML


def test_smtp_failure_is_retried_then_sent(
    api: Api, tenant: tuple[str, str], smtp: Inbox, monkeypatch: Any
) -> None:
    from allegiance.config import reset_settings
    from tests.conftest import free_port

    apply_program(api, WELCOME)
    monkeypatch.setenv("ALLEGIANCE_SMTP_URL", f"smtp://127.0.0.1:{free_port()}")  # nobody there
    reset_settings()
    api.now = "2026-03-01T10:00:00Z"
    api.put("/v1/members/m1", json={"email": "m1@example.com"})
    jobs(tenant[0], "2026-03-01T10:00:00Z")
    (run,) = api.get("/v1/automation-runs").json()["data"]
    assert run["status"] == "pending" and run["attempts"] == 1 and "SMTP" in run["error"]
    assert smtp.messages == []

    monkeypatch.setenv("ALLEGIANCE_SMTP_URL", smtp.url)
    reset_settings()
    jobs(tenant[0], "2026-03-01T10:00:30Z")  # before the retry is due
    assert smtp.messages == []
    jobs(tenant[0], "2026-03-01T10:01:00Z")
    (run,) = api.get("/v1/automation-runs").json()["data"]
    assert run["status"] == "done" and run["attempts"] == 2 and run["error"] is None
    assert len(smtp.messages) == 1


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_smtp_login_from_the_url(api: Api, tenant: tuple[str, str], monkeypatch: Any) -> None:
    """User and password come URL-encoded in ALLEGIANCE_SMTP_URL; the server requires them."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword

    from allegiance.config import reset_settings
    from tests.conftest import free_port

    seen: list[tuple[bytes, bytes]] = []

    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
        assert isinstance(data, LoginPassword)
        seen.append((data.login, data.password))
        return AuthResult(success=data.login == b"club@shop" and data.password == b"p:ss/word")

    inbox = Inbox()
    port = free_port()
    controller = Controller(
        inbox, hostname="127.0.0.1", port=port, authenticator=authenticator,
        auth_required=True, auth_require_tls=False,
    )  # fmt: skip
    controller.start()
    try:
        monkeypatch.setenv(
            "ALLEGIANCE_SMTP_URL", f"smtp://club%40shop:p%3Ass%2Fword@127.0.0.1:{port}"
        )
        reset_settings()
        apply_program(api, WELCOME)
        api.put("/v1/members/m1", json={"email": "m1@example.com"})
        jobs(tenant[0], "2026-03-01T10:00:00Z")
    finally:
        controller.stop()
        monkeypatch.delenv("ALLEGIANCE_SMTP_URL")
        reset_settings()
    assert seen == [(b"club@shop", b"p:ss/word")]
    assert [m["To"] for m in inbox.messages] == ["m1@example.com"]
