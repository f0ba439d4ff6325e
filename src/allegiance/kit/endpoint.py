"""Helpers endpoints share: request hashing and idempotent responses."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import orjson
from fastapi import Query, Request
from sqlalchemy.orm import Session
from starlette.responses import Response

from allegiance.db import get_engine
from allegiance.errors import invalid
from allegiance.kit.http import json_response, problem_response
from allegiance.kit.idempotency import Outcome, request_hash, run_idempotent
from allegiance.kit.pagination import BadCursor, Page, decode_cursor


async def body_digest(request: Request) -> str:
    """Hash of the JSON body (as parsed, sorted keys); FastAPI validates the body itself."""
    raw = await request.body()
    try:
        # the path is part of the request: the same refund id and body sent for another
        # order is a different request
        return request_hash({"path": request.url.path, "body": orjson.loads(raw or b"null")})
    except orjson.JSONDecodeError:
        return ""


def client_id(body_id: str, request: Request, *, required_in_body: bool = False) -> str:
    """The create's client id: ``id`` in the body, or the ``Idempotency-Key`` header."""
    header = (request.headers.get("idempotency-key") or "").strip()
    if body_id and header and body_id != header:
        raise invalid(["header", "Idempotency-Key"], "differs from the id in the body")
    if required_in_body and not body_id:
        raise invalid(["body", "id"], "the order's own id is required in the body")
    found = body_id or header
    if not found:
        raise invalid(["body", "id"], "send a client id: 'id' in the body or an Idempotency-Key")
    if len(found) > 255:
        raise invalid(["header", "Idempotency-Key"], "at most 255 characters")
    return found


def idempotency_kind(kind: str, partner: str | None) -> str:
    """Idempotency records of a partner key are its own: another partner's ids never replay."""
    if not partner:
        return kind
    # the kind column is short: a digest of the partner key keeps it within bounds
    return f"{kind}@{hashlib.sha256(partner.encode()).hexdigest()[:16]}"


def respond(outcome: Outcome) -> Response:
    headers = {"Idempotent-Replayed": "true"} if outcome.replayed else None
    if outcome.status >= 400:
        return problem_response(outcome.body, outcome.status, headers)
    return json_response(outcome.body, outcome.status, headers)


def idempotent(
    *,
    tenant_id: str,
    kind: str,
    key: str,
    digest: str,
    now: Any,
    action: Callable[[Session], tuple[int, dict[str, Any]]],
) -> Response:
    outcome = run_idempotent(
        get_engine(), tenant_id=tenant_id, kind=kind, key=key, digest=digest, now=now, action=action
    )
    return respond(outcome)


def page_params(limit: int | None = Query(default=None, ge=1), cursor: str | None = None) -> Page:
    """FastAPI dependency for id-ordered lists."""
    from allegiance.config import get_settings

    settings = get_settings()
    size = min(limit or settings.page_size_default, settings.page_size_max)
    before = None
    if cursor:
        try:
            before = int(decode_cursor(cursor))
        except (BadCursor, TypeError, ValueError) as exc:
            raise invalid(["query", "cursor"], "cursor is not one this API returned") from exc
    return Page(size=size, before=before)
