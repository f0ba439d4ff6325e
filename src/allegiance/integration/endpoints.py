"""Connecting shop platforms (admin) and the platforms' own webhook endpoint."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy.exc import IntegrityError
from starlette.responses import Response

from allegiance.auth import Caller, request_time, require
from allegiance.db import read_session, write_session
from allegiance.errors import Conflict, NotFound
from allegiance.integration import service
from allegiance.integration.schemas import PLATFORMS, IntegrationPut, Platform
from allegiance.kit.http import json_response

router = APIRouter(prefix="/v1/integrations", tags=["integrations"])
inbound = APIRouter(prefix="/integrations", tags=["integrations"])

MAX_ATTEMPTS = 5


@router.put("/{platform}")
def put_integration(
    platform: Platform, body: IntegrationPut, caller: Caller = Depends(require("admin"))
) -> Response:
    with write_session() as session:
        view = service.configure(
            session, tenant_id=caller.tenant_id, platform=platform, data=body, now=caller.now
        )
    return json_response(view)


@router.get("/{platform}")
def get_integration(platform: Platform, caller: Caller = Depends(require("admin"))) -> Response:
    with read_session() as session:
        return json_response(
            service.integration_view(session, tenant_id=caller.tenant_id, platform=platform)
        )


@router.delete("/{platform}", status_code=204)
def delete_integration(platform: Platform, caller: Caller = Depends(require("admin"))) -> Response:
    with write_session() as session:
        service.disconnect(session, tenant_id=caller.tenant_id, platform=platform)
    return Response(status_code=204)


@router.get("/{platform}/deliveries")
def list_deliveries(
    platform: Platform,
    limit: int = Query(default=50, ge=1, le=500),
    caller: Caller = Depends(require("admin")),
) -> Response:
    with read_session() as session:
        rows = service.deliveries(
            session, tenant_id=caller.tenant_id, platform=platform, limit=limit
        )
    return json_response({"data": rows, "next_cursor": None})


@router.get("/{platform}/data-requests")
def list_data_requests(
    platform: Platform,
    limit: int = Query(default=50, ge=1, le=500),
    caller: Caller = Depends(require("admin")),
) -> Response:
    with read_session() as session:
        rows = service.list_data_requests(
            session, tenant_id=caller.tenant_id, platform=platform, limit=limit
        )
    return json_response({"data": rows, "next_cursor": None})


@router.get("/{platform}/data-requests/{request_id}")
def get_data_request(
    platform: Platform, request_id: str, caller: Caller = Depends(require("admin"))
) -> Response:
    with read_session() as session:
        found = service.get_data_request(session, tenant_id=caller.tenant_id, request_id=request_id)
    if found["platform"] != platform:
        raise NotFound(f"data request {request_id!r} not found", code="data_request_not_found")
    return json_response(found)


async def raw_body(request: Request) -> bytes:
    return await request.body()


@inbound.post("/{platform}/{tenant_id}")
def receive(
    platform: str, tenant_id: str, request: Request, raw: bytes = Depends(raw_body)
) -> Response:
    if platform not in PLATFORMS:
        raise NotFound(f"no connector for {platform!r}", code="not_found")
    caller_tenant = None
    if platform == "magento":
        caller_tenant = require("ingest")(request).tenant_id
    delivery = service.Inbound(
        platform=platform,
        tenant_id=tenant_id,
        raw=raw,
        headers={k.lower(): v for k, v in request.headers.items()},
        now=request_time(request),
        caller_tenant_id=caller_tenant,
    )
    if service.is_woocommerce_ping(delivery):
        return json_response({"status": "ping"})
    result = _in_transaction(delivery)
    return json_response({"status": result.outcome, "booked": result.booked, **result.detail})


def _in_transaction(delivery: service.Inbound) -> Any:
    # a concurrent delivery of the same ids commits first: look again and find it booked
    for _ in range(MAX_ATTEMPTS):
        try:
            with write_session() as session:
                return service.receive(session, delivery)
        except IntegrityError:
            continue
    raise Conflict(
        "the delivery is being processed by another request; retry", code="concurrent_request"
    )
