"""GET /v1/members/{id}/challenges and /badges (storefront)."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from starlette.responses import Response

from allegiance.auth import Caller, require
from allegiance.db import read_session
from allegiance.engagement import badges, challenges
from allegiance.kit.http import json_response
from allegiance.program.service import load_program

router = APIRouter(tags=["engagement"])


@router.get("/v1/members/{member_id}/challenges")
def member_challenges(member_id: str, caller: Caller = Depends(require("storefront"))) -> Response:
    with read_session() as session:
        compiled = load_program(session, tenant_id=caller.tenant_id)
        data = challenges.challenges_view(
            session,
            tenant_id=caller.tenant_id,
            program=compiled.program if compiled else None,
            member_id=member_id,
            now=caller.now,
        )
    return json_response({"member_id": member_id, "data": data})


@router.get("/v1/members/{member_id}/badges")
def member_badges(member_id: str, caller: Caller = Depends(require("storefront"))) -> Response:
    with read_session() as session:
        compiled = load_program(session, tenant_id=caller.tenant_id)
        data = badges.member_badges(
            session,
            tenant_id=caller.tenant_id,
            program=compiled.program if compiled else None,
            member_id=member_id,
        )
    return json_response({"member_id": member_id, "data": data})
