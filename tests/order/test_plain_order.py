"""``plain_order`` reads an import's order without the model: for every input it accepts, the
values must be exactly what ``OrderCreate`` reads; anything else it leaves to the model."""

from __future__ import annotations

import contextlib
import random
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from allegiance.kit.money import decimal_places
from allegiance.order.schemas import OrderCreate, OrderFields, plain_order

ORDER_FIELDS = [
    "id", "member_id", "placed_at", "currency", "shipping_amount", "tax_amount",
    "discount_amount", "total", "coupon_codes", "channel", "brand", "attributes", "partner",
]  # fmt: skip
ITEM_FIELDS = [
    "sku",
    "name",
    "category",
    "labels",
    "quantity",
    "unit_price",
    "amount",
    "attributes",
]


def same_value(a: Any, b: Any) -> bool:
    """Equal, of the same type, and the same Decimal as written or datetime offset."""
    if type(a) is not type(b) and not (isinstance(a, datetime) and isinstance(b, datetime)):
        return False
    if isinstance(a, Decimal):
        return a.as_tuple() == b.as_tuple()
    if isinstance(a, datetime):
        aware = (a.tzinfo is None, b.tzinfo is None)
        return a == b and a.utcoffset() == b.utcoffset() and aware[0] == aware[1]
    return bool(a == b)


def assert_same(fields: OrderFields, model: OrderCreate) -> None:
    for name in ORDER_FIELDS:
        assert same_value(getattr(fields, name), getattr(model, name)), name
    assert len(fields.items) == len(model.items)
    for mine, theirs in zip(fields.items, model.items, strict=True):
        for name in ITEM_FIELDS:
            assert same_value(getattr(mine, name), getattr(theirs, name)), name


def check(data: dict[str, Any]) -> OrderFields | None:
    """plain_order's answer, checked against the model's."""
    fields = plain_order(data)
    if fields is None:
        return None
    model = OrderCreate.model_validate(data)  # must not raise: plain_order accepted it
    assert_same(fields, model)
    # money written with few enough places really has few enough places
    amounts = [model.total, model.shipping_amount, model.tax_amount, model.discount_amount]
    for item in model.items:
        amounts += [item.unit_price, item.amount]
    assert fields.money_places >= max(decimal_places(a) for a in amounts if a is not None)
    return fields


CDNOW_ROW = {
    "id": "00001-0",
    "member_id": "00001",
    "placed_at": "1997-01-01T00:00:00+00:00",
    "currency": "USD",
    "total": "11.77",
    "items": [
        {
            "sku": "cd",
            "name": "CD",
            "category": "music",
            "quantity": "1",
            "unit_price": "11.77",
            "amount": "11.77",
        }
    ],
}


def test_the_common_case_is_read_without_the_model() -> None:
    fields = check(CDNOW_ROW)
    assert fields is not None
    assert fields.money_places == 2
    rich = {
        **CDNOW_ROW,
        "placed_at": "2026-03-01T10:00:00.25Z",
        "shipping_amount": "4.99",
        "tax_amount": "0",
        "discount_amount": "1.5",
        "coupon_codes": ["SPRING", "x"],
        "channel": "web",
        "brand": "acme",
        "partner": "fuel",
        "attributes": {"store": "12"},
        "items": [
            {"sku": "A", "labels": ["promo", "new"], "quantity": "2", "unit_price": "10.00"},
            {"sku": "", "quantity": "0.5", "unit_price": "3.33", "amount": "1.67"},
            {"amount": "0.10"},
        ],
    }
    fields = check(rich)
    assert fields is not None
    assert fields.items[0].amount == Decimal("20.00")  # unit_price × quantity
    assert check({"id": "x", "placed_at": "1997-01-01T00:00:00"}) is not None  # naive


