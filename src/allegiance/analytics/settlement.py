"""Coalition settlement: what each partner owes the program, or is owed, over a period.

A partner funds the points its customers earn with it and is paid for the points its
customers spend with it, both at its point value. Per partner: ``net_amount = issued_value −
redeemed_value`` (positive: the partner pays the program). The program's row is the negated
sum, so a settlement always adds up to zero in minor units.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from allegiance.analytics import repository
from allegiance.errors import invalid
from allegiance.kit.clock import as_utc, zone
from allegiance.kit.money import currency_exponent, money_str, number, round_to_minor
from allegiance.program.coalition import partner_point_value, partner_wallet
from allegiance.program.schema import Program


def period_bounds(program: Program, date_from: date, date_to: date) -> tuple[datetime, datetime]:
    """[start, end) in UTC of the days ``date_from``..``date_to`` (both included), local time."""
    check_dates(date_from, date_to)
    tz = zone(program.timezone)
    start = datetime.combine(date_from, time(0), tzinfo=tz)
    end = datetime.combine(date_to + timedelta(days=1), time(0), tzinfo=tz)
    return as_utc(start), as_utc(end)


EARLIEST = date(1900, 1, 1)
LATEST = date(2999, 12, 31)


def check_dates(date_from: date, date_to: date) -> None:
    """422 for a reversed period or dates no ledger holds (and whose day after overflows)."""
    for name, value in (("from", date_from), ("to", date_to)):
        if not EARLIEST <= value <= LATEST:
            raise invalid(["query", name], f"must lie between {EARLIEST} and {LATEST}")
    if date_from > date_to:
        raise invalid(["query", "from"], "from must not be after to")


def partner_settlement(
    session: Session,
    *,
    tenant_id: str,
    program: Program,
    date_from: date,
    date_to: date,
    partner: str | None = None,
) -> dict[str, Any]:
    """Settlement per declared partner; a partner key (``partner``) sees only its own row.

    For a partner key the program row is the counterpart of that partner alone.
    """
    start, end = period_bounds(program, date_from, date_to)
    sums = repository.partner_point_sums(session, tenant_id, start, end)
    exponent = currency_exponent(program.currency)
    rows: list[dict[str, Any]] = []
    totals = {"issued": 0, "redeemed": 0, "issued_value": 0, "redeemed_value": 0}
    for p in program.partners:
        if partner is not None and p.key != partner:
            continue
        wallet_key = partner_wallet(program, p)
        wallet = program.wallets[wallet_key]
        point_value = partner_point_value(program, p) or Decimal(0)
        issued = sums.get((p.key, wallet_key, "earn"), 0) - sums.get(
            (p.key, wallet_key, "reverse"), 0
        )
        # a cancelled redemption gives its points back (``return``): not redeemed after all
        redeemed = sums.get((p.key, wallet_key, "spend"), 0) - sums.get(
            (p.key, wallet_key, "return"), 0
        )
        issued_value = _value(issued, wallet.precision, point_value, exponent)
        redeemed_value = _value(redeemed, wallet.precision, point_value, exponent)
        totals["issued"] += issued
        totals["redeemed"] += redeemed
        totals["issued_value"] += issued_value
        totals["redeemed_value"] += redeemed_value
        rows.append(
            {
                "partner": p.key,
                "name": p.name,
                "wallet": wallet_key,
                "point_value": str(point_value),
                "points_issued": number(issued, wallet.precision),
                "points_redeemed": number(redeemed, wallet.precision),
                "issued_value": money_str(issued_value, exponent),
                "redeemed_value": money_str(redeemed_value, exponent),
                "net_amount": money_str(issued_value - redeemed_value, exponent),
                "_net_minor": issued_value - redeemed_value,
            }
        )
    program_net = -(totals["issued_value"] - totals["redeemed_value"])
    total_minor = sum(r.pop("_net_minor") for r in rows) + program_net
    return {
        "from": date_from.isoformat(),
        "to": date_to.isoformat(),
        "timezone": program.timezone,
        "currency": program.currency,
        "partners": rows,
        "program": {
            "issued_value": money_str(-totals["issued_value"], exponent),
            "redeemed_value": money_str(-totals["redeemed_value"], exponent),
            "net_amount": money_str(program_net, exponent),
        },
        "total": money_str(total_minor, exponent),
        "balanced": total_minor == 0,
    }


def _value(points_minor: int, precision: int, point_value: Decimal, exponent: int) -> int:
    """Money (minor units) for points at the point value, half up (symmetric for negatives)."""
    money = Decimal(points_minor).scaleb(-precision) * point_value
    return round_to_minor(money, exponent, "half_up")
