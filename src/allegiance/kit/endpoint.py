"""Helpers endpoints share: request hashing and idempotent responses."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from fastapi import Request
from sqlalchemy.orm import Session
from starlette.responses import Response

from allegiance.db import get_engine
from allegiance.kit.http import json_response, problem_response
from allegiance.kit.idempotency import Outcome, request_hash, run_idempotent


async def body_digest(request: Request) -> str:
    """Hash of the JSON body (as parsed, sorted keys); FastAPI validates the body itself."""
    raw = await request.body()
    try:
        # the path is part of the request: the same refund id and body sent for another
        # order is a different request
        return request_hash({"path": request.url.path, "body": orjson.loads(raw or b"null")})
    except orjson.JSONDecodeError:
        return ""


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
