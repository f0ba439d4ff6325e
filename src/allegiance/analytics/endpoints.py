from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from fastapi import APIRouter, Depends, Query
from sqlalchemy.orm import Session
from starlette.responses import Response

from allegiance.analytics import kpis, settlement
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


@dataclass(frozen=True)
class Filters:
    """The member and order filters every KPI read takes (docs/analytics.md#filters)."""

    brand: str | None = Query(default=None, max_length=100)
    tier: str | None = Query(default=None, max_length=64)
    segment: str | None = Query(default=None, max_length=64)
    wallet: str | None = Query(default=None, max_length=64)


def _scope(session: Session, caller: Caller, filters: Filters) -> kpis.Scope:
    program = require_program(session, tenant_id=caller.tenant_id).program
    return kpis.resolve_scope(
        program,
        tenant_id=caller.tenant_id,
        brand=filters.brand,
        tier=filters.tier,
        wallet=filters.wallet,
        segment=filters.segment,
    )


@router.get("/kpis")
def get_kpis(
    date_from: date = Query(alias="from"),
    date_to: date = Query(alias="to"),
    filters: Filters = Depends(),
    caller: Caller = Depends(require("admin")),
) -> Response:
    with read_session() as session:
        scope = _scope(session, caller, filters)
        return json_response(kpis.kpis(session, scope=scope, date_from=date_from, date_to=date_to))


@router.get("/series")
def get_series(
    metric: str = Query(max_length=64),
    date_from: date = Query(alias="from"),
    date_to: date = Query(alias="to"),
    interval: kpis.Interval = Query(default="day"),
    filters: Filters = Depends(),
    caller: Caller = Depends(require("admin")),
) -> Response:
    with read_session() as session:
        scope = _scope(session, caller, filters)
        return json_response(
            kpis.series(
                session,
                scope=scope,
                metric=metric,
                interval=interval,
                date_from=date_from,
                date_to=date_to,
            )
        )


@router.get("/cohorts")
def get_cohorts(
    date_from: date = Query(alias="from"),
    date_to: date = Query(alias="to"),
    interval: kpis.Interval = Query(default="month"),
    filters: Filters = Depends(),
    caller: Caller = Depends(require("admin")),
) -> Response:
    with read_session() as session:
        scope = _scope(session, caller, filters)
        return json_response(
            kpis.cohorts(
                session, scope=scope, date_from=date_from, date_to=date_to, interval=interval
            )
        )
