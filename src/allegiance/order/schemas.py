"""Payloads the shop sends: orders, refunds, events, adjustments, carts to evaluate."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

Money = Annotated[Decimal, Field(ge=0, allow_inf_nan=False, max_digits=20)]
Id = Annotated[str, Field(min_length=1, max_length=255)]


class Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True)


class OrderItem(Payload):
    sku: str = Field(default="", max_length=255)
    name: str | None = Field(default=None, max_length=500)
    category: str | None = Field(default=None, max_length=255)
    labels: list[Annotated[str, Field(max_length=255)]] = Field(
        default_factory=list, max_length=100
    )
    quantity: Annotated[Decimal, Field(ge=0, allow_inf_nan=False, max_digits=20)] = Decimal(1)
    unit_price: Money | None = None
    amount: Money | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _amount(self) -> OrderItem:
        if self.amount is None:
            if self.unit_price is None:
                raise ValueError("an item needs amount (what was paid for the line) or unit_price")
            self.amount = self.unit_price * self.quantity
        return self


class CartBase(Payload):
    member_id: Id | None = None
    placed_at: datetime | None = None
    currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")
    items: list[OrderItem] = Field(default_factory=list, max_length=1000)
    shipping_amount: Money = Decimal(0)
    tax_amount: Money = Decimal(0)
    discount_amount: Money = Decimal(0)
    total: Money | None = None
    coupon_codes: list[Annotated[str, Field(max_length=100)]] = Field(
        default_factory=list, max_length=50
    )
    channel: str | None = Field(default=None, max_length=100)
    brand: str | None = Field(default=None, max_length=100)
    attributes: dict[str, Any] = Field(default_factory=dict)
    # the coalition partner the order was placed at; a partner key stamps its own
    partner: str | None = Field(default=None, max_length=64)


class OrderCreate(CartBase):
    id: Id


class Cart(CartBase):
    id: Id | None = None


class RefundItem(Payload):
    sku: str = Field(default="", max_length=255)
    quantity: Annotated[Decimal, Field(gt=0, allow_inf_nan=False)] = Decimal(1)
    amount: Money


class RefundCreate(Payload):
    # the client id: in the body, or else from the Idempotency-Key header (see endpoints)
    id: Id = ""
    amount: Money | None = None
    items: list[RefundItem] | None = Field(default=None, max_length=1000)
    reason: str | None = Field(default=None, max_length=500)

    @model_validator(mode="after")
    def _one(self) -> RefundCreate:
        if (self.amount is None) == (self.items is None):
            raise ValueError("a refund has either amount or items")
        return self


class CancelCreate(Payload):
    id: Id | None = None
    reason: str | None = Field(default=None, max_length=500)


class EventCreate(Payload):
    id: Id = ""
    type: str = Field(pattern=r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$", max_length=100)
    member_id: Id
    occurred_at: datetime | None = None
    properties: dict[str, Any] = Field(default_factory=dict)


class AdjustmentCreate(Payload):
    id: Id = ""
    wallet: str | None = Field(default=None, max_length=64)
    amount: Annotated[Decimal, Field(allow_inf_nan=False, max_digits=20)]
    reason: str = Field(min_length=1, max_length=500)
    expires_at: datetime | None = None


# ---- orders without a model: the plain common case of an import ------------------------------


@dataclass(slots=True)
class ItemFields:
    """An order line as ``OrderItem`` would hold it, made by ``plain_order``."""

    sku: str
    name: str | None
    category: str | None
    labels: list[str]
    quantity: Decimal
    unit_price: Decimal | None
    amount: Decimal | None
    attributes: dict[str, Any]
    money_places: int = 0  # the most decimal places its amounts were written with


@dataclass(slots=True)
class OrderFields:
    """An order as ``OrderCreate`` would hold it, made by ``plain_order``."""

    id: str
    member_id: str | None
    placed_at: datetime | None
    currency: str | None
    items: list[ItemFields]
    shipping_amount: Decimal
    tax_amount: Decimal
    discount_amount: Decimal
    total: Decimal | None
    coupon_codes: list[str]
    channel: str | None
    brand: str | None
    attributes: dict[str, Any]
    partner: str | None
    # the most decimal places any amount (order or line) was written with: an order whose
    # amounts are written with no more places than the currency has needs no closer look
    money_places: int = 0


# A plain non-negative decimal with at most 19 digits: within Money's max_digits whatever way
# they are counted, no sign, exponent, underscore or leading zero for Pydantic to read its way.
_PLAIN_DECIMAL = re.compile(r"(?:0|[1-9][0-9]{0,18})(?:\.[0-9]{1,18})?")
# ISO 8601 with seconds, an optional fraction of up to 6 digits and an optional Z or ±hh:mm
_PLAIN_TIMESTAMP = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})?"
    r"(?:Z|[+-][0-9]{2}:[0-9]{2})?"
)
_CURRENCY = re.compile(r"[A-Z]{3}")
_ONE = Decimal(1)
_ZERO = Decimal(0)


class _NotPlain(Exception):
    """A value outside the plain subset: ``OrderCreate`` decides (and words any error)."""


def plain_order(data: Mapping[str, Any]) -> OrderFields | None:
    """``data`` as ``OrderCreate.model_validate`` would read it, for the plain common case of
    an import (strings in the usual formats); None for anything else, which then goes through
    the model, so every error keeps the model's wording.

    Accepts a strict subset of what the model accepts and reads it to the same values (an
    explicit null, a number instead of a string, an unknown key: the model's business).
    """
    values: dict[str, Any] = {
        "member_id": None, "placed_at": None, "currency": None, "items": [],
        "shipping_amount": _ZERO, "tax_amount": _ZERO, "discount_amount": _ZERO, "total": None,
        "coupon_codes": [], "channel": None, "brand": None, "attributes": {}, "partner": None,
    }  # fmt: skip
    try:
        for key, value in data.items():
            read = _ORDER_READERS.get(key)
            if read is None:
                return None
            values[key] = read(value)
        if "id" not in values:
            return None
        places = 0
        for key in _MONEY:
            text = data.get(key)
            if text is not None:
                places = max(places, _places(text))
        for item in values["items"]:
            places = max(places, item.money_places)
        return OrderFields(**values, money_places=places)
    except _NotPlain:
        return None


def _item(data: Any) -> ItemFields:
    if type(data) is not dict:
        raise _NotPlain
    values: dict[str, Any] = {
        "sku": "", "name": None, "category": None, "labels": [], "quantity": _ONE,
        "unit_price": None, "amount": None, "attributes": {},
    }  # fmt: skip
    for key, value in data.items():
        read = _ITEM_READERS.get(key)
        if read is None:
            raise _NotPlain
        values[key] = read(value)
    if values["amount"] is None:
        if values["unit_price"] is None:
            raise _NotPlain  # the model's error: neither amount nor unit_price
        # as OrderItem's validator computes it; a product has (at most) the places of its
        # factors
        values["amount"] = values["unit_price"] * values["quantity"]
        places = _places(data["unit_price"]) + _places(data.get("quantity", ""))
    else:
        places = max(_places(data.get("unit_price", "")), _places(data["amount"]))
    return ItemFields(**values, money_places=places)


def _places(text: str) -> int:
    """How many decimal places a plain decimal text is written with."""
    point = text.find(".")
    return 0 if point < 0 else len(text) - point - 1


def _text(max_length: int, *, empty: bool = True) -> Callable[[Any], str]:
    def read(value: Any) -> str:
        if type(value) is not str or len(value) > max_length or (not value and not empty):
            raise _NotPlain
        return value

    return read


def _texts(max_items: int, max_length: int) -> Callable[[Any], list[str]]:
    def read(value: Any) -> list[str]:
        if type(value) is not list or len(value) > max_items:
            raise _NotPlain
        for text in value:
            if type(text) is not str or len(text) > max_length:
                raise _NotPlain
        return list(value)

    return read


def _decimal(value: Any) -> Decimal:
    if type(value) is not str or _PLAIN_DECIMAL.fullmatch(value) is None:
        raise _NotPlain
    return Decimal(value)


def _timestamp(value: Any) -> datetime:
    if type(value) is not str or _PLAIN_TIMESTAMP.fullmatch(value) is None:
        raise _NotPlain
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise _NotPlain from None  # e.g. 30 February: the model words the error


def _currency(value: Any) -> str:
    if type(value) is not str or _CURRENCY.fullmatch(value) is None:
        raise _NotPlain
    return value


def _mapping(value: Any) -> dict[str, Any]:
    if type(value) is not dict or any(type(key) is not str for key in value):
        raise _NotPlain
    return dict(value)


def _items(value: Any) -> list[ItemFields]:
    if type(value) is not list or len(value) > 1000:
        raise _NotPlain
    return [_item(item) for item in value]


_MONEY = ("shipping_amount", "tax_amount", "discount_amount", "total")
# how each key of an order (and of a line) is read; a key not listed is not plain
_ORDER_READERS: dict[str, Callable[[Any], Any]] = {
    "id": _text(255, empty=False),
    "member_id": _text(255, empty=False),
    "placed_at": _timestamp,
    "currency": _currency,
    "items": _items,
    **dict.fromkeys(_MONEY, _decimal),
    "coupon_codes": _texts(50, 100),
    "channel": _text(100),
    "brand": _text(100),
    "attributes": _mapping,
    "partner": _text(64),
}
_ITEM_READERS: dict[str, Callable[[Any], Any]] = {
    "sku": _text(255),
    "name": _text(500),
    "category": _text(255),
    "labels": _texts(100, 255),
    "quantity": _decimal,
    "unit_price": _decimal,
    "amount": _decimal,
    "attributes": _mapping,
}
assert set(_ORDER_READERS) == set(OrderCreate.model_fields)
assert set(_ITEM_READERS) == set(OrderItem.model_fields)
