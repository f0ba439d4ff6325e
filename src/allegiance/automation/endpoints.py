from __future__ import annotations

from fastapi import APIRouter, Depends
from starlette.responses import Response

from allegiance.auth import Caller, require
from allegiance.automation import service
from allegiance.db import read_session
from allegiance.errors import invalid
from allegiance.kit.endpoint import page_params
from allegiance.kit.http import json_response
from allegiance.kit.pagination import Page, encode_cursor

router = APIRouter(prefix="/v1/automation-runs", tags=["automations"])

STATUSES = ("pending", "done", "skipped", "failed")


@router.get("")
def list_runs(
    automation: str | None = None,
    member_id: str | None = None,
    status: str | None = None,
    paging: Page = Depends(page_params),
    caller: Caller = Depends(require("admin")),
) -> Response:
    """Runs, newest first, filtered by automation key, member and status."""
    if status is not None and status not in STATUSES:
        raise invalid(["query", "status"], f"one of {', '.join(STATUSES)}")
    with read_session() as session:
        rows = service.list_runs(
            session,
            tenant_id=caller.tenant_id,
            automation_key=automation,
            member_id=member_id,
            status=status,
            before_id=paging.before,
            limit=paging.size + 1,
        )
    page = rows[: paging.size]
    return json_response(
        {
            "data": [service.run_view(r) for r in page],
            "next_cursor": encode_cursor(page[-1].id) if len(rows) > paging.size else None,
        }
    )
