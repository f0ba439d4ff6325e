"""Shopify Admin REST payloads (webhook bodies and ``orders.json`` records) in the /v1 model."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from allegiance.errors import invalid
from allegiance.integration.service import Context, decimal, platform_id, quantize
from allegiance.member.schemas import MemberUpsert
from allegiance.order.schemas import OrderCreate, RefundItem

MAX_LINES = 1000
PAID = {"paid", "partially_refunded", "refunded"}


def _text(value: Any, limit: int) -> str:
    return str(value or "")[:limit]


def _required_id(payload: dict[str, Any], key: str) -> str:
    found = platform_id(payload.get(key))
    if found is None:
        raise invalid(["body", key], "an integer id is required")
    return found


def _spread(amounts: list[int], target: int) -> list[int]:
    """Scale line amounts (minor units) down to ``target`` in proportion, keeping the sum exact
    (largest remainder): order-level discounts Shopify does not allocate to lines."""
    total = sum(amounts)
    if total <= target or total == 0:
        return amounts
    shares = [a * target // total for a in amounts]
    rest = target - sum(shares)
    order = sorted(range(len(amounts)), key=lambda i: amounts[i] * target % total, reverse=True)
    for i in order[:rest]:
        shares[i] += 1
    return shares


def order_of(ctx: Context, payload: dict[str, Any], exponent: int) -> OrderCreate:
    order_id = ctx.order_id(_required_id(payload, "id"))
    customer = payload.get("customer") or {}
    member_id = platform_id(customer.get("id")) if isinstance(customer, dict) else None
    lines = payload.get("line_items") or []
    if not isinstance(lines, list) or len(lines) > MAX_LINES:
        raise invalid(["body", "line_items"], f"a list of at most {MAX_LINES} lines")
    unit = Decimal(1).scaleb(-exponent)
    items: list[dict[str, Any]] = []
    minor: list[int] = []
    for index, line in enumerate(lines):
        if not isinstance(line, dict):
            raise invalid(["body", "line_items", index], "a line item object")
        quantity = decimal(line.get("quantity"), f"line_items.{index}.quantity")
        price = decimal(line.get("price"), f"line_items.{index}.price")
        allocations = line.get("discount_allocations") or []
        if allocations:
            discount = sum(
                (
                    decimal(a.get("amount"), f"line_items.{index}.discount_allocations")
                    for a in allocations
                ),
                Decimal(0),
            )
        else:
            discount = decimal(line.get("total_discount"), f"line_items.{index}.total_discount")
        amount = max(quantize(price * quantity - discount, exponent), Decimal(0))
        minor.append(int(amount / unit))
        gift = bool(line.get("gift_card"))
        items.append(
            {
                "sku": _text(line.get("sku"), 255),
                "name": _text(line.get("name") or line.get("title"), 500) or None,
                "category": "gift_card" if gift else None,
                "labels": ["gift_card"] if gift else [],
                "quantity": quantity,
                "unit_price": quantize(price, exponent),
                "attributes": {
                    k: str(line[k]) for k in ("product_id", "variant_id", "vendor") if line.get(k)
                },
            }
        )
    subtotal = payload.get("subtotal_price")
    if subtotal is not None:
        target = int(quantize(decimal(subtotal, "subtotal_price"), exponent) / unit)
        minor = _spread(minor, max(target, 0))
    for item, amount_minor in zip(items, minor, strict=True):
        item["amount"] = Decimal(amount_minor) * unit
    shipping = sum(
        (
            decimal(s.get("discounted_price", s.get("price")), "shipping_lines.discounted_price")
            for s in payload.get("shipping_lines") or []
            if isinstance(s, dict)
        ),
        Decimal(0),
    )
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
        _text(d.get("code"), 100)
        for d in payload.get("discount_codes") or []
        if isinstance(d, dict) and d.get("code")
    ][:50]
    return OrderCreate.model_validate(
        {
            "id": order_id,
            "member_id": member_id,
            "placed_at": payload.get("processed_at") or payload.get("created_at"),
            "currency": payload.get("currency"),
            "items": items,
            "shipping_amount": quantize(shipping, exponent),
            "tax_amount": quantize(tax, exponent),
            "discount_amount": quantize(
                decimal(payload.get("total_discounts"), "total_discounts"), exponent
            ),
            "total": quantize(decimal(payload.get("total_price"), "total_price"), exponent)
            if payload.get("total_price") is not None
            else None,
            "coupon_codes": codes,
            "channel": ctx.mapping.channel or _text(payload.get("source_name"), 100) or None,
            "brand": ctx.mapping.brand,
            "attributes": {
                "platform": "shopify",
                "order_number": str(payload.get("order_number") or ""),
                "order_name": _text(payload.get("name"), 100),
            },
        }
    )


def is_paid(payload: dict[str, Any]) -> bool:
    return payload.get("financial_status") in PAID


def refund_of(
    ctx: Context, refund: dict[str, Any], exponent: int, *, order_id: Any = None
) -> dict[str, Any]:
    """Keyword arguments for ``refund_order``: the money returned to the customer (successful
    refund transactions), or else the refunded lines (subtotal and tax)."""
    refund_id = ctx.order_id(_required_id(refund, "id"))
    found_order = platform_id(refund.get("order_id")) or platform_id(order_id)
    if found_order is None:
        raise invalid(["body", "order_id"], "an integer id is required")
    transactions = [
        t
        for t in refund.get("transactions") or []
        if isinstance(t, dict) and t.get("kind") == "refund" and t.get("status") == "success"
    ]
    reason = _text(refund.get("note"), 500) or None
    result: dict[str, Any] = {
        "order_id": ctx.order_id(found_order),
        "refund_id": refund_id,
        "reason": reason,
    }
    if transactions:
        result["amount"] = quantize(
            sum(
                (decimal(t.get("amount"), "transactions.amount") for t in transactions), Decimal(0)
            ),
            exponent,
        )
        return result
    items = []
    for index, line in enumerate((refund.get("refund_line_items") or [])[:MAX_LINES]):
        if not isinstance(line, dict):
            continue
        amount = decimal(line.get("subtotal"), f"refund_line_items.{index}.subtotal") + decimal(
            line.get("total_tax"), f"refund_line_items.{index}.total_tax"
        )
        quantity = decimal(line.get("quantity"), f"refund_line_items.{index}.quantity")
        sku = (
            (line.get("line_item") or {}).get("sku")
            if isinstance(line.get("line_item"), dict)
            else None
        )
        items.append(
            RefundItem(
                sku=_text(sku, 255),
                quantity=quantity if quantity > 0 else Decimal(1),
                amount=max(quantize(amount, exponent), Decimal(0)),
            )
        )
    result["items"] = items
    return result


def member_of(customer: dict[str, Any], existing_attributes: dict[str, Any] | None) -> MemberUpsert:
    """A customer record as a member profile; marketing consent lands in attributes."""
    name = " ".join(
        str(part) for part in (customer.get("first_name"), customer.get("last_name")) if part
    )
    tags_text = customer.get("tags")
    tags = (
        [t.strip()[:100] for t in tags_text.split(",") if t.strip()][:100]
        if isinstance(tags_text, str)
        else None
    )
    attributes = dict(existing_attributes or {})
    email_consent = customer.get("email_marketing_consent")
    if isinstance(email_consent, dict) and email_consent.get("state"):
        attributes["email_marketing_consent"] = email_consent.get("state") == "subscribed"
    elif isinstance(customer.get("accepts_marketing"), bool):
        attributes["email_marketing_consent"] = customer["accepts_marketing"]
    sms_consent = customer.get("sms_marketing_consent")
    if isinstance(sms_consent, dict) and sms_consent.get("state"):
        attributes["sms_marketing_consent"] = sms_consent.get("state") == "subscribed"
    if customer.get("state"):
        attributes["shopify_state"] = _text(customer.get("state"), 40)
    data: dict[str, Any] = {
        "email": _text(customer.get("email"), 320) or None,
        "name": name[:200] or None,
        "phone": _text(customer.get("phone"), 50) or None,
        "attributes": attributes,
    }
    if tags is not None:
        data["tags"] = tags
    if customer.get("locale"):
        data["locale"] = _text(customer.get("locale"), 20)
    return MemberUpsert.model_validate(data)
