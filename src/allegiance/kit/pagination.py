"""Opaque cursors for ``?limit=&cursor=`` lists."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from fastapi import Query


class BadCursor(ValueError):
    pass


def encode_cursor(value: Any) -> str:
    raw = json.dumps(value, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> Any:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        return json.loads(base64.urlsafe_b64decode(padded.encode()))
    except Exception as exc:
        raise BadCursor("cursor is not one this API returned") from exc


@dataclass(frozen=True)
class Page:
    """``?limit=&cursor=`` of a list: the page size (bounded by settings) and the id the
    previous page ended at (rows before it come next)."""

    size: int
    before: int | None


def page_params(limit: int | None = Query(default=None, ge=1), cursor: str | None = None) -> Page:
    """FastAPI dependency for id-ordered lists."""
    from allegiance.config import get_settings
    from allegiance.errors import invalid

    settings = get_settings()
    size = min(limit or settings.page_size_default, settings.page_size_max)
    before = None
    if cursor:
        try:
            before = int(decode_cursor(cursor))
        except (BadCursor, TypeError, ValueError) as exc:
            raise invalid(["query", "cursor"], "cursor is not one this API returned") from exc
    return Page(size=size, before=before)
