"""Use cases for paid membership: start or renew after the shop charged, cancel, expire,
announce renewals, and the membership a member holds right now.

Dates are decided here and stored; reads compute the status as of the request time, so a
subscription whose period is over reads as expired even before the job has booked it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from allegiance.errors import Conflict, NotFound, invalid
from allegiance.kit.clock import as_utc
from allegiance.kit.ids import new_id
from allegiance.kit.money import currency_exponent, decimal_places, money_str, to_minor
from allegiance.ledger import service as ledger
from allegiance.member import repository as members
from allegiance.member.models import Member
from allegiance.member.service import check_member_id
from allegiance.order.service import lock_members
from allegiance.outbox import service as outbox
from allegiance.program.compiled import CompiledProgram
from allegiance.program.schema import Plan, Program
from allegiance.program.service import load_program
from allegiance.subscription import repository
from allegiance.subscription.models import Subscription, SubscriptionPayment
from allegiance.subscription.periods import add_days, add_span
from allegiance.subscription.schemas import SubscriptionCancel, SubscriptionCreate

# a renewal may pay ahead, but not for ever: the new period must start within this
PREPAID_HORIZON = timedelta(days=3660)


@dataclass(frozen=True)
class ActiveMembership:
    """What a live subscription gives the member now (for earning and tiers).

    ``earn_multiplier`` multiplies together with the tier's; ``tier_floor`` is the lowest tier
    the member holds while subscribed; ``perks`` add to the tier's (union).
    """

    subscription_id: str
    plan: str
    name: str
    status: str  # trialing | active
    current_period_end: datetime
    cancel_at_period_end: bool
    tier_floor: str | None
    earn_multiplier: Decimal
    perks: tuple[str, ...]


class PlanSwitch(Conflict):
    code = "plan_switch"


def find_plan(program: Program, key: str) -> Plan | None:
    return next((plan for plan in program.plans if plan.key == key), None)


def plan_currency(program: Program, plan: Plan) -> str:
    return plan.currency or program.currency


def subscribe(
    session: Session,
    *,
    tenant_id: str,
    program: CompiledProgram,
    member_id: str,
    request: SubscriptionCreate,
    now: datetime,
) -> dict[str, Any]:
    """Start a subscription, or renew the member's live one of the same plan, for a payment
    the shop has taken (or a trial). A renewal's period starts where the current one ends."""
    check_member_id(member_id)
    document = program.program
    plan = find_plan(document, request.plan)
    if plan is None:
        known = ", ".join(p.key for p in document.plans) or "none"
        raise invalid(["body", "plan"], f"unknown plan {request.plan!r}; plans: {known}")
    currency = plan_currency(document, plan)
    if request.currency is not None and request.currency != currency:
        raise invalid(
            ["body", "currency"],
            f"plan {plan.key} is charged in {currency}, not {request.currency}",
        )
    exponent = currency_exponent(currency)
    paid_at = as_utc(request.paid_at) if request.paid_at is not None else now
    if paid_at > now:
        raise invalid(["body", "paid_at"], "must not be in the future")
    if request.trial:
        if plan.trial_days == 0:
            raise invalid(["body", "trial"], f"plan {plan.key} offers no trial")
        amount_minor = 0
    else:
        assert request.amount is not None
        if decimal_places(request.amount) > exponent:
            raise invalid(
                ["body", "amount"], f"has more than {exponent} decimal places for {currency}"
            )
        amount_minor = to_minor(request.amount, exponent)
        fee_minor = to_minor(plan.fee, exponent)
        if amount_minor != fee_minor:
            raise invalid(
                ["body", "amount"],
                f"plan {plan.key} costs {money_str(fee_minor, exponent)} {currency} per period",
            )

    # the member row lock serialises every decision about this member's subscriptions
    member = lock_members(
        session, tenant_id=tenant_id, program=program, member_ids=[member_id], now=now
    )[member_id]
    events: list[dict[str, Any]] = []
    current = repository.live(session, tenant_id, member_id, lock=True)
    if current is not None:
        if current.plan == plan.key:
            # a late payment still renews the period it was paid in time for
            lapsed = current.current_period_end < paid_at
        else:
            lapsed = current.current_period_end <= now
        if lapsed:
            events.append(_expire(session, current, tenant_id, now))
            current = None
    if request.trial and repository.trial_taken(session, tenant_id, member_id, plan.key):
        raise Conflict(
            f"member {member_id!r} already had the trial of plan {plan.key}", code="trial_used"
        )
    if current is not None and current.plan != plan.key:
        raise PlanSwitch(
            f"member {member_id!r} is subscribed to plan {current.plan} until "
            f"{current.current_period_end.isoformat()}; cancel it before starting {plan.key}",
            errors=[{"loc": ["body", "plan"], "msg": f"another plan ({current.plan}) is live"}],
        )
    tz = program.tz
    renewed = current is not None
    if current is not None:
        if request.trial:
            raise Conflict(
                f"member {member_id!r} is already subscribed to plan {plan.key}",
                code="already_subscribed",
            )
        subscription = current
        start = subscription.current_period_end
        if start > now + PREPAID_HORIZON:
            raise Conflict(
                f"subscription {subscription.subscription_id} is paid until "
                f"{start.isoformat()}; renewals are taken up to 10 years ahead",
                code="renewal_too_early",
            )
        anchor = subscription.anchor_at or start
        end = add_span(start, plan.period, tz, anchor)
        repository.update(
            session,
            subscription,
            current_period_end=end,
            anchor_at=anchor,
            cancel_at_period_end=False,
            cancelled_at=None,
            cancel_reason=None,
            renewal_notified=False,
            updated_at=now,
        )
    else:
        previous_end = repository.last_end(session, tenant_id, member_id)
        # one member's memberships never overlap
        start = max(paid_at, previous_end) if previous_end is not None else paid_at
        if request.trial:
            end = add_days(start, plan.trial_days, tz)
            anchor = None
        else:
            end = add_span(start, plan.period, tz)
            anchor = start
        subscription = repository.insert(
            session,
            {
                "tenant_id": tenant_id,
                "subscription_id": _new_subscription_id(),
                "member_id": member_id,
                "plan": plan.key,
                "status": "active",
                "started_at": start,
                "trial_ends_at": end if request.trial else None,
                "anchor_at": anchor,
                "current_period_end": end,
                "cancel_at_period_end": False,
                "renewal_notified": False,
                "created_at": now,
                "updated_at": now,
            },
        )
    payment = repository.insert_payment(
        session,
        {
            "tenant_id": tenant_id,
            "payment_id": request.id,
            "subscription_id": subscription.subscription_id,
            "member_id": member_id,
            "plan": plan.key,
            "kind": "trial" if request.trial else "payment",
            "amount_minor": amount_minor,
            "currency": currency,
            "paid_at": paid_at,
            "period_start": start,
            "period_end": end,
            "created_at": now,
        },
    )
    payment_data = payment_view(payment)
    events.append(
        outbox.event_row(
            tenant_id,
            "subscription.renewed" if renewed else "subscription.started",
            {
                "subscription_id": subscription.subscription_id,
                "member_id": member_id,
                "plan": plan.key,
                "trial": request.trial,
                "payment_id": payment.payment_id,
                "amount": payment_data["amount"],
                "currency": currency,
                "period_start": start.isoformat(),
                "current_period_end": subscription.current_period_end.isoformat(),
            },
            now,
        )
    )
    if subscription.current_period_end <= now:
        # a payment recorded after its whole period: the membership is over already
        events.append(_expire(session, subscription, tenant_id, now))
    outbox.emit_many(session, events)
    _record_activity(session, tenant_id, document, member, paid_at)
    view = subscription_view(subscription, document, now)
    view["renewed"] = renewed
    view["payment"] = payment_data
    return view


