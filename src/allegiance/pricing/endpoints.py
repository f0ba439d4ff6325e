from __future__ import annotations

from decimal import Decimal

from fastapi import APIRouter, Depends, Query
from starlette.responses import Response

from allegiance.auth import Caller, require
from allegiance.db import read_session
from allegiance.kit.http import json_response
from allegiance.pricing import service

router = APIRouter(prefix="/v1/price-lists", tags=["pricing"])


@router.get("/{key}/table")
def get_price_table(
    key: str,
    sku: str | None = Query(default=None, min_length=1, max_length=255),
    category: str | None = Query(default=None, min_length=1, max_length=255),
    member_id: str | None = Query(default=None, min_length=1, max_length=255),
    list_price: Decimal | None = Query(default=None, ge=0, allow_inf_nan=False, max_digits=20),
    caller: Caller = Depends(require("storefront")),
) -> Response:
    with read_session() as session:
        return json_response(
            service.price_list_table(
                session,
                tenant_id=caller.tenant_id,
                key=key,
                sku=sku,
                category=category,
                member_id=member_id,
                list_price=list_price,
                now=caller.now,
            )
        )
