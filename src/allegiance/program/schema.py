"""Pydantic schema of the program document (DESIGN.md §4). Unknown keys are errors."""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from itertools import pairwise
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from allegiance.automation.schemas import Automation, EmailSettings
from allegiance.coupon.schemas import CouponSettings, IssueCoupon

KEY_PATTERN = r"^[a-z0-9][a-z0-9_\-]{0,63}$"
EVENT_PATTERN = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")
Key = Annotated[str, Field(pattern=KEY_PATTERN)]
Period = Literal["day", "week", "month", "year", "lifetime"]
NonNegative = Annotated[Decimal, Field(ge=0, allow_inf_nan=False)]
Positive = Annotated[Decimal, Field(gt=0, allow_inf_nan=False)]
# bounds of the price_lists section (a document is also capped by ALLEGIANCE_MAX_BODY_BYTES)
MAX_PRICE_LISTS = 100
MAX_PRICE_ENTRIES = 10_000
MAX_PRICE_BREAKS = 50


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
    # brand-scoped wallet: only orders of these brands earn into it (None = shared by all)
    brands: list[Key] | None = None

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


class ExperimentScope(Strict):
    """Ties a benefit to variants of an experiment: only members assigned to one of them get it
    (never the holdout, never members outside the experiment)."""

    key: Key
    variants: list[Key] = Field(min_length=1, max_length=20)


class Multiply(Strict):
    factor: NonNegative
    items: str | None = None
    wallet: Key | None = None


class IssueReward(Strict):
    """An earning rule's effect: the coupon of a catalog reward, given without points (a
    next-order coupon)."""

    reward: Key


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
    issue_coupon: IssueCoupon | None = None  # a next-order coupon instead of points
    issue_reward: IssueReward | None = None  # a catalog reward's coupon, free
    experiment: ExperimentScope | None = None  # only these variants' members earn it

    @field_validator("on")
    @classmethod
    def _event_type(cls, value: str) -> str:
        if not EVENT_PATTERN.match(value):
            raise ValueError("must be an event type such as order.completed or review.created")
        return value

    @model_validator(mode="after")
    def _effect(self) -> Rule:
        effects = [self.earn, self.multiply, self.issue_coupon, self.issue_reward]
        if sum(e is not None for e in effects) != 1:
            raise ValueError(
                "a rule has exactly one of 'earn', 'multiply', 'issue_coupon' or 'issue_reward'"
            )
        if (self.issue_coupon or self.issue_reward) is not None and self.on != "order.completed":
            raise ValueError("issue_coupon and issue_reward rules apply to order.completed only")
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
    experiment: ExperimentScope | None = None  # its rules reach only these variants' members

    @model_validator(mode="after")
    def _window(self) -> Campaign:
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        return self


class TierBenefits(Strict):
    earn_multiplier: Annotated[Decimal, Field(ge=0, le=100, allow_inf_nan=False)] = Decimal(1)
    perks: list[Annotated[str, Field(min_length=1, max_length=100)]] = Field(
        default_factory=list, max_length=50
    )


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
    grace_days: Annotated[int, Field(ge=0, le=3650)] = 0
    # reviews every N days from the day the member reached its tier; default: calendar year end
    review_days: Annotated[int, Field(ge=1, le=3650)] | None = None
    # the qualifying metric starts again from zero at each review (points stay spendable)
    reset_at_review: bool = False


class Tiers(Strict):
    metric: Literal["points_earned", "spend", "orders"] = "spend"
    wallet: Key | None = None  # the wallet whose earned points count for points_earned
    window: TierWindow = Field(default_factory=TierWindow)
    downgrade: TierDowngrade = Field(default_factory=TierDowngrade)
    levels: list[TierLevel] = Field(min_length=1, max_length=50)


RewardType = Literal[
    "discount_fixed",
    "discount_percent",
    "free_shipping",
    "free_product",
    "store_credit",
    "gift_card",
    "physical",
    "experience",
    "access",
    "cashback",
    "custom",
]


