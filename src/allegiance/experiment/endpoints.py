from __future__ import annotations

from datetime import date
from decimal import Decimal

from fastapi import APIRouter, Depends, Query
from starlette.responses import Response

from allegiance.auth import Caller, require
from allegiance.db import read_session
from allegiance.experiment import service
from allegiance.kit.http import json_response
from allegiance.program.service import require_program

router = APIRouter(prefix="/v1/experiments", tags=["experiments"])


@router.get("")
def get_experiments(caller: Caller = Depends(require("admin"))) -> Response:
    with read_session() as session:
        program = require_program(session, tenant_id=caller.tenant_id)
    return json_response(service.list_experiments(program.program, now=caller.now))


@router.get("/{key}/results")
def get_experiment_results(
    key: str,
    date_from: date | None = Query(default=None, alias="from"),
    date_to: date | None = Query(default=None, alias="to"),
    gross_margin: Decimal | None = Query(default=None),
    caller: Caller = Depends(require("admin")),
) -> Response:
    with read_session() as session:
        program = require_program(session, tenant_id=caller.tenant_id)
        return json_response(
            service.experiment_results(
                session,
                tenant_id=caller.tenant_id,
                program=program,
                key=key,
                date_from=date_from,
                date_to=date_to,
                now=caller.now,
                gross_margin=gross_margin,
            )
        )
