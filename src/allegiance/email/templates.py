"""Templates: the shipped ones (package data, one folder per locale) and a tenant's overrides,
rendered in a sandbox (a template is merchant input: it must not reach Python objects)."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from importlib import resources
from typing import Any

from jinja2 import ChainableUndefined, FileSystemLoader, Template, TemplateError
from jinja2.sandbox import SandboxedEnvironment

SHIPPED_NAMES = (
    "welcome",
    "points_earned",
    "points_expiring",
    "tier_upgrade",
    "reward_issued",
    "birthday",
    "win_back",
    "referral_success",
)
SHIPPED_LOCALES = ("en", "zh", "ar")
# marketing mails need the member's marketing consent; the others are notices about the
# member's own account (transactional) and need only that e-mail was not refused. A tenant's
# own template names count as marketing unless the action says otherwise.
MARKETING = frozenset({"birthday", "win_back"})
TRANSACTIONAL = frozenset(SHIPPED_NAMES) - MARKETING
RTL_LANGUAGES = frozenset({"ar", "he", "fa", "ur"})
PARTS = ("subject", "html", "text")

_FOLDER = str(resources.files("allegiance.email") / "templates")


def _env(autoescape: bool) -> SandboxedEnvironment:
    return SandboxedEnvironment(
        loader=FileSystemLoader(_FOLDER),
        autoescape=autoescape,
        undefined=ChainableUndefined,
        keep_trailing_newline=False,
    )


_html = _env(True)
_plain = _env(False)


_templates: dict[tuple[bool, str], Template] = {}
_templates_lock = threading.Lock()


def _compiled(source: str, *, html: bool) -> Template:
    """Compiling costs far more than rendering: keep compiled templates by their source."""
    key = (html, source)
    with _templates_lock:
        found = _templates.get(key)
    if found is None:
        found = (_html if html else _plain).from_string(source)
        with _templates_lock:
            if len(_templates) > 2_000:
                _templates.clear()
            _templates[key] = found
    return found


class RenderError(ValueError):
    pass


@dataclass(frozen=True)
class Rendered:
    subject: str
    html: str
    text: str
    locale: str


def is_marketing(name: str) -> bool:
    return name not in TRANSACTIONAL


def language(locale: str) -> str:
    return locale.replace("_", "-").split("-")[0].lower()


def locale_chain(*candidates: str | None) -> list[str]:
    """``zh-CN`` tries ``zh-cn`` then ``zh``; then the next candidate; ``en`` last."""
    chain: list[str] = []
    for candidate in (*candidates, "en"):
        if not candidate:
            continue
        full = candidate.replace("_", "-").lower()
        for value in (full, language(full)):
            if value not in chain:
                chain.append(value)
    return chain


def shipped_source(name: str, locale: str) -> dict[str, str] | None:
    if name not in SHIPPED_NAMES or locale not in SHIPPED_LOCALES:
        return None
    folder = resources.files("allegiance.email") / "templates" / locale
    return {
        "subject": (folder / f"{name}.subject").read_text("utf-8").strip(),
        "html": (folder / f"{name}.html").read_text("utf-8"),
        "text": (folder / f"{name}.txt").read_text("utf-8"),
    }


def render(source: dict[str, str], locale: str, context: dict[str, Any]) -> Rendered:
    """Render the three parts; ``lang`` and ``dir`` (rtl for Arabic, Hebrew...) are added."""
    lang = language(locale)
    values = {**context, "lang": lang, "dir": "rtl" if lang in RTL_LANGUAGES else "ltr"}
    try:
        subject = _compiled(source["subject"], html=False).render(values)
        html = _compiled(source["html"], html=True).render(values)
        text = _compiled(source["text"], html=False).render(values)
    except Exception as exc:  # merchant templates fail in many ways (sandbox, types...)
        raise RenderError(f"template could not be rendered: {exc}") from exc
    # a subject is one line: header injection is not possible through a template
    return Rendered(" ".join(subject.split()), html, text, locale)


def template_errors(parts: dict[str, str]) -> list[dict[str, Any]]:
    """Syntax errors of a template's parts, each located (``["body", "html"]``, line)."""
    errors: list[dict[str, Any]] = []
    for part in PARTS:
        env = _html if part == "html" else _plain
        try:
            env.parse(parts[part])
        except TemplateError as exc:
            line = getattr(exc, "lineno", None)
            where = f"line {line}: " if line else ""
            errors.append({"loc": ["body", part], "msg": f"template syntax error: {where}{exc}"})
    if not errors:
        try:
            render(parts, "en", sample_context())
        except RenderError as exc:
            errors.append({"loc": ["body"], "msg": str(exc)})
    return errors


def sample_context() -> dict[str, Any]:
    return {
        "member": {"id": "m-1", "name": "Ada", "email": "ada@example.com", "locale": "en"},
        "program": {"name": "Rewards", "currency": "USD"},
        "event": {"id": "evt_1", "type": "order.completed", "data": {}},
        "data": {"amount": 10, "points": 10, "expires_at": "2026-01-31T00:00:00+00:00"},
        "coupon": {"code": "CODE", "expires_at": "2026-01-31T00:00:00+00:00"},
        "unsubscribe_url": "https://example.com/unsubscribe/x",
        "now": "2026-01-01T00:00:00+00:00",
    }
