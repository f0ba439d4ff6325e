"""WooCommerce webhook topics. Order webhooks carry the whole order (a snapshot), so each one is
compared with what is booked: a new order in a booking status is booked, a cancelled one is
cancelled, and refunds not booked yet are booked by their own ids."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from allegiance.errors import invalid
from allegiance.integration import service as core
from allegiance.integration.service import Context, Result
from allegiance.integration.woocommerce import mapping
from allegiance.kit.money import currency_exponent

ORDER_TOPICS = ("order.created", "order.updated", "order.restored")
CANCELLED = ("cancelled",)


def handle(session: Session, ctx: Context, topic: str, payload: Any) -> Result:
    """Apply one delivery of ``topic``; unknown topics are acknowledged and ignored."""
    return core.mapped(session, lambda: _dispatch(session, ctx, topic, payload))


def _dispatch(session: Session, ctx: Context, topic: str, payload: Any) -> Result:
    if not isinstance(payload, dict):
        raise invalid(["body"], "a JSON object is expected")
    if topic in ORDER_TOPICS:
        return apply_order(session, ctx, payload)
    if topic in ("customer.created", "customer.updated"):
        member_id = core.platform_id(payload.get("id"))
        if member_id is None:
            raise invalid(["body", "id"], "an integer id is required")
        return core.upsert_member(
            session, ctx, member_id=member_id, data=mapping.member_of(payload)
        )
    return Result("ignored", {"reason": f"topic {topic!r} is not handled"})


def apply_order(session: Session, ctx: Context, payload: dict[str, Any]) -> Result:
    """Bring one order to what the snapshot says (webhooks and reconciliation)."""

    def run() -> Result:
        program = ctx.program(session)
        exponent = currency_exponent(program.currency)
        status = str(payload.get("status") or "")
        order = mapping.order_of(ctx, payload, exponent)
        steps: list[Result] = []
        if status in CANCELLED:
            steps.append(
                core.cancel_order(session, ctx, order_id=order.id, reason=f"status {status}")
            )
            return core.combine(steps)
        if status in ctx.mapping.book_statuses:
            steps.append(core.book_order(session, ctx, order))
        else:
            steps.append(Result("recorded", {"order_id": order.id, "reason": f"status {status}"}))
        for refund in mapping.refunds_of(ctx, payload, exponent):
            steps.append(core.refund_order(session, ctx, **refund))
        return core.combine(steps)

    return core.mapped(session, run)
