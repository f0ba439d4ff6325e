"""Polls: an optional eligibility condition (CEL over member/account/now), one vote per
member (changeable until the poll closes when the poll says so), results by option."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from allegiance.engagement import game_repository as repository
from allegiance.errors import Conflict, Forbidden, NotFound, invalid
from allegiance.kit.clock import as_utc
from allegiance.kit.expression import Scope, compile_expression
from allegiance.kit.money import currency_exponent
from allegiance.member import repository as members
from allegiance.order.service import conditions_context
from allegiance.program.compiled import CompiledProgram
from allegiance.program.schema import Poll, Program


class VoteCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    member_id: str = Field(min_length=1, max_length=255)
    option: str = Field(min_length=1, max_length=64)


def find_poll(program: Program, key: str) -> Poll:
    for poll in program.polls:
        if poll.key == key:
            return poll
    raise NotFound(f"poll {key!r} not found", code="poll_not_found")


def _closed(poll: Poll, now: datetime) -> bool:
    return poll.closes_at is not None and now >= as_utc(poll.closes_at)


def vote(
    session: Session,
    *,
    tenant_id: str,
    program: CompiledProgram,
    poll_key: str,
    body: VoteCreate,
    now: datetime,
) -> tuple[int, dict[str, Any]]:
    """POST /v1/polls/{key}/votes: 201 for a first vote, 200 for a changed one."""
    poll = find_poll(program.program, poll_key)
    if body.option not in {o.key for o in poll.options}:
        raise invalid(["body", "option"], "not an option of this poll")
    if _closed(poll, now):
        raise Conflict(f"poll {poll_key!r} is closed", code="poll_closed")
    member = members.get(session, tenant_id, body.member_id, lock=True)
    if member is None or member.erased_at is not None:
        raise NotFound(f"member {body.member_id!r} not found", code="member_not_found")
    if poll.eligible is not None:
        context = conditions_context(
            session,
            tenant_id=tenant_id,
            program=program,
            member=member,
            exponent=currency_exponent(program.currency),
            now=now,
        )
        context["now"] = now
        if not Scope(context).test(compile_expression(poll.eligible)):
            raise Forbidden(
                f"member {body.member_id!r} may not vote in poll {poll_key!r}",
                code="not_eligible",
                reason=f"the poll is open to members where {poll.eligible}",
            )
    existing = repository.vote_of(session, tenant_id, poll_key, body.member_id)
    status = 201
    if existing is None:
        repository.add_vote(
            session,
            {
                "tenant_id": tenant_id,
                "poll_key": poll_key,
                "member_id": body.member_id,
                "option": body.option,
                "created_at": now,
                "updated_at": now,
            },
        )
    elif not poll.changeable:
        raise Conflict(
            f"member {body.member_id!r} has voted in poll {poll_key!r} already",
            code="already_voted",
            option=existing.option,
        )
    else:
        existing.option = body.option
        existing.updated_at = now
        status = 200
    return status, {
        "poll": poll_key,
        "member_id": body.member_id,
        "option": body.option,
        "changed": status == 200,
        "voted_at": now,
    }


def results(
    session: Session, *, tenant_id: str, program: CompiledProgram, poll_key: str, now: datetime
) -> dict[str, Any]:
    poll = find_poll(program.program, poll_key)
    counts = repository.poll_counts(session, tenant_id, poll_key)
    total = sum(counts.get(o.key, 0) for o in poll.options)
    return {
        "poll": poll_key,
        "question": poll.question,
        "closed": _closed(poll, now),
        "closes_at": poll.closes_at,
        "total": total,
        "options": [
            {
                "key": o.key,
                "text": o.text,
                "votes": counts.get(o.key, 0),
                "percent": round(100 * counts.get(o.key, 0) / total, 1) if total else 0,
            }
            for o in poll.options
        ],
    }
