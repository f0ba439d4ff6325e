"""Calendar arithmetic for plan periods, in the program time zone.

Months and years keep the anchor's day of the month, clamped to the month's length: a
subscription anchored on 31 January renews on 28 (or 29) February, then 31 March. Days and
weeks are calendar days: the local time of day stays the same across a DST change.
"""

from __future__ import annotations

import calendar
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from allegiance.program.schema import PlanSpan


def add_days(at: datetime, days: int, tz: ZoneInfo) -> datetime:
    local = at.astimezone(tz)
    return _utc(local.replace(tzinfo=None) + timedelta(days=days), tz)


def add_span(
    at: datetime, span: PlanSpan, tz: ZoneInfo, anchor: datetime | None = None
) -> datetime:
    """``at`` plus one plan period; month and year periods land on ``anchor``'s day."""
    if span.days is not None:
        return add_days(at, span.days, tz)
    if span.weeks is not None:
        return add_days(at, 7 * span.weeks, tz)
    months = span.months if span.months is not None else 12 * (span.years or 0)
    local = at.astimezone(tz).replace(tzinfo=None)
    day = (anchor or at).astimezone(tz).day
    index = local.year * 12 + (local.month - 1) + months
    year, month = divmod(index, 12)
    month += 1
    if year > 9998:
        raise OverflowError("period end out of range")
    day = min(day, calendar.monthrange(year, month)[1])
    return _utc(local.replace(year=year, month=month, day=day), tz)


def _utc(local: datetime, tz: ZoneInfo) -> datetime:
    # a wall time that a DST change skips resolves forwards (fold=0 reads it with the offset
    # before the change)
    return local.replace(tzinfo=tz).astimezone(UTC)
