"""Quizzes: questions whose answer keys never leave the server, a pass score, an attempt
limit per member and a reward credited once, on the first pass.

An attempt is idempotent on its client id; the member's row lock serialises the attempts of
one member, so the limit holds and the reward (ledger idempotency key ``quiz/<key>/<member>``)
is booked at most once however many deliveries race.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from allegiance.engagement import game_repository as repository
from allegiance.errors import AlreadyBooked, Conflict, NotFound, invalid
from allegiance.kit.clock import as_utc
from allegiance.kit.money import number, to_minor
from allegiance.ledger import service as ledger
from allegiance.ledger.service import Credit
from allegiance.member import repository as members
from allegiance.order.service import lock_members
from allegiance.program.compiled import CompiledProgram
from allegiance.program.schema import GameReward, Program, Quiz


class AttemptCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(default="", max_length=255)  # or the Idempotency-Key header
    member_id: str = Field(min_length=1, max_length=255)
    # question key → one choice key, or a list for a question with several right choices
    answers: dict[str, str | list[str]] = Field(default_factory=dict, max_length=100)


def find_quiz(program: Program, key: str) -> Quiz:
    for quiz in program.quizzes:
        if quiz.key == key:
            return quiz
    raise NotFound(f"quiz {key!r} not found", code="quiz_not_found")


def quiz_view(quiz: Quiz, program: Program) -> dict[str, Any]:
    """The quiz as members see it: questions and choices, never the answers."""
    return {
        "key": quiz.key,
        "name": quiz.name,
        "pass_score": quiz.pass_score,
        "attempts": quiz.attempts,
        "starts_at": quiz.starts_at,
        "ends_at": quiz.ends_at,
        "reward": reward_view(program, quiz.reward),
        "questions": [
            {
                "key": q.key,
                "text": q.text,
                "multiple": not isinstance(q.answer, str),
                "choices": [{"key": c.key, "text": c.text} for c in q.choices],
            }
            for q in quiz.questions
        ],
    }


def reward_view(program: Program, reward: GameReward | None) -> dict[str, Any] | None:
    if reward is None:
        return None
    return {"wallet": reward.wallet or program.default_wallet, "points": number_of(reward)}


def number_of(reward: GameReward) -> int | float:
    value = reward.points
    return int(value) if value == value.to_integral_value() else float(value)


def credit_reward(
    session: Session,
    *,
    tenant_id: str,
    program: Program,
    member_id: str,
    reward: GameReward,
    source_type: str,
    source_id: str,
    idem_key: str,
    now: datetime,
) -> tuple[str, int]:
    """Credit a reward, active at once (the caller holds the member's row lock)."""
    wallet_key = reward.wallet or program.default_wallet
    wallet = program.wallets[wallet_key]
    amount_minor = to_minor(reward.points, wallet.precision)
    ledger.credit(
        session,
        tenant_id=tenant_id,
        program=program,
        credits=[
            Credit(
                member_id=member_id,
                wallet=wallet_key,
                amount_minor=amount_minor,
                code="earn",
                source_type=source_type,
                source_id=source_id,
                idem_key=idem_key,
                available_at=now,
                effective_at=now,
                reason=source_type,
            )
        ],
        now=now,
    )
    member = members.get(session, tenant_id, member_id)
    settle_at = member.settle_at if member is not None else None
    moment = ledger.expiry_for(wallet, program.timezone, now)
    deadline = ledger.inactivity_deadline(program, now)
    for candidate in (moment, deadline):
        if candidate is not None:
            settle_at = candidate if settle_at is None else min(settle_at, candidate)
    members.set_settle_at(session, tenant_id, member_id, settle_at)
    return wallet_key, amount_minor


def _score(quiz: Quiz, answers: dict[str, str | list[str]]) -> int:
    questions = {q.key: q for q in quiz.questions}
    for key, given in answers.items():
        question = questions.get(key)
        if question is None:
            raise invalid(["body", "answers", key], "not a question of this quiz")
        choices = {c.key for c in question.choices}
        picked = [given] if isinstance(given, str) else given
        if not set(picked) <= choices:
            raise invalid(["body", "answers", key], "not a choice of this question")
    score = 0
    for question in quiz.questions:
        answer = answers.get(question.key)
        if answer is None:
            continue
        right = {question.answer} if isinstance(question.answer, str) else set(question.answer)
        chosen = {answer} if isinstance(answer, str) else set(answer)
        score += chosen == right
    return score


def attempt(
    session: Session,
    *,
    tenant_id: str,
    program: CompiledProgram,
    quiz_key: str,
    body: AttemptCreate,
    now: datetime,
) -> dict[str, Any]:
    """POST /v1/quizzes/{key}/attempts: score the answers; the first pass earns the reward."""
    settings = program.program
    quiz = find_quiz(settings, quiz_key)
    if (quiz.starts_at is not None and now < as_utc(quiz.starts_at)) or (
        quiz.ends_at is not None and now >= as_utc(quiz.ends_at)
    ):
        raise Conflict(f"quiz {quiz_key!r} is not open now", code="quiz_closed")
    score = _score(quiz, body.answers)
    lock_members(
        session, tenant_id=tenant_id, program=program, member_ids=[body.member_id], now=now
    )
    if repository.attempt_exists(session, tenant_id, quiz_key, body.id):
        raise AlreadyBooked(f"attempt {body.id!r} exists already")
    used, rewarded = repository.attempts_of(session, tenant_id, quiz_key, body.member_id)
    if used >= quiz.attempts:
        raise Conflict(
            f"member {body.member_id!r} has used all {quiz.attempts} attempt(s) of quiz"
            f" {quiz_key!r}",
            code="attempt_limit_reached",
            attempts=quiz.attempts,
        )
    passed = score >= quiz.pass_score
    wallet_key: str | None = None
    amount_minor = 0
    if passed and quiz.reward is not None and not rewarded:
        wallet_key, amount_minor = credit_reward(
            session,
            tenant_id=tenant_id,
            program=settings,
            member_id=body.member_id,
            reward=quiz.reward,
            source_type="quiz",
            source_id=f"{quiz_key}/{body.id}",
            idem_key=f"quiz/{quiz_key}/{body.member_id}",
            now=now,
        )
    repository.add_attempt(
        session,
        {
            "tenant_id": tenant_id,
            "quiz_key": quiz_key,
            "attempt_id": body.id,
            "member_id": body.member_id,
            "answers": body.answers,
            "score": score,
            "passed": passed,
            "wallet": wallet_key,
            "reward_minor": amount_minor,
            "created_at": now,
        },
    )
    return {
        "id": body.id,
        "quiz": quiz_key,
        "member_id": body.member_id,
        "score": score,
        "out_of": len(quiz.questions),
        "pass_score": quiz.pass_score,
        "passed": passed,
        "attempts_used": used + 1,
        "attempts_left": quiz.attempts - used - 1,
        "reward": None
        if wallet_key is None
        else {
            "wallet": wallet_key,
            "points": number(amount_minor, settings.wallets[wallet_key].precision),
        },
        "created_at": now.isoformat(),
    }
