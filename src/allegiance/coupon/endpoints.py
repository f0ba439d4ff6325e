from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from sqlalchemy.orm import Session
from starlette.responses import Response, StreamingResponse

from allegiance.auth import Caller, require
from allegiance.coupon import service
from allegiance.coupon.schemas import BatchCreate, ReleaseRequest, UseRequest, ValidateRequest
from allegiance.db import read_session, write_session
from allegiance.kit.endpoint import body_digest, idempotent
from allegiance.kit.http import json_response
from allegiance.order.service import prepare_order
from allegiance.program.service import require_program

router = APIRouter(prefix="/v1", tags=["coupons"])


@router.post("/coupons/validate")
def post_validate(
    body: ValidateRequest, caller: Caller = Depends(require("storefront", "ingest"))
) -> Response:
    with read_session() as session:
        program = require_program(session, tenant_id=caller.tenant_id)
        cart = prepare_order(
            program, body.cart, order_id=body.cart.id, now=caller.now, loc_prefix="cart"
        )
        return json_response(
            service.validate_coupon(
                session,
                tenant_id=caller.tenant_id,
                program=program,
                code=body.code,
                member_id=body.member_id,
                cart=cart,
            )
        )


@router.get("/coupons/{code}")
def get_coupon(code: str, caller: Caller = Depends(require("storefront", "ingest"))) -> Response:
    with read_session() as session:
        program = require_program(session, tenant_id=caller.tenant_id)
        return json_response(
            service.get_coupon(session, tenant_id=caller.tenant_id, program=program, code=code)
        )


@router.post("/coupons/{code}/redeem")
def post_redeem(
    code: str, body: UseRequest, caller: Caller = Depends(require("ingest"))
) -> Response:
    with write_session() as session:
        program = require_program(session, tenant_id=caller.tenant_id)
        result = service.redeem_coupon(
            session,
            tenant_id=caller.tenant_id,
            program=program,
            code=code,
            use=body,
            now=caller.now,
        )
    return json_response(result)


@router.post("/coupons/{code}/release")
def post_release(
    code: str, body: ReleaseRequest, caller: Caller = Depends(require("ingest"))
) -> Response:
    with write_session() as session:
        program = require_program(session, tenant_id=caller.tenant_id)
        result = service.release_coupon(
            session,
            tenant_id=caller.tenant_id,
            program=program,
            code=code,
            order_id=body.order_id,
            now=caller.now,
        )
    return json_response(result)


@router.post("/coupon-batches", status_code=201)
def post_batch(
    body: BatchCreate,
    digest: str = Depends(body_digest),
    caller: Caller = Depends(require("admin")),
) -> Response:
    def action(session: Session) -> tuple[int, dict[str, Any]]:
        program = require_program(session, tenant_id=caller.tenant_id)
        return 201, service.create_batch(
            session, tenant_id=caller.tenant_id, program=program, batch=body, now=caller.now
        )

    return idempotent(
        tenant_id=caller.tenant_id,
        kind="coupon_batch",
        key=body.id,
        digest=digest,
        now=caller.now,
        action=action,
    )


@router.get("/coupon-batches/{batch_id}/codes.csv")
def get_batch_codes(batch_id: str, caller: Caller = Depends(require("admin"))) -> Response:
    def stream() -> Any:
        with read_session() as session:
            yield from service.batch_csv(session, tenant_id=caller.tenant_id, batch_id=batch_id)

    # fail before streaming when the batch is unknown
    with read_session() as session:
        service.batch_csv(session, tenant_id=caller.tenant_id, batch_id=batch_id)
    return StreamingResponse(
        stream(),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{batch_id}.csv"'},
    )
