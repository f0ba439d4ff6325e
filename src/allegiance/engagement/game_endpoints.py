"""Quizzes, polls and surveys over HTTP (docs/engagement.md)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy.orm import Session
from starlette.responses import Response

from allegiance.auth import Caller, require
from allegiance.db import read_session, write_session
from allegiance.engagement import leaderboards, polls, quizzes, surveys
from allegiance.kit.clock import as_utc
from allegiance.kit.endpoint import body_digest, client_id, idempotent
from allegiance.kit.http import json_response
from allegiance.program.service import require_program

router = APIRouter(tags=["engagement"])


@router.get("/v1/quizzes/{quiz_key}")
def get_quiz(quiz_key: str, caller: Caller = Depends(require("storefront"))) -> Response:
    with read_session() as session:
        program = require_program(session, tenant_id=caller.tenant_id).program
        return json_response(quizzes.quiz_view(quizzes.find_quiz(program, quiz_key), program))


@router.post("/v1/quizzes/{quiz_key}/attempts", status_code=201)
def post_attempt(
    quiz_key: str,
    body: quizzes.AttemptCreate,
    request: Request,
    digest: str = Depends(body_digest),
    caller: Caller = Depends(require("storefront")),
) -> Response:
    body = body.model_copy(update={"id": client_id(body.id, request)})

    def action(session: Session) -> tuple[int, dict[str, Any]]:
        program = require_program(session, tenant_id=caller.tenant_id)
        return 201, quizzes.attempt(
            session,
            tenant_id=caller.tenant_id,
            program=program,
            quiz_key=quiz_key,
            body=body,
            now=caller.now,
        )

    return idempotent(
        tenant_id=caller.tenant_id,
        kind="quiz_attempt",
        key=f"{quiz_key}/{body.id}",
        digest=digest,
        now=caller.now,
        action=action,
    )


@router.post("/v1/polls/{poll_key}/votes", status_code=201)
def post_vote(
    poll_key: str, body: polls.VoteCreate, caller: Caller = Depends(require("storefront"))
) -> Response:
    with write_session() as session:
        program = require_program(session, tenant_id=caller.tenant_id)
        status, view = polls.vote(
            session,
            tenant_id=caller.tenant_id,
            program=program,
            poll_key=poll_key,
            body=body,
            now=caller.now,
        )
    return json_response(view, status)


@router.get("/v1/polls/{poll_key}/results")
def poll_results(poll_key: str, caller: Caller = Depends(require("storefront"))) -> Response:
    with read_session() as session:
        program = require_program(session, tenant_id=caller.tenant_id)
        return json_response(
            polls.results(
                session,
                tenant_id=caller.tenant_id,
                program=program,
                poll_key=poll_key,
                now=caller.now,
            )
        )


@router.post("/v1/surveys/{survey_key}/responses", status_code=201)
def post_response(
    survey_key: str,
    body: surveys.ResponseCreate,
    request: Request,
    digest: str = Depends(body_digest),
    caller: Caller = Depends(require("storefront")),
) -> Response:
    def action(session: Session) -> tuple[int, dict[str, Any]]:
        program = require_program(session, tenant_id=caller.tenant_id)
        return 201, surveys.respond(
            session,
            tenant_id=caller.tenant_id,
            program=program,
            survey_key=survey_key,
            body=body,
            now=caller.now,
        )

    if body.id or request.headers.get("idempotency-key"):
        body = body.model_copy(update={"id": client_id(body.id, request)})
        return idempotent(
            tenant_id=caller.tenant_id,
            kind="survey_response",
            key=f"{survey_key}/{body.id}",
            digest=digest,
            now=caller.now,
            action=action,
        )
    with write_session() as session:
        status, view = action(session)
    return json_response(view, status)


@router.get("/v1/surveys/{survey_key}/nps")
def survey_nps(
    survey_key: str,
    since: datetime | None = Query(default=None, alias="from"),
    until: datetime | None = Query(default=None, alias="to"),
    tier: str | None = Query(default=None, max_length=64),
    tag: str | None = Query(default=None, max_length=100),
    caller: Caller = Depends(require("admin")),
) -> Response:
    with read_session() as session:
        program = require_program(session, tenant_id=caller.tenant_id)
        return json_response(
            surveys.nps(
                session,
                tenant_id=caller.tenant_id,
                program=program,
                survey_key=survey_key,
                since=as_utc(since) if since else None,
                until=as_utc(until) if until else None,
                tier=tier,
                tag=tag,
            )
        )


@router.get("/v1/leaderboards/{board_key}")
def get_leaderboard(
    board_key: str,
    member_id: str | None = Query(default=None, max_length=255),
    at: datetime | None = Query(default=None),
    caller: Caller = Depends(require("storefront")),
) -> Response:
    with read_session() as session:
        program = require_program(session, tenant_id=caller.tenant_id)
        return json_response(
            leaderboards.standings(
                session,
                tenant_id=caller.tenant_id,
                program=program,
                key=board_key,
                member_id=member_id,
                at=as_utc(at) if at else caller.now,
            )
        )
