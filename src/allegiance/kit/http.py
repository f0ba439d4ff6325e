"""HTTP plumbing without business words: JSON responses, problem+json, body size limit."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send


def _default(value: Any) -> Any:
    from datetime import date, datetime
    from decimal import Decimal

    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


class FastJSON(JSONResponse):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, default=_default)


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None
                  ) -> Response:
    return FastJSON(body, status_code=status, headers=headers)


def problem_response(problem: dict[str, Any], status: int,
                     headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(problem, default=_default),
        status_code=status,
        media_type="application/problem+json",
        headers=headers,
    )


class BodyLimit:
    """Refuse request bodies over ``max_bytes`` with 413, before any handler reads them."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None:
            try:
                too_big = int(length) > self.max_bytes
            except ValueError:
                too_big = False
            if too_big:
                await self._refuse(send)
                return
        received = 0
        max_bytes = self.max_bytes

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > max_bytes:
                    raise BodyTooLarge()
            return message

        try:
            await self.app(scope, limited, send)
        except BodyTooLarge:
            await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        body = orjson.dumps({
            "type": "https://allegiance.dev/problems/body_too_large",
            "title": "Request body too large",
            "status": 413,
            "code": "body_too_large",
            "detail": f"request bodies are limited to {self.max_bytes} bytes",
            "errors": [{"loc": ["body"], "msg": f"larger than {self.max_bytes} bytes"}],
        })
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/problem+json"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


class BodyTooLarge(Exception):
    pass
