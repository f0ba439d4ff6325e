from __future__ import annotations

from decimal import Decimal

from fastapi import APIRouter, Depends, Query
from starlette.responses import Response

from allegiance.auth import Caller, require
from allegiance.config import get_settings
from allegiance.db import get_engine, read_session, write_session
from allegiance.insight import service, tasks
from allegiance.insight.schemas import ClvFit
from allegiance.kit.http import json_response
from allegiance.program.service import load_program, require_program

router = APIRouter(tags=["insights"])


@router.post("/v1/analytics/clv/fit")
def post_clv_fit(body: ClvFit, caller: Caller = Depends(require("admin"))) -> Response:
    with write_session() as session:
        program = require_program(session, tenant_id=caller.tenant_id)
        fitted = service.fit_clv(
            session, tenant_id=caller.tenant_id, program=program, body=body, now=caller.now
        )
    # members are rescored with the new model before answering (bounded batches)
    fitted["summary"]["members_scored"] = tasks.score_members(
        get_engine(), caller.tenant_id, caller.now, force=True
    )
    return json_response(fitted)


@router.get("/v1/analytics/churn/at-risk")
def get_at_risk(
    min_value: Decimal | None = Query(default=None),
    limit: int | None = Query(default=None, ge=1),
    cursor: str | None = None,
    caller: Caller = Depends(require("admin")),
) -> Response:
    settings = get_settings()
    size = min(limit or settings.page_size_default, settings.page_size_max)
    with read_session() as session:
        return json_response(
            service.at_risk(
                session,
                tenant_id=caller.tenant_id,
                program=load_program(session, tenant_id=caller.tenant_id),
                min_value=min_value,
                limit=size,
                cursor=cursor,
            )
        )


@router.get("/v1/members/{member_id}/insights")
def get_member_insights(member_id: str, caller: Caller = Depends(require("admin"))) -> Response:
    with read_session() as session:
        return json_response(
            service.member_insights(
                session,
                tenant_id=caller.tenant_id,
                program=load_program(session, tenant_id=caller.tenant_id),
                member_id=member_id,
                now=caller.now,
            )
        )
