"""Plan periods: calendar months and years on an anchor day, calendar days across DST."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from allegiance.program.schema import PlanSpan
from allegiance.subscription.periods import add_days, add_span

UTC_ZONE = ZoneInfo("UTC")
WARSAW = ZoneInfo("Europe/Warsaw")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


@pytest.mark.parametrize(
    ("start", "anchor", "span", "end"),
    [
        ("2026-01-31T09:00:00+00:00", None, {"months": 1}, "2026-02-28T09:00:00+00:00"),
        ("2028-01-31T09:00:00+00:00", None, {"months": 1}, "2028-02-29T09:00:00+00:00"),
        (
            "2026-02-28T09:00:00+00:00",
            "2026-01-31T09:00:00+00:00",
            {"months": 1},
            "2026-03-31T09:00:00+00:00",
        ),
        (
            "2026-02-28T09:00:00+00:00",
            "2026-01-30T09:00:00+00:00",
            {"months": 1},
            "2026-03-30T09:00:00+00:00",
        ),
        ("2026-11-15T00:00:00+00:00", None, {"months": 3}, "2027-02-15T00:00:00+00:00"),
        ("2028-02-29T10:00:00+00:00", None, {"years": 1}, "2029-02-28T10:00:00+00:00"),
        (
            "2029-02-28T10:00:00+00:00",
            "2028-02-29T10:00:00+00:00",
            {"years": 3},
            "2032-02-29T10:00:00+00:00",
        ),
        ("2026-03-01T10:00:00+00:00", None, {"weeks": 2}, "2026-03-15T10:00:00+00:00"),
        ("2026-12-31T10:00:00+00:00", None, {"days": 1}, "2027-01-01T10:00:00+00:00"),
    ],
)
def test_add_span_in_utc(start: str, anchor: str | None, span: dict[str, int], end: str) -> None:
    found = add_span(
        at(start), PlanSpan.model_validate(span), UTC_ZONE, at(anchor) if anchor else None
    )
    assert found == at(end)


def test_days_keep_the_local_time_across_daylight_saving() -> None:
    # 28 March 2026 12:00 CET; summer time starts on 29 March: the next day is 23 hours later
    start = at("2026-03-28T12:00:00+01:00")
    assert add_days(start, 1, WARSAW) == at("2026-03-29T12:00:00+02:00")
    assert (add_days(start, 1, WARSAW) - start).total_seconds() == 23 * 3600


def test_months_are_local_calendar_months() -> None:
    # 31 January 00:30 in Warsaw is 30 January 23:30 UTC: the local day (31) is the anchor
    start = at("2026-01-31T00:30:00+01:00")
    assert add_span(start, PlanSpan(months=1), WARSAW) == at("2026-02-28T00:30:00+01:00")
    assert add_span(start, PlanSpan(months=2), WARSAW) == at("2026-03-31T00:30:00+02:00")
