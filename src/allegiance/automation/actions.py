"""What a run does, action by action. Every action is idempotent per run: re-executing a run
(a retry after a crash between the action and the commit) never awards or issues twice."""

from __future__ import annotations

from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any

from sqlalchemy.orm import Session

from allegiance.automation import repository
from allegiance.automation.models import AutomationRun
from allegiance.automation.schemas import Action
from allegiance.kit.money import currency_exponent
from allegiance.member import repository as members
from allegiance.member.models import Member
from allegiance.program.compiled import CompiledProgram


class ActionFailed(RuntimeError):
    """The run stops and is retried later (or marked failed after the last attempt)."""


def execute(
    session: Session,
    *,
    compiled: CompiledProgram,
    run: AutomationRun,
    actions: list[Action],
    member: Member | None,
    now: datetime,
) -> tuple[list[dict[str, Any]], list[EmailMessage]]:
    """Perform the database side of every action; e-mails are composed and returned for the
    caller to deliver once everything else succeeded."""
    results: list[dict[str, Any]] = []
    outgoing: list[EmailMessage] = []
    context: dict[str, Any] = {
        "event": run.trigger,
        "data": (run.trigger or {}).get("data") or {},
    }
    for index, action in enumerate(actions):
        kind = action.kind
        spec = action.spec
        if kind == "send_email":
            results.append(
                _send_email(session, compiled, run, member, spec, context, outgoing, now)
            )
        elif kind == "award_points":
            results.append(_award(session, compiled, run, index, member, spec, now))
        elif kind == "issue_reward":
            found = _issue_reward(session, compiled, run, index, member, spec.reward, now)
            if found.get("coupon"):
                context["coupon"] = found["coupon"]
            results.append(found)
        elif kind in ("add_tag", "remove_tag"):
            results.append(_tag(session, run, member, kind, spec.tag, now))
        elif kind == "webhook":
            results.append(_webhook(session, run, spec.endpoint, now))
    return results, outgoing


def _need_member(member: Member | None, kind: str) -> Member:
    if member is None:
        raise ActionFailed(f"{kind} needs a member: the trigger names none (or it is unknown)")
    return member


def _send_email(
    session: Session,
    compiled: CompiledProgram,
    run: AutomationRun,
    member: Member | None,
    spec: Any,
    context: dict[str, Any],
    outgoing: list[EmailMessage],
    now: datetime,
) -> dict[str, Any]:
    from allegiance.email import service as email
    from allegiance.email.templates import RenderError

    target = _need_member(member, "send_email")
    try:
        composed = email.compose(
            session,
            tenant_id=run.tenant_id,
            program=compiled.program,
            member=target,
            template=spec.template,
            locale=spec.locale,
            to=spec.to,
            marketing=spec.marketing,
            context=context,
            now=now,
        )
    except RenderError as exc:
        raise ActionFailed(str(exc)) from exc
    result: dict[str, Any] = {"action": "send_email", "template": spec.template}
    if composed.message is None:
        result.update({"status": "skipped", "reason": composed.skipped})
    else:
        outgoing.append(composed.message)
        result.update({"status": "sent", "locale": composed.locale, "to": composed.to})
    return result


def _award(
    session: Session,
    compiled: CompiledProgram,
    run: AutomationRun,
    index: int,
    member: Member | None,
    spec: Any,
    now: datetime,
) -> dict[str, Any]:
    from allegiance.errors import DomainError
    from allegiance.member.service import adjust_points
    from allegiance.order.schemas import AdjustmentCreate

    target = _need_member(member, "award_points")
    adjustment_id = f"automation-{run.id}-{index}"
    wallet = spec.wallet or compiled.program.default_wallet
    result = {"action": "award_points", "wallet": wallet, "amount": str(spec.amount)}
    if repository.transfer_exists(session, run.tenant_id, f"adjustment/{adjustment_id}"):
        return {**result, "status": "already_awarded"}
    expires_at = spec.expires_at
    if spec.expires_days is not None:
        expires_at = now + timedelta(days=spec.expires_days)
    try:
        adjust_points(
            session,
            tenant_id=run.tenant_id,
            member_id=target.member_id,
            adjustment=AdjustmentCreate(
                id=adjustment_id,
                wallet=wallet,
                amount=spec.amount,
                reason=spec.reason or f"automation {run.automation_key}",
                expires_at=expires_at,
            ),
            now=now,
        )
    except DomainError as exc:
        raise ActionFailed(f"award_points: {exc.detail}") from exc
    return {**result, "status": "awarded"}


def _issue_reward(
    session: Session,
    compiled: CompiledProgram,
    run: AutomationRun,
    index: int,
    member: Member | None,
    reward_key: str,
    now: datetime,
) -> dict[str, Any]:
    from allegiance.coupon import service as coupons
    from allegiance.coupon.schemas import CouponSettings

    target = _need_member(member, "issue_reward")
    source_id = f"{run.id}-{index}"
    result: dict[str, Any] = {"action": "issue_reward", "reward": reward_key}
    existing = repository.coupons_of_source(session, run.tenant_id, source_id)
    exponent = currency_exponent(compiled.currency)
    if existing:
        view = coupons.coupon_view(existing[0], exponent)
        coupon = {k: view.get(k) for k in ("code", "starts_at", "expires_at")}
        return {**result, "status": "already_issued", "coupon": coupon}
    reward = next((r for r in compiled.program.rewards if r.key == reward_key), None)
    if reward is None:
        raise ActionFailed(f"issue_reward: reward {reward_key!r} is not in the program")
    issued = coupons.issue_coupon(
        session,
        tenant_id=run.tenant_id,
        spec=coupons.reward_spec(reward),
        settings=reward.coupon or CouponSettings(),
        member_id=target.member_id,
        source_type="automation",
        source_id=source_id,
        now=now,
        currency=compiled.currency,
        kind="rule",
    )
    coupon = {k: issued.get(k) for k in ("code", "starts_at", "expires_at")}
    return {**result, "status": "issued", "coupon": coupon}


def _tag(
    session: Session,
    run: AutomationRun,
    member: Member | None,
    kind: str,
    tag: str,
    now: datetime,
) -> dict[str, Any]:
    target = _need_member(member, kind)
    tags = list(target.tags or [])
    if kind == "add_tag" and tag not in tags:
        tags.append(tag)
    elif kind == "remove_tag":
        tags = [t for t in tags if t != tag]
    if tags != list(target.tags or []):
        members.set_tags(session, run.tenant_id, target.member_id, tags, now)
        target.tags = tags
    return {"action": kind, "tag": tag, "tags": tags}


def _webhook(session: Session, run: AutomationRun, endpoint: str, now: datetime) -> dict[str, Any]:
    try:
        from allegiance.webhook.service import enqueue_delivery  # type: ignore[import-not-found,unused-ignore]
    except ImportError as exc:
        raise ActionFailed("webhook: outbound webhooks are not available") from exc
    trigger = run.trigger or {}
    event = {
        "id": f"{trigger.get('id') or 'run'}-{run.automation_key}-{run.id}",
        "type": trigger.get("type", "automation.run"),
        "created_at": trigger.get("created_at") or now.isoformat(),
        "tenant_id": run.tenant_id,
        "data": {**(trigger.get("data") or {}), "automation": run.automation_key},
    }
    enqueue_delivery(session, tenant_id=run.tenant_id, endpoint_id=endpoint, event=event, now=now)
    return {"action": "webhook", "endpoint": endpoint, "event_id": event["id"]}
