from __future__ import annotations

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from allegiance.auth import Caller, forget_cached_keys, require
from allegiance.db import read_session, write_session
from allegiance.kit.http import json_response
from allegiance.tenant import repository, service

router = APIRouter(prefix="/v1/api-keys", tags=["api keys"])


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    scope: str
    name: str | None = Field(default=None, max_length=200)
    partner: str | None = Field(default=None, max_length=64)  # scope partner: which partner


@router.post("", status_code=201)
def create_key(body: ApiKeyCreate, caller: Caller = Depends(require("admin"))) -> Response:
    with write_session() as session:
        key = service.create_api_key(
            session,
            tenant_id=caller.tenant_id,
            scope=body.scope,
            name=body.name,
            now=caller.now,
            partner=body.partner,
        )
    return json_response(key.view(), 201)


@router.get("")
def list_keys(caller: Caller = Depends(require("admin"))) -> Response:
    with read_session() as session:
        keys = repository.list_keys(session, caller.tenant_id)
    return json_response(
        {
            "data": [
                {
                    "id": k.id,
                    "scope": k.scope,
                    "partner": k.partner,
                    "name": k.name,
                    "prefix": k.prefix,
                    "created_at": k.created_at.isoformat(),
                    "revoked_at": k.revoked_at.isoformat() if k.revoked_at else None,
                }
                for k in keys
            ],
            "next_cursor": None,
        }
    )


@router.delete("/{key_id}", status_code=204)
def revoke_key(key_id: str, caller: Caller = Depends(require("admin"))) -> Response:
    with write_session() as session:
        service.revoke_api_key(session, tenant_id=caller.tenant_id, key_id=key_id, now=caller.now)
    forget_cached_keys()
    return Response(status_code=204)
