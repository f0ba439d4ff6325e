"""A real SMTP server on a local port (aiosmtpd) that keeps what it receives, and helpers to
point the engine at it or at a mail folder."""

from __future__ import annotations

import email
import email.policy
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from allegiance.config import reset_settings
from allegiance.db import get_engine
from allegiance.kit.clock import parse_timestamp
from allegiance.worker.runner import run_all
from tests.conftest import free_port


class Inbox:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.url = ""

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        return "250 OK"

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if m["To"] == address]


def parts(message: EmailMessage) -> tuple[str, str]:
    """(plain text, html) of a multipart/alternative message."""
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None and html is not None
    return str(text.get_content()), str(html.get_content())


@pytest.fixture()
def smtp(monkeypatch: pytest.MonkeyPatch) -> Iterator[Inbox]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    inbox.url = f"smtp://127.0.0.1:{port}"
    monkeypatch.setenv("ALLEGIANCE_SMTP_URL", inbox.url)
    monkeypatch.setenv("ALLEGIANCE_PUBLIC_URL", "http://testserver")
    reset_settings()
    try:
        yield inbox
    finally:
        controller.stop()
        monkeypatch.delenv("ALLEGIANCE_SMTP_URL")
        reset_settings()


@pytest.fixture()
def mail_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    monkeypatch.delenv("ALLEGIANCE_SMTP_URL", raising=False)
    monkeypatch.setenv("ALLEGIANCE_MAIL_DIR", str(tmp_path / "mail"))
    reset_settings()
    try:
        yield tmp_path / "mail"
    finally:
        monkeypatch.delenv("ALLEGIANCE_MAIL_DIR")
        reset_settings()


def jobs(tenant_id: str, at: str) -> dict[str, int]:
    return run_all(get_engine(), parse_timestamp(at), tenant_id)
