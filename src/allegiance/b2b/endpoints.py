from __future__ import annotations

from fastapi import APIRouter, Depends
from starlette.responses import Response

from allegiance.auth import Caller, require
from allegiance.b2b import service
from allegiance.b2b.schemas import AccountUpsert, MemberLink
from allegiance.db import read_session, write_session
from allegiance.kit.http import json_response

router = APIRouter(prefix="/v1/accounts", tags=["accounts"])


@router.put("/{account_id}")
def put_account(
    account_id: str, body: AccountUpsert, caller: Caller = Depends(require("admin"))
) -> Response:
    with write_session() as session:
        created = service.upsert_account(
            session, tenant_id=caller.tenant_id, account_id=account_id, data=body, now=caller.now
        )
    return _view(account_id, caller, 201 if created else 200)


@router.get("/{account_id}")
def get_account(account_id: str, caller: Caller = Depends(require("storefront"))) -> Response:
    return _view(account_id, caller, 200)


@router.put("/{account_id}/members/{member_id}")
def put_account_member(
    account_id: str,
    member_id: str,
    body: MemberLink,
    caller: Caller = Depends(require("admin")),
) -> Response:
    with write_session() as session:
        service.link_member(
            session,
            tenant_id=caller.tenant_id,
            account_id=account_id,
            member_id=member_id,
            role=body.role,
            now=caller.now,
        )
    return _view(account_id, caller, 200)


@router.delete("/{account_id}/members/{member_id}")
def delete_account_member(
    account_id: str, member_id: str, caller: Caller = Depends(require("admin"))
) -> Response:
    with write_session() as session:
        service.link_member(
            session,
            tenant_id=caller.tenant_id,
            account_id=account_id,
            member_id=member_id,
            role=None,
            now=caller.now,
        )
    return _view(account_id, caller, 200)


def _view(account_id: str, caller: Caller, status: int) -> Response:
    with read_session() as session:
        return json_response(
            service.account_view(
                session, tenant_id=caller.tenant_id, account_id=account_id, now=caller.now
            ),
            status,
        )
