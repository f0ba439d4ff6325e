from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends, Request
from sqlalchemy.orm import Session
from starlette.responses import Response

from allegiance.auth import Caller, require
from allegiance.db import read_session, write_session
from allegiance.kit.endpoint import body_digest, client_id, idempotent, page_params
from allegiance.kit.http import json_response
from allegiance.kit.pagination import Page, encode_cursor
from allegiance.program.service import load_program, require_program
from allegiance.subscription import service
from allegiance.subscription.schemas import SubscriptionCancel, SubscriptionCreate

router = APIRouter(prefix="/v1/members", tags=["subscriptions"])


@router.post("/{member_id}/subscriptions", status_code=201)
def post_subscription(
    member_id: str,
    body: SubscriptionCreate,
    request: Request,
    digest: str = Depends(body_digest),
    caller: Caller = Depends(require("ingest")),
) -> Response:
    body = body.model_copy(update={"id": client_id(body.id, request)})

    def action(session: Session) -> tuple[int, dict[str, Any]]:
        program = require_program(session, tenant_id=caller.tenant_id)
        return 201, service.subscribe(
            session,
            tenant_id=caller.tenant_id,
            program=program,
            member_id=member_id,
            request=body,
            now=caller.now,
        )

    return idempotent(
        tenant_id=caller.tenant_id,
        kind="subscription_payment",
        key=body.id,
        digest=digest,
        now=caller.now,
        action=action,
    )


@router.post("/{member_id}/subscriptions/{subscription_id}/cancel")
def post_cancel(
    member_id: str,
    subscription_id: str,
    body: SubscriptionCancel | None = Body(default=None),
    caller: Caller = Depends(require("ingest")),
) -> Response:
    with write_session() as session:
        view = service.cancel_subscription(
            session,
            tenant_id=caller.tenant_id,
            program=load_program(session, tenant_id=caller.tenant_id),
            member_id=member_id,
            subscription_id=subscription_id,
            cancel=body or SubscriptionCancel(),
            now=caller.now,
        )
    return json_response(view)


@router.get("/{member_id}/subscriptions")
def get_subscriptions(
    member_id: str,
    page: Page = Depends(page_params),
    caller: Caller = Depends(require("storefront")),
) -> Response:
    size, before = page.size, page.before
    with read_session() as session:
        data, next_id = service.subscriptions_page(
            session,
            tenant_id=caller.tenant_id,
            member_id=member_id,
            before_id=before,
            limit=size,
            now=caller.now,
        )
    return json_response(
        {"data": data, "next_cursor": encode_cursor(next_id) if next_id is not None else None}
    )
