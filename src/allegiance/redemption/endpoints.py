from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy.orm import Session
from starlette.responses import Response

from allegiance.auth import Caller, require
from allegiance.config import get_settings
from allegiance.db import read_session, write_session
from allegiance.kit.endpoint import body_digest, client_id, idempotency_kind, idempotent
from allegiance.kit.http import json_response
from allegiance.program.service import require_program
from allegiance.redemption import service
from allegiance.redemption.schemas import Decision, FulfilmentUpdate, RedemptionCreate

router = APIRouter(tags=["redemptions"])


@router.post("/v1/members/{member_id}/redemptions", status_code=201)
def post_redemption(
    member_id: str,
    body: RedemptionCreate,
    request: Request,
    digest: str = Depends(body_digest),
    caller: Caller = Depends(require("storefront", "partner")),
) -> Response:
    body = body.model_copy(update={"id": client_id(body.id, request)})

    def action(session: Session) -> tuple[int, dict[str, Any]]:
        program = require_program(session, tenant_id=caller.tenant_id)
        return 201, service.redeem(
            session,
            tenant_id=caller.tenant_id,
            program=program,
            member_id=member_id,
            body=body,
            now=caller.now,
            partner=caller.partner,
        )

    return idempotent(
        tenant_id=caller.tenant_id,
        kind=idempotency_kind("redemption", caller.partner),
        key=body.id,
        digest=digest,
        now=caller.now,
        action=action,
    )


@router.get("/v1/redemptions/{redemption_id}")
def get_redemption(
    redemption_id: str, caller: Caller = Depends(require("storefront", "partner"))
) -> Response:
    with read_session() as session:
        program = require_program(session, tenant_id=caller.tenant_id)
        return json_response(
            service.get_redemption(
                session,
                tenant_id=caller.tenant_id,
                program=program,
                redemption_id=redemption_id,
                partner=caller.partner,
            )
        )


@router.post("/v1/redemptions/{redemption_id}/approve")
def approve(
    redemption_id: str, body: Decision, caller: Caller = Depends(require("storefront"))
) -> Response:
    return _decide(redemption_id, body, caller, approve=True)


@router.post("/v1/redemptions/{redemption_id}/reject")
def reject(
    redemption_id: str, body: Decision, caller: Caller = Depends(require("storefront"))
) -> Response:
    return _decide(redemption_id, body, caller, approve=False)


@router.patch("/v1/redemptions/{redemption_id}")
def patch_redemption(
    redemption_id: str, body: FulfilmentUpdate, caller: Caller = Depends(require("admin"))
) -> Response:
    with write_session() as session:
        program = require_program(session, tenant_id=caller.tenant_id)
        result = service.update_fulfilment(
            session,
            tenant_id=caller.tenant_id,
            program=program,
            redemption_id=redemption_id,
            update=body,
            now=caller.now,
        )
    return json_response(result)


@router.get("/v1/members/{member_id}/rewards")
def member_rewards(member_id: str, caller: Caller = Depends(require("storefront"))) -> Response:
    with read_session() as session:
        program = require_program(session, tenant_id=caller.tenant_id)
        return json_response(
            service.member_rewards(
                session,
                tenant_id=caller.tenant_id,
                program=program,
                member_id=member_id,
                now=caller.now,
            )
        )


@router.get("/v1/accounts/{account_id}/redemptions")
def account_redemptions(
    account_id: str,
    status: Literal["awaiting_approval", "completed", "rejected", "expired"] | None = None,
    limit: int | None = Query(default=None, ge=1),
    caller: Caller = Depends(require("storefront")),
) -> Response:
    settings = get_settings()
    size = min(limit or settings.page_size_default, settings.page_size_max)
    with read_session() as session:
        program = require_program(session, tenant_id=caller.tenant_id)
        return json_response(
            service.account_redemptions(
                session,
                tenant_id=caller.tenant_id,
                program=program,
                account_id=account_id,
                status=status,
                limit=size,
            )
        )


def _decide(redemption_id: str, body: Decision, caller: Caller, *, approve: bool) -> Response:
    with write_session() as session:
        program = require_program(session, tenant_id=caller.tenant_id)
        result = service.decide(
            session,
            tenant_id=caller.tenant_id,
            program=program,
            redemption_id=redemption_id,
            approve=approve,
            approver_id=body.approver_id,
            note=body.note,
            approver_required=caller.scope != "admin",
            now=caller.now,
        )
    return json_response(result)