# reward types whose redemption gives a coupon code
COUPON_REWARD_TYPES = (
    "discount_fixed", "discount_percent", "free_shipping", "free_product", "gift_card",
)  # fmt: skip
REWARD_NEEDS: dict[str, tuple[str, ...]] = {
    "discount_fixed": ("value",),
    "discount_percent": ("value",),
    "free_product": ("sku",),
    "store_credit": ("value",),
    "gift_card": ("value",),
    "access": ("perk", "days"),
}


class Reward(Strict):
    """A catalog entry members spend points on (``POST /v1/members/{id}/redemptions``)."""

    key: Key
    name: str | None = None
    description: str | None = Field(default=None, max_length=2000)
    type: RewardType = "custom"
    # points of ``wallet`` per unit; for ``cashback`` the step in points (default 1)
    cost: Positive | None = None
    wallet: Key | None = None
    # money: the discount (discount_fixed), the credit (store_credit), the balance (gift_card);
    # a percent for discount_percent
    value: NonNegative | None = None
    max_amount: Positive | None = None  # discount_percent: the most it takes off
    sku: str | None = Field(default=None, min_length=1, max_length=255)  # free_product
    quantity: Annotated[int, Field(ge=1, le=1000)] = 1  # free_product: units given
    credit_wallet: Key | None = None  # store_credit: the credit wallet it fills
    point_value: Positive | None = None  # cashback: money per point (default: the wallet's)
    perk: str | None = Field(default=None, min_length=1, max_length=100)  # access
    days: Annotated[int, Field(ge=1, le=3650)] | None = None  # access: how long
    shipping: bool | None = None  # physical: a shipping address is required (default true)
    eligible: str | None = None  # CEL over member, account, now
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    stock: Annotated[int, Field(ge=0)] | None = None
    limit: Limit | None = None
    enabled: bool = True
    coupon: CouponSettings | None = None  # how the redeemed reward's coupon code is made
    experiment: ExperimentScope | None = None  # only these variants' members may redeem it

    @model_validator(mode="after")
    def _shape(self) -> Reward:
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        if self.cost is None and self.type != "cashback":
            raise ValueError("a reward needs a cost in points")
        if self.type == "discount_percent" and self.value is not None and self.value > 100:
            raise ValueError("a discount_percent value is a percent (0-100)")
        return self

    @property
    def unit_cost(self) -> Decimal:
        return self.cost if self.cost is not None else Decimal(1)


class PriceBreak(Strict):
    """From ``min_quantity`` on: a fixed ``unit_price`` or ``percent_off`` the list price."""

    min_quantity: Annotated[int, Field(ge=1)]
    unit_price: NonNegative | None = None
    percent_off: Annotated[Decimal, Field(ge=0, le=100, allow_inf_nan=False)] | None = None

    @model_validator(mode="after")
    def _one_price(self) -> PriceBreak:
        if (self.unit_price is None) == (self.percent_off is None):
            raise ValueError("a break has exactly one of 'unit_price' or 'percent_off'")
        return self


def _increasing(breaks: list[Any]) -> list[Any]:
    quantities = [b.min_quantity for b in breaks]
    if any(a >= b for a, b in pairwise(quantities)):
        raise ValueError("min_quantity must be strictly increasing (sorted, no duplicates)")
    return breaks


class PriceEntry(Strict):
    sku: Annotated[str, Field(min_length=1, max_length=255)] | None = None
    category: Annotated[str, Field(min_length=1, max_length=255)] | None = None
    list_price: NonNegative | None = None  # for the price table; carts bring their own price
    breaks: list[PriceBreak] = Field(min_length=1, max_length=MAX_PRICE_BREAKS)

    @field_validator("breaks")
    @classmethod
    def _sorted(cls, value: list[PriceBreak]) -> list[PriceBreak]:
        return _increasing(value)

    @model_validator(mode="after")
    def _one_target(self) -> PriceEntry:
        if (self.sku is None) == (self.category is None):
            raise ValueError("an entry has exactly one of 'sku' or 'category'")
        return self


class VolumeBreak(Strict):
    min_quantity: Annotated[int, Field(ge=1)]
    percent_off: Annotated[Decimal, Field(ge=0, le=100, allow_inf_nan=False)]


