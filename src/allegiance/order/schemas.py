"""Payloads the shop sends: orders, refunds, events, adjustments, carts to evaluate."""

from __future__ import annotations

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
