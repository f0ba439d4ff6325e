"""Sending a message: SMTP when ``ALLEGIANCE_SMTP_URL`` is set, else an ``.eml`` file in the
mail folder (the embedded default: nothing to install, mails can be read in any client)."""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from allegiance.config import Settings, get_settings


class DeliveryError(RuntimeError):
    pass


def build_message(
    *,
    sender: str,
    to: str,
    subject: str,
    html: str,
    text: str,
    headers: dict[str, str] | None = None,
    reply_to: str | None = None,
) -> EmailMessage:
    """A multipart/alternative message (plain text first, HTML preferred), UTF-8."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or "localhost")
    if reply_to:
        message["Reply-To"] = reply_to
    for name, value in (headers or {}).items():
        message[name] = value
    message.set_content(text, charset="utf-8")
    message.add_alternative(html, subtype="html", charset="utf-8")
    return message


def mail_dir(settings: Settings) -> Path:
    if settings.mail_dir:
        return Path(settings.mail_dir)
    url = settings.database_url
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        return Path(url.removeprefix("sqlite:///")).resolve().parent / "mail"
    return Path("mail")


def deliver(message: EmailMessage) -> str:
    """Send (or write) the message; returns where it went. Raises DeliveryError."""
    settings = get_settings()
    if not settings.smtp_url:
        folder = mail_dir(settings)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            name = str(message["Message-ID"]).strip("<>").replace("@", "_").replace("/", "_")
            path = folder / f"{name}.eml"
            path.write_bytes(bytes(message))
        except OSError as exc:
            raise DeliveryError(f"could not write the mail file: {exc}") from exc
        return f"file:{path.name}"
    _send_smtp(settings, message)
    return "smtp"


def _send_smtp(settings: Settings, message: EmailMessage) -> None:
    assert settings.smtp_url is not None
    url = urlsplit(settings.smtp_url)
    if url.scheme not in ("smtp", "smtps"):
        raise DeliveryError("ALLEGIANCE_SMTP_URL must start with smtp:// or smtps://")
    query = parse_qs(url.query)
    starttls = query.get("starttls", ["false"])[0].lower() in ("1", "true", "yes")
    host = url.hostname or "localhost"
    port = url.port or (465 if url.scheme == "smtps" else 587 if starttls else 25)
    timeout = settings.smtp_timeout_seconds
    try:
        client: smtplib.SMTP
        if url.scheme == "smtps":
            client = smtplib.SMTP_SSL(
                host, port, timeout=timeout, context=ssl.create_default_context()
            )
        else:
            client = smtplib.SMTP(host, port, timeout=timeout)
        with client:
            if starttls:
                client.starttls(context=ssl.create_default_context())
            if url.username:
                client.login(unquote(url.username), unquote(url.password or ""))
            client.send_message(message)
    except (OSError, smtplib.SMTPException) as exc:
        raise DeliveryError(f"SMTP delivery failed: {exc}") from exc
