"""Surveys and NPS: one response (score 0–10, comment) per member per survey period, an
optional reward for answering, and the Net Promoter Score by period, tier and segment.

NPS = % promoters (9–10) − % detractors (0–6), rounded to one decimal; passives (7–8) count
in the total only.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from allegiance.engagement import game_repository as repository
from allegiance.engagement.quizzes import credit_reward
from allegiance.errors import Conflict, NotFound
from allegiance.kit.clock import period_key, zone
from allegiance.kit.money import currency_exponent, number
from allegiance.order.schemas import EventCreate
from allegiance.order.service import conditions_context, lock_members, record_event
from allegiance.program.compiled import CompiledProgram
from allegiance.program.schema import Program, Survey


class ResponseCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(default="", max_length=255)  # or the Idempotency-Key header
    member_id: str = Field(min_length=1, max_length=255)
    score: int = Field(ge=0, le=10)
    comment: str | None = Field(default=None, max_length=5000)


def find_survey(program: Program, key: str) -> Survey:
    for survey in program.surveys:
        if survey.key == key:
            return survey
    raise NotFound(f"survey {key!r} not found", code="survey_not_found")


def survey_period(survey: Survey, program: Program, at: datetime) -> str:
    """The survey period containing ``at`` in the program timezone: ``m2026-03``,
    ``q2026-1``, ``y2026`` or ``once``."""
    tz = zone(program.timezone)
    if survey.period == "once":
        return "once"
    if survey.period == "quarter":
        local = at.astimezone(tz)
        return f"q{local.year}-{(local.month - 1) // 3 + 1}"
    return period_key(survey.period, at, tz)


def respond(
    session: Session,
    *,
    tenant_id: str,
    program: CompiledProgram,
    survey_key: str,
    body: ResponseCreate,
    now: datetime,
) -> dict[str, Any]:
    settings = program.program
    survey = find_survey(settings, survey_key)
    period = survey_period(survey, settings, now)
    member = lock_members(
        session, tenant_id=tenant_id, program=program, member_ids=[body.member_id], now=now
    )[body.member_id]
    if repository.response_exists(session, tenant_id, survey_key, body.member_id, period):
        raise Conflict(
            f"member {body.member_id!r} has answered survey {survey_key!r} in period {period}",
            code="already_answered",
            period=period,
        )
    context = conditions_context(
        session,
        tenant_id=tenant_id,
        program=program,
        member=member,
        exponent=currency_exponent(program.currency),
        now=now,
    )
    tier = context["member"].get("tier") or None
    wallet_key: str | None = None
    amount_minor = 0
    if survey.reward is not None:
        wallet_key, amount_minor = credit_reward(
            session,
            tenant_id=tenant_id,
            program=settings,
            member_id=body.member_id,
            reward=survey.reward,
            source_type="survey",
            source_id=f"{survey_key}/{period}",
            idem_key=f"survey/{survey_key}/{body.member_id}/{period}",
            now=now,
        )
    response_id = repository.add_response(
        session,
        {
            "tenant_id": tenant_id,
            "survey_key": survey_key,
            "member_id": body.member_id,
            "period": period,
            "score": body.score,
            "comment": body.comment,
            "tier": tier,
            "tags": list(member.tags or []),
            "wallet": wallet_key,
            "reward_minor": amount_minor,
            "created_at": now,
        },
    )
    # the answer is also a behaviour event, so earning rules (and badges, challenges) can
    # reward it: `on: survey.answered`, `when: "event.properties.survey == 'nps'"`
    answered = record_event(
        session,
        tenant_id=tenant_id,
        program=program,
        event=EventCreate(
            id=f"survey:{survey_key}:{body.member_id}:{period}",
            type="survey.answered",
            member_id=body.member_id,
            occurred_at=now,
            properties={"survey": survey_key, "period": period, "score": body.score},
        ),
        now=now,
    )
    return {
        "id": body.id or str(response_id),
        "effects": answered["effects"],
        "survey": survey_key,
        "member_id": body.member_id,
        "period": period,
        "score": body.score,
        "comment": body.comment,
        "category": category(body.score),
        "reward": None
        if wallet_key is None
        else {
            "wallet": wallet_key,
            "points": number(amount_minor, settings.wallets[wallet_key].precision),
        },
        "created_at": now.isoformat(),
    }


def category(score: int) -> str:
    if score >= 9:
        return "promoter"
    if score >= 7:
        return "passive"
    return "detractor"


def summary(scores: list[int]) -> dict[str, Any]:
    promoters = sum(1 for s in scores if s >= 9)
    detractors = sum(1 for s in scores if s <= 6)
    total = len(scores)
    nps = round(100 * (promoters - detractors) / total, 1) if total else None
    return {
        "responses": total,
        "promoters": promoters,
        "passives": total - promoters - detractors,
        "detractors": detractors,
        "nps": int(nps) if nps is not None and nps == int(nps) else nps,
    }


def nps(
    session: Session,
    *,
    tenant_id: str,
    program: CompiledProgram,
    survey_key: str,
    since: datetime | None,
    until: datetime | None,
    tier: str | None,
    tag: str | None,
) -> dict[str, Any]:
    """GET /v1/surveys/{key}/nps: the score overall and per survey period, optionally for one
    tier (the tier held when answering) or one segment (a member tag when answering)."""
    find_survey(program.program, survey_key)
    rows = repository.scores(session, tenant_id, survey_key, since=since, until=until, tier=tier)
    if tag is not None:
        rows = [r for r in rows if tag in r[2]]
    by_period: dict[str, list[int]] = {}
    for period, score, _ in rows:
        by_period.setdefault(period, []).append(score)
    return {
        "survey": survey_key,
        "from": since,
        "to": until,
        "tier": tier,
        "tag": tag,
        **summary([r[1] for r in rows]),
        "periods": [{"period": p, **summary(by_period[p])} for p in sorted(by_period)],
    }
