from __future__ import annotations

from fastapi import APIRouter, Depends, Query
from starlette.responses import Response

from allegiance.auth import Caller, require
from allegiance.config import get_settings
from allegiance.db import read_session
from allegiance.errors import invalid
from allegiance.kit.http import json_response
from allegiance.kit.pagination import BadCursor, decode_cursor, encode_cursor
from allegiance.outbox import service

router = APIRouter(prefix="/v1/domain-events", tags=["domain events"])


@router.get("")
def list_domain_events(
    type: str | None = None,
    limit: int | None = Query(default=None, ge=1),
    cursor: str | None = None,
    caller: Caller = Depends(require("admin")),
) -> Response:
    settings = get_settings()
    size = min(limit or settings.page_size_default, settings.page_size_max)
    after = None
    if cursor:
        try:
            after = int(decode_cursor(cursor))
        except (BadCursor, TypeError, ValueError) as exc:
            raise invalid(["query", "cursor"], "cursor is not one this API returned") from exc
    with read_session() as session:
        rows = service.list_events(
            session, tenant_id=caller.tenant_id, type_=type, limit=size + 1, after_id=after
        )
    page = rows[:size]
    return json_response(
        {
            "data": [service.envelope(e) for e in page],
            # always a cursor: polling resumes after the last event seen (or where it was)
            "next_cursor": encode_cursor(page[-1].id) if page else cursor,
            "has_more": len(rows) > size,
        }
    )