@pytest.mark.parametrize(
    "change",
    [
        {"id": ""},
        {"id": None},
        {"member_id": ""},
        {"member_id": None},
        {"total": "1e3"},
        {"total": " 1"},
        {"total": "+1"},
        {"total": "-1"},
        {"total": "-0"},
        {"total": "007"},
        {"total": "1_000"},
        {"total": "NaN"},
        {"total": "1."},
        {"total": ".5"},
        {"total": "12345678901234567890.5"},
        {"total": 12.5},
        {"total": None},
        {"placed_at": "1997-01-01"},
        {"placed_at": "1997-01-01 00:00:00Z"},
        {"placed_at": "1997-01-01t00:00:00z"},
        {"placed_at": "1997-02-30T00:00:00Z"},
        {"placed_at": "1997-01-01T24:00:00Z"},
        {"placed_at": "1997-01-01T00:00:00+24:00"},
        {"placed_at": "1997-01-01T00:00:00.1234567Z"},
        {"placed_at": 852076800},
        {"currency": "usd"},
        {"currency": "EURO"},
        {"colour": "red"},
        {"coupon_codes": "SPRING"},
        {"coupon_codes": ["x" * 101]},
        {"channel": "c" * 101},
        {"attributes": {1: "x"}},
        {"attributes": ["x"]},
        {"items": [{"sku": "z"}]},  # neither amount nor unit_price
        {"items": [{"sku": None, "amount": "1"}]},
        {"items": [{"sku": "z", "amount": "1", "colour": "red"}]},
        {"items": [{"labels": "promo", "amount": "1"}]},
        {"items": [{"quantity": "-1", "amount": "1"}]},
        {"items": "none"},
        {"items": [[]]},
    ],
)
def test_anything_else_is_left_to_the_model(change: dict[str, Any]) -> None:
    """Each of these is either refused by the model or read in a way plain_order does not
    copy: plain_order must say None, never a value of its own."""
    assert plain_order({**CDNOW_ROW, **change}) is None
    with contextlib.suppress(ValidationError):
        OrderCreate.model_validate({**CDNOW_ROW, **change})


def _random_decimal(rng: random.Random) -> Any:
    if rng.random() < 0.9:  # mostly plain: the comparison needs accepted orders
        whole = str(rng.randint(0, 10 ** rng.randint(1, 8)))
        if rng.random() < 0.5:
            return whole
        return f"{whole}.{rng.randint(0, 10**6):06d}"[: len(whole) + 1 + rng.randint(1, 6)]
    return rng.choice(
        [
            str(rng.randint(0, 10 ** rng.randint(1, 22))),
            rng.choice(["0", "0.0", "00.5", "1.000", "0.001", "9" * 19, "9" * 20, "1" * 19 + ".1"]),
            rng.choice(["", " ", "1e2", "-1", "abc", "1,5", "\u0661\u0662"]),
            rng.choice([1, 1.5, True, None, [], {}]),
        ]
    )


def _random_timestamp(rng: random.Random) -> Any:
    if rng.random() < 0.9:
        year, month, day = rng.randint(1, 9999), rng.randint(1, 12), rng.randint(1, 31)
        hour, minute, second = rng.randint(0, 23), rng.randint(0, 59), rng.randint(0, 59)
    else:
        year, month, day = rng.randint(0, 9999), rng.randint(0, 13), rng.randint(0, 32)
        hour, minute, second = rng.randint(0, 25), rng.randint(0, 61), rng.randint(0, 61)
    text = f"{year:04d}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:{second:02d}"
    text += rng.choice(["", ".5", ".123456", ".1234567"])
    text += rng.choice(["", "Z", "+00:00", "-05:30", "+23:59", "+24:00", "+0100"])
    if rng.random() < 0.9:
        return text
    return rng.choice([text.replace("T", " "), text.lower(), text[:10], text[:16]])


def _random_text(rng: random.Random, limit: int) -> Any:
    if rng.random() < 0.9:
        return rng.choice(["x", "00042", "ü" * limit, " padded "])
    return rng.choice(["", "ü" * (limit + 1), None, 5])


def test_random_orders_agree_with_the_model() -> None:
    rng = random.Random(20261124)
    accepted = 0
    for _ in range(5000):
        data: dict[str, Any] = {"id": rng.choice(["o1", "o2", "x" * 255, "", "x" * 256, 7])}
        if rng.random() < 0.9:
            data["member_id"] = _random_text(rng, 255)
        if rng.random() < 0.9:
            data["placed_at"] = _random_timestamp(rng)
        if rng.random() < 0.5:
            data["currency"] = rng.choice(["USD", "usd", "US", "JPY"])
        for name in ("total", "shipping_amount", "tax_amount", "discount_amount"):
            if rng.random() < 0.4:
                data[name] = _random_decimal(rng)
        for name, limit in (("channel", 100), ("brand", 100), ("partner", 64)):
            if rng.random() < 0.2:
                data[name] = _random_text(rng, limit)
        items = []
        for _ in range(rng.randint(0, 3)):
            item: dict[str, Any] = {}
            for name in ("quantity", "unit_price", "amount"):
                if rng.random() < 0.7:
                    item[name] = _random_decimal(rng)
            for name, limit in (("sku", 255), ("name", 500), ("category", 255)):
                if rng.random() < 0.5:
                    item[name] = _random_text(rng, limit)
            if rng.random() < 0.3:
                item["labels"] = rng.choice([["a", "b"], [], ["x" * 256], "a", [1]])
            items.append(item)
        data["items"] = items
        fields = check(data)
        accepted += fields is not None
        if fields is None:
            continue
    assert accepted > 300  # the comparison really ran on accepted orders