class PriceList(Strict):
    key: Key
    name: str | None = None
    description: str | None = None
    eligible: str | None = None  # CEL over member, account, now; none: everyone
    priority: int = 0
    enabled: bool = True
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    entries: list[PriceEntry] = Field(default_factory=list, max_length=MAX_PRICE_ENTRIES)
    volume: list[VolumeBreak] = Field(default_factory=list, max_length=MAX_PRICE_BREAKS)

    @field_validator("volume")
    @classmethod
    def _sorted(cls, value: list[VolumeBreak]) -> list[VolumeBreak]:
        return _increasing(value)

    @model_validator(mode="after")
    def _shape(self) -> PriceList:
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        if not self.entries and not self.volume:
            raise ValueError("a price list needs entries, volume breaks or both")
        return self


class Brand(Strict):
    key: Key
    name: str | None = None


class Partner(Strict):
    """A coalition partner: a merchant whose own API key books orders it funds."""

    key: Key
    name: str | None = None
    wallet: Key | None = None  # the wallet its points are earned, spent and settled in
    point_value: NonNegative | None = None  # money per point for settlement; else the wallet's


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


class ReferralCodeFormat(Strict):
    """Shape of the generated referral codes: ``prefix`` then ``length`` random characters."""

    prefix: str = Field(default="", pattern=r"^[A-Z0-9]{0,12}$")
    length: Annotated[int, Field(ge=6, le=32)] = 8


class ReferralReward(Strict):
    points: NonNegative
    wallet: Key | None = None  # default: the program's default wallet


class ReferralProgram(Strict):
    """Refer a friend (docs/referrals.md)."""

    share_url: str | None = Field(default=None, max_length=500)  # with a ``{code}`` placeholder
    code: ReferralCodeFormat = Field(default_factory=ReferralCodeFormat)
    referee: ReferralReward | None = None  # credited when the referral is accepted
    referrer: ReferralReward  # credited when the referral converts
    qualifying: str | None = None  # CEL over order, member, account, now: the first order
    hold_days: Annotated[int, Field(ge=0, le=365)] = 14
    cap_per_month: Annotated[int, Field(ge=1, le=100_000)] | None = None  # per referrer

    @field_validator("share_url")
    @classmethod
    def _placeholder(cls, value: str | None) -> str | None:
        if value is not None and "{code}" not in value:
            raise ValueError("the share URL needs a {code} placeholder")
        return value


PromotionType = Literal[
    "discount_percent",
    "discount_fixed",
    "discount_steps",
    "buy_x_get_y",
    "free_item",
    "free_shipping",
]


class PromotionStep(Strict):
    min_amount: NonNegative  # the order amount (before discounts) from which the step holds
    percent: Annotated[Decimal, Field(gt=0, le=100, allow_inf_nan=False)]


class PromotionFreeItem(Strict):
    sku: str = Field(min_length=1, max_length=255)
    quantity: Positive = Decimal(1)
    name: str | None = Field(default=None, max_length=500)


class Promotion(Strict):
    """An automatic cart discount (docs/program.md#promotions)."""

    key: Key
    name: str | None = Field(default=None, max_length=200)
    type: PromotionType
    when: str | None = None
    # percent for discount_percent and buy_x_get_y (default 100), money for discount_fixed
    value: NonNegative | None = None
    # order: every line; items: the lines `items` matches; cheapest: one unit of the cheapest
    target: Literal["order", "items", "cheapest"] | None = None
    items: str | None = None
    code: str | None = Field(default=None, min_length=1, max_length=100)
    steps: list[PromotionStep] | None = Field(default=None, max_length=50)
    buy: Annotated[int, Field(ge=1, le=1000)] | None = None
    get: Annotated[int, Field(ge=1, le=1000)] | None = None
    free_items: list[PromotionFreeItem] | None = Field(default=None, max_length=20)
    max_amount: NonNegative | None = None
    stacking: Literal["exclusive", "stackable"] = "exclusive"
    priority: int = 0
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    limit: Limit | None = None
    experiment: ExperimentScope | None = None  # only these variants' members get it


class BadgeLevel(Strict):
    """One level of a badge (bronze, silver, gold), listed from lowest to highest."""

    key: Key
    name: str | None = Field(default=None, max_length=200)
    when: str = Field(min_length=1)


