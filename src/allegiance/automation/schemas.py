"""The ``automations`` section of the program document (and its ``email`` settings)."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

_KEY = r"^[a-z0-9][a-z0-9_\-]{0,63}$"
_EVENT = r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$"
AutoKey = Annotated[str, Field(pattern=_KEY)]
TEMPLATE_PATTERN = r"^[a-z0-9][a-z0-9_\-]{0,63}$"
LOCALE_PATTERN = r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8}){0,2}$"
MONTH_DAY = re.compile(r"^(\d{4}-)?(\d{2})-(\d{2})$")
_SHORT_DELAY = re.compile(r"^(\d{1,5})([mhdw])$")
_ISO_DELAY = re.compile(
    r"^P(?:(?P<w>\d{1,4})W)?(?:(?P<d>\d{1,5})D)?"
    r"(?:T(?:(?P<h>\d{1,6})H)?(?:(?P<m>\d{1,7})M)?(?:(?P<s>\d{1,8})S)?)?$"
)
MAX_DELAY = timedelta(days=3650)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


def parse_delay(text: str) -> timedelta:
    """``"30m"``, ``"3h"``, ``"2d"``, ``"1w"`` or an ISO 8601 duration without years and
    months (``"P2D"``, ``"PT3H"``, ``"P1DT12H"``): calendar units have no fixed length."""
    short = _SHORT_DELAY.match(text)
    if short:
        n, unit = int(short.group(1)), short.group(2)
        delta = {
            "m": timedelta(minutes=n),
            "h": timedelta(hours=n),
            "d": timedelta(days=n),
            "w": timedelta(weeks=n),
        }[unit]
    else:
        iso = _ISO_DELAY.match(text)
        if not iso or text in ("P", "PT") or text.endswith("T"):
            raise ValueError(
                "a delay is like '30m', '3h', '2d', '1w' or an ISO 8601 duration such as "
                "'P2D' or 'PT3H' (years and months are not allowed: their length varies)"
            )
        parts = {k: int(v) for k, v in iso.groupdict().items() if v}
        delta = timedelta(
            weeks=parts.get("w", 0),
            days=parts.get("d", 0),
            hours=parts.get("h", 0),
            minutes=parts.get("m", 0),
            seconds=parts.get("s", 0),
        )
    if delta > MAX_DELAY:
        raise ValueError("a delay is at most 3650 days")
    return delta


class Empty(_Strict):
    pass


class PointsExpiringTrigger(_Strict):
    days: Annotated[int, Field(ge=0, le=365)]
    wallet: AutoKey | None = None  # default: every wallet


class NthOrderTrigger(_Strict):
    n: list[Annotated[int, Field(ge=1, le=1_000_000)]] = Field(min_length=1, max_length=100)


class MilestoneTrigger(_Strict):
    wallet: AutoKey | None = None  # default: the program's default wallet
    thresholds: list[Annotated[Decimal, Field(gt=0, allow_inf_nan=False)]] = Field(
        min_length=1, max_length=100
    )

    @field_validator("thresholds")
    @classmethod
    def _increasing(cls, value: list[Decimal]) -> list[Decimal]:
        if value != sorted(value) or len(set(value)) != len(value):
            raise ValueError("thresholds must be strictly increasing")
        return value


SCHEDULED = ("birthday", "anniversary", "date", "points_expiring")
TRIGGER_KINDS = ("event", *SCHEDULED, "nth_order", "points_milestone")


class Trigger(_Strict):
    """Exactly one of the keys."""

    event: str | None = Field(default=None, pattern=_EVENT, max_length=100)
    birthday: Empty | bool | None = None
    anniversary: Empty | bool | None = None
    date: str | list[str] | None = None  # "MM-DD" every year, or "YYYY-MM-DD" once
    points_expiring: PointsExpiringTrigger | None = None
    nth_order: NthOrderTrigger | None = None
    points_milestone: MilestoneTrigger | None = None

    @model_validator(mode="after")
    def _one(self) -> Trigger:
        given = [k for k in TRIGGER_KINDS if getattr(self, k) not in (None, False)]
        if len(given) != 1:
            raise ValueError(f"a trigger has exactly one of: {', '.join(TRIGGER_KINDS)}")
        dates = self.dates
        if self.date is not None:
            if not dates or len(dates) > 366:
                raise ValueError("date needs 1 to 366 dates")
            for value in dates:
                m = MONTH_DAY.match(value)
                if not m or not (1 <= int(m.group(2)) <= 12 and 1 <= int(m.group(3)) <= 31):
                    raise ValueError(f"date {value!r} is not 'MM-DD' or 'YYYY-MM-DD'")
        return self

    @property
    def kind(self) -> str:
        return next(k for k in TRIGGER_KINDS if getattr(self, k) not in (None, False))

    @property
    def dates(self) -> list[str]:
        if self.date is None:
            return []
        return [self.date] if isinstance(self.date, str) else list(self.date)


class Guard(_Strict):
    once_per_member: bool = False
    once_per: Literal["day", "week", "month", "year"] | None = None  # per member and period

    @model_validator(mode="after")
    def _one(self) -> Guard:
        if self.once_per_member and self.once_per is not None:
            raise ValueError("use once_per_member or once_per, not both")
        return self


class SendEmail(_Strict):
    template: str = Field(pattern=TEMPLATE_PATTERN)
    locale: str | None = Field(default=None, pattern=LOCALE_PATTERN)  # default: the member's
    to: str | None = Field(default=None, max_length=320)  # default: the member's e-mail
    # marketing mails need marketing consent; default from the template (see docs/email.md)
    marketing: bool | None = None


class Webhook(_Strict):
    endpoint: str = Field(min_length=1, max_length=100)


class AwardPoints(_Strict):
    wallet: AutoKey | None = None
    amount: Annotated[Decimal, Field(gt=0, allow_inf_nan=False)]
    expires_at: AwareDatetime | None = None
    expires_days: Annotated[int, Field(ge=1, le=36500)] | None = None
    reason: str | None = Field(default=None, max_length=500)

    @model_validator(mode="after")
    def _one_expiry(self) -> AwardPoints:
        if self.expires_at is not None and self.expires_days is not None:
            raise ValueError("use expires_at or expires_days, not both")
        return self


class IssueRewardAction(_Strict):
    reward: AutoKey


class TagAction(_Strict):
    tag: str = Field(min_length=1, max_length=100)


ACTION_KINDS = ("send_email", "webhook", "award_points", "issue_reward", "add_tag", "remove_tag")


class Action(_Strict):
    """Exactly one of the keys."""

    send_email: SendEmail | None = None
    webhook: Webhook | None = None
    award_points: AwardPoints | None = None
    issue_reward: IssueRewardAction | None = None
    add_tag: TagAction | str | None = None
    remove_tag: TagAction | str | None = None

    @model_validator(mode="after")
    def _one(self) -> Action:
        given = [k for k in ACTION_KINDS if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"an action has exactly one of: {', '.join(ACTION_KINDS)}")
        for key in ("add_tag", "remove_tag"):
            value = getattr(self, key)
            if isinstance(value, str):
                setattr(self, key, TagAction(tag=value))
        return self

    @property
    def kind(self) -> str:
        return next(k for k in ACTION_KINDS if getattr(self, k) is not None)

    @property
    def spec(self) -> Any:
        return getattr(self, self.kind)


class Automation(_Strict):
    key: AutoKey
    name: str | None = Field(default=None, max_length=200)
    enabled: bool = True
    trigger: Trigger
    condition: str | None = Field(default=None, min_length=1)  # CEL over event, member, now
    delay: str | None = Field(default=None, max_length=40)
    guard: Guard | None = None
    actions: list[Action] = Field(min_length=1, max_length=20)

    @field_validator("delay")
    @classmethod
    def _delay(cls, value: str | None) -> str | None:
        if value is not None:
            parse_delay(value)
        return value

    @property
    def delay_delta(self) -> timedelta:
        return parse_delay(self.delay) if self.delay else timedelta(0)


class EmailSettings(_Strict):
    from_address: str | None = Field(default=None, max_length=320, alias="from")
    reply_to: str | None = Field(default=None, max_length=320)
    default_locale: str = Field(default="en", pattern=LOCALE_PATTERN)
