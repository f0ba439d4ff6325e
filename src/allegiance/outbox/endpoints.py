from __future__ import annotations

from fastapi import APIRouter, Depends
from starlette.responses import Response

from allegiance.auth import Caller, require
from allegiance.db import read_session
from allegiance.kit.endpoint import page_params
from allegiance.kit.http import json_response
from allegiance.kit.pagination import Page, encode_cursor
from allegiance.outbox import service

router = APIRouter(prefix="/v1/domain-events", tags=["domain events"])


@router.get("")
def list_domain_events(
    type: str | None = None,
    paging: Page = Depends(page_params),
    caller: Caller = Depends(require("admin")),
) -> Response:
    # the same ?limit=&cursor= as every list; this feed runs forward from the cursor's id
    size, after = paging.size, paging.before
    with read_session() as session:
        rows = service.list_events(
            session, tenant_id=caller.tenant_id, type_=type, limit=size + 1, after_id=after
        )
    page = rows[:size]
    last = page[-1].id if page else after
    return json_response(
        {
            "data": [service.envelope(e) for e in page],
            # always a cursor: polling resumes after the last event seen (or where it was)
            "next_cursor": encode_cursor(last) if last is not None else None,
            "has_more": len(rows) > size,
        }
    )
