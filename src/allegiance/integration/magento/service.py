"""Magento 2 orders, pushed to the webhook endpoint or imported from files.

Magento has no signed webhooks and no refund ids in the order record: an order snapshot is
booked once it reaches a booking status, cancelled when ``state`` is ``canceled``, and a grown
``total_refunded`` is booked as one refund whose id is the order id plus the cumulative refunded
amount, so the same snapshot twice books it once.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from allegiance.errors import invalid
from allegiance.integration import service as core
from allegiance.integration.magento import mapping
from allegiance.integration.service import Context, Result
from allegiance.kit.money import currency_exponent, to_minor
from allegiance.order import repository as orders_repo

MAX_ORDERS_PER_BODY = 100


def orders_in(payload: Any) -> list[Any]:
    """A body or file holds one order, ``{"order": {...}}``, a list, or a search result
    ``{"items": [orders]}``."""
    if isinstance(payload, list):
        found = payload
    elif isinstance(payload, dict) and isinstance(payload.get("order"), dict):
        found = [payload["order"]]
    elif (
        isinstance(payload, dict)
        and "entity_id" not in payload
        and isinstance(payload.get("items"), list)
    ):
        found = payload["items"]
    else:
        found = [payload]
    return found


def handle(session: Session, ctx: Context, payload: Any) -> Result:
    found = orders_in(payload)
    if len(found) > MAX_ORDERS_PER_BODY:
        return core.failure(invalid(["body"], f"at most {MAX_ORDERS_PER_BODY} orders per request"))
    return core.combine(
        [apply_order(session, ctx, order) for order in found] or [Result("ignored")]
    )


def apply_order(session: Session, ctx: Context, payload: Any) -> Result:
    def run() -> Result:
        if not isinstance(payload, dict):
            raise invalid(["body"], "an order object is expected")
        program = ctx.program(session)
        exponent = currency_exponent(program.currency)
        order = mapping.order_of(ctx, payload, exponent)
        state = str(payload.get("state") or "")
        status = str(payload.get("status") or "")
        if state == "canceled" or status == "canceled":
            return core.cancel_order(session, ctx, order_id=order.id, reason="canceled")
        steps: list[Result] = []
        if state in ctx.mapping.book_statuses or status in ctx.mapping.book_statuses:
            steps.append(core.book_order(session, ctx, order))
        else:
            steps.append(Result("recorded", {"order_id": order.id, "reason": f"state {state}"}))
        refunded = mapping.refunded_of(payload, exponent)
        booked = orders_repo.get_order(session, ctx.tenant_id, order.id)
        if refunded > 0 and booked is not None:
            delta_minor = to_minor(refunded, exponent) - booked.refunded_minor
            if delta_minor > 0:
                steps.append(
                    core.refund_order(
                        session,
                        ctx,
                        order_id=order.id,
                        refund_id=f"{order.id}-refunded-{to_minor(refunded, exponent)}",
                        amount=refunded - booked.refunded_minor * _unit(exponent),
                    )
                )
        return core.combine(steps)

    return core.mapped(session, run)


def _unit(exponent: int) -> Any:
    from decimal import Decimal

    return Decimal(1).scaleb(-exponent)
