"""Price lists applied to a cart for ``POST /v1/evaluate``: per-line prices and savings."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, localcontext
from typing import TYPE_CHECKING, Any

from allegiance.kit.money import currency_exponent, money_str, round_to_minor, to_minor
from allegiance.pricing.engine import CartLine, PricedLine, price_lines
from allegiance.program.schema import Program

if TYPE_CHECKING:
    from allegiance.order.service import PreparedOrder


def cart_lines(cart: PreparedOrder, exponent: int) -> list[CartLine]:
    """The list price of a line is the item's ``unit_price``, else ``amount / quantity``."""
    lines: list[CartLine] = []
    for index, line in enumerate(cart.lines):
        sent = cart.unit_prices[index] if index < len(cart.unit_prices) else None
        quantity = line.quantity
        if sent is not None:
            unit = sent
            list_amount = round_to_minor(sent * quantity, exponent, "half_up")
        else:
            with localcontext() as ctx:
                ctx.prec = 40
                unit = line.amount / quantity if quantity else Decimal(0)
            list_amount = to_minor(line.amount, exponent)
        lines.append(
            CartLine(
                index=index,
                sku=str(line.context.get("sku") or ""),
                category=str(line.context.get("category") or ""),
                quantity=quantity,
                list_unit_price=unit,
                list_amount_minor=list_amount,
            )
        )
    return lines


def price_cart(
    program: Program, cart: PreparedOrder, context: dict[str, Any], *, now: datetime
) -> dict[str, Any]:
    """``lines``, ``price_savings`` and ``priced_subtotal`` for the evaluate response.

    ``context`` holds ``member``, ``account`` and ``now`` for the lists' ``eligible``; the
    lists' windows are compared with the cart's ``placed_at`` (default: now).
    """
    exponent = currency_exponent(program.currency)
    priced = price_lines(
        program, cart_lines(cart, exponent), {**context, "now": now}, at=cart.placed_at,
        exponent=exponent,
    )  # fmt: skip
    return {
        "lines": [line_view(p, exponent) for p in priced],
        "price_savings": money_str(sum(p.savings_minor for p in priced), exponent),
        "priced_subtotal": money_str(sum(p.amount_minor for p in priced), exponent),
    }


def line_view(priced: PricedLine, exponent: int) -> dict[str, Any]:
    line = priced.line
    quantity = line.quantity
    return {
        "index": line.index,
        "sku": line.sku,
        "quantity": int(quantity) if quantity == quantity.to_integral_value() else float(quantity),
        "list_unit_price": money_str(priced.list_unit_minor, exponent),
        "unit_price": money_str(priced.unit_minor, exponent),
        "amount": money_str(priced.amount_minor, exponent),
        "savings": money_str(priced.savings_minor, exponent),
        "price_list": priced.price_list,
        "rule": priced.rule,
        "volume_rule": priced.volume_rule,
    }
