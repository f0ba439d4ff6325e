"""The promotion engine without HTTP: rounding, allocation, caps, other currencies."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from allegiance.earning.engine import UsageBook
from allegiance.program.schema import Program
from allegiance.promotion.engine import CartLine, Outcome, evaluate_promotions, record_usage

AT = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def run(
    promotions: list[dict[str, Any]],
    bases: list[int],
    *,
    currency: str = "USD",
    shipping: int = 0,
    codes: list[str] | None = None,
    usage: UsageBook | None = None,
) -> Outcome:
    program = Program.model_validate({"name": "P", "currency": currency, "promotions": promotions})
    lines = [
        CartLine(index=i, sku=f"s{i}", quantity=Decimal(1), base_minor=b,
                 context={"sku": f"s{i}", "category": "c", "quantity": 1})
        for i, b in enumerate(bases)
    ]  # fmt: skip
    return evaluate_promotions(
        program,
        lines=lines,
        shipping_minor=shipping,
        coupon_codes=codes or [],
        context={"order": {"subtotal": sum(bases) / 100, "coupon_codes": codes or []}},
        member_id="m1",
        at=AT,
        usage=usage or UsageBook(),
        tz=ZoneInfo("UTC"),
        exponent=0 if currency == "JPY" else 2,
    )


def test_line_amounts_sum_exactly_to_the_discount() -> None:
    outcome = run([{"key": "one", "type": "discount_fixed", "value": "1.00"}], [100, 100, 100])
    assert outcome.applied[0].lines == {0: 34, 1: 33, 2: 33}
    outcome = run([{"key": "p", "type": "discount_percent", "value": 10}], [333, 333, 334])
    assert outcome.items_discount_minor == 100
    assert sum(outcome.applied[0].lines.values()) == 100


def test_half_up_once_in_a_currency_without_decimals() -> None:
    outcome = run([{"key": "p", "type": "discount_percent", "value": 15}], [999], currency="JPY")
    assert outcome.items_discount_minor == 150  # 149.85 → 150


def test_stacked_discounts_never_below_zero() -> None:
    outcome = run(
        [
            {"key": "big", "type": "discount_fixed", "value": "90"},
            {"key": "more", "type": "discount_fixed", "value": "50", "stacking": "stackable"},
            {"key": "pct", "type": "discount_percent", "value": 50, "stacking": "stackable"},
        ],
        [6000, 4000],
    )
    assert [(a.promotion.key, a.amount_minor) for a in outcome.applied] == [
        ("big", 9000),
        ("more", 1000),
    ]
    assert outcome.items_discount_minor == 10000


def test_free_shipping_capped_and_usage_recorded_only_on_request() -> None:
    usage = UsageBook()
    promotions = [
        {"key": "ship", "type": "free_shipping", "max_amount": "3", "limit": {"total": 1}}
    ]
    outcome = run(promotions, [1000], shipping=495, usage=usage)
    assert outcome.shipping_discount_minor == 300
    assert usage.changes == {}
    record_usage(usage, outcome)
    assert usage.changes == {("promotion:ship", "", "all"): [1, 0]}
    assert run(promotions, [1000], shipping=495, usage=usage).applied == []


def test_first_exclusive_free_item_applies() -> None:
    outcome = run(
        [
            {"key": "a", "type": "free_item", "free_items": [{"sku": "x"}]},
            {"key": "b", "type": "free_item", "free_items": [{"sku": "y", "quantity": 3}]},
        ],
        [1000],
    )
    assert [a.promotion.key for a in outcome.applied] == ["a"]
