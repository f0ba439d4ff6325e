"""The one hook orders and events call: advance challenges, then award badges."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from allegiance.engagement import badge_repository as repository
from allegiance.engagement import badges, challenges
from allegiance.ledger import service as ledger
from allegiance.ledger.service import Credit
from allegiance.program.schema import Program


@dataclass
class Outcome:
    effects: list[dict[str, Any]] = field(default_factory=list)
    credits: list[Credit] = field(default_factory=list)  # booked already (challenge points)


def engaged(program: Program) -> bool:
    return bool(program.badges or program.challenges)


def on_activity(
    session: Session,
    *,
    tenant_id: str,
    program: Program,
    member_id: str,
    event_type: str,
    source_type: str,
    source_id: str,
    context: dict[str, Any],
    at: datetime,
    now: datetime,
) -> Outcome:
    """Count an order (``order.completed``) or event of a locked member towards challenges,
    then award the badges whose conditions hold. ``context`` is the activity's CEL context
    (its ``member.badges`` is filled here). Nothing is read when the program has neither."""
    outcome = Outcome()
    if not engaged(program):
        return outcome
    rows = repository.badges_of(session, tenant_id, member_id)
    held = {(r.badge, r.level) for r in rows}
    context = {**context, "now": now}
    context["member"] = {**context.get("member", {}), "badges": sorted({b for b, _ in held})}
    advanced = challenges.advance(
        session,
        tenant_id=tenant_id,
        program=program,
        member_id=member_id,
        event_type=event_type,
        context=context,
        at=at,
        currency=program.currency,
        now=now,
    )
    outcome.effects.extend(advanced.effects)
    if advanced.credits:
        ledger.credit(
            session, tenant_id=tenant_id, program=program, credits=advanced.credits, now=now
        )
        outcome.credits.extend(advanced.credits)
    if advanced.awarded:
        held |= {
            (key, lv.key if lv else "") for key in advanced.awarded for lv in _first(program, key)
        }
        context["member"]["badges"] = sorted({b for b, _ in held})
    if program.badges:
        outcome.effects.extend(
            badges.evaluate(
                session,
                tenant_id=tenant_id,
                program=program,
                member_id=member_id,
                event_type=event_type,
                held=held,
                context=context,
                source_type=source_type,
                source_id=source_id,
                now=now,
            )
        )
    return outcome


def _first(program: Program, key: str) -> list[Any]:
    badge = next(b for b in program.badges if b.key == key)
    return [badge.levels[0] if badge.levels else None]