class Badge(Strict):
    """Awarded once when ``when`` holds after an activity (or once per level, in order)."""

    key: Key
    name: str | None = Field(default=None, max_length=200)
    on: str | None = Field(default=None, pattern=EVENT_PATTERN.pattern)  # None: any activity
    when: str | None = None
    levels: list[BadgeLevel] | None = Field(default=None, min_length=1, max_length=10)

    @model_validator(mode="after")
    def _when_or_levels(self) -> Badge:
        if (self.when is None) == (self.levels is None):
            raise ValueError("a badge has either 'when' or 'levels'")
        return self


class ChallengeStep(Strict):
    key: Key
    on: str = Field(pattern=EVENT_PATTERN.pattern)
    when: str | None = None
    count: Annotated[int, Field(ge=1, le=100_000)] = 1


class ChallengeStreak(Strict):
    period: Literal["week", "month"]
    length: Annotated[int, Field(ge=1, le=520)]
    on: str = Field(pattern=EVENT_PATTERN.pattern)
    when: str | None = None


class ChallengeReward(Strict):
    points: NonNegative | None = None
    wallet: Key | None = None  # default: the program's default wallet
    badge: Key | None = None
    reward: Key | None = None  # a catalog reward that gives a coupon

    @model_validator(mode="after")
    def _one_kind(self) -> ChallengeReward:
        kinds = [self.points is not None, self.badge is not None, self.reward is not None]
        if sum(kinds) != 1:
            raise ValueError("a challenge reward is one of 'points', 'badge' or 'reward'")
        if self.wallet is not None and self.points is None:
            raise ValueError("'wallet' goes with 'points'")
        return self


class Challenge(Strict):
    """Time-boxed: steps (counts of matching activities) or a streak of periods."""

    key: Key
    name: str | None = Field(default=None, max_length=200)
    starts_at: datetime
    ends_at: datetime
    steps: list[ChallengeStep] | None = Field(default=None, min_length=1, max_length=20)
    streak: ChallengeStreak | None = None
    reward: ChallengeReward | None = None

    @model_validator(mode="after")
    def _steps_or_streak(self) -> Challenge:
        if (self.steps is None) == (self.streak is None):
            raise ValueError("a challenge has either 'steps' or 'streak'")
        return self


class SweepstakesBuy(Strict):
    """Entries bought with points: ``cost`` points of ``wallet`` per entry."""

    cost: Positive
    wallet: Key | None = None  # default: the program's default wallet
    max_per_member: Annotated[int, Field(ge=1, le=1_000_000)] | None = None


class SweepstakesEntries(Strict):
    on: str | None = Field(default=None, min_length=1, max_length=100)  # one entry per event
    buy: SweepstakesBuy | None = None

    @model_validator(mode="after")
    def _some_way(self) -> SweepstakesEntries:
        if self.on is None and self.buy is None:
            raise ValueError("entries need 'on' (an event type), 'buy' or both")
        return self


class SweepstakesPrize(Strict):
    """Each winner gets ``points`` of ``wallet`` or a catalog ``reward``'s coupon."""

    points: Positive | None = None
    wallet: Key | None = None
    reward: Key | None = None

    @model_validator(mode="after")
    def _one(self) -> SweepstakesPrize:
        if (self.points is None) == (self.reward is None):
            raise ValueError("a prize is either 'points' (and 'wallet') or 'reward'")
        if self.reward is not None and self.wallet is not None:
            raise ValueError("'wallet' goes with 'points', not with 'reward'")
        return self


class Sweepstake(Strict):
    """A sweepstake with a verifiable draw (docs/sweepstakes.md)."""

    key: Key
    name: str = Field(min_length=1, max_length=200)
    opens_at: AwareDatetime
    closes_at: AwareDatetime
    draws_at: AwareDatetime | None = None  # default: closes_at
    winners: Annotated[int, Field(ge=1, le=1000)] = 1
    entries: SweepstakesEntries
    eligible: str | None = None  # CEL over member, account, now
    prize: SweepstakesPrize

    @model_validator(mode="after")
    def _window(self) -> Sweepstake:
        if self.closes_at <= self.opens_at:
            raise ValueError("closes_at must be after opens_at")
        if self.draws_at is not None and self.draws_at < self.closes_at:
            raise ValueError("draws_at must not be before closes_at")
        return self


