"""Use cases for e-mail: tenant templates, composing a member's mail (locale, consent,
unsubscribe link) and the public unsubscribe."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from typing import Any
from urllib.parse import quote

from sqlalchemy.orm import Session

from allegiance.config import get_settings
from allegiance.email import repository, templates, tokens
from allegiance.email.delivery import build_message
from allegiance.email.templates import RenderError
from allegiance.errors import NotFound, ValidationFailed, invalid
from allegiance.member.models import Member
from allegiance.program.schema import Program

NAME_PATTERN = r"^[a-z0-9][a-z0-9_\-]{0,63}$"
LOCALE_PATTERN = r"^[a-z]{2,3}(-[a-z0-9]{2,8}){0,2}$"
MAX_PART_CHARS = {"subject": 500, "html": 200_000, "text": 100_000}


def _check_name(name: str, locale: str) -> str:
    import re

    if not re.match(NAME_PATTERN, name):
        raise invalid(["path", "name"], "a template name is 1-64 of a-z, 0-9, '_' and '-'")
    normal = locale.replace("_", "-").lower()
    if not re.match(LOCALE_PATTERN, normal):
        raise invalid(["path", "locale"], "a locale is a language tag such as 'en', 'zh', 'pt-br'")
    return normal


def template_view(name: str, locale: str, parts: dict[str, str], source: str) -> dict[str, Any]:
    return {
        "name": name,
        "locale": locale,
        "subject": parts["subject"],
        "html": parts["html"],
        "text": parts["text"],
        "source": source,  # override | default
        "marketing": templates.is_marketing(name),
    }


def put_template(
    session: Session, *, tenant_id: str, name: str, locale: str, body: Any, now: datetime
) -> dict[str, Any]:
    """Store the tenant's version of a template in one locale, after checking its syntax."""
    locale = _check_name(name, locale)
    parts = {"subject": body.subject, "html": body.html, "text": body.text}
    errors = templates.template_errors(parts)
    if errors:
        raise ValidationFailed("the template has errors", errors=errors)
    repository.put_template(
        session,
        {"tenant_id": tenant_id, "name": name, "locale": locale, **parts, "updated_at": now},
    )
    return template_view(name, locale, parts, "override")


def get_template(session: Session, *, tenant_id: str, name: str, locale: str) -> dict[str, Any]:
    """The tenant's version, else the shipped one; 404 when neither exists."""
    locale = _check_name(name, locale)
    row = repository.get_template(session, tenant_id, name, locale)
    if row is not None:
        parts = {"subject": row.subject, "html": row.html, "text": row.text}
        return template_view(name, locale, parts, "override")
    shipped = templates.shipped_source(name, locale)
    if shipped is None:
        raise NotFound(f"no template {name!r} in locale {locale!r}", code="template_not_found")
    return template_view(name, locale, shipped, "default")


def delete_template(session: Session, *, tenant_id: str, name: str, locale: str) -> None:
    """Remove the tenant's version (the shipped one applies again)."""
    locale = _check_name(name, locale)
    if not repository.delete_template(session, tenant_id, name, locale):
        raise NotFound(
            f"no tenant template {name!r} in locale {locale!r}", code="template_not_found"
        )


def list_templates(session: Session, *, tenant_id: str) -> list[dict[str, Any]]:
    limit = get_settings().page_size_max
    rows = repository.list_templates(session, tenant_id, limit)
    return [
        {
            "name": r.name,
            "locale": r.locale,
            "source": "override",
            "updated_at": r.updated_at.isoformat(),
        }
        for r in rows
    ]


@dataclass(frozen=True)
class Composed:
    message: EmailMessage | None  # None: not sent, see ``skipped``
    skipped: str | None
    locale: str | None
    to: str | None
    marketing: bool


