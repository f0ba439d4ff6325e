from __future__ import annotations

from fastapi import APIRouter, Depends, Query
from starlette.responses import Response

from allegiance.auth import Caller, require
from allegiance.config import get_settings
from allegiance.db import read_session
from allegiance.kit.http import json_response
from allegiance.program.service import load_program
from allegiance.segment import service

router = APIRouter(prefix="/v1/segments", tags=["segments"])


@router.get("")
def list_segments(caller: Caller = Depends(require("admin"))) -> Response:
    with read_session() as session:
        program = load_program(session, tenant_id=caller.tenant_id)
        return json_response(
            service.list_segments(session, tenant_id=caller.tenant_id, program=program)
        )


@router.get("/{key}/members")
def segment_members(
    key: str,
    limit: int | None = Query(default=None, ge=1),
    cursor: str | None = None,
    caller: Caller = Depends(require("admin")),
) -> Response:
    settings = get_settings()
    size = min(limit or settings.page_size_default, settings.page_size_max)
    with read_session() as session:
        program = load_program(session, tenant_id=caller.tenant_id)
        return json_response(
            service.segment_members(
                session,
                tenant_id=caller.tenant_id,
                program=program,
                key=key,
                limit=size,
                cursor=cursor,
            )
        )
