"""WooCommerce REST v3 records (webhook bodies with API version wp_api_v3) in the /v1 model.

Money is a decimal string (``line_items[].price`` is a number); ``customer_id`` 0 is a guest;
``date_created`` is site-local, ``date_created_gmt`` is UTC.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from allegiance.errors import invalid
from allegiance.integration.service import Context, decimal, platform_id, quantize
from allegiance.member.schemas import MemberUpsert
from allegiance.order.schemas import OrderCreate

MAX_LINES = 1000


def _text(value: Any, limit: int) -> str:
    return str(value or "")[:limit]


def _utc(value: Any) -> str | None:
    # the *_gmt fields carry no offset but are UTC
    return f"{value}+00:00" if isinstance(value, str) and value and "+" not in value else value


def order_id_of(ctx: Context, payload: dict[str, Any]) -> str:
    found = platform_id(payload.get("id"))
    if found is None:
        raise invalid(["body", "id"], "an integer id is required")
    return ctx.order_id(found)


def order_of(ctx: Context, payload: dict[str, Any], exponent: int) -> OrderCreate:
    lines = payload.get("line_items") or []
    if not isinstance(lines, list) or len(lines) > MAX_LINES:
        raise invalid(["body", "line_items"], f"a list of at most {MAX_LINES} lines")
    items: list[dict[str, Any]] = []
    for index, line in enumerate(lines):
        if not isinstance(line, dict):
            raise invalid(["body", "line_items", index], "a line item object")
        quantity = decimal(line.get("quantity"), f"line_items.{index}.quantity")
        # total: what the line costs after coupons, before tax
        amount = decimal(line.get("total"), f"line_items.{index}.total")
        items.append(
            {
                "sku": _text(line.get("sku"), 255),
                "name": _text(line.get("name"), 500) or None,
                "quantity": quantity if quantity > 0 else Decimal(1),
                "amount": max(quantize(amount, exponent), Decimal(0)),
                "attributes": {
                    k: str(line[k]) for k in ("product_id", "variation_id") if line.get(k)
                },
            }
        )
    shipping = decimal(payload.get("shipping_total"), "shipping_total")
    tax = decimal(payload.get("total_tax"), "total_tax")
    if ctx.mapping.earn_on == "total":
        for key, value in (("shipping", shipping), ("tax", tax)):
            if value > 0:
                items.append(
                    {
                        "sku": key,
                        "name": key.title(),
                        "category": key,
                        "quantity": 1,
                        "amount": value,
                    }
                )
    codes = [
        _text(c.get("code"), 100)
        for c in payload.get("coupon_lines") or []
        if isinstance(c, dict) and c.get("code")
    ][:50]
    return OrderCreate.model_validate(
        {
            "id": order_id_of(ctx, payload),
            "member_id": platform_id(payload.get("customer_id")),
            "placed_at": _utc(payload.get("date_created_gmt")) or payload.get("date_created"),
            "currency": payload.get("currency"),
            "items": items,
            "shipping_amount": quantize(shipping, exponent),
            "tax_amount": quantize(tax, exponent),
            "discount_amount": quantize(
                decimal(payload.get("discount_total"), "discount_total"), exponent
            ),
            "total": quantize(decimal(payload.get("total"), "total"), exponent),
            "coupon_codes": codes,
            "channel": ctx.mapping.channel or _text(payload.get("created_via"), 100) or None,
            "brand": ctx.mapping.brand,
            "attributes": {
                "platform": "woocommerce",
                "order_number": _text(payload.get("number"), 100),
            },
        }
    )


def refunds_of(ctx: Context, payload: dict[str, Any], exponent: int) -> list[dict[str, Any]]:
    """The order's ``refunds[]`` (``{id, reason, total: "-10.00"}``) as refund_order arguments."""
    found = []
    order_id = order_id_of(ctx, payload)
    for index, refund in enumerate((payload.get("refunds") or [])[:MAX_LINES]):
        if not isinstance(refund, dict):
            continue
        refund_id = platform_id(refund.get("id"))
        if refund_id is None:
            raise invalid(["body", "refunds", index, "id"], "an integer id is required")
        amount = abs(decimal(refund.get("total"), f"refunds.{index}.total"))
        found.append(
            {
                "order_id": order_id,
                "refund_id": ctx.order_id(refund_id),
                "amount": quantize(amount, exponent),
                "reason": _text(refund.get("reason"), 500) or None,
            }
        )
    return found


def member_of(customer: dict[str, Any]) -> MemberUpsert:
    found = customer.get("billing")
    billing: dict[str, Any] = found if isinstance(found, dict) else {}
    name = " ".join(
        str(part) for part in (customer.get("first_name"), customer.get("last_name")) if part
    )
    data: dict[str, Any] = {
        "email": _text(customer.get("email"), 320) or None,
        "name": name[:200] or None,
        "phone": _text(billing.get("phone"), 50) or None,
    }
    if customer.get("date_created_gmt"):
        data["enrolled_at"] = _utc(customer.get("date_created_gmt"))
    return MemberUpsert.model_validate(data)
