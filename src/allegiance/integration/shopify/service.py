"""Shopify webhook topics and order snapshots (also used by reconciliation).

Booking: ``orders/paid`` books; ``orders/create`` (and ``orders/updated``) book an order that is
already paid, or any order when the mapping says ``book_on: created``; otherwise they are only
recorded as deliveries. Whichever comes first books; the others find the order id booked.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from allegiance.errors import NotFound, invalid
from allegiance.integration import service as core
from allegiance.integration.service import Context, Result
from allegiance.integration.shopify import mapping
from allegiance.kit.money import currency_exponent
from allegiance.member import service as members

ORDER_TOPICS = ("orders/create", "orders/updated", "orders/paid")


def handle(session: Session, ctx: Context, topic: str, payload: Any) -> Result:
    """Apply one delivery of ``topic``; unknown topics are acknowledged and ignored."""
    return core.mapped(session, lambda: _dispatch(session, ctx, topic, payload))


def _dispatch(session: Session, ctx: Context, topic: str, payload: Any) -> Result:
    if not isinstance(payload, dict):
        return core.failure(invalid(["body"], "a JSON object is expected"))
    if topic in ORDER_TOPICS:
        return apply_order(
            session, ctx, payload, paid=topic == "orders/paid", cancels=topic == "orders/updated"
        )
    if topic == "orders/cancelled":
        return apply_order(session, ctx, payload, paid=False, cancels=True)
    if topic == "refunds/create":
        return _refund(session, ctx, payload)
    if topic in ("customers/create", "customers/update"):
        return _customer(session, ctx, payload)
    if topic == "customers/data_request":
        request = payload.get("data_request")
        request_id = core.platform_id(request.get("id")) if isinstance(request, dict) else None
        return core.record_access_request(
            session, ctx, member_id=_customer_id(payload), platform_request_id=request_id
        )
    if topic == "customers/redact":
        return core.erase_member(
            session, ctx, member_id=_customer_id(payload), platform_request_id=None
        )
    if topic == "shop/redact":
        return core.erase_all_members(session, ctx)
    return Result("ignored", {"reason": f"topic {topic!r} is not handled"})


def _customer_id(payload: dict[str, Any]) -> str:
    customer = payload.get("customer")
    found = core.platform_id(customer.get("id")) if isinstance(customer, dict) else None
    if found is None:
        raise invalid(["body", "customer", "id"], "an integer id is required")
    return found


def apply_order(
    session: Session, ctx: Context, payload: dict[str, Any], *, paid: bool, cancels: bool
) -> Result:
    """Bring one order to what the snapshot says: booked once paid (or on creation), its refunds
    booked, cancelled when the snapshot is cancelled (``cancels``: orders/cancelled,
    orders/updated and reconciliation)."""

    def run() -> Result:
        if ctx.mapping.ignore_test_orders and payload.get("test") is True:
            return Result("ignored", {"reason": "test order"})
        program = ctx.program(session)
        exponent = currency_exponent(program.currency)
        order = mapping.order_of(ctx, payload, exponent)
        cancelled = cancels and bool(payload.get("cancelled_at"))
        bookable = paid or ctx.mapping.book_on == "created" or mapping.is_paid(payload)
        steps: list[Result] = []
        if bookable and not cancelled:
            steps.append(core.book_order(session, ctx, order))
        elif cancelled:
            steps.append(
                core.cancel_order(
                    session, ctx, order_id=order.id, reason=_text(payload.get("cancel_reason"))
                )
            )
        else:
            steps.append(Result("recorded", {"order_id": order.id, "reason": "not paid yet"}))
        if not cancelled:
            for refund in (payload.get("refunds") or [])[: mapping.MAX_LINES]:
                if isinstance(refund, dict):
                    args = mapping.refund_of(ctx, refund, exponent, order_id=payload.get("id"))
                    steps.append(core.refund_order(session, ctx, **args))
        return core.combine(steps)

    return core.mapped(session, run)


def _text(value: Any) -> str | None:
    return str(value)[:500] if value else None


def _refund(session: Session, ctx: Context, payload: dict[str, Any]) -> Result:
    exponent = currency_exponent(ctx.program(session).currency)
    return core.refund_order(session, ctx, **mapping.refund_of(ctx, payload, exponent))


def _customer(session: Session, ctx: Context, payload: dict[str, Any]) -> Result:
    member_id = core.platform_id(payload.get("id"))
    if member_id is None:
        raise invalid(["body", "id"], "an integer id is required")
    try:
        existing = members.get_member(session, tenant_id=ctx.tenant_id, member_id=member_id)
        attributes: dict[str, Any] | None = existing.attributes
    except NotFound:
        attributes = None
    data = mapping.member_of(payload, attributes)
    if attributes is None and payload.get("created_at"):
        data = data.model_copy(update={"enrolled_at": _timestamp(payload["created_at"])})
    return core.upsert_member(session, ctx, member_id=member_id, data=data)


def _timestamp(value: Any) -> Any:
    from allegiance.kit.clock import parse_timestamp

    try:
        return parse_timestamp(str(value))
    except ValueError as exc:
        raise invalid(["body", "created_at"], str(exc)) from exc
