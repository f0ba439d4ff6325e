from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from sqlalchemy.orm import Session
from starlette.responses import Response

from allegiance.auth import Caller, require
from allegiance.db import read_session, write_session
from allegiance.kit.endpoint import body_digest, client_id, idempotent, page_params
from allegiance.kit.http import json_response
from allegiance.kit.pagination import Page, encode_cursor
from allegiance.ledger import service as ledger
from allegiance.member import service
from allegiance.member.schemas import MemberUpsert
from allegiance.order.schemas import AdjustmentCreate
from allegiance.program.service import load_program

router = APIRouter(prefix="/v1/members", tags=["members"])


@router.put("/{member_id}")
def put_member(
    member_id: str, body: MemberUpsert, caller: Caller = Depends(require("ingest"))
) -> Response:
    with write_session() as session:
        _, created = service.upsert_member(
            session, tenant_id=caller.tenant_id, member_id=member_id, data=body, now=caller.now
        )
    with read_session() as session:
        view = service.member_view(
            session, tenant_id=caller.tenant_id, member_id=member_id, now=caller.now
        )
    return json_response(view, 201 if created else 200)


@router.get("/{member_id}")
def get_member(
    member_id: str, caller: Caller = Depends(require("storefront", "partner"))
) -> Response:
    with read_session() as session:
        return json_response(
            service.member_view(
                session, tenant_id=caller.tenant_id, member_id=member_id, now=caller.now
            )
        )


@router.delete("/{member_id}", status_code=204)
def delete_member(member_id: str, caller: Caller = Depends(require("admin"))) -> Response:
    with write_session() as session:
        service.erase_member(
            session, tenant_id=caller.tenant_id, member_id=member_id, now=caller.now
        )
    return Response(status_code=204)


@router.get("/{member_id}/export")
def export_member(member_id: str, caller: Caller = Depends(require("admin"))) -> Response:
    with read_session() as session:
        return json_response(
            service.export_member(session, tenant_id=caller.tenant_id, member_id=member_id)
        )


@router.get("/{member_id}/ledger")
def member_ledger(
    member_id: str,
    paging: Page = Depends(page_params),
    caller: Caller = Depends(require("storefront")),
) -> Response:
    size, before = paging.size, paging.before
    with read_session() as session:
        service.get_member(session, tenant_id=caller.tenant_id, member_id=member_id)
        compiled = load_program(session, tenant_id=caller.tenant_id)
        precision = (
            {k: w.precision for k, w in compiled.program.wallets.items()} if compiled else {}
        )
        accounts = ledger.system_account_ids(session, caller.tenant_id)
        rows = ledger.ledger_page(
            session,
            tenant_id=caller.tenant_id,
            member_id=member_id,
            before_id=before,
            limit=size + 1,
        )
    page = rows[:size]
    return json_response(
        {
            "data": [service.transfer_view(t, precision.get(t.wallet, 0), accounts) for t in page],
            "next_cursor": encode_cursor(page[-1].id) if len(rows) > size else None,
        }
    )


@router.post("/{member_id}/adjustments", status_code=201)
def post_adjustment(
    member_id: str,
    body: AdjustmentCreate,
    request: Request,
    digest: str = Depends(body_digest),
    caller: Caller = Depends(require("admin")),
) -> Response:
    body = body.model_copy(update={"id": client_id(body.id, request)})

    def action(session: Session) -> tuple[int, dict[str, Any]]:
        return 201, service.adjust_points(
            session,
            tenant_id=caller.tenant_id,
            member_id=member_id,
            adjustment=body,
            now=caller.now,
        )

    return idempotent(
        tenant_id=caller.tenant_id,
        kind="adjustment",
        key=body.id,
        digest=digest,
        now=caller.now,
        action=action,
    )
