from __future__ import annotations

from datetime import date

from fastapi import APIRouter, Depends, Query
from starlette.responses import Response

from allegiance.analytics import settlement
from allegiance.auth import Caller, require
from allegiance.db import read_session
from allegiance.kit.http import json_response
from allegiance.program.service import require_program

router = APIRouter(prefix="/v1/analytics", tags=["analytics"])


@router.get("/partner-settlement")
def get_partner_settlement(
    date_from: date = Query(alias="from"),
    date_to: date = Query(alias="to"),
    caller: Caller = Depends(require("admin", "partner")),
) -> Response:
    with read_session() as session:
        program = require_program(session, tenant_id=caller.tenant_id)
        return json_response(
            settlement.partner_settlement(
                session,
                tenant_id=caller.tenant_id,
                program=program.program,
                date_from=date_from,
                date_to=date_to,
                partner=caller.partner,
            )
        )
