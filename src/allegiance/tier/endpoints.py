from __future__ import annotations

from fastapi import APIRouter, Depends
from starlette.responses import Response

from allegiance.auth import Caller, require
from allegiance.db import read_session, write_session
from allegiance.kit.clock import as_utc
from allegiance.kit.endpoint import page_params
from allegiance.kit.http import json_response
from allegiance.kit.pagination import Page
from allegiance.member import service as members
from allegiance.program.service import load_program
from allegiance.tier import service
from allegiance.tier.schemas import ManualTier

router = APIRouter(prefix="/v1/members", tags=["tiers"])


@router.put("/{member_id}/tier")
def put_manual_tier(
    member_id: str, body: ManualTier, caller: Caller = Depends(require("admin"))
) -> Response:
    """Assign a tier by hand: a floor (the member keeps a better earned tier)."""
    with write_session() as session:
        members.get_member(session, tenant_id=caller.tenant_id, member_id=member_id)
        service.assign_manual(
            session,
            tenant_id=caller.tenant_id,
            program=load_program(session, tenant_id=caller.tenant_id),
            owner=("member", member_id),
            tier=body.tier,
            until=as_utc(body.until) if body.until else None,
            reason=body.reason,
            now=caller.now,
        )
    return _tier(member_id, caller)


@router.delete("/{member_id}/tier")
def delete_manual_tier(member_id: str, caller: Caller = Depends(require("admin"))) -> Response:
    with write_session() as session:
        members.get_member(session, tenant_id=caller.tenant_id, member_id=member_id)
        service.assign_manual(
            session,
            tenant_id=caller.tenant_id,
            program=load_program(session, tenant_id=caller.tenant_id),
            owner=("member", member_id),
            tier=None,
            until=None,
            reason=None,
            now=caller.now,
        )
    return _tier(member_id, caller)


@router.get("/{member_id}/tier-history")
def tier_history(
    member_id: str,
    paging: Page = Depends(page_params),
    caller: Caller = Depends(require("storefront")),
) -> Response:
    with read_session() as session:
        members.get_member(session, tenant_id=caller.tenant_id, member_id=member_id)
        return json_response(
            service.history_view(
                session,
                tenant_id=caller.tenant_id,
                owner=("member", member_id),
                limit=paging.size,
                cursor=paging.before,
            )
        )


def _tier(member_id: str, caller: Caller) -> Response:
    with read_session() as session:
        return json_response(
            service.tier_view(
                session,
                tenant_id=caller.tenant_id,
                program=load_program(session, tenant_id=caller.tenant_id),
                owner=("member", member_id),
                now=caller.now,
            )
        )
