"""The price-list engine as a pure function: breaks, volume, precedence, windows, eligibility.

Contexts are handed in directly, so eligibility by tier (``member.tier``) and by B2B account
group (``account.group``) is tested here whatever fills those fields in a running system.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from allegiance.pricing.engine import (
    CartLine,
    NeedsListPrice,
    PricedLine,
    price_lines,
    price_table,
)
from allegiance.program.schema import Program

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

WHOLESALE: dict[str, Any] = {
    "key": "wholesale",
    "eligible": "account.group == 'wholesale' || member.tier == 'gold'",
    "entries": [
        {
            "sku": "ABC-1",
            "list_price": "10.00",
            "breaks": [
                {"min_quantity": 1, "unit_price": "9.50"},
                {"min_quantity": 10, "unit_price": "9.00"},
                {"min_quantity": 100, "percent_off": 15},
            ],
        },
        {"category": "tools", "breaks": [{"min_quantity": 5, "percent_off": 10}]},
    ],
}


def program(*price_lists: dict[str, Any], currency: str = "USD") -> Program:
    return Program.model_validate(
        {"name": "P", "currency": currency, "price_lists": list(price_lists)}
    )


def context(tier: str = "", group: str = "", tags: list[str] | None = None) -> dict[str, Any]:
    return {
        "member": {"id": "m1", "tier": tier, "tags": tags or [], "attributes": {}},
        "account": {"id": "a1" if group else "", "group": group, "attributes": {}},
        "now": NOW,
    }


GOLD = context(tier="gold")
WHOLESALE_ACCOUNT = context(group="wholesale")


def line(
    sku: str, quantity: str | int, unit: str, category: str = "", index: int = 0, exponent: int = 2
) -> CartLine:
    q = Decimal(quantity)
    return CartLine(
        index=index,
        sku=sku,
        category=category,
        quantity=q,
        list_unit_price=Decimal(unit),
        list_amount_minor=int((Decimal(unit) * q).scaleb(exponent).to_integral_value()),
    )


def price(
    prog: Program, lines: list[CartLine], ctx: dict[str, Any], at: datetime = NOW
) -> list[PricedLine]:
    for i, cart_line in enumerate(lines):
        assert cart_line.index == i
    return price_lines(prog, lines, ctx, at=at, exponent=2)


def one(prog: Program, cart_line: CartLine, ctx: dict[str, Any] = GOLD) -> PricedLine:
    return price(prog, [cart_line], ctx)[0]


@pytest.mark.parametrize(
    ("quantity", "unit_minor", "rule"),
    [
        (1, 950, "wholesale:ABC-1:1+"),
        (9, 950, "wholesale:ABC-1:1+"),
        (10, 900, "wholesale:ABC-1:10+"),
        (99, 900, "wholesale:ABC-1:10+"),
        (100, 850, "wholesale:ABC-1:100+"),  # 15 % off the list price 10.00
        (250, 850, "wholesale:ABC-1:100+"),
    ],
)
def test_quantity_breaks_unit_price_and_percent(quantity: int, unit_minor: int, rule: str) -> None:
    priced = one(program(WHOLESALE), line("ABC-1", quantity, "10.00"))
    assert priced.unit_minor == unit_minor
    assert priced.amount_minor == unit_minor * quantity
    assert priced.savings_minor == (1000 - unit_minor) * quantity
    assert (priced.price_list, priced.rule, priced.volume_rule) == ("wholesale", rule, None)


def test_below_the_first_break_is_list_price() -> None:
    prog = program(
        {
            "key": "bulk",
            "entries": [{"sku": "X", "breaks": [{"min_quantity": 10, "percent_off": 20}]}],
        }
    )
    for quantity, unit in ((9, 500), (10, 400)):
        priced = one(prog, line("X", quantity, "5.00"))
        assert priced.unit_minor == unit
    below = one(prog, line("X", 9, "5.00"))
    assert (below.price_list, below.rule, below.savings_minor) == (None, None, 0)


def test_percent_rounds_half_up_once_per_unit() -> None:
    # 9.99 less 15 % = 8.4915 -> 8.49; less 25 % = 7.4925 -> 7.49; 1.05 less 50 % = 0.525 -> 0.53
    prog = program(
        {
            "key": "p",
            "entries": [
                {"sku": "A", "breaks": [{"min_quantity": 1, "percent_off": 15}]},
                {"sku": "B", "breaks": [{"min_quantity": 1, "percent_off": 25}]},
                {"sku": "C", "breaks": [{"min_quantity": 1, "percent_off": 50}]},
            ],
        }
    )
    priced = price(
        prog,
        [line("A", 3, "9.99"), line("B", 1, "9.99", index=1), line("C", 1, "1.05", index=2)],
        GOLD,
    )
    assert [p.unit_minor for p in priced] == [849, 749, 53]
    assert priced[0].amount_minor == 3 * 849
    assert priced[0].savings_minor == 3 * 999 - 3 * 849


def test_volume_discount_on_the_covered_quantity_applies_on_top() -> None:
    prog = program(
        {
            **WHOLESALE,
            "volume": [
                {"min_quantity": 100, "percent_off": 2},
                {"min_quantity": 1000, "percent_off": 5},
            ],
        }
    )
    lines = [
        line("ABC-1", 60, "10.00"),  # break 10+: 9.00
        line("HAMMER", 940, "20.00", category="tools", index=1),  # category: 10 % off
        line("OTHER", 5000, "1.00", category="food", index=2),  # not covered: doesn't count
    ]
    priced = price(prog, lines, GOLD)
    # covered quantity 1,000 -> 5 % on top: 9.00 * 0.95 = 8.55; 20.00 * 0.9 * 0.95 = 17.10
    assert [p.unit_minor for p in priced] == [855, 1710, 100]
    assert [p.volume_rule for p in priced] == ["wholesale:volume:1000+"] * 2 + [None]
    assert [p.rule for p in priced] == ["wholesale:ABC-1:10+", "wholesale:category:tools:5+", None]
    # one unit less: the 100+ volume break only
    lines[1] = line("HAMMER", 939, "20.00", category="tools", index=1)
    priced = price(prog, lines, GOLD)
    assert [p.unit_minor for p in priced] == [882, 1764, 100]
    assert priced[0].volume_rule == "wholesale:volume:100+"


def test_volume_only_list_covers_every_line() -> None:
    prog = program({"key": "bulk", "volume": [{"min_quantity": 1000, "percent_off": 5}]})
    lines = [line("A", 700, "2.00"), line("B", 300, "3.00", index=1)]
    priced = price(prog, lines, context())
    assert [p.unit_minor for p in priced] == [190, 285]
    assert [p.rule for p in priced] == [None, None]
    assert [p.volume_rule for p in priced] == ["bulk:volume:1000+"] * 2
    assert sum(p.savings_minor for p in priced) == 700 * 10 + 300 * 15
    # 999 items: nothing
    lines[1] = line("B", 299, "3.00", index=1)
    assert [p.price_list for p in price(prog, lines, context())] == [None, None]


def test_sku_entry_beats_category_entry_of_the_same_list() -> None:
    prog = program(
        {
            "key": "l",
            "entries": [
                {"category": "tools", "breaks": [{"min_quantity": 1, "percent_off": 50}]},
                {"sku": "DRILL", "breaks": [{"min_quantity": 1, "percent_off": 10}]},
            ],
        }
    )
    drill = one(prog, line("DRILL", 1, "100.00", category="tools"))
    saw = one(prog, line("SAW", 1, "100.00", category="tools"))
    assert (drill.unit_minor, drill.rule) == (9000, "l:DRILL:1+")
    assert (saw.unit_minor, saw.rule) == (5000, "l:category:tools:1+")


def test_of_several_eligible_lists_the_lowest_price_wins() -> None:
    def flat(
        key: str, percent: int, priority: int = 0, eligible: str | None = None
    ) -> dict[str, Any]:
        found: dict[str, Any] = {
            "key": key,
            "priority": priority,
            "entries": [{"sku": "A", "breaks": [{"min_quantity": 1, "percent_off": percent}]}],
        }
        if eligible:
            found["eligible"] = eligible
        return found

    prog = program(
        flat("ten", 10), flat("gold", 20, eligible="member.tier == 'gold'"), flat("five", 5)
    )
    assert one(prog, line("A", 1, "10.00"), GOLD).price_list == "gold"
    assert one(prog, line("A", 1, "10.00"), context(tier="silver")).price_list == "ten"
    # a tie goes to the lower priority, then to document order
    tied = program(
        flat("first", 10, priority=5), flat("second", 10, priority=1), flat("third", 10, 1)
    )
    assert one(tied, line("A", 1, "10.00")).price_list == "second"


def test_a_break_never_raises_the_price() -> None:
    prog = program(
        {
            "key": "l",
            "entries": [{"sku": "A", "breaks": [{"min_quantity": 1, "unit_price": "12.00"}]}],
        }
    )
    priced = one(prog, line("A", 2, "10.00"))
    assert (priced.unit_minor, priced.amount_minor, priced.price_list) == (1000, 2000, None)
    # the same price as the list price is no offer either
    same = program(
        {
            "key": "l",
            "entries": [{"sku": "A", "breaks": [{"min_quantity": 1, "unit_price": "10.00"}]}],
        }
    )
    assert one(same, line("A", 2, "10.00")).price_list is None


def test_window_and_enabled() -> None:
    prog = program(
        {**WHOLESALE, "starts_at": "2026-03-01T00:00:00Z", "ends_at": "2026-04-01T00:00:00+02:00"},
    )
    cart = [line("ABC-1", 1, "10.00")]
    assert (
        price(prog, cart, GOLD, at=datetime(2026, 2, 28, 23, 59, tzinfo=UTC))[0].price_list is None
    )
    assert price(prog, cart, GOLD, at=datetime(2026, 3, 1, tzinfo=UTC))[0].price_list == "wholesale"
    assert (
        price(prog, cart, GOLD, at=datetime(2026, 3, 31, 21, 59, tzinfo=UTC))[0].unit_minor == 950
    )
    # ends_at is excluded: 2026-04-01T00:00+02:00 is 2026-03-31T22:00Z
    assert (
        price(prog, cart, GOLD, at=datetime(2026, 3, 31, 22, 0, tzinfo=UTC))[0].price_list is None
    )
    off = program({**WHOLESALE, "enabled": False})
    assert price(off, cart, GOLD)[0].price_list is None


@pytest.mark.parametrize(
    ("ctx", "eligible"),
    [
        (context(tier="gold"), True),
        (context(tier="silver"), False),
        (context(group="wholesale"), True),
        (context(group="retail"), False),
        (context(tier="silver", group="wholesale"), True),
        (context(), False),
    ],
    ids=["gold-tier", "silver-tier", "wholesale-group", "retail-group", "group-wins", "nobody"],
)
def test_eligibility_by_tier_and_by_account_group(ctx: dict[str, Any], eligible: bool) -> None:
    priced = one(program(WHOLESALE), line("ABC-1", 10, "10.00"), ctx)
    assert priced.unit_minor == (900 if eligible else 1000)
    assert (priced.price_list == "wholesale") is eligible


def test_a_failing_condition_is_not_eligible() -> None:
    prog = program({**WHOLESALE, "eligible": "member.attributes.segment == 'b2b'"})
    assert one(prog, line("ABC-1", 10, "10.00"), context()).price_list is None
    ctx = context()
    ctx["member"]["attributes"] = {"segment": "b2b"}
    assert one(prog, line("ABC-1", 10, "10.00"), ctx).price_list == "wholesale"


def test_fractional_quantity_and_zero_decimal_currency() -> None:
    prog = program(
        {
            "key": "kg",
            "entries": [{"sku": "RICE", "breaks": [{"min_quantity": 2, "unit_price": "333"}]}],
        },
        currency="JPY",
    )
    priced = price_lines(
        prog, [line("RICE", "2.5", "400", exponent=0)], context(), at=NOW, exponent=0
    )[0]
    # 333 x 2.5 = 832.5 -> 833 (half-up); list 1000
    assert (priced.unit_minor, priced.amount_minor, priced.savings_minor) == (333, 833, 167)


# ---- tables ------------------------------------------------------------------------------


def rows(
    prog: Program, list_price: str | None, position: int = 0, entry: int | None = 0
) -> list[tuple[Any, ...]]:
    price_list = prog.price_lists[position]
    found = price_list.entries[entry] if entry is not None else None
    return [
        (r.min_quantity, r.max_quantity, r.unit_minor, r.savings_minor, r.savings_percent)
        for r in price_table(
            price_list,
            found,
            list_price=Decimal(list_price) if list_price is not None else None,
            exponent=2,
        )
    ]


def test_table_of_several_breaks() -> None:
    assert rows(program(WHOLESALE), "10.00") == [
        (1, 9, 950, 50, Decimal("5.00")),
        (10, 99, 900, 100, Decimal("10.00")),
        (100, None, 850, 150, Decimal("15.00")),
    ]


def test_table_starts_at_the_list_price_and_merges_equal_bands() -> None:
    prog = program(
        {
            "key": "l",
            "entries": [
                {
                    "sku": "A",
                    "breaks": [
                        {"min_quantity": 5, "percent_off": 10},
                        {"min_quantity": 10, "unit_price": "9.00"},  # the same 9.00: merged
                        {"min_quantity": 50, "unit_price": "7.99"},
                    ],
                }
            ],
            "volume": [{"min_quantity": 1000, "percent_off": 5}],
        }
    )
    assert rows(prog, "10.00") == [
        (1, 4, 1000, 0, Decimal("0.00")),
        (5, 49, 900, 100, Decimal("10.00")),
        (50, 999, 799, 201, Decimal("20.10")),
        (1000, None, 759, 241, Decimal("24.10")),  # 7.99 x 0.95 = 7.5905
    ]


def test_table_without_list_price() -> None:
    prog = program(
        {
            "key": "l",
            "entries": [{"sku": "A", "breaks": [{"min_quantity": 10, "unit_price": "9.00"}]}],
        }
    )
    assert rows(prog, None) == [(10, None, 900, None, None)]
    with pytest.raises(NeedsListPrice):
        rows(program(WHOLESALE), None, entry=1)  # percent off needs a list price


def test_table_agrees_with_the_cart_price_for_every_quantity() -> None:
    prog = program(
        {
            **WHOLESALE,
            "eligible": None,
            "volume": [
                {"min_quantity": 40, "percent_off": 3},
                {"min_quantity": 120, "percent_off": 6},
            ],
        }
    )
    table = price_table(
        prog.price_lists[0], prog.price_lists[0].entries[0], list_price=Decimal("10.00"), exponent=2
    )
    for quantity in range(1, 200):
        band = next(
            r
            for r in table
            if r.min_quantity <= quantity and (r.max_quantity is None or quantity <= r.max_quantity)
        )
        assert (
            one(prog, line("ABC-1", quantity, "10.00"), context()).unit_minor == band.unit_minor
        ), quantity
