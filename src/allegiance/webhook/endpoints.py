from __future__ import annotations

from fastapi import APIRouter, Depends
from starlette.responses import Response

from allegiance.auth import Caller, require
from allegiance.db import read_session, write_session
from allegiance.kit.endpoint import page_params
from allegiance.kit.http import json_response
from allegiance.kit.pagination import Page, encode_cursor
from allegiance.webhook import service
from allegiance.webhook.schemas import ReplayRequest, WebhookEndpointCreate, WebhookEndpointUpdate

router = APIRouter(tags=["webhooks"])


@router.post("/v1/webhook-endpoints", status_code=201)
def create_endpoint(
    body: WebhookEndpointCreate, caller: Caller = Depends(require("admin"))
) -> Response:
    with write_session() as session:
        view = service.create_endpoint(
            session, tenant_id=caller.tenant_id, body=body, now=caller.now
        )
    return json_response(view, 201)


@router.get("/v1/webhook-endpoints")
def list_endpoints(caller: Caller = Depends(require("admin"))) -> Response:
    with read_session() as session:
        data = service.list_endpoints(session, tenant_id=caller.tenant_id)
    # a tenant has a bounded number of endpoints: one page holds them all
    return json_response({"data": data, "next_cursor": None})


@router.get("/v1/webhook-endpoints/{endpoint_id}")
def get_endpoint(endpoint_id: str, caller: Caller = Depends(require("admin"))) -> Response:
    with read_session() as session:
        view = service.get_endpoint(session, tenant_id=caller.tenant_id, endpoint_id=endpoint_id)
    return json_response(view)


@router.patch("/v1/webhook-endpoints/{endpoint_id}")
def update_endpoint(
    endpoint_id: str, body: WebhookEndpointUpdate, caller: Caller = Depends(require("admin"))
) -> Response:
    with write_session() as session:
        view = service.update_endpoint(
            session,
            tenant_id=caller.tenant_id,
            endpoint_id=endpoint_id,
            body=body,
            now=caller.now,
        )
    return json_response(view)


@router.delete("/v1/webhook-endpoints/{endpoint_id}", status_code=204)
def delete_endpoint(endpoint_id: str, caller: Caller = Depends(require("admin"))) -> Response:
    with write_session() as session:
        service.delete_endpoint(session, tenant_id=caller.tenant_id, endpoint_id=endpoint_id)
    return Response(status_code=204)


@router.post("/v1/webhook-endpoints/{endpoint_id}/rotate-secret")
def rotate_secret(endpoint_id: str, caller: Caller = Depends(require("admin"))) -> Response:
    with write_session() as session:
        view = service.rotate_secret(
            session, tenant_id=caller.tenant_id, endpoint_id=endpoint_id, now=caller.now
        )
    return json_response(view)


@router.get("/v1/webhook-deliveries")
def list_deliveries(
    endpoint_id: str | None = None,
    status: str | None = None,
    event_type: str | None = None,
    page: Page = Depends(page_params),
    caller: Caller = Depends(require("admin")),
) -> Response:
    with read_session() as session:
        rows = service.list_deliveries(
            session,
            tenant_id=caller.tenant_id,
            endpoint_id=endpoint_id,
            status=status,
            event_type=event_type,
            before=page.before,
            limit=page.size + 1,
        )
    shown = rows[: page.size]
    more = len(rows) > page.size
    return json_response(
        {
            "data": [service.delivery_view(d) for d in shown],
            "next_cursor": encode_cursor(shown[-1].id) if more else None,
        }
    )


@router.post("/v1/webhook-deliveries/replay")
def replay_deliveries(body: ReplayRequest, caller: Caller = Depends(require("admin"))) -> Response:
    with write_session() as session:
        result = service.replay_deliveries(
            session, tenant_id=caller.tenant_id, body=body, now=caller.now
        )
    return json_response(result)


@router.get("/v1/webhook-deliveries/{delivery_id}")
def get_delivery(delivery_id: str, caller: Caller = Depends(require("admin"))) -> Response:
    with read_session() as session:
        view = service.get_delivery(session, tenant_id=caller.tenant_id, message_id=delivery_id)
    return json_response(view)


@router.post("/v1/webhook-deliveries/{delivery_id}/replay")
def replay_delivery(delivery_id: str, caller: Caller = Depends(require("admin"))) -> Response:
    with write_session() as session:
        view = service.replay_delivery(
            session, tenant_id=caller.tenant_id, message_id=delivery_id, now=caller.now
        )
    return json_response(view)
