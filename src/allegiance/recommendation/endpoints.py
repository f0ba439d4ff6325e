from __future__ import annotations

from fastapi import APIRouter, Depends, Query
from starlette.responses import Response

from allegiance.auth import Caller, require
from allegiance.db import read_session
from allegiance.kit.http import json_response
from allegiance.recommendation import service

router = APIRouter(prefix="/v1/members", tags=["recommendations"])


@router.get("/{member_id}/recommendations")
def member_recommendations(
    member_id: str,
    limit: int = Query(default=10, ge=1, le=50),
    caller: Caller = Depends(require("storefront")),
) -> Response:
    with read_session() as session:
        return json_response(
            service.for_member(
                session,
                tenant_id=caller.tenant_id,
                member_id=member_id,
                limit=limit,
                now=caller.now,
            )
        )
