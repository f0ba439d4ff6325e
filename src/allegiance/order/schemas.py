"""Payloads the shop sends: orders, refunds, events, adjustments, carts to evaluate."""

from __future__ import annotations

import re
from collections.abc import Mapping
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
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})?(?:Z|[+-][0-9]{2}:[0-9]{2})?"
)
_CURRENCY = re.compile(r"[A-Z]{3}")
_ORDER_KEYS = frozenset(OrderCreate.model_fields)
_ITEM_KEYS = frozenset(OrderItem.model_fields)
_ONE = Decimal(1)
_ZERO = Decimal(0)
_ABSENT: Any = object()
_MONEY = ("shipping_amount", "tax_amount", "discount_amount", "total")


def _get(data: Mapping[str, Any], key: str) -> Any:
    """The value, or ``_ABSENT``; an explicit null is left to the model (optional or not)."""
    value = data.get(key, _ABSENT)
    if value is None:
        raise _NotPlain
    return value


class _NotPlain(Exception):
    """A value outside the plain subset: ``OrderCreate`` decides (and words any error)."""


def plain_order(data: Mapping[str, Any]) -> OrderFields | None:
    """``data`` as ``OrderCreate.model_validate`` would read it, for the plain common case of
    an import (strings in the usual formats); None for anything else, which then goes through
    the model, so every error keeps the model's wording.

    Accepts a strict subset of what the model accepts and reads it to the same values; about
    ten times cheaper than validating the model.
    """
    try:
        if not _ORDER_KEYS.issuperset(data):
            return None
        raw_items = _get(data, "items")
        if raw_items is _ABSENT:
            raw_items = []
        if type(raw_items) is not list or len(raw_items) > 1000:
            return None
        items = [_item(item) for item in raw_items]
        money = [_get(data, name) for name in _MONEY]
        order = OrderFields(
            id=_text(_get(data, "id"), 255, required=True),  # type: ignore[arg-type]
            member_id=_text(_get(data, "member_id"), 255, empty=False),
            placed_at=_timestamp(_get(data, "placed_at")),
            currency=_currency(_get(data, "currency")),
            items=items,
            shipping_amount=_decimal(money[0], _ZERO),  # type: ignore[arg-type]
            tax_amount=_decimal(money[1], _ZERO),  # type: ignore[arg-type]
            discount_amount=_decimal(money[2], _ZERO),  # type: ignore[arg-type]
            total=_decimal(money[3], None),
            coupon_codes=_texts(_get(data, "coupon_codes"), 50, 100),
            channel=_text(_get(data, "channel"), 100),
            brand=_text(_get(data, "brand"), 100),
            attributes=_mapping(_get(data, "attributes")),
            partner=_text(_get(data, "partner"), 64),
            money_places=max(_places(money), *(item.money_places for item in items), 0),
        )
        return order
    except _NotPlain:
        return None


def _item(data: Any) -> ItemFields:
    if type(data) is not dict or not _ITEM_KEYS.issuperset(data):
        raise _NotPlain
    raw_quantity = _get(data, "quantity")
    quantity = _decimal(raw_quantity, _ONE)
    assert quantity is not None
    raw_unit_price, raw_amount = _get(data, "unit_price"), _get(data, "amount")
    unit_price = _decimal(raw_unit_price, None)
    amount = _decimal(raw_amount, None)
    if amount is None:
        if unit_price is None:
            raise _NotPlain  # the model's error: neither amount nor unit_price
        amount = unit_price * quantity  # as OrderItem's validator computes it
        # a product has (at most) the places of its factors
        places = _places([raw_unit_price]) + _places([raw_quantity])
    else:
        places = _places([raw_unit_price, raw_amount])
    return ItemFields(
        sku=_text(_get(data, "sku"), 255) or "",
        name=_text(_get(data, "name"), 500),
        category=_text(_get(data, "category"), 255),
        labels=_texts(_get(data, "labels"), 100, 255),
        quantity=quantity,
        unit_price=unit_price,
        amount=amount,
        attributes=_mapping(_get(data, "attributes")),
        money_places=places,
    )


def _places(texts: list[Any]) -> int:
    """The most decimal places among plain decimal texts (absent ones count none)."""
    most = 0
    for text in texts:
        if text is not _ABSENT:
            point = text.find(".")
            if point >= 0 and len(text) - point - 1 > most:
                most = len(text) - point - 1
    return most


def _text(value: Any, max_length: int, *, required: bool = False, empty: bool = True) -> str | None:
    if value is _ABSENT:
        if required:
            raise _NotPlain
        return None
    if type(value) is not str or len(value) > max_length or (not value and not empty):
        raise _NotPlain
    if not value and required:
        raise _NotPlain
    return value


def _texts(value: Any, max_items: int, max_length: int) -> list[str]:
    if value is _ABSENT:
        return []
    if type(value) is not list or len(value) > max_items:
        raise _NotPlain
    for text in value:
        if type(text) is not str or len(text) > max_length:
            raise _NotPlain
    return list(value)


def _decimal(value: Any, default: Decimal | None) -> Decimal | None:
    if value is _ABSENT:
        return default
    if type(value) is not str or _PLAIN_DECIMAL.fullmatch(value) is None:
        raise _NotPlain
    return Decimal(value)


def _timestamp(value: Any) -> datetime | None:
    if value is _ABSENT:
        return None
    if type(value) is not str or _PLAIN_TIMESTAMP.fullmatch(value) is None:
        raise _NotPlain
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise _NotPlain from None  # e.g. 30 February: the model words the error


def _currency(value: Any) -> str | None:
    if value is _ABSENT:
        return None
    if type(value) is not str or _CURRENCY.fullmatch(value) is None:
        raise _NotPlain
    return value


def _mapping(value: Any) -> dict[str, Any]:
    if value is _ABSENT:
        return {}
    if type(value) is not dict or any(type(key) is not str for key in value):
        raise _NotPlain
    return dict(value)
