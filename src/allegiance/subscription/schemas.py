"""Payloads for subscriptions: a payment (or trial) that starts or renews one, a cancellation."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field, model_validator

from allegiance.order.schemas import Id, Money, Payload
from allegiance.program.schema import KEY_PATTERN


class SubscriptionCreate(Payload):
    # the shop's charge or payment id (client id): in the body or the Idempotency-Key header
    id: Id = ""
    plan: str = Field(pattern=KEY_PATTERN)
    amount: Money | None = None
    currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")
    paid_at: datetime | None = None
    trial: bool = False

    @model_validator(mode="after")
    def _amount_or_trial(self) -> SubscriptionCreate:
        if self.trial and self.amount is not None:
            raise ValueError("a trial is not charged: send either amount or trial: true")
        if not self.trial and self.amount is None:
            raise ValueError("amount (what was charged) is required, or trial: true")
        return self


class SubscriptionCancel(Payload):
    at_period_end: bool = True
    reason: str | None = Field(default=None, max_length=500)