def _record_activity(
    session: Session, tenant_id: str, program: Program, member: Member, at: datetime
) -> None:
    """A payment (or a trial) is the member's activity: it restarts ``inactivity_days``
    expiry like an order does."""
    if member.last_activity_at is not None and member.last_activity_at >= at:
        return
    members.set_activity(session, tenant_id, member.member_id, at)
    deadline = ledger.inactivity_deadline(program, at)
    if deadline is not None:
        settle_at = deadline if member.settle_at is None else min(member.settle_at, deadline)
        members.set_settle_at(session, tenant_id, member.member_id, settle_at)


def cancel_subscription(
    session: Session,
    *,
    tenant_id: str,
    program: CompiledProgram | None,
    member_id: str,
    subscription_id: str,
    cancel: SubscriptionCancel,
    now: datetime,
) -> dict[str, Any]:
    """Cancel at the end of the paid period (the default) or at once.

    Asking for what is already the case changes nothing (a cancellation is idempotent by its
    effect): a repeated cancel, or any cancel of a subscription that has ended, answers with
    the subscription as it is and writes no event.
    """
    if members.get(session, tenant_id, member_id, lock=True) is None:
        raise NotFound(f"member {member_id!r} not found", code="member_not_found")
    subscription = repository.get(session, tenant_id, subscription_id, lock=True)
    if subscription is None or subscription.member_id != member_id:
        raise NotFound(
            f"subscription {subscription_id!r} of member {member_id!r} not found",
            code="subscription_not_found",
        )
    document = program.program if program else None
    events: list[dict[str, Any]] = []
    if subscription.status == "active" and subscription.current_period_end <= now:
        events.append(_expire(session, subscription, tenant_id, now))
    if subscription.status == "active":
        if not cancel.at_period_end:
            repository.update(
                session,
                subscription,
                status="cancelled",
                cancelled_at=now,
                cancel_reason=cancel.reason,
                ended_at=now,
                updated_at=now,
            )
        elif not subscription.cancel_at_period_end:
            repository.update(
                session,
                subscription,
                cancel_at_period_end=True,
                cancelled_at=now,
                cancel_reason=cancel.reason,
                updated_at=now,
            )
        else:
            return subscription_view(subscription, document, now)
        events.append(
            outbox.event_row(
                tenant_id,
                "subscription.cancelled",
                {
                    "subscription_id": subscription.subscription_id,
                    "member_id": member_id,
                    "plan": subscription.plan,
                    "at_period_end": cancel.at_period_end,
                    "ends_at": (
                        subscription.ended_at or subscription.current_period_end
                    ).isoformat(),
                    "reason": cancel.reason,
                },
                now,
            )
        )
    outbox.emit_many(session, events)
    return subscription_view(subscription, document, now)


