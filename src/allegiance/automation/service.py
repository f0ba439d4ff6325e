"""Use cases for automations: turn triggers into runs (idempotent, guarded), and execute a
run's actions.

A run is keyed by (automation, trigger instance): the event id, or a scheduled occasion such
as ``m1:birthday:2026``. A guard adds a second key (the member, or the member and a calendar
period); both are unique in the database, so a trigger seen twice, or by two workers at once,
makes one run.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from allegiance.automation import repository
from allegiance.automation.schemas import Automation
from allegiance.kit.clock import period_key
from allegiance.kit.expression import compile_expression
from allegiance.kit.money import currency_exponent, number, to_minor
from allegiance.member.models import Member
from allegiance.outbox import service as outbox
from allegiance.outbox.models import OutboxEvent
from allegiance.program.compiled import CompiledProgram
from allegiance.program.service import load_program

MAX_THRESHOLDS = 100


def event_member_id(data: dict[str, Any]) -> str | None:
    """The member an event is about: ``member_id``, or the referrer of a referral."""
    for key in ("member_id", "referrer_id"):
        value = data.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def on_event(session: Session, event: OutboxEvent, now: datetime) -> None:
    """Outbox consumer: start the runs this domain event triggers (event triggers, nth order,
    points milestones). Runs inside the dispatching transaction, idempotent per event id."""
    # one program per tenant for the whole dispatching transaction, not one read per event
    programs = session.info.setdefault("automation_programs", {})
    if event.tenant_id not in programs:
        programs[event.tenant_id] = load_program(session, tenant_id=event.tenant_id)
    compiled = programs[event.tenant_id]
    if compiled is None or not compiled.program.automations:
        return
    data = event.data if isinstance(event.data, dict) else {}
    member_id = event_member_id(data)
    member = repository.get_member(session, event.tenant_id, member_id) if member_id else None
    trigger = {
        "type": event.type,
        "id": event.event_id,
        "created_at": event.created_at.isoformat(),
        "data": data,
    }
    for automation in compiled.program.automations:
        if not automation.enabled:
            continue
        t = automation.trigger
        if t.event is not None and t.event == event.type:
            fire(
                session,
                compiled=compiled,
                tenant_id=event.tenant_id,
                automation=automation,
                member=member,
                trigger_key=event.event_id,
                trigger=trigger,
                now=now,
            )
        elif t.nth_order is not None and event.type == "order.completed" and member is not None:
            position = repository.order_position(
                session, event.tenant_id, member.member_id, str(data.get("order_id", ""))
            )
            if position is not None and position in t.nth_order.n:
                fire(
                    session,
                    compiled=compiled,
                    tenant_id=event.tenant_id,
                    automation=automation,
                    member=member,
                    trigger_key=f"{member.member_id}:order:{position}",
                    trigger={**trigger, "data": {**data, "n": position}},
                    now=now,
                )
        elif t.points_milestone is not None and member is not None:
            check_milestone(
                session,
                compiled=compiled,
                tenant_id=event.tenant_id,
                automation=automation,
                member=member,
                trigger=trigger,
                now=now,
            )


def check_milestone(
    session: Session,
    *,
    compiled: CompiledProgram,
    tenant_id: str,
    automation: Automation,
    member: Member,
    trigger: dict[str, Any],
    now: datetime,
) -> None:
    """Fire for the highest threshold the member's lifetime earned points reached, unless
    that threshold or a higher one fired already: a jump over several thresholds fires the
    highest only, and each threshold fires at most once per member."""
    spec = automation.trigger.points_milestone
    assert spec is not None
    program = compiled.program
    wallet_key = spec.wallet or program.default_wallet
    wallet = program.wallets.get(wallet_key)
    if wallet is None:
        return
    earned = repository.lifetime_earned(session, tenant_id, member.member_id, wallet_key)
    reached = [t for t in spec.thresholds if to_minor(t, wallet.precision) <= earned]
    if not reached:
        return
    top = reached[-1]
    prefix = f"{member.member_id}:milestone:"
    done = repository.trigger_keys_of_member(
        session, tenant_id, automation.key, member.member_id, MAX_THRESHOLDS * 4
    )
    fired = [Decimal(k.removeprefix(prefix)) for k in done if k.startswith(prefix)]
    if any(f >= top for f in fired):
        return
    threshold = number(to_minor(top, wallet.precision), wallet.precision)
    data = {
        "member_id": member.member_id,
        "wallet": wallet_key,
        "threshold": threshold,
        "lifetime_earned": number(earned, wallet.precision),
        "automation": automation.key,
    }
    created = fire(
        session,
        compiled=compiled,
        tenant_id=tenant_id,
        automation=automation,
        member=member,
        trigger_key=f"{prefix}{top}",
        trigger={**trigger, "data": {**trigger["data"], **data}},
        now=now,
    )
    if created:
        outbox.emit(
            session, tenant_id=tenant_id, type_="points.milestone_reached", data=data, now=now
        )


def condition_context(
    session: Session,
    compiled: CompiledProgram,
    tenant_id: str,
    member: Member | None,
    trigger: dict[str, Any],
    now: datetime,
) -> dict[str, Any]:
    """``event`` (the trigger), ``member`` (with its tier, plan, perks and badges now),
    ``account`` and ``now``, as earning rules for events see them."""
    from allegiance.order.service import conditions_context

    context = conditions_context(
        session,
        tenant_id=tenant_id,
        program=compiled,
        member=member,
        exponent=currency_exponent(compiled.currency),
        now=now,
    )
    occurred = trigger.get("created_at")
    context["event"] = {
        "id": trigger.get("id", ""),
        "type": trigger.get("type", ""),
        "occurred_at": datetime.fromisoformat(occurred) if occurred else now,
        "properties": properties(trigger.get("data") or {}),
    }
    context["now"] = now
    return context


def properties(data: dict[str, Any]) -> dict[str, Any]:
    """``event.properties`` in conditions: the event's data; a behaviour event posted to
    ``/v1/events`` has its own properties lifted to the top (``event.properties.rating``)."""
    own = data.get("properties")
    return {**data, **own} if isinstance(own, dict) else dict(data)


def fire(
    session: Session,
    *,
    compiled: CompiledProgram,
    tenant_id: str,
    automation: Automation,
    member: Member | None,
    trigger_key: str,
    trigger: dict[str, Any],
    now: datetime,
) -> bool:
    """Start a run when the condition holds and the guard allows; True when one was made."""
    if automation.condition is not None:
        expression = compile_expression(automation.condition)
        if not expression.test(
            condition_context(session, compiled, tenant_id, member, trigger, now)
        ):
            return False
    guard_key = None
    guard = automation.guard
    if guard is not None and member is not None:
        if guard.once_per_member:
            guard_key = member.member_id
        elif guard.once_per is not None:
            guard_key = f"{member.member_id}:{period_key(guard.once_per, now, compiled.tz)}"
    return repository.insert_run(
        session,
        {
            "tenant_id": tenant_id,
            "automation_key": automation.key,
            "trigger_key": trigger_key[:400],
            "guard_key": guard_key,
            "member_id": member.member_id if member is not None else None,
            "trigger": trigger,
            "due_at": now + automation.delay_delta,
            "status": "pending",
            "attempts": 0,
            "error": None,
            "result": None,
            "created_at": now,
            "finished_at": None,
        },
    )


def run_view(run: Any) -> dict[str, Any]:
    return {
        "id": run.id,
        "automation": run.automation_key,
        "trigger_key": run.trigger_key,
        "member_id": run.member_id,
        "trigger": run.trigger,
        "due_at": run.due_at.isoformat(),
        "status": run.status,
        "attempts": run.attempts,
        "error": run.error,
        "result": run.result,
        "created_at": run.created_at.isoformat(),
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
    }


def list_runs(
    session: Session,
    *,
    tenant_id: str,
    automation_key: str | None,
    member_id: str | None,
    status: str | None,
    before_id: int | None,
    limit: int,
) -> list[Any]:
    return repository.runs_page(
        session,
        tenant_id,
        automation_key=automation_key,
        member_id=member_id,
        status=status,
        before_id=before_id,
        limit=limit,
    )
