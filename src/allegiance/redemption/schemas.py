from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field


class ShippingAddress(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    line1: str = Field(min_length=1, max_length=200)
    line2: str | None = Field(default=None, max_length=200)
    city: str = Field(min_length=1, max_length=100)
    postal_code: str | None = Field(default=None, max_length=20)
    region: str | None = Field(default=None, max_length=100)
    country: str = Field(pattern=r"^[A-Z]{2}$")
    phone: str | None = Field(default=None, max_length=50)


class RedemptionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # the client id: in the body, or else from the Idempotency-Key header
    id: str = Field(default="", max_length=255)
    reward: str = Field(min_length=1, max_length=64)
    quantity: Annotated[int, Field(ge=1, le=1000)] = 1
    # cashback (pay with points): how many points to turn into money
    points: Annotated[Decimal, Field(gt=0, allow_inf_nan=False, max_digits=20)] | None = None
    shipping_address: ShippingAddress | None = None  # physical rewards


class FulfilmentUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    fulfilment: Literal["shipped", "delivered", "cancelled"]
    tracking: str | None = Field(default=None, max_length=200)
    note: str | None = Field(default=None, max_length=500)


class Decision(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # the account admin who decides; required with a storefront key
    approver_id: str | None = Field(default=None, min_length=1, max_length=255)
    note: str | None = Field(default=None, max_length=500)
