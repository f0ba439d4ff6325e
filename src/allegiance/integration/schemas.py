"""What a merchant sends to connect a shop platform."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

PLATFORMS = ("shopify", "woocommerce", "magento")
Platform = Literal["shopify", "woocommerce", "magento"]


class Mapping(BaseModel):
    """How a platform's orders become loyalty orders."""

    model_config = ConfigDict(extra="forbid")

    # which amount earns: the item lines after discounts (subtotal), or everything the
    # customer paid (total: shipping and tax become lines with category shipping / tax)
    earn_on: Literal["subtotal", "total"] = "subtotal"
    # Shopify: book when the order is paid (orders/paid, or a create that is already paid),
    # or as soon as it is created
    book_on: Literal["paid", "created"] = "paid"
    # WooCommerce and Magento: the order statuses in which an order is booked
    book_statuses: list[str] = Field(
        default_factory=lambda: ["processing", "completed", "complete"], max_length=20
    )
    # orders the platform marks as test orders are skipped
    ignore_test_orders: bool = False
    # fixed channel / brand stamped on every order (channel defaults to the order's source)
    channel: str | None = Field(default=None, max_length=100)
    brand: str | None = Field(default=None, max_length=100)
    # put before platform order and refund ids when one tenant connects several shops
    order_id_prefix: str = Field(default="", max_length=40, pattern=r"^[A-Za-z0-9_.:-]*$")


class IntegrationPut(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # secrets left out (or null) keep the value stored before
    webhook_secret: str | None = Field(default=None, min_length=8, max_length=500)
    shop_domain: str | None = Field(default=None, max_length=255)
    api_url: str | None = Field(default=None, max_length=500, pattern=r"^https?://")
    access_token: str | None = Field(default=None, max_length=500)
    api_key: str | None = Field(default=None, max_length=500)
    api_secret: str | None = Field(default=None, max_length=500)
    mapping: Mapping = Field(default_factory=Mapping)


SECRET_FIELDS = ("access_token", "api_key", "api_secret")
