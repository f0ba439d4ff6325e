from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends, Request
from sqlalchemy.orm import Session
from starlette.responses import Response

from allegiance.auth import Caller, require
from allegiance.db import read_session
from allegiance.kit.endpoint import body_digest, client_id, idempotency_kind, idempotent
from allegiance.kit.http import json_response
from allegiance.order import service
from allegiance.order.schemas import CancelCreate, Cart, EventCreate, OrderCreate, RefundCreate
from allegiance.program.service import load_program, require_program

router = APIRouter(prefix="/v1", tags=["orders"])


@router.post("/orders", status_code=201)
def post_order(
    body: OrderCreate,
    request: Request,
    digest: str = Depends(body_digest),
    caller: Caller = Depends(require("ingest", "partner")),
) -> Response:
    client_id(body.id, request, required_in_body=True)

    def action(session: Session) -> tuple[int, dict[str, Any]]:
        program = require_program(session, tenant_id=caller.tenant_id)
        prepared = service.prepare_order(
            program, body, order_id=body.id, now=caller.now, partner=caller.partner
        )
        return 201, service.create_order(
            session, tenant_id=caller.tenant_id, program=program, order=prepared, now=caller.now
        )

    return idempotent(
        tenant_id=caller.tenant_id,
        kind=_kind("order", caller),
        key=body.id,
        digest=digest,
        now=caller.now,
        action=action,
    )


@router.get("/orders/{order_id}")
def get_order(order_id: str, caller: Caller = Depends(require("ingest", "partner"))) -> Response:
    with read_session() as session:
        program = load_program(session, tenant_id=caller.tenant_id)
        return json_response(
            service.get_order(
                session,
                tenant_id=caller.tenant_id,
                program=program,
                order_id=order_id,
                partner=caller.partner,
            )
        )


def _kind(kind: str, caller: Caller) -> str:
    return idempotency_kind(kind, caller.partner)


@router.post("/orders/{order_id}/refunds", status_code=201)
def post_refund(
    order_id: str,
    body: RefundCreate,
    request: Request,
    digest: str = Depends(body_digest),
    caller: Caller = Depends(require("ingest", "partner")),
) -> Response:
    body = body.model_copy(update={"id": client_id(body.id, request)})

    def action(session: Session) -> tuple[int, dict[str, Any]]:
        program = require_program(session, tenant_id=caller.tenant_id)
        return 201, service.refund_order(
            session,
            tenant_id=caller.tenant_id,
            program=program,
            order_id=order_id,
            refund=body,
            now=caller.now,
            partner=caller.partner,
        )

    return idempotent(
        tenant_id=caller.tenant_id,
        kind=_kind("refund", caller),
        key=body.id,
        digest=digest,
        now=caller.now,
        action=action,
    )


@router.post("/orders/{order_id}/cancel", status_code=201)
def post_cancel(
    order_id: str,
    body: CancelCreate | None = Body(default=None),
    caller: Caller = Depends(require("ingest", "partner")),
) -> Response:
    reason = body.reason if body else None

    def action(session: Session) -> tuple[int, dict[str, Any]]:
        program = require_program(session, tenant_id=caller.tenant_id)
        return 201, service.cancel_order(
            session,
            tenant_id=caller.tenant_id,
            program=program,
            order_id=order_id,
            reason=reason,
            now=caller.now,
            partner=caller.partner,
        )

    # one cancellation per order: a repeated cancel replays the first answer
    return idempotent(
        tenant_id=caller.tenant_id,
        kind=_kind("cancel", caller),
        key=order_id,
        digest="cancel",
        now=caller.now,
        action=action,
    )


@router.post("/events", status_code=201)
def post_event(
    body: EventCreate,
    request: Request,
    digest: str = Depends(body_digest),
    caller: Caller = Depends(require("ingest")),
) -> Response:
    body = body.model_copy(update={"id": client_id(body.id, request)})

    def action(session: Session) -> tuple[int, dict[str, Any]]:
        program = require_program(session, tenant_id=caller.tenant_id)
        return 201, service.record_event(
            session, tenant_id=caller.tenant_id, program=program, event=body, now=caller.now
        )

    return idempotent(
        tenant_id=caller.tenant_id,
        kind="event",
        key=body.id,
        digest=digest,
        now=caller.now,
        action=action,
    )


@router.post("/evaluate")
def post_evaluate(
    body: Cart, caller: Caller = Depends(require("storefront", "ingest", "partner"))
) -> Response:
    with read_session() as session:
        program = require_program(session, tenant_id=caller.tenant_id)
        prepared = service.prepare_order(
            program, body, order_id=body.id, now=caller.now, partner=caller.partner
        )
        return json_response(
            service.evaluate_cart(
                session, tenant_id=caller.tenant_id, program=program, cart=prepared, now=caller.now
            )
        )