def _expire(
    session: Session, subscription: Subscription, tenant_id: str, now: datetime
) -> dict[str, Any]:
    """End a subscription whose period is over; returns its ``subscription.expired`` event."""
    ended_at = subscription.current_period_end
    repository.update(session, subscription, status="expired", ended_at=ended_at, updated_at=now)
    return outbox.event_row(
        tenant_id,
        "subscription.expired",
        {
            "subscription_id": subscription.subscription_id,
            "member_id": subscription.member_id,
            "plan": subscription.plan,
            "ended_at": ended_at.isoformat(),
            "reason": "cancelled" if subscription.cancel_at_period_end else "not_renewed",
        },
        now,
    )


def expire_due(session: Session, *, tenant_id: str, now: datetime, limit: int) -> int:
    """Expire up to ``limit`` subscriptions whose period ended (one batch of the job)."""
    due = repository.due_to_expire(session, tenant_id, now, limit)
    outbox.emit_many(session, [_expire(session, s, tenant_id, now) for s in due])
    return len(due)


def announce_renewals(
    session: Session,
    *,
    tenant_id: str,
    program: Program,
    plan: Plan,
    now: datetime,
    limit: int,
) -> int:
    """Write ``subscription.renewal_due`` once per period, ``renewal_notice_days`` before the
    period ends, for live subscriptions of ``plan`` that are not cancelled (one batch)."""
    until = now + timedelta(days=plan.renewal_notice_days)
    due = repository.due_for_notice(session, tenant_id, plan.key, now, until, limit)
    currency = plan_currency(program, plan)
    exponent = currency_exponent(currency)
    events = []
    for subscription in due:
        repository.update(session, subscription, renewal_notified=True)
        events.append(
            outbox.event_row(
                tenant_id,
                "subscription.renewal_due",
                {
                    "subscription_id": subscription.subscription_id,
                    "member_id": subscription.member_id,
                    "plan": plan.key,
                    "current_period_end": subscription.current_period_end.isoformat(),
                    "trial": subscription.trial_ends_at == subscription.current_period_end,
                    "fee": money_str(to_minor(plan.fee, exponent), exponent),
                    "currency": currency,
                },
                now,
            )
        )
    outbox.emit_many(session, events)
    return len(due)


# ---- reads -----------------------------------------------------------------------------------


def status_at(subscription: Subscription, now: datetime) -> str:
    """``trialing`` | ``active`` | ``cancelled`` | ``expired``, as of ``now``."""
    if subscription.status != "active":
        return subscription.status
    if subscription.current_period_end <= now:
        return "expired"
    if subscription.trial_ends_at is not None and now < subscription.trial_ends_at:
        return "trialing"
    return "active"


def _benefits(plan: Plan | None) -> dict[str, Any]:
    if plan is None:  # the plan left the program: the paid period runs out without benefits
        return {"earn_multiplier": 1.0, "perks": []}
    return {
        "earn_multiplier": float(plan.benefits.earn_multiplier),
        "perks": list(plan.benefits.perks),
    }


