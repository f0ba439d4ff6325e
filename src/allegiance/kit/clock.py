"""Time: parsing ISO 8601 (naive means UTC) and calendar periods in a time zone."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def parse_timestamp(text: str) -> datetime:
    """Parse ISO 8601; a naive value is UTC. Raises ValueError with a readable message."""
    raw = text.strip()
    if raw.endswith("Z") or raw.endswith("z"):
        raw = raw[:-1] + "+00:00"
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        try:
            value = datetime.combine(date.fromisoformat(raw), datetime.min.time())
        except ValueError as exc:
            raise ValueError(f"not an ISO 8601 timestamp: {text!r}") from exc
    return as_utc(value)


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r}") from exc


_period_cache: dict[tuple[str, datetime, str], str] = {}


def period_key(period: str, at: datetime, tz: ZoneInfo) -> str:
    """The calendar period containing ``at`` in zone ``tz``, as a stable key (memoised: one
    booking asks for the same period several times)."""
    key = (period, at, tz.key)
    found = _period_cache.get(key)
    if found is None:
        if len(_period_cache) > 50_000:
            _period_cache.clear()
        found = _period_cache[key] = _period_key(period, at, tz)
    return found


def _period_key(period: str, at: datetime, tz: ZoneInfo) -> str:
    local = at.astimezone(tz)
    if period == "day":
        return local.strftime("d%Y-%m-%d")
    if period == "week":
        year, week, _ = local.isocalendar()
        return f"w{year}-{week:02d}"
    if period == "month":
        return local.strftime("m%Y-%m")
    if period == "year":
        return local.strftime("y%Y")
    if period == "lifetime":
        return "all"
    raise ValueError(f"unknown period {period!r}")


def end_of_month(at: datetime, tz: ZoneInfo) -> datetime:
    """The first instant of the next calendar month in ``tz`` (exclusive end), in UTC."""
    local = at.astimezone(tz)
    year, month = (local.year + 1, 1) if local.month == 12 else (local.year, local.month + 1)
    return datetime(year, month, 1, tzinfo=tz).astimezone(UTC)


def end_of_year(at: datetime, tz: ZoneInfo) -> datetime:
    local = at.astimezone(tz)
    return datetime(local.year + 1, 1, 1, tzinfo=tz).astimezone(UTC)


def days(n: float) -> timedelta:
    return timedelta(days=n)
