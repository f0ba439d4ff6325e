"""Price lists: pure computation of tier / B2B prices for cart lines and price tables.

No I/O here. The caller hands in the program's price lists, the lines, and the context
(``member``, ``account``, ``now``) that ``eligible`` conditions are evaluated against.

For one cart:
1. a list takes part when it is enabled, the cart time is inside its window
   (``starts_at`` ≤ time < ``ends_at``) and its ``eligible`` condition holds (none: everyone);
2. a list covers a line when it has an entry for the line's SKU, else one for its category
   (an SKU entry beats a category entry); a list without entries covers every line;
3. the entry's break with the highest ``min_quantity`` not above the line's quantity gives
   the base price: its ``unit_price``, or the list unit price less ``percent_off``;
4. ``volume`` breaks are chosen by the cart's total quantity of the lines the list covers,
   and take their percent off the price of step 3 (or off the list price when no break of
   the entry is reached);
5. the unit price is rounded half-up to the currency's minor unit, once; the line amount is
   that unit price × quantity (rounded half-up again for fractional quantities);
6. of all lists' offers for a line, the lowest unit price wins (ties: lower ``priority``,
   then document order); an offer that is not below the list unit price is no offer.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal, localcontext
from typing import Any

from allegiance.kit.clock import as_utc
from allegiance.kit.expression import Scope, compile_expression
from allegiance.kit.money import round_to_minor
from allegiance.program.schema import PriceBreak, PriceEntry, PriceList, Program, VolumeBreak

ZERO = Decimal(0)
HUNDRED = Decimal(100)


@dataclass(frozen=True)
class CartLine:
    index: int
    sku: str
    category: str
    quantity: Decimal
    list_unit_price: Decimal  # exact: the item's unit_price, else amount / quantity
    list_amount_minor: int  # the line at list price


@dataclass(frozen=True)
class PricedLine:
    line: CartLine
    list_unit_minor: int
    unit_minor: int
    amount_minor: int
    price_list: str | None = None
    rule: str | None = None  # the entry break that set the price
    volume_rule: str | None = None  # the volume break applied on top

    @property
    def savings_minor(self) -> int:
        return self.line.list_amount_minor - self.amount_minor


@dataclass(frozen=True)
class Offer:
    unit_minor: int
    priority: int
    position: int
    price_list: str
    rule: str | None
    volume_rule: str | None


@dataclass(frozen=True)
class TableRow:
    min_quantity: int
    max_quantity: int | None
    unit_minor: int
    savings_minor: int | None  # per unit; None without a list price
    savings_percent: Decimal | None


class NeedsListPrice(ValueError):
    """A percent break or a volume break cannot be shown without a list price."""


# ---- one list ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ListIndex:
    by_sku: dict[str, PriceEntry]
    by_category: dict[str, PriceEntry]


_indexes: dict[int, tuple[Program, list[ListIndex]]] = {}
_indexes_lock = threading.Lock()


def _index(program: Program) -> list[ListIndex]:
    """Entries by SKU and category per list, built once per program object."""
    with _indexes_lock:
        found = _indexes.get(id(program))
        if found is not None and found[0] is program:
            return found[1]
    built = [
        ListIndex(
            by_sku={e.sku: e for e in pl.entries if e.sku is not None},
            by_category={e.category: e for e in pl.entries if e.category is not None},
        )
        for pl in program.price_lists
    ]
    with _indexes_lock:
        if len(_indexes) > 256:
            _indexes.clear()
        _indexes[id(program)] = (program, built)  # the program is kept, so its id stays its own
    return built


def entry_for(
    program: Program, position: int, *, sku: str | None, category: str | None
) -> PriceEntry | None:
    """The list's entry for an SKU, else for a category."""
    return _entry(_index(program)[position], sku, category)


def _entry(index: ListIndex, sku: str | None, category: str | None) -> PriceEntry | None:
    if sku and sku in index.by_sku:
        return index.by_sku[sku]
    if category and category in index.by_category:
        return index.by_category[category]
    return None


def is_active(price_list: PriceList, at: datetime) -> bool:
    if not price_list.enabled:
        return False
    if price_list.starts_at is not None and at < as_utc(price_list.starts_at):
        return False
    return not (price_list.ends_at is not None and at >= as_utc(price_list.ends_at))


def is_eligible(price_list: PriceList, scope: Scope) -> bool:
    """``eligible`` against the scope's member, account and now; a failing condition is false."""
    if price_list.eligible is None:
        return True
    return scope.test(compile_expression(price_list.eligible))


def break_at(entry: PriceEntry | None, quantity: Decimal) -> PriceBreak | None:
    found = None
    if entry is not None:
        for price_break in entry.breaks:  # sorted by min_quantity (validated)
            if price_break.min_quantity <= quantity:
                found = price_break
    return found


def volume_at(price_list: PriceList, quantity: Decimal) -> VolumeBreak | None:
    found = None
    for volume in price_list.volume:
        if volume.min_quantity <= quantity:
            found = volume
    return found


def unit_price_minor(
    list_unit_price: Decimal | None,
    price_break: PriceBreak | None,
    volume: VolumeBreak | None,
    exponent: int,
) -> int:
    """Break price (or list price), less the volume percent, rounded half-up once."""
    with localcontext() as ctx:
        ctx.prec = 40
        if price_break is not None and price_break.unit_price is not None:
            base = price_break.unit_price
            if list_unit_price is not None:
                base = min(base, list_unit_price)  # a break never raises a price
        else:
            if list_unit_price is None:
                raise NeedsListPrice("a list price is needed for percent_off")
            base = list_unit_price
            if price_break is not None and price_break.percent_off is not None:
                base = base * (HUNDRED - price_break.percent_off) / HUNDRED
        if volume is not None:
            base = base * (HUNDRED - volume.percent_off) / HUNDRED
        return round_to_minor(base, exponent, "half_up")


