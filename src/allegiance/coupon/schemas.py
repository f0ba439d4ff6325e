"""What a coupon gives (``DiscountSpec``), how its code is made (``CouponSettings``), payloads."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from allegiance.kit.money import decimal_places
from allegiance.order.schemas import Cart

Amount = Annotated[Decimal, Field(ge=0, allow_inf_nan=False, max_digits=20)]
Code = Annotated[str, Field(min_length=1, max_length=64)]
DiscountType = Literal[
    "discount_fixed", "discount_percent", "free_shipping", "free_product", "gift_card"
]
Charset = Literal["unambiguous", "alphanumeric", "numeric"]
MAX_BATCH = 100_000


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DiscountSpec(Strict):
    """What a coupon gives against a cart.

    ``value``: the amount off (discount_fixed), the percent (discount_percent) or the
    starting balance (gift_card). ``skus``/``categories`` restrict the lines the discount
    applies to; ``min_order`` is compared with the cart subtotal.
    """

    type: DiscountType
    value: Amount | None = None
    max_amount: Amount | None = None
    sku: str | None = Field(default=None, max_length=255)  # free_product
    quantity: Annotated[int, Field(ge=1, le=1000)] = 1  # free_product
    min_order: Amount | None = None
    skus: list[Annotated[str, Field(max_length=255)]] = Field(default_factory=list, max_length=1000)
    categories: list[Annotated[str, Field(max_length=255)]] = Field(
        default_factory=list, max_length=1000
    )

    @model_validator(mode="after")
    def _needs(self) -> DiscountSpec:
        if self.type in ("discount_fixed", "discount_percent", "gift_card") and self.value is None:
            raise ValueError(f"a {self.type} coupon needs 'value'")
        if self.type == "discount_percent" and self.value is not None and self.value > 100:
            raise ValueError("a percent is at most 100")
        if self.type == "free_product" and not self.sku:
            raise ValueError("a free_product coupon needs 'sku'")
        return self


class CouponSettings(Strict):
    """How codes are made and how long they live.

    ``inactive_days``: days after issue before the code can be used; ``valid_days``: how
    long it then works, counted from that start. A coupon issued at T is usable in
    [T + inactive_days, T + inactive_days + valid_days); no ``valid_days``: no end.
    """

    prefix: str = Field(default="", max_length=16, pattern=r"^[A-Za-z0-9-]*$")
    length: Annotated[int, Field(ge=4, le=32)] = 8
    charset: Charset = "unambiguous"
    valid_days: Annotated[int, Field(ge=1, le=36_500)] | None = None
    inactive_days: Annotated[int, Field(ge=0, le=36_500)] = 0
    max_uses: Annotated[int, Field(ge=1, le=1_000_000)] = 1


class IssueCoupon(Strict):
    """An earning rule's effect: a coupon for the member's next order."""

    discount: DiscountSpec
    settings: CouponSettings = Field(default_factory=CouponSettings)


class ValidateRequest(Strict):
    code: Code
    member_id: str | None = Field(default=None, max_length=255)
    cart: Cart = Field(default_factory=Cart)


class UseRequest(Strict):
    order_id: Annotated[str, Field(min_length=1, max_length=255)]
    member_id: str | None = Field(default=None, max_length=255)
    # what the order took; a gift card needs it (at most its balance)
    amount: Amount | None = None


class ReleaseRequest(Strict):
    order_id: Annotated[str, Field(min_length=1, max_length=255)]


class BatchCreate(Strict):
    id: Annotated[str, Field(min_length=1, max_length=255)]
    count: Annotated[int, Field(ge=1, le=MAX_BATCH)]
    settings: CouponSettings = Field(default_factory=CouponSettings)
    discount: DiscountSpec
    starts_at: datetime | None = None
    expires_at: datetime | None = None

    @model_validator(mode="after")
    def _window(self) -> BatchCreate:
        if self.starts_at and self.expires_at and self.expires_at <= self.starts_at:
            raise ValueError("expires_at must be after starts_at")
        return self


def coupon_reward_errors(
    reward_type: str, value: Decimal | None, loc: list[str | int]
) -> list[dict[str, object]]:
    """Errors of a catalog reward with ``coupon`` settings: the coupon's discount comes from
    the reward's ``type`` and ``value``."""
    errors: list[dict[str, object]] = []
    if reward_type in ("discount_fixed", "discount_percent", "gift_card") and value is None:
        errors.append({"loc": [*loc, "value"], "msg": f"a {reward_type} coupon needs 'value'"})
    if reward_type == "discount_percent" and value is not None and value > 100:
        errors.append({"loc": [*loc, "value"], "msg": "a percent is at most 100"})
    return errors


def spec_errors(spec: DiscountSpec, exponent: int, loc: list[str | int]) -> list[dict[str, object]]:
    """Money of a discount spec with more decimals than the currency has."""
    errors: list[dict[str, object]] = []
    names = ["max_amount", "min_order"] + ([] if spec.type == "discount_percent" else ["value"])
    for name in names:
        value = getattr(spec, name)
        if value is not None and decimal_places(value) > exponent:
            errors.append({"loc": [*loc, name], "msg": f"more than {exponent} decimal places"})
    return errors
