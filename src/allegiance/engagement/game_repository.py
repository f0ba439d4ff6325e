"""SQL for quiz attempts, poll votes and survey responses."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from allegiance.engagement.game_models import PollVote, QuizAttempt, SurveyResponse

# ---- quizzes -----------------------------------------------------------------------------


def attempt_exists(session: Session, tenant_id: str, quiz_key: str, attempt_id: str) -> bool:
    return (
        session.scalar(
            select(QuizAttempt.id).where(
                QuizAttempt.tenant_id == tenant_id,
                QuizAttempt.quiz_key == quiz_key,
                QuizAttempt.attempt_id == attempt_id,
            )
        )
        is not None
    )


def attempts_of(
    session: Session, tenant_id: str, quiz_key: str, member_id: str
) -> tuple[int, bool]:
    """(attempts made, whether one of them was rewarded)."""
    row = session.execute(
        select(func.count(), func.coalesce(func.max(QuizAttempt.reward_minor), 0)).where(
            QuizAttempt.tenant_id == tenant_id,
            QuizAttempt.quiz_key == quiz_key,
            QuizAttempt.member_id == member_id,
        )
    ).one()
    return int(row[0]), int(row[1]) > 0


def add_attempt(session: Session, row: dict[str, Any]) -> None:
    session.add(QuizAttempt(**row))
    session.flush()


# ---- polls -------------------------------------------------------------------------------


def vote_of(session: Session, tenant_id: str, poll_key: str, member_id: str) -> PollVote | None:
    return session.scalar(
        select(PollVote).where(
            PollVote.tenant_id == tenant_id,
            PollVote.poll_key == poll_key,
            PollVote.member_id == member_id,
        )
    )


def add_vote(session: Session, row: dict[str, Any]) -> None:
    session.add(PollVote(**row))
    session.flush()


def poll_counts(session: Session, tenant_id: str, poll_key: str) -> dict[str, int]:
    rows = session.execute(
        select(PollVote.option, func.count())
        .where(PollVote.tenant_id == tenant_id, PollVote.poll_key == poll_key)
        .group_by(PollVote.option)
    )
    return {r[0]: int(r[1]) for r in rows}


# ---- surveys -----------------------------------------------------------------------------


def response_exists(
    session: Session, tenant_id: str, survey_key: str, member_id: str, period: str
) -> bool:
    return (
        session.scalar(
            select(SurveyResponse.id).where(
                SurveyResponse.tenant_id == tenant_id,
                SurveyResponse.survey_key == survey_key,
                SurveyResponse.member_id == member_id,
                SurveyResponse.period == period,
            )
        )
        is not None
    )


def add_response(session: Session, row: dict[str, Any]) -> int:
    response = SurveyResponse(**row)
    session.add(response)
    session.flush()
    return response.id


def scores(
    session: Session,
    tenant_id: str,
    survey_key: str,
    *,
    since: datetime | None,
    until: datetime | None,
    tier: str | None,
) -> list[tuple[str, int, list[str]]]:
    """(period, score, tags) of the survey's responses in [since, until)."""
    stmt = select(SurveyResponse.period, SurveyResponse.score, SurveyResponse.tags).where(
        SurveyResponse.tenant_id == tenant_id, SurveyResponse.survey_key == survey_key
    )
    if since is not None:
        stmt = stmt.where(SurveyResponse.created_at >= since)
    if until is not None:
        stmt = stmt.where(SurveyResponse.created_at < until)
    if tier is not None:
        stmt = stmt.where(SurveyResponse.tier == tier)
    return [(r[0], int(r[1]), list(r[2] or [])) for r in session.execute(stmt)]
