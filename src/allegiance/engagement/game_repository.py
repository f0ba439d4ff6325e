"""SQL for quiz attempts, poll votes and survey responses."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from allegiance.engagement.game_models import PollVote, QuizAttempt, SurveyResponse
from allegiance.ledger.models import Transfer
from allegiance.member.models import Member
from allegiance.order.models import Event, Order

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


# ---- leaderboards ------------------------------------------------------------------------


def points_earned(
    session: Session, tenant_id: str, wallet: str, since: datetime | None, until: datetime
) -> list[tuple[str, int, datetime]]:
    """(member, points earned net of reversals, last contributing moment) by effective time."""
    signed = case((Transfer.code == "reverse", -Transfer.amount_minor), else_=Transfer.amount_minor)
    stmt = select(Transfer.member_id, func.sum(signed), func.max(Transfer.effective_at)).where(
        Transfer.tenant_id == tenant_id,
        Transfer.wallet == wallet,
        Transfer.member_id.is_not(None),
        Transfer.code.in_(("earn", "reverse")),
        Transfer.effective_at < until,
    )
    if since is not None:
        stmt = stmt.where(Transfer.effective_at >= since)
    rows = session.execute(stmt.group_by(Transfer.member_id))
    return [(r[0], int(r[1] or 0), r[2]) for r in rows]


def orders_placed(
    session: Session, tenant_id: str, since: datetime | None, until: datetime
) -> list[tuple[str, int, datetime]]:
    stmt = select(Order.member_id, func.count(), func.max(Order.placed_at)).where(
        Order.tenant_id == tenant_id,
        Order.member_id.is_not(None),
        Order.status != "cancelled",
        Order.placed_at < until,
    )
    if since is not None:
        stmt = stmt.where(Order.placed_at >= since)
    rows = session.execute(stmt.group_by(Order.member_id))
    return [(str(r[0]), int(r[1]), r[2]) for r in rows]


def events_of_type(
    session: Session, tenant_id: str, event_type: str, since: datetime | None, until: datetime
) -> list[tuple[str, int, datetime]]:
    stmt = select(Event.member_id, func.count(), func.max(Event.occurred_at)).where(
        Event.tenant_id == tenant_id,
        Event.member_id.is_not(None),
        Event.type == event_type,
        Event.occurred_at < until,
    )
    if since is not None:
        stmt = stmt.where(Event.occurred_at >= since)
    rows = session.execute(stmt.group_by(Event.member_id))
    return [(str(r[0]), int(r[1]), r[2]) for r in rows]


def member_cards(
    session: Session, tenant_id: str, member_ids: list[str]
) -> dict[str, tuple[str | None, dict[str, Any], bool]]:
    """member → (name, attributes, erased) for the ranked members."""
    found: dict[str, tuple[str | None, dict[str, Any], bool]] = {}
    for start in range(0, len(member_ids), 500):
        chunk = member_ids[start : start + 500]
        rows = session.execute(
            select(Member.member_id, Member.name, Member.attributes, Member.erased_at).where(
                Member.tenant_id == tenant_id, Member.member_id.in_(chunk)
            )
        )
        for r in rows:
            found[r[0]] = (r[1], dict(r[2] or {}), r[3] is not None)
    return found
