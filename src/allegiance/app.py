"""The FastAPI application: routers, problem+json errors, limits, in-process jobs."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from allegiance import __version__
from allegiance.config import get_settings
from allegiance.errors import DomainError
from allegiance.kit.encryption import SecretKeyError
from allegiance.kit.http import BodyLimit, FastJSON, json_response, problem_response

log = logging.getLogger("allegiance")


def _problem(
    status: int, code: str, title: str, detail: str, errors: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": f"https://allegiance.dev/problems/{code}",
        "title": title,
        "status": status,
        "code": code,
        "detail": detail,
    }
    if errors is not None:
        body["errors"] = errors
    return body


def _validation_errors(exc: RequestValidationError) -> tuple[int, dict[str, Any]]:
    errors = []
    malformed = False
    for err in exc.errors():
        if err.get("type") == "json_invalid":
            malformed = True
        msg = str(err.get("msg", "invalid"))
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        if err.get("type") == "extra_forbidden":
            msg = "unknown field"
        errors.append({"loc": [p for p in err.get("loc", ())], "msg": msg})
    if malformed:
        return 400, _problem(
            400, "malformed_json", "Malformed JSON", "the request body is not valid JSON", errors
        )
    return 422, _problem(
        422,
        "validation_error",
        "Invalid request",
        f"the request has {len(errors)} invalid field(s)",
        errors,
    )


def create_app() -> FastAPI:
    settings = get_settings()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        stop = threading.Event()
        thread = None
        if settings.run_jobs_in_server:
            from allegiance.worker.runner import background_loop

            thread = threading.Thread(
                target=background_loop, args=(stop,), daemon=True, name="allegiance-jobs"
            )
            thread.start()
        try:
            yield
        finally:
            stop.set()
            if thread is not None:
                thread.join(timeout=10)

    app = FastAPI(
        title="Allegiance",
        version=__version__,
        description="API-first loyalty engine: points ledger, earning rules, members.",
        default_response_class=FastJSON,
        lifespan=lifespan,
    )

    @app.exception_handler(DomainError)
    async def domain_error(_: Request, exc: DomainError) -> Response:
        return problem_response(exc.to_problem(), exc.status)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> Response:
        status, body = _validation_errors(exc)
        return problem_response(body, status)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> Response:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return problem_response(
            _problem(exc.status_code, code, str(exc.detail), str(exc.detail)),
            exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(OperationalError)
    async def busy(_: Request, exc: OperationalError) -> Response:
        log.warning("database unavailable or busy: %s", exc)
        return problem_response(
            _problem(
                503,
                "database_busy",
                "Service busy",
                "the database is busy or unavailable; retry with the same id",
            ),
            503,
            headers={"Retry-After": "1"},
        )

    @app.exception_handler(SecretKeyError)
    async def secret_keys(_: Request, exc: SecretKeyError) -> Response:
        log.error("secret keys: %s", exc)
        return problem_response(
            _problem(503, "secret_keys_misconfigured", "Service misconfigured", str(exc)), 503
        )

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> Response:
        log.exception("unhandled error")
        return problem_response(
            _problem(
                500,
                "internal_error",
                "Internal error",
                "something went wrong on our side; nothing was booked",
            ),
            500,
        )

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> Response:
        from sqlalchemy import text

        from allegiance.db import read_session

        with read_session() as session:
            session.execute(text("SELECT 1"))
        return json_response({"status": "ok", "version": __version__})

    from allegiance.analytics.endpoints import router as analytics
    from allegiance.automation.endpoints import router as automation_runs
    from allegiance.b2b.endpoints import router as accounts
    from allegiance.coupon.endpoints import router as coupons
    from allegiance.email.endpoints import public as unsubscribe
    from allegiance.email.endpoints import router as email_templates
    from allegiance.engagement.badge_endpoints import router as engagement_badges
    from allegiance.engagement.game_endpoints import router as games
    from allegiance.insight.endpoints import router as insights
    from allegiance.integration.endpoints import inbound as platform_webhooks
    from allegiance.integration.endpoints import router as integrations
    from allegiance.member.endpoints import router as members
    from allegiance.order.endpoints import router as orders
    from allegiance.outbox.endpoints import router as domain_events
    from allegiance.pricing.endpoints import router as pricing
    from allegiance.program.endpoints import router as program
    from allegiance.recommendation.endpoints import router as recommendations
    from allegiance.redemption.endpoints import router as redemptions
    from allegiance.referral.endpoints import router as referrals
    from allegiance.segment.endpoints import router as segments
    from allegiance.subscription.endpoints import router as subscriptions
    from allegiance.sweepstakes.endpoints import router as sweepstakes
    from allegiance.tenant.endpoints import router as api_keys
    from allegiance.tier.endpoints import router as tiers
    from allegiance.webhook.endpoints import router as webhooks

    for router in (
        program, members, tiers, accounts, redemptions, subscriptions, orders, api_keys,
        domain_events, pricing, analytics, referrals, coupons, engagement_badges, sweepstakes,
        games, integrations, platform_webhooks, segments, recommendations, webhooks, insights,
        email_templates, unsubscribe, automation_runs,
    ):  # fmt: skip
        app.include_router(router)
    from allegiance.experiment.endpoints import router as experiments

    app.include_router(experiments)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    return app
