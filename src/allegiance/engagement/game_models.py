"""Quiz attempts, poll votes and survey responses (docs/engagement.md)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from allegiance.kit.orm import Base, BigIntPK, JSONType, UTCDateTime


class QuizAttempt(Base):
    __tablename__ = "quiz_attempts"
    __table_args__ = (
        UniqueConstraint("tenant_id", "quiz_key", "attempt_id", name="uq_quiz_attempts_id"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(String(40))
    quiz_key: Mapped[str] = mapped_column(String(64))
    attempt_id: Mapped[str] = mapped_column(String(255))  # the client's id
    member_id: Mapped[str] = mapped_column(String(255))
    answers: Mapped[dict] = mapped_column(JSONType, default=dict)
    score: Mapped[int] = mapped_column(Integer)
    passed: Mapped[bool] = mapped_column(Boolean)
    wallet: Mapped[str | None] = mapped_column(String(64), nullable=True)
    reward_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


Index("ix_quiz_attempts_member", QuizAttempt.tenant_id, QuizAttempt.quiz_key, QuizAttempt.member_id)


class PollVote(Base):
    __tablename__ = "poll_votes"

    tenant_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    poll_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    member_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    option: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class SurveyResponse(Base):
    __tablename__ = "survey_responses"
    __table_args__ = (
        UniqueConstraint(
            "tenant_id", "survey_key", "member_id", "period", name="uq_survey_responses_period"
        ),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(String(40))
    survey_key: Mapped[str] = mapped_column(String(64))
    member_id: Mapped[str] = mapped_column(String(255))
    period: Mapped[str] = mapped_column(String(20))
    score: Mapped[int] = mapped_column(Integer)
    comment: Mapped[str | None] = mapped_column(Text, nullable=True)
    # the member's tier and tags when answering: NPS by tier and segment
    tier: Mapped[str | None] = mapped_column(String(64), nullable=True)
    tags: Mapped[list] = mapped_column(JSONType, default=list)
    wallet: Mapped[str | None] = mapped_column(String(64), nullable=True)
    reward_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


Index(
    "ix_survey_responses_time", SurveyResponse.tenant_id, SurveyResponse.survey_key,
    SurveyResponse.created_at,
)  # fmt: skip