class GameReward(Strict):
    """Points credited by a quiz passed or a survey answered (docs/engagement.md)."""

    points: Annotated[Decimal, Field(gt=0, allow_inf_nan=False)]
    wallet: Key | None = None  # default: the program's default wallet


class Choice(Strict):
    key: Key
    text: str = Field(min_length=1, max_length=500)


class QuizQuestion(Strict):
    key: Key
    text: str = Field(min_length=1, max_length=1000)
    choices: list[Choice] = Field(min_length=2, max_length=20)
    # one choice key, or several: the answer must then name exactly these choices
    answer: Key | list[Key]


class Quiz(Strict):
    key: Key
    name: str = Field(min_length=1, max_length=200)
    questions: list[QuizQuestion] = Field(min_length=1, max_length=100)
    pass_score: int = Field(ge=1)  # correct answers needed to pass
    attempts: int = Field(default=1, ge=1, le=100)  # per member
    reward: GameReward | None = None
    starts_at: datetime | None = None
    ends_at: datetime | None = None


class PollOption(Strict):
    key: Key
    text: str = Field(min_length=1, max_length=500)


class Poll(Strict):
    key: Key
    question: str = Field(min_length=1, max_length=1000)
    options: list[PollOption] = Field(min_length=2, max_length=50)
    eligible: str | None = None  # CEL over member/account/now
    changeable: bool = False  # a vote may be changed until the poll closes
    closes_at: datetime | None = None


class Survey(Strict):
    key: Key
    name: str = Field(min_length=1, max_length=200)
    # one response per member per period (program timezone); ``once``: one ever
    period: Literal["month", "quarter", "year", "once"] = "once"
    reward: GameReward | None = None


class Leaderboard(Strict):
    """A ranking of members by a metric over a calendar period (docs/engagement.md)."""

    key: Key
    name: str = Field(min_length=1, max_length=200)
    metric: Literal["points_earned", "orders", "events"] = "points_earned"
    event_type: str | None = Field(default=None, max_length=100)  # for ``events``
    wallet: Key | None = None  # for ``points_earned``: default wallet otherwise
    period: Literal["day", "week", "month", "year", "lifetime"] = "month"
    size: int = Field(default=10, ge=1, le=100)  # top N shown


HOLDOUT = "holdout"  # the variant name of an experiment's holdout (control) group


class ExperimentVariant(Strict):
    key: Key
    name: str | None = Field(default=None, max_length=200)
    weight: Positive = Decimal(1)  # relative share of the enrolled members outside the holdout

    @field_validator("key")
    @classmethod
    def _not_reserved(cls, value: str) -> str:
        if value == HOLDOUT:
            raise ValueError(f"variant key {HOLDOUT!r} is reserved for the holdout group")
        return value


class Experiment(Strict):
    """An A/B test with a holdout (docs/experiments.md)."""

    key: Key
    name: str | None = Field(default=None, max_length=200)
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    # fraction (0 to 1, 0.1 = 10 %) of the enrolled members kept out of every variant
    holdout: Annotated[Decimal, Field(ge=0, lt=1, allow_inf_nan=False)] = Decimal(0)
    variants: list[ExperimentVariant] = Field(min_length=1, max_length=20)
    when: str | None = None  # CEL over member, account, now: who is enrolled

    @field_validator("holdout", mode="before")
    @classmethod
    def _fraction(cls, value: Any) -> Any:
        try:
            number = Decimal(str(value))
        except ArithmeticError:
            return value
        if number.is_finite() and number >= 1:
            raise ValueError(
                f"holdout is a fraction from 0 to below 1 (a 10 % holdout is 0.1), got {value}"
            )
        return value

    @field_validator("variants")
    @classmethod
    def _variant_keys(cls, value: list[ExperimentVariant]) -> list[ExperimentVariant]:
        seen: set[str] = set()
        for variant in value:
            if variant.key in seen:
                raise ValueError(f"duplicate variant key {variant.key!r}")
            seen.add(variant.key)
        return value

    @model_validator(mode="after")
    def _window(self) -> Experiment:
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        return self


