"""Pydantic schema of the program document (DESIGN.md §4). Unknown keys are errors."""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

KEY_PATTERN = r"^[a-z0-9][a-z0-9_\-]{0,63}$"
EVENT_PATTERN = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")
Key = Annotated[str, Field(pattern=KEY_PATTERN)]
Period = Literal["day", "week", "month", "year", "lifetime"]
NonNegative = Annotated[Decimal, Field(ge=0, allow_inf_nan=False)]
Positive = Annotated[Decimal, Field(gt=0, allow_inf_nan=False)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Expiry(Strict):
    mode: Literal["never", "rolling_days", "end_of_month", "end_of_year", "inactivity_days"] = (
        "never"
    )
    days: Annotated[int, Field(ge=1, le=36500)] | None = None
    notify_days: Annotated[int, Field(ge=0, le=365)] = 7

    @model_validator(mode="after")
    def _days_needed(self) -> Expiry:
        if self.mode in ("rolling_days", "inactivity_days") and self.days is None:
            raise ValueError(f"expiry mode {self.mode} needs 'days'")
        return self


class Wallet(Strict):
    name: str | None = None
    kind: Literal["points", "credit"] = "points"
    precision: Annotated[int, Field(ge=0, le=6)] = 0
    rounding: Literal["floor", "ceil", "half_up", "half_even"] = "floor"
    pending_days: Annotated[Decimal, Field(ge=0, le=3650)] = Decimal(0)
    expiry: Expiry = Field(default_factory=Expiry)
    point_value: NonNegative | None = None  # money value of one unit; credit defaults to 1

    @model_validator(mode="after")
    def _credit_defaults(self) -> Wallet:
        if self.kind == "credit" and self.point_value is None:
            self.point_value = Decimal(1)
        return self


class Limit(Strict):
    per_member: Annotated[int, Field(ge=1)] | None = None
    period: Period = "lifetime"
    total: Annotated[int, Field(ge=1)] | None = None

    @model_validator(mode="after")
    def _something(self) -> Limit:
        if self.per_member is None and self.total is None:
            raise ValueError("a limit needs per_member or total")
        return self


class Earn(Strict):
    wallet: Key | None = None
    per_amount: NonNegative | None = None
    per_quantity: NonNegative | None = None
    fixed: NonNegative | None = None
    percent: Annotated[Decimal, Field(ge=0, le=100, allow_inf_nan=False)] | None = None
    items: str | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Earn:
        given = [
            k
            for k in ("per_amount", "per_quantity", "fixed", "percent")
            if getattr(self, k) is not None
        ]
        if not given:
            raise ValueError("earn needs one of per_amount, per_quantity, fixed, percent")
        if len(given) > 1:
            raise ValueError(
                f"earn takes one of per_amount, per_quantity, fixed, percent, got {given}"
            )
        return self


class Multiply(Strict):
    factor: NonNegative
    items: str | None = None
    wallet: Key | None = None


class Rule(Strict):
    key: Key
    name: str | None = None
    description: str | None = None
    on: str = "order.completed"
    when: str | None = None
    earn: Earn | None = None
    multiply: Multiply | None = None
    priority: int = 0
    stop: bool = False
    enabled: bool = True
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    limit: Limit | None = None
    cap_per_order: Positive | None = None
    budget: Positive | None = None
    campaign: Key | None = None

    @field_validator("on")
    @classmethod
    def _event_type(cls, value: str) -> str:
        if not EVENT_PATTERN.match(value):
            raise ValueError("must be an event type such as order.completed or review.created")
        return value

    @model_validator(mode="after")
    def _effect(self) -> Rule:
        if (self.earn is None) == (self.multiply is None):
            raise ValueError("a rule has exactly one of 'earn' or 'multiply'")
        if self.multiply is not None and self.on != "order.completed":
            raise ValueError("multiply rules apply to order.completed only")
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        return self


class Campaign(Strict):
    key: Key
    name: str | None = None
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    budget: Positive | None = None  # points, in the wallet of each rule that draws on it

    @model_validator(mode="after")
    def _window(self) -> Campaign:
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        return self


class TierBenefits(Strict):
    earn_multiplier: Annotated[Decimal, Field(ge=0)] = Decimal(1)
    perks: list[str] = Field(default_factory=list)


class TierLevel(Strict):
    key: Key
    name: str | None = None
    threshold: NonNegative
    benefits: TierBenefits = Field(default_factory=TierBenefits)


class TierWindow(Strict):
    mode: Literal["lifetime", "rolling_days", "calendar_year"] = "lifetime"
    days: Annotated[int, Field(ge=1)] | None = None

    @model_validator(mode="after")
    def _days(self) -> TierWindow:
        if self.mode == "rolling_days" and self.days is None:
            raise ValueError("window mode rolling_days needs 'days'")
        return self


class TierDowngrade(Strict):
    mode: Literal["never", "immediate", "period_end"] = "never"
    grace_days: Annotated[int, Field(ge=0)] = 0
    review_days: Annotated[int, Field(ge=1)] | None = None


class Tiers(Strict):
    metric: Literal["points_earned", "spend", "orders"] = "spend"
    window: TierWindow = Field(default_factory=TierWindow)
    downgrade: TierDowngrade = Field(default_factory=TierDowngrade)
    levels: list[TierLevel] = Field(min_length=1)


class PlanSpan(Strict):
    """A plan period other than one calendar unit: exactly one of the keys."""

    days: Annotated[int, Field(ge=1, le=3660)] | None = None
    weeks: Annotated[int, Field(ge=1, le=520)] | None = None
    months: Annotated[int, Field(ge=1, le=120)] | None = None
    years: Annotated[int, Field(ge=1, le=10)] | None = None

    @model_validator(mode="after")
    def _one(self) -> PlanSpan:
        given = [k for k in ("days", "weeks", "months", "years") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("a period has exactly one of days, weeks, months, years")
        return self


class PlanBenefits(Strict):
    earn_multiplier: Annotated[Decimal, Field(ge=0, le=100, allow_inf_nan=False)] = Decimal(1)
    perks: list[Annotated[str, Field(min_length=1, max_length=100)]] = Field(
        default_factory=list, max_length=100
    )


class Plan(Strict):
    """A paid membership (Prime-style): a fee per period buys benefits and a tier floor."""

    key: Key
    name: str | None = Field(default=None, max_length=200)
    fee: Annotated[Decimal, Field(ge=0, allow_inf_nan=False, max_digits=20)]
    currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")
    # "month" is short for {months: 1}; likewise day, week, year
    period: PlanSpan = Field(default_factory=lambda: PlanSpan(months=1))
    trial_days: Annotated[int, Field(ge=0, le=3660)] = 0
    tier: Key | None = None
    benefits: PlanBenefits = Field(default_factory=PlanBenefits)
    renewal_notice_days: Annotated[int, Field(ge=0, le=365)] = 3

    @field_validator("period", mode="before")
    @classmethod
    def _unit(cls, value: Any) -> Any:
        if isinstance(value, dict | PlanSpan):
            return value
        if value not in ("day", "week", "month", "year"):
            raise ValueError(
                "a period is day, week, month, year or one of {days|weeks|months|years: N}"
            )
        return {f"{value}s": 1}


class Program(Strict):
    name: str = Field(min_length=1, max_length=200)
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    timezone: str = "UTC"
    wallets: dict[Key, Wallet] = Field(default_factory=lambda: {"points": Wallet()})
    refund_policy: Literal["only_pending", "within_balance", "unlimited"] = "within_balance"
    tiers: Tiers | None = None
    campaigns: list[Campaign] = Field(default_factory=list)
    rules: list[Rule] = Field(default_factory=list)
    # sections that later parts of the program add; kept as given until their engine lands
    rewards: list[dict[str, Any]] = Field(default_factory=list)
    promotions: list[dict[str, Any]] = Field(default_factory=list)
    plans: list[Plan] = Field(default_factory=list, max_length=100)

    @field_validator("wallets")
    @classmethod
    def _some_wallet(cls, value: dict[str, Wallet]) -> dict[str, Wallet]:
        if not value:
            raise ValueError("at least one wallet is needed")
        return value

    @property
    def default_wallet(self) -> str:
        if "points" in self.wallets:
            return "points"
        return next(iter(self.wallets))
