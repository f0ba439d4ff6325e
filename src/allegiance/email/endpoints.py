from __future__ import annotations

from html import escape

from fastapi import APIRouter, Depends
from starlette.responses import HTMLResponse, Response

from allegiance.auth import Caller, require
from allegiance.db import read_session, write_session
from allegiance.email import service
from allegiance.email.schemas import TemplatePut
from allegiance.errors import NotFound
from allegiance.kit.clock import utcnow
from allegiance.kit.http import json_response

router = APIRouter(prefix="/v1/email-templates", tags=["e-mail"])
public = APIRouter(tags=["e-mail"])


@router.get("")
def list_templates(caller: Caller = Depends(require("admin"))) -> Response:
    with read_session() as session:
        return json_response({"data": service.list_templates(session, tenant_id=caller.tenant_id)})


@router.get("/{name}/{locale}")
def get_template(name: str, locale: str, caller: Caller = Depends(require("admin"))) -> Response:
    with read_session() as session:
        return json_response(
            service.get_template(session, tenant_id=caller.tenant_id, name=name, locale=locale)
        )


@router.put("/{name}/{locale}")
def put_template(
    name: str, locale: str, body: TemplatePut, caller: Caller = Depends(require("admin"))
) -> Response:
    with write_session() as session:
        view = service.put_template(
            session, tenant_id=caller.tenant_id, name=name, locale=locale, body=body, now=caller.now
        )
    return json_response(view)


@router.delete("/{name}/{locale}", status_code=204)
def delete_template(name: str, locale: str, caller: Caller = Depends(require("admin"))) -> Response:
    with write_session() as session:
        service.delete_template(session, tenant_id=caller.tenant_id, name=name, locale=locale)
    return Response(status_code=204)


_PAGE = (
    '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{title}</title></head>'
    "<body><p>{text}</p></body></html>"
)


def _unsubscribe(token: str) -> Response:
    try:
        with write_session() as session:
            service.unsubscribe(session, token=token, now=utcnow())
    except NotFound:
        page = _PAGE.format(title="Link not valid", text="This unsubscribe link is not valid.")
        return HTMLResponse(page, status_code=404)
    text = escape("You are unsubscribed: you will receive no more offers by e-mail.")
    return HTMLResponse(_PAGE.format(title="Unsubscribed", text=text))


@public.get("/unsubscribe/{token}", include_in_schema=False)
def unsubscribe_page(token: str) -> Response:
    """The link in a marketing mail (no API key: the signed token is the authority)."""
    return _unsubscribe(token)


@public.post("/unsubscribe/{token}", include_in_schema=False)
def unsubscribe_one_click(token: str) -> Response:
    """RFC 8058 one-click unsubscribe (``List-Unsubscribe-Post``) from mail clients."""
    return _unsubscribe(token)
