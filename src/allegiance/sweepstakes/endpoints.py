"""Sweepstakes: the public state and draw data, bought entries, the admin draw."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from sqlalchemy.orm import Session
from starlette.responses import Response

from allegiance.auth import Caller, require
from allegiance.db import read_session, write_session
from allegiance.errors import invalid
from allegiance.kit.endpoint import body_digest, client_id, idempotent
from allegiance.kit.http import json_response
from allegiance.program.service import require_program
from allegiance.sweepstakes import service
from allegiance.sweepstakes.schemas import EntryPurchase

router = APIRouter(prefix="/v1", tags=["sweepstakes"])


@router.get("/sweepstakes/{key}")
def get_sweepstake(key: str, caller: Caller = Depends(require("storefront"))) -> Response:
    # the seed is made on first need once entries open: a write
    with write_session() as session:
        program = require_program(session, tenant_id=caller.tenant_id)
        view = service.sweepstake_view(
            session, tenant_id=caller.tenant_id, program=program, key=key, now=caller.now
        )
    return json_response(view)


@router.post("/sweepstakes/{key}/entries", status_code=201)
def buy_entries(
    key: str,
    body: EntryPurchase,
    request: Request,
    digest: str = Depends(body_digest),
    caller: Caller = Depends(require("storefront")),
) -> Response:
    purchase_id = client_id(body.id, request)
    if len(purchase_id) > 180:
        raise invalid(["body", "id"], "at most 180 characters")

    def action(session: Session) -> tuple[int, dict[str, Any]]:
        program = require_program(session, tenant_id=caller.tenant_id)
        return 201, service.buy_entries(
            session,
            tenant_id=caller.tenant_id,
            program=program,
            key=key,
            purchase_id=purchase_id,
            member_id=body.member_id,
            count=body.count,
            now=caller.now,
        )

    return idempotent(
        tenant_id=caller.tenant_id,
        kind="sweepstakes_entry",
        key=f"{key}/{purchase_id}",
        digest=digest,
        now=caller.now,
        action=action,
    )


@router.post("/sweepstakes/{key}/draw")
def draw(key: str, caller: Caller = Depends(require("admin"))) -> Response:
    with write_session() as session:
        program = require_program(session, tenant_id=caller.tenant_id)
        result = service.run_draw(
            session, tenant_id=caller.tenant_id, program=program, key=key, now=caller.now
        )
    return json_response(result)


@router.get("/sweepstakes/{key}/draw")
def published_draw(key: str, caller: Caller = Depends(require("storefront"))) -> Response:
    with read_session() as session:
        program = require_program(session, tenant_id=caller.tenant_id)
        return json_response(
            service.published(session, tenant_id=caller.tenant_id, program=program, key=key)
        )