def _quantity_text(value: int) -> str:
    return f"{value}+"


def break_rule(price_list: PriceList, entry: PriceEntry, price_break: PriceBreak) -> str:
    """``wholesale:ABC-1:10+`` for an SKU entry, ``wholesale:category:tools:5+`` otherwise."""
    target = entry.sku if entry.sku is not None else f"category:{entry.category}"
    return f"{price_list.key}:{target}:{_quantity_text(price_break.min_quantity)}"


def volume_rule(price_list: PriceList, volume: VolumeBreak) -> str:
    return f"{price_list.key}:volume:{_quantity_text(volume.min_quantity)}"


# ---- a cart -------------------------------------------------------------------------------


def price_lines(
    program: Program,
    lines: list[CartLine],
    context: dict[str, Any],
    *,
    at: datetime,
    exponent: int,
) -> list[PricedLine]:
    """Price every line with the best offer of the lists that are active and eligible."""
    scope = Scope(context)
    indexes = _index(program)
    offers: list[list[Offer]] = [[] for _ in lines]
    for position, price_list in enumerate(program.price_lists):
        if not is_active(price_list, at) or not is_eligible(price_list, scope):
            continue
        covered: list[tuple[int, CartLine, PriceEntry | None]] = []
        for number, line in enumerate(lines):
            if line.quantity <= 0:
                continue
            entry = _entry(indexes[position], line.sku, line.category)
            if entry is not None or not price_list.entries:
                covered.append((number, line, entry))
        volume = volume_at(price_list, sum((line.quantity for _, line, _ in covered), ZERO))
        for number, line, entry in covered:
            price_break = break_at(entry, line.quantity)
            if price_break is None and volume is None:
                continue
            unit_minor = unit_price_minor(line.list_unit_price, price_break, volume, exponent)
            if unit_minor >= _list_unit_minor(line, exponent):
                continue
            offers[number].append(
                Offer(
                    unit_minor=unit_minor,
                    priority=price_list.priority,
                    position=position,
                    price_list=price_list.key,
                    rule=break_rule(price_list, entry, price_break)
                    if entry is not None and price_break is not None
                    else None,
                    volume_rule=volume_rule(price_list, volume) if volume is not None else None,
                )
            )
    priced: list[PricedLine] = []
    for line, found in zip(lines, offers, strict=True):
        list_unit_minor = _list_unit_minor(line, exponent)
        if not found:
            priced.append(
                PricedLine(
                    line=line,
                    list_unit_minor=list_unit_minor,
                    unit_minor=list_unit_minor,
                    amount_minor=line.list_amount_minor,
                )
            )
            continue
        best = min(found, key=lambda o: (o.unit_minor, o.priority, o.position))
        amount = round_to_minor(Decimal(best.unit_minor) * line.quantity, 0, "half_up")
        priced.append(
            PricedLine(
                line=line,
                list_unit_minor=list_unit_minor,
                unit_minor=best.unit_minor,
                amount_minor=min(amount, line.list_amount_minor),
                price_list=best.price_list,
                rule=best.rule,
                volume_rule=best.volume_rule,
            )
        )
    return priced


def _list_unit_minor(line: CartLine, exponent: int) -> int:
    return round_to_minor(line.list_unit_price, exponent, "half_up")


# ---- a product page -----------------------------------------------------------------------


def price_table(
    price_list: PriceList,
    entry: PriceEntry | None,
    *,
    list_price: Decimal | None,
    exponent: int,
) -> list[TableRow]:
    """Quantity bands with the unit price one would pay buying that many of this item alone.

    Bands start at every break of the entry and of the list's volume breaks (and at 1, at the
    list price, when the first break starts later); neighbouring bands with the same price
    merge. Each band's price is what ``price_lines`` gives a cart of that quantity.
    Raises NeedsListPrice when a percent needs a list price that is not known.
    """
    starts = {b.min_quantity for b in (entry.breaks if entry is not None else [])}
    starts |= {v.min_quantity for v in price_list.volume}
    if list_price is not None:
        starts.add(1)
    rows: list[TableRow] = []
    list_minor = round_to_minor(list_price, exponent, "half_up") if list_price is not None else None
    for start in sorted(starts):
        quantity = Decimal(start)
        price_break = break_at(entry, quantity)
        volume = volume_at(price_list, quantity)
        if price_break is None and volume is None:
            if list_minor is None:
                continue
            unit_minor = list_minor
        else:
            unit_minor = unit_price_minor(list_price, price_break, volume, exponent)
        if rows and rows[-1].unit_minor == unit_minor:
            continue
        savings = savings_percent = None
        if list_minor is not None:
            savings = list_minor - unit_minor
            savings_percent = (
                (Decimal(savings) * HUNDRED / Decimal(list_minor)).quantize(
                    Decimal("0.01"), rounding=ROUND_HALF_UP
                )
                if list_minor
                else ZERO
            )
        if rows:
            last = rows[-1]
            rows[-1] = TableRow(
                last.min_quantity, start - 1, last.unit_minor, last.savings_minor,
                last.savings_percent,
            )  # fmt: skip
        rows.append(TableRow(start, None, unit_minor, savings, savings_percent))
    return rows