def compose(
    session: Session,
    *,
    tenant_id: str,
    program: Program | None,
    member: Member,
    template: str,
    locale: str | None = None,
    to: str | None = None,
    marketing: bool | None = None,
    context: dict[str, Any] | None = None,
    now: datetime,
) -> Composed:
    """Render ``template`` for the member, or say why no mail goes out (no address, consent).

    Locale: the action's, else the member's, else the program's ``email.default_locale``,
    else English; per locale a tenant's override wins over the shipped template. A marketing
    mail needs marketing consent and carries a signed unsubscribe link (body and
    ``List-Unsubscribe`` header); any mail needs the member not to have refused e-mail.
    """
    is_marketing = templates.is_marketing(template) if marketing is None else marketing
    address = to or member.email
    if member.erased_at is not None:
        return Composed(None, "member_erased", None, None, is_marketing)
    if not address:
        return Composed(None, "no_email_address", None, None, is_marketing)
    if not member.email_consent:
        return Composed(None, "no_email_consent", None, address, is_marketing)
    if is_marketing and not member.marketing_consent:
        return Composed(None, "no_marketing_consent", None, address, is_marketing)
    default_locale = program.email.default_locale if program is not None else None
    chain = templates.locale_chain(locale, member.locale, default_locale)
    overrides = repository.templates_for(session, tenant_id, template, chain)
    source: dict[str, str] | None = None
    used = None
    for candidate in chain:
        row = overrides.get(candidate)
        if row is not None:
            source = {"subject": row.subject, "html": row.html, "text": row.text}
        else:
            source = templates.shipped_source(template, candidate)
        if source is not None:
            used = candidate
            break
    if source is None or used is None:
        raise RenderError(f"no template {template!r} in {', '.join(chain)}")
    headers: dict[str, str] = {}
    unsubscribe_url = None
    if is_marketing:
        unsubscribe_url = unsubscribe_link(
            session, tenant_id=tenant_id, member_id=member.member_id, now=now
        )
        headers["List-Unsubscribe"] = f"<{unsubscribe_url}>"
        headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    values = {
        **(context or {}),
        "member": member_values(member),
        "program": {"name": program.name, "currency": program.currency} if program else {},
        "unsubscribe_url": unsubscribe_url,
        "now": now.isoformat(),
    }
    rendered = templates.render(source, used, values)
    settings = get_settings()
    email = program.email if program is not None else None
    message = build_message(
        sender=(email.from_address if email and email.from_address else settings.mail_from),
        to=address,
        subject=rendered.subject,
        html=rendered.html,
        text=rendered.text,
        headers=headers,
        reply_to=email.reply_to if email else None,
    )
    return Composed(message, None, used, address, is_marketing)


def member_values(member: Member) -> dict[str, Any]:
    return {
        "id": member.member_id,
        "name": member.name,
        "email": member.email,
        "locale": member.locale,
        "tags": list(member.tags or []),
        "attributes": dict(member.attributes or {}),
        "birthdate": member.birthdate.isoformat() if member.birthdate else None,
        "enrolled_at": member.enrolled_at.isoformat() if member.enrolled_at else None,
    }


def unsubscribe_link(session: Session, *, tenant_id: str, member_id: str, now: datetime) -> str:
    secret = repository.signing_key(session, tenant_id, secrets.token_urlsafe(32), now)
    token = tokens.make_token(secret, tenant_id, member_id)
    return f"{get_settings().public_url.rstrip('/')}/unsubscribe/{quote(token)}"


def unsubscribe(session: Session, *, token: str, now: datetime) -> str:
    """Withdraw the marketing consent the token was made for; returns the member id.
    An unknown, forged or malformed token is a 404 (it reveals nothing)."""
    try:
        tenant_id, member_id, payload, signature = tokens.read_token(token)
    except tokens.BadToken as exc:
        raise NotFound("unknown unsubscribe link", code="unsubscribe_link_unknown") from exc
    secret = repository.existing_key(session, tenant_id)
    if secret is None or not tokens.verify(secret, payload, signature):
        raise NotFound("unknown unsubscribe link", code="unsubscribe_link_unknown")
    if not repository.withdraw_marketing(session, tenant_id, member_id, now):
        raise NotFound("unknown unsubscribe link", code="unsubscribe_link_unknown")
    return member_id
