from __future__ import annotations

from typing import Any

import orjson
import yaml
from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from allegiance.auth import Caller, require
from allegiance.db import get_engine, read_session, write_session
from allegiance.errors import ValidationFailed
from allegiance.kit.http import json_response
from allegiance.kit.yamlio import load_yaml
from allegiance.program import service

router = APIRouter(prefix="/v1/program", tags=["program"])


async def _document(request: Request) -> Any:
    raw = await request.body()
    content_type = request.headers.get("content-type", "application/json").split(";")[0].strip()
    if content_type in ("application/yaml", "application/x-yaml", "text/yaml"):
        try:
            return load_yaml(raw.decode("utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            mark = getattr(exc, "problem_mark", None)
            loc = ["body", f"line {mark.line + 1}"] if mark else ["body"]
            raise ValidationFailed(
                "the YAML document does not parse",
                code="malformed_yaml",
                status=400,
                errors=[{"loc": loc, "msg": str(exc)}],
            ) from exc
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ValidationFailed(
            "the JSON document does not parse",
            code="malformed_json",
            status=400,
            errors=[{"loc": ["body"], "msg": str(exc)}],
        ) from exc


@router.put("")
async def put_program(
    request: Request, dry_run: bool = False, caller: Caller = Depends(require("admin"))
) -> Response:
    document = await _document(request)
    service.check_program(document)
    if dry_run:
        return json_response({"valid": True, "dry_run": True, **document})
    from starlette.concurrency import run_in_threadpool

    def apply() -> dict[str, Any]:
        with write_session(get_engine()) as session:
            return service.apply_program(
                session, tenant_id=caller.tenant_id, document=document, now=caller.now
            )

    return json_response(await run_in_threadpool(apply))


@router.get("")
def get_program(caller: Caller = Depends(require("admin"))) -> Response:
    with read_session() as session:
        return json_response(service.current_document(session, tenant_id=caller.tenant_id))


@router.get("/versions")
def get_versions(caller: Caller = Depends(require("admin"))) -> Response:
    with read_session() as session:
        return json_response(
            {
                "data": service.list_versions(session, tenant_id=caller.tenant_id),
                "next_cursor": None,
            }
        )
