"""Promotions for carts and booked orders: the glue between the engine and the order flow."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from allegiance.earning import service as earning
from allegiance.earning.engine import UsageBook
from allegiance.kit.money import currency_exponent, money_str, round_to_minor
from allegiance.program.compiled import CompiledProgram
from allegiance.promotion import repository
from allegiance.promotion.engine import CartLine, Outcome, evaluate_promotions, usage_keys

if TYPE_CHECKING:
    from allegiance.order.service import PreparedOrder


def keys(program: CompiledProgram, member_id: str, at: datetime) -> list[tuple[str, str, str]]:
    """Usage counters the promotions of a cart of ``member_id`` at ``at`` read."""
    return usage_keys(program.program, member_id, at, program.tz)


def cart_lines(order: PreparedOrder, exponent: int) -> list[CartLine]:
    """The undiscounted lines: ``unit_price × quantity`` when sent, else ``amount``."""
    found: list[CartLine] = []
    for index, line in enumerate(order.lines):
        unit = order.unit_prices[index] if index < len(order.unit_prices) else None
        base = unit * line.quantity if unit is not None else line.amount
        found.append(
            CartLine(
                index=index,
                sku=str(line.context.get("sku", "")),
                quantity=line.quantity,
                base_minor=round_to_minor(base, exponent, "half_up"),
                context=line.context,
            )
        )
    return found


def evaluate(
    program: CompiledProgram,
    order: PreparedOrder,
    context: dict[str, Any],
    usage: UsageBook,
) -> Outcome:
    exponent = currency_exponent(program.currency)
    return evaluate_promotions(
        program.program,
        lines=cart_lines(order, exponent),
        shipping_minor=order.shipping_minor,
        coupon_codes=list(context["order"].get("coupon_codes", [])),
        context=context,
        member_id=order.member_id or "",
        at=order.placed_at,
        usage=usage,
        tz=program.tz,
        exponent=exponent,
    )


def effects(outcome: Outcome, exponent: int) -> list[dict[str, Any]]:
    """Typed effects: ``discount`` (with its lines) and ``free_item`` entries."""
    found: list[dict[str, Any]] = []
    for a in outcome.applied:
        if a.amount_minor > 0:
            found.append(
                {
                    "type": "discount",
                    "promotion": a.promotion.key,
                    "target": a.target,
                    "amount": money_str(a.amount_minor, exponent),
                    "lines": [
                        {"index": i, "amount": money_str(v, exponent)} for i, v in a.lines.items()
                    ],
                    **({"code": a.promotion.code} if a.promotion.code else {}),
                }
            )
        for sku, quantity, name in a.free_items:
            found.append(
                {
                    "type": "free_item",
                    "promotion": a.promotion.key,
                    "sku": sku,
                    "quantity": int(quantity)
                    if quantity == quantity.to_integral_value()
                    else float(quantity),
                    **({"name": name} if name else {}),
                }
            )
    return found


def cart_response(outcome: Outcome, order: PreparedOrder, exponent: int) -> dict[str, Any]:
    """The ``discounts``, ``free_items``, ``codes`` and extra ``totals`` of an evaluation."""
    found = effects(outcome, exponent)
    shipping = order.shipping_minor - outcome.shipping_discount_minor
    after = outcome.subtotal_minor - outcome.items_discount_minor + shipping + order.tax_minor
    return {
        "discounts": [e for e in found if e["type"] == "discount"],
        "free_items": [e for e in found if e["type"] == "free_item"],
        "codes": outcome.codes,
        "totals": {
            "discount": money_str(outcome.discount_minor, exponent),
            "shipping": money_str(shipping, exponent),
            "total_after_discounts": money_str(max(after, 0), exponent),
        },
    }


def book(
    session: Session,
    *,
    tenant_id: str,
    program: CompiledProgram,
    order: PreparedOrder,
    context: dict[str, Any],
    usage: UsageBook,
) -> list[dict[str, Any]]:
    """Promotions of a booked order: count their use, keep them on the order, return effects.

    ``usage`` holds the locked counters (see ``keys``); the caller saves it.
    """
    if not program.program.promotions:
        return []
    outcome = evaluate(program, order, context, usage)
    if not outcome.applied:
        return []
    for applied in outcome.applied:
        for scope, member_id, period in applied.usage:
            usage.add(scope, member_id, period, 1, 0)
    exponent = currency_exponent(program.currency)
    repository.set_order_promotions(
        session,
        tenant_id,
        order.order_id,
        [
            {
                "promotion": a.promotion.key,
                "amount": money_str(a.amount_minor, exponent),
                "usage": [list(k) for k in a.usage],
            }
            for a in outcome.applied
        ],
    )
    return effects(outcome, exponent)


def release(session: Session, *, tenant_id: str, stored: list[dict[str, Any]] | None) -> None:
    """Give back the limit usage of a cancelled order's promotions."""
    if not stored:
        return
    usage = UsageBook()
    for entry in stored:
        for scope, member_id, period in entry.get("usage", []):
            usage.add(scope, member_id, period, -1, 0)
    earning.save_usage(session, tenant_id=tenant_id, usage=usage)
