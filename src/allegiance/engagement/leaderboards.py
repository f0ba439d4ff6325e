"""Leaderboards: members ranked by a metric over a calendar period, computed by SQL from the
ledger (points earned net of reversals, by effective time), orders (not cancelled, by
placing time) or events of one type (by occurrence).

Ranking: higher value first; a tie goes to the member who reached the value first (the
moment of the last contributing entry), then to the smaller member id — stable between
calls. Members with ``leaderboard_opt_out: true`` in their attributes are left out (and do not
take a rank); names are masked ("Ann K." from the name, else "Member ••42"), or the member's
``leaderboard_name`` attribute when set.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from allegiance.engagement import game_repository as repository
from allegiance.errors import NotFound
from allegiance.kit.clock import period_key, zone
from allegiance.kit.money import number
from allegiance.program.compiled import CompiledProgram
from allegiance.program.schema import Leaderboard, Program

FAR = datetime(9999, 1, 1, tzinfo=UTC)


def find_board(program: Program, key: str) -> Leaderboard:
    for board in program.leaderboards:
        if board.key == key:
            return board
    raise NotFound(f"leaderboard {key!r} not found", code="leaderboard_not_found")


def period_bounds(period: str, at: datetime, tz: ZoneInfo) -> tuple[datetime | None, datetime]:
    """[start, end) of the calendar period containing ``at`` in ``tz``, in UTC."""
    if period == "lifetime":
        return None, FAR
    local = at.astimezone(tz)
    day = datetime(local.year, local.month, local.day, tzinfo=tz)
    if period == "day":
        start, end = day, day + timedelta(days=1)
    elif period == "week":
        start = day - timedelta(days=local.weekday())
        end = start + timedelta(days=7)
    elif period == "month":
        start = day.replace(day=1)
        end = (start + timedelta(days=32)).replace(day=1)
    else:
        start = day.replace(month=1, day=1)
        end = start.replace(year=start.year + 1)
    # wall-clock arithmetic in the zone, then to UTC (DST-safe for whole days)
    return (
        start.replace(tzinfo=None).replace(tzinfo=tz).astimezone(UTC),
        end.replace(tzinfo=None).replace(tzinfo=tz).astimezone(UTC),
    )


def display_name(member_id: str, name: str | None, attributes: dict[str, Any]) -> str:
    chosen = attributes.get("leaderboard_name")
    if isinstance(chosen, str) and chosen.strip():
        return chosen.strip()[:60]
    parts = (name or "").split()
    if parts:
        return f"{parts[0]} {parts[-1][0]}." if len(parts) > 1 else parts[0]
    return f"Member ••{member_id[-2:]}"


def opted_out(attributes: dict[str, Any]) -> bool:
    return attributes.get("leaderboard_opt_out") is True


def standings(
    session: Session,
    *,
    tenant_id: str,
    program: CompiledProgram,
    key: str,
    member_id: str | None,
    at: datetime,
) -> dict[str, Any]:
    """GET /v1/leaderboards/{key}: the top ``size`` and, with ``member_id``, that member's rank."""
    settings = program.program
    board = find_board(settings, key)
    tz = zone(settings.timezone)
    since, until = period_bounds(board.period, at, tz)
    wallet = board.wallet or settings.default_wallet
    if board.metric == "points_earned":
        rows = repository.points_earned(session, tenant_id, wallet, since, until)
    elif board.metric == "orders":
        rows = repository.orders_placed(session, tenant_id, since, until)
    else:
        rows = repository.events_of_type(session, tenant_id, board.event_type or "", since, until)
    rows = [r for r in rows if r[1] > 0]
    cards = repository.member_cards(session, tenant_id, sorted(r[0] for r in rows))
    ranked = sorted(
        (r for r in rows if r[0] in cards and not cards[r[0]][2] and not opted_out(cards[r[0]][1])),
        key=lambda r: (-r[1], r[2], r[0]),
    )
    precision = settings.wallets[wallet].precision

    def entry(rank: int, row: tuple[str, int, datetime]) -> dict[str, Any]:
        name, attributes, _ = cards[row[0]]
        value = number(row[1], precision) if board.metric == "points_earned" else row[1]
        return {
            "rank": rank,
            "member_id": row[0],
            "display_name": display_name(row[0], name, attributes),
            "value": value,
        }

    body: dict[str, Any] = {
        "key": board.key,
        "name": board.name,
        "metric": board.metric,
        "period": period_key(board.period, at, tz),
        "from": since.isoformat() if since else None,
        "to": until.isoformat() if until != FAR else None,
        "participants": len(ranked),
        "entries": [entry(i + 1, r) for i, r in enumerate(ranked[: board.size])],
    }
    if member_id is not None:
        own: dict[str, Any] = {"member_id": member_id, "rank": None, "value": 0}
        card = cards.get(member_id)
        if card is not None and opted_out(card[1]):
            own["opted_out"] = True
        else:
            own["opted_out"] = False
            for i, r in enumerate(ranked):
                if r[0] == member_id:
                    own = {**entry(i + 1, r), "opted_out": False}
                    break
        body["member"] = own
    return body
