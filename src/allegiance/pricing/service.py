"""Use cases for price lists: the quantity / unit price table of a product page."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from allegiance.errors import NotFound, ValidationFailed, invalid
from allegiance.kit.expression import Scope
from allegiance.kit.money import currency_exponent, decimal_places, money_str, to_minor
from allegiance.member import repository as members
from allegiance.order import service as orders
from allegiance.pricing.engine import (
    NeedsListPrice,
    entry_for,
    is_active,
    is_eligible,
    price_table,
)
from allegiance.program.service import load_program


def price_list_table(
    session: Session,
    *,
    tenant_id: str,
    key: str,
    sku: str | None,
    category: str | None,
    member_id: str | None,
    list_price: Decimal | None,
    now: datetime,
) -> dict[str, Any]:
    """The bands of quantity, unit price and savings for one item under one price list.

    The entry is the list's SKU entry, else its entry for ``category``. ``eligible`` says
    whether the member (an unknown or missing member counts as a new one, as in evaluate)
    may use the list; the table is shown either way, so a shop can also advertise it.
    """
    if not sku and not category:
        raise invalid(["query", "sku"], "give sku, category or both")
    program = load_program(session, tenant_id=tenant_id)
    found = None
    if program is not None:
        found = next(
            ((i, pl) for i, pl in enumerate(program.program.price_lists) if pl.key == key), None
        )
    if program is None or found is None:
        raise NotFound(f"no price list {key!r} in the current program", code="price_list_not_found")
    position, price_list = found
    exponent = currency_exponent(program.currency)
    if list_price is not None and decimal_places(list_price) > exponent:
        raise invalid(
            ["query", "list_price"], f"has more than {exponent} decimal places for this currency"
        )
    entry = entry_for(program.program, position, sku=sku, category=category)
    if entry is None and price_list.entries:
        wanted = " or ".join(
            f"{name} {value!r}" for name, value in (("sku", sku), ("category", category)) if value
        )
        raise NotFound(
            f"price list {key!r} has no entry for {wanted}", code="price_entry_not_found"
        )
    if list_price is None and entry is not None:
        list_price = entry.list_price
    try:
        rows = price_table(price_list, entry, list_price=list_price, exponent=exponent)
    except NeedsListPrice as exc:
        raise ValidationFailed(
            "this table has percent discounts: a list price is needed",
            code="list_price_required",
            errors=[
                {
                    "loc": ["query", "list_price"],
                    "msg": "pass list_price, or set list_price on the price list entry",
                }
            ],
        ) from exc
    member = members.get(session, tenant_id, member_id) if member_id else None
    if member is None:
        member = orders.stand_in_member(tenant_id=tenant_id, member_id=member_id or "", now=now)
    context = orders.conditions_context(
        session, tenant_id=tenant_id, program=program, member=member, exponent=exponent, now=now
    )
    return {
        "price_list": price_list.key,
        "name": price_list.name,
        "currency": program.currency,
        "entry": {"sku": entry.sku} if entry and entry.sku else
                 {"category": entry.category} if entry else None,
        "list_price": money_str(to_minor(list_price, exponent), exponent)
        if list_price is not None
        else None,
        "member_id": member_id,
        "active": is_active(price_list, now),
        "eligible": is_eligible(price_list, Scope({**context, "now": now})),
        "rows": [
            {
                "min_quantity": row.min_quantity,
                "max_quantity": row.max_quantity,
                "unit_price": money_str(row.unit_minor, exponent),
                "savings": money_str(row.savings_minor, exponent)
                if row.savings_minor is not None
                else None,
                "savings_percent": float(row.savings_percent)
                if row.savings_percent is not None
                else None,
            }
            for row in rows
        ],
        "volume": [
            {"min_quantity": v.min_quantity, "percent_off": float(v.percent_off)}
            for v in price_list.volume
        ],
    }  # fmt: skip
