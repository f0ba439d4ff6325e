"""Magento 2 REST order records (``GET /V1/orders/{id}``) in the /v1 model.

Only top-level rows count: a configurable or bundle product comes as a parent row with the
price and child rows (``parent_item_id`` set) that would count it twice.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from allegiance.errors import invalid
from allegiance.integration.service import Context, decimal, platform_id, quantize
from allegiance.order.schemas import OrderCreate

MAX_LINES = 1000


def _text(value: Any, limit: int) -> str:
    return str(value or "")[:limit]


def order_id_of(ctx: Context, payload: dict[str, Any]) -> str:
    found = platform_id(payload.get("entity_id"))
    if found is None:
        raise invalid(["body", "entity_id"], "the order's entity_id is required")
    return ctx.order_id(found)


def member_id_of(payload: dict[str, Any]) -> str | None:
    if payload.get("customer_is_guest") in (1, True, "1"):
        return None
    return platform_id(payload.get("customer_id"))


def top_level_items(payload: dict[str, Any]) -> list[dict[str, Any]]:
    rows = payload.get("items") or []
    if not isinstance(rows, list) or len(rows) > MAX_LINES:
        raise invalid(["body", "items"], f"a list of at most {MAX_LINES} rows")
    return [r for r in rows if isinstance(r, dict) and not r.get("parent_item_id")]


def order_of(ctx: Context, payload: dict[str, Any], exponent: int) -> OrderCreate:
    items: list[dict[str, Any]] = []
    for index, row in enumerate(top_level_items(payload)):
        quantity = decimal(row.get("qty_ordered"), f"items.{index}.qty_ordered")
        row_total = decimal(row.get("row_total"), f"items.{index}.row_total")
        if not row_total and row.get("price") is not None:
            row_total = decimal(row.get("price"), f"items.{index}.price") * quantity
        discount = abs(decimal(row.get("discount_amount"), f"items.{index}.discount_amount"))
        items.append(
            {
                "sku": _text(row.get("sku"), 255),
                "name": _text(row.get("name"), 500) or None,
                "category": _text(row.get("product_type"), 255) or None,
                "quantity": quantity if quantity > 0 else Decimal(1),
                "amount": max(quantize(row_total - discount, exponent), Decimal(0)),
                "attributes": {"product_id": str(row["product_id"])}
                if row.get("product_id")
                else {},
            }
        )
    shipping = decimal(payload.get("shipping_amount"), "shipping_amount")
    tax = decimal(payload.get("tax_amount"), "tax_amount")
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
    created = payload.get("created_at")
    code = payload.get("coupon_code")
    return OrderCreate.model_validate(
        {
            "id": order_id_of(ctx, payload),
            "member_id": member_id_of(payload),
            # Magento stores UTC as "YYYY-MM-DD HH:MM:SS"
            "placed_at": created if created else None,
            "currency": payload.get("order_currency_code") or payload.get("base_currency_code"),
            "items": items,
            "shipping_amount": quantize(shipping, exponent),
            "tax_amount": quantize(tax, exponent),
            "discount_amount": quantize(
                abs(decimal(payload.get("discount_amount"), "discount_amount")), exponent
            ),
            "total": quantize(decimal(payload.get("grand_total"), "grand_total"), exponent),
            "coupon_codes": [_text(code, 100)] if code else [],
            "channel": ctx.mapping.channel
            or _text(payload.get("store_name"), 100).split("\n")[0]
            or None,
            "brand": ctx.mapping.brand,
            "attributes": {
                "platform": "magento",
                "order_number": _text(payload.get("increment_id"), 100),
            },
        }
    )


def refunded_of(payload: dict[str, Any], exponent: int) -> Decimal:
    return quantize(decimal(payload.get("total_refunded"), "total_refunded"), exponent)
