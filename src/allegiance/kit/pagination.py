"""Opaque cursors for ``?limit=&cursor=`` lists (the FastAPI dependency that reads them is
``kit.endpoint.page_params``; services use this module without loading the web framework)."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any


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