class Segment(Strict):
    """A named group of members: those for whom ``condition`` holds (docs/segments.md)."""

    key: Key
    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=1000)
    condition: str = Field(min_length=1)


RfmScore = Annotated[int, Field(ge=1, le=5)]


class RfmSegment(Strict):
    """A named RFM segment: members whose R and F scores both lie in the given ranges."""

    name: str = Field(min_length=1, max_length=40)
    r: tuple[RfmScore, RfmScore]  # [lowest, highest] recency score, both included
    f: tuple[RfmScore, RfmScore]

    @model_validator(mode="after")
    def _ordered(self) -> RfmSegment:
        if self.r[0] > self.r[1] or self.f[0] > self.f[1]:
            raise ValueError("a range is [lowest, highest]")
        return self


class RfmSettings(Strict):
    # first match wins; None: the default map (docs/analytics.md#rfm)
    segments: list[RfmSegment] | None = Field(default=None, min_length=1, max_length=25)


class ChurnSettings(Strict):
    """Churn early warning thresholds (docs/analytics.md#churn-early-warning)."""

    gap_percentile: float = Field(default=90, gt=0, le=100)
    min_orders: int = Field(default=3, ge=3, le=100)  # purchase days to trust the own gaps
    high_multiple: float = Field(default=2.0, ge=1, le=100)
    p_alive_medium: float = Field(default=0.5, gt=0, le=1)
    p_alive_high: float = Field(default=0.25, gt=0, le=1)

    @model_validator(mode="after")
    def _ordered(self) -> ChurnSettings:
        if self.p_alive_high > self.p_alive_medium:
            raise ValueError("p_alive_high must not exceed p_alive_medium")
        return self


class ClvSettings(Strict):
    margin: Decimal | None = Field(default=None, gt=0, le=1)  # share of spend that is CLV


class Analytics(Strict):
    """Assumptions of the program's measurements (docs/analytics.md)."""

    # share of revenue left after the cost of goods: ROI counts incremental revenue × margin
    gross_margin: Annotated[Decimal, Field(ge=0, le=1, allow_inf_nan=False)] = Decimal("0.3")
    rfm: RfmSettings = Field(default_factory=RfmSettings)
    churn: ChurnSettings = Field(default_factory=ChurnSettings)
    clv: ClvSettings = Field(default_factory=ClvSettings)


class Program(Strict):
    name: str = Field(min_length=1, max_length=200)
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    timezone: str = "UTC"
    wallets: dict[Key, Wallet] = Field(default_factory=lambda: {"points": Wallet()})
    refund_policy: Literal["only_pending", "within_balance", "unlimited"] = "within_balance"
    tiers: Tiers | None = None
    campaigns: list[Campaign] = Field(default_factory=list)
    rules: list[Rule] = Field(default_factory=list)
    rewards: list[Reward] = Field(default_factory=list, max_length=1000)
    promotions: list[Promotion] = Field(default_factory=list, max_length=200)
    price_lists: list[PriceList] = Field(default_factory=list, max_length=MAX_PRICE_LISTS)
    brands: list[Brand] = Field(default_factory=list)
    partners: list[Partner] = Field(default_factory=list)
    plans: list[Plan] = Field(default_factory=list, max_length=100)
    referral: ReferralProgram | None = None
    badges: list[Badge] = Field(default_factory=list, max_length=200)
    challenges: list[Challenge] = Field(default_factory=list, max_length=200)
    sweepstakes: list[Sweepstake] = Field(default_factory=list, max_length=100)
    quizzes: list[Quiz] = Field(default_factory=list, max_length=100)
    polls: list[Poll] = Field(default_factory=list, max_length=100)
    surveys: list[Survey] = Field(default_factory=list, max_length=100)
    leaderboards: list[Leaderboard] = Field(default_factory=list, max_length=100)
    experiments: list[Experiment] = Field(default_factory=list, max_length=50)
    segments: list[Segment] = Field(default_factory=list, max_length=100)
    analytics: Analytics = Field(default_factory=Analytics)
    automations: list[Automation] = Field(default_factory=list, max_length=200)
    email: EmailSettings = Field(default_factory=EmailSettings)

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