def subscription_view(
    subscription: Subscription, program: Program | None, now: datetime
) -> dict[str, Any]:
    plan = find_plan(program, subscription.plan) if program else None
    return {
        "subscription_id": subscription.subscription_id,
        "member_id": subscription.member_id,
        "plan": subscription.plan,
        "name": (plan.name if plan else None) or subscription.plan,
        "status": status_at(subscription, now),
        "started_at": subscription.started_at.isoformat(),
        "trial_ends_at": _iso(subscription.trial_ends_at),
        "current_period_end": subscription.current_period_end.isoformat(),
        "cancel_at_period_end": subscription.cancel_at_period_end,
        "cancelled_at": _iso(subscription.cancelled_at),
        "cancel_reason": subscription.cancel_reason,
        "ended_at": _iso(subscription.ended_at),
        "benefits": _benefits(plan),
        "tier_floor": plan.tier if plan else None,
    }


def payment_view(payment: SubscriptionPayment) -> dict[str, Any]:
    exponent = currency_exponent(payment.currency)
    return {
        "payment_id": payment.payment_id,
        "kind": payment.kind,
        "amount": money_str(payment.amount_minor, exponent),
        "currency": payment.currency,
        "paid_at": payment.paid_at.isoformat(),
        "period_start": payment.period_start.isoformat(),
        "period_end": payment.period_end.isoformat(),
    }


def subscriptions_page(
    session: Session,
    *,
    tenant_id: str,
    member_id: str,
    before_id: int | None,
    limit: int,
    now: datetime,
) -> tuple[list[dict[str, Any]], int | None]:
    """A page of the member's subscriptions, newest first, each with its payments; and the
    cursor value for the next page (None at the end)."""
    if members.get(session, tenant_id, member_id) is None:
        raise NotFound(f"member {member_id!r} not found", code="member_not_found")
    compiled = load_program(session, tenant_id=tenant_id)
    program = compiled.program if compiled else None
    rows = repository.page_of_member(session, tenant_id, member_id, before_id, limit + 1)
    page = rows[:limit]
    payments: dict[str, list[dict[str, Any]]] = {}
    for payment in repository.payments_of(session, tenant_id, [s.subscription_id for s in page]):
        payments.setdefault(payment.subscription_id, []).append(payment_view(payment))
    data = []
    for subscription in page:
        view = subscription_view(subscription, program, now)
        view["payments"] = payments.get(subscription.subscription_id, [])
        data.append(view)
    return data, (page[-1].id if len(rows) > limit else None)


def active_memberships(
    session: Session,
    *,
    tenant_id: str,
    member_ids: list[str],
    now: datetime,
    program: CompiledProgram | None = None,
) -> dict[str, ActiveMembership]:
    """The membership each member holds at ``now`` (members without one are left out)."""
    if not member_ids:
        return {}
    compiled = program or load_program(session, tenant_id=tenant_id)
    if compiled is None:
        return {}
    found: dict[str, ActiveMembership] = {}
    for subscription in repository.live_of_members(session, tenant_id, member_ids):
        status = status_at(subscription, now)
        if status not in ("active", "trialing") or subscription.started_at > now:
            continue
        plan = find_plan(compiled.program, subscription.plan)
        found[subscription.member_id] = ActiveMembership(
            subscription_id=subscription.subscription_id,
            plan=subscription.plan,
            name=(plan.name if plan else None) or subscription.plan,
            status=status,
            current_period_end=subscription.current_period_end,
            cancel_at_period_end=subscription.cancel_at_period_end,
            tier_floor=plan.tier if plan else None,
            earn_multiplier=plan.benefits.earn_multiplier if plan else Decimal(1),
            perks=tuple(plan.benefits.perks) if plan else (),
        )
    return found


def active_membership(
    session: Session,
    *,
    tenant_id: str,
    member_id: str,
    now: datetime,
    program: CompiledProgram | None = None,
) -> ActiveMembership | None:
    """The membership the member holds at ``now``, or None. Pass ``program`` when the caller
    has it loaded already."""
    return active_memberships(
        session, tenant_id=tenant_id, member_ids=[member_id], now=now, program=program
    ).get(member_id)


def membership_view(
    session: Session,
    *,
    tenant_id: str,
    member_id: str,
    now: datetime,
    program: CompiledProgram | None = None,
) -> dict[str, Any] | None:
    """The ``membership`` section of the member view."""
    found = active_membership(
        session, tenant_id=tenant_id, member_id=member_id, now=now, program=program
    )
    if found is None:
        return None
    return {
        "subscription_id": found.subscription_id,
        "plan": found.plan,
        "name": found.name,
        "status": found.status,
        "current_period_end": found.current_period_end.isoformat(),
        "cancel_at_period_end": found.cancel_at_period_end,
        "benefits": {
            "earn_multiplier": float(found.earn_multiplier),
            "perks": list(found.perks),
        },
        "tier_floor": found.tier_floor,
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _new_subscription_id() -> str:
    return new_id("sub")
