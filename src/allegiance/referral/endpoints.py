from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends
from starlette.responses import Response

from allegiance.auth import Caller, require
from allegiance.db import read_session, write_session
from allegiance.kit.endpoint import page_params
from allegiance.kit.http import json_response
from allegiance.kit.pagination import Page, encode_cursor
from allegiance.referral import service

router = APIRouter(tags=["referrals"])

Status = Literal["pending", "qualified", "converted", "rejected", "voided"]


@router.get("/v1/members/{member_id}/referral")
def member_referral(member_id: str, caller: Caller = Depends(require("storefront"))) -> Response:
    # the member's code is generated on first need: a write
    with write_session() as session:
        card = service.referral_card(
            session, tenant_id=caller.tenant_id, member_id=member_id, now=caller.now
        )
    return json_response(card)


@router.get("/v1/members/{member_id}/referrals")
def member_referrals(
    member_id: str,
    status: Status | None = None,
    paging: Page = Depends(page_params),
    caller: Caller = Depends(require("storefront")),
) -> Response:
    size, before = paging.size, paging.before
    with read_session() as session:
        rows = service.referrals_page(
            session,
            tenant_id=caller.tenant_id,
            member_id=member_id,
            status=status,
            before_id=before,
            limit=size + 1,
        )
        program = service.program_of(session, caller.tenant_id)
        page = rows[:size]
        data = [service.referral_view(program, r) for r in page]
    return json_response(
        {"data": data, "next_cursor": encode_cursor(page[-1].id) if len(rows) > size else None}
    )


@router.get("/v1/referrals/{referee_id}")
def referral_of_referee(referee_id: str, caller: Caller = Depends(require("admin"))) -> Response:
    with read_session() as session:
        found = service.referral_of(session, tenant_id=caller.tenant_id, referee_id=referee_id)
        return json_response(
            service.referral_view(service.program_of(session, caller.tenant_id), found)
        )
