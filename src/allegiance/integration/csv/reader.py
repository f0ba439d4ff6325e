"""Streaming readers: CSV (one row per order line, rows of one order adjacent) and JSONL.

Memory stays flat: rows are read one at a time and handed on in bounded batches.

Order CSV columns (header names; unknown columns are an error so typos don't pass silently):
  id (or order_id), member_id (or customer_id), placed_at, currency, total, shipping_amount,
  tax_amount, discount_amount, channel, brand, partner, coupon_codes (separated by ';'),
  and per line: sku, name, category, labels (';'), quantity, unit_price, amount,
  plus attributes.<name> columns for order attributes.
Member CSV columns: member_id (or id), email, name, phone, birthdate, locale, tags (';'),
  account_id, referral_code, enrolled_at, attributes.<name>.
Refund CSV columns: id (or refund_id), order_id, amount, reason.
Event CSV columns: id (or event_id), type, member_id (or customer_id), occurred_at,
  properties.<name>.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ORDER_FIELDS = {
    "id",
    "member_id",
    "placed_at",
    "currency",
    "total",
    "shipping_amount",
    "tax_amount",
    "discount_amount",
    "channel",
    "brand",
    "partner",
    "coupon_codes",
}
ITEM_FIELDS = {"sku", "name", "category", "labels", "quantity", "unit_price", "amount"}
ORDER_ALIASES = {"order_id": "id", "customer_id": "member_id"}
MEMBER_FIELDS = {
    "member_id",
    "email",
    "name",
    "phone",
    "birthdate",
    "locale",
    "tags",
    "account_id",
    "referral_code",
    "enrolled_at",
}
MEMBER_ALIASES = {"id": "member_id", "customer_id": "member_id"}
REFUND_FIELDS = {"id", "order_id", "amount", "reason"}
REFUND_ALIASES = {"refund_id": "id"}
EVENT_FIELDS = {"id", "type", "member_id", "occurred_at"}
EVENT_ALIASES = {"event_id": "id", "customer_id": "member_id"}
GROUPED = ("attributes.", "properties.")  # prefixed columns grouped into one object
LIST_FIELDS = {"coupon_codes", "labels", "tags"}


@dataclass
class Record:
    """One logical record (an order with its lines, a member) and where it came from."""

    line: int  # first line of the record in the file (1 = header for CSV)
    data: dict[str, Any] | None
    error: str | None = None
    raw: Any = None


def detect_format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    return "csv"


def read_records(path: Path, kind: str) -> Iterator[Record]:
    if detect_format(path) == "jsonl":
        yield from _jsonl(path)
    elif kind == "orders":
        yield from _order_csv(path)
    elif kind == "refunds":
        yield from _flat_csv(path, REFUND_FIELDS, REFUND_ALIASES, key="id")
    elif kind == "events":
        yield from _flat_csv(path, EVENT_FIELDS, EVENT_ALIASES, key="id")
    else:
        yield from _flat_csv(path, MEMBER_FIELDS, MEMBER_ALIASES, key="member_id")


def _jsonl(path: Path) -> Iterator[Record]:
    with path.open("r", encoding="utf-8-sig") as handle:
        for number, text in enumerate(handle, start=1):
            if not text.strip():
                continue
            try:
                value = json.loads(text)
            except json.JSONDecodeError as exc:
                yield Record(
                    number,
                    None,
                    f"not valid JSON: {exc.msg} at column {exc.colno}",
                    raw=text.rstrip("\n"),
                )
                continue
            if not isinstance(value, dict):
                yield Record(number, None, "each line must be a JSON object", raw=value)
                continue
            yield Record(number, value, raw=value)


def _header(reader: Any, known: set[str], aliases: dict[str, str]) -> list[str]:
    header = next(reader, None)
    if header is None:
        return []
    names = []
    for raw in header:
        name = raw.strip().lower().lstrip("\ufeff")
        name = aliases.get(name, name)
        if name not in known and not name.startswith(GROUPED):
            raise ValueError(f"unknown column {raw!r}; expected some of {sorted(known)}")
        names.append(name)
    return names


Splitter = Callable[[list[str]], tuple[dict[str, Any], dict[str, Any]]]


def _splitter(names: list[str], item_fields: set[str]) -> Splitter:
    """A function that splits one CSV row into (record fields, line item fields), each
    column's place worked out once; ``attributes.*`` and ``properties.*`` columns are grouped
    into one object each, ``;`` lists split, empty cells left out."""
    # per column: (0 record | 1 line item | 2 group, name or group, key in the group, is a list)
    plan: list[tuple[int, str, str, bool]] = []
    for name in names:
        if name.startswith(GROUPED):
            group, key = name.split(".", 1)
            plan.append((2, group, key, False))
        else:
            plan.append((1 if name in item_fields else 0, name, "", name in LIST_FIELDS))

    def split(row: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
        data: dict[str, Any] = {}
        item: dict[str, Any] = {}
        for (target, name, key, is_list), cell in zip(plan, row, strict=True):
            value: Any = cell.strip()
            if not value:
                continue
            if is_list:
                value = [part.strip() for part in value.split(";") if part.strip()]
            if target == 0:
                data[name] = value
            elif target == 1:
                item[name] = value
            else:
                data.setdefault(name, {})[key] = value
        return data, item

    return split


def _rows(reader: Any, names: list[str]) -> Iterator[tuple[int, list[str], str | None]]:
    """Non-blank rows with their line number and, for a row of the wrong width, the reason."""
    width = len(names)
    for row in reader:
        if not "".join(row).strip():
            continue
        problem = None
        if len(row) != width:
            problem = f"expected {width} columns, got {len(row)}"
        yield reader.line_num, row, problem


def _flat_csv(path: Path, known: set[str], aliases: dict[str, str], key: str) -> Iterator[Record]:
    with path.open("r", encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle)
        names = _header(reader, known, aliases)
        split = _splitter(names, set())
        for number, row, problem in _rows(reader, names):
            if problem:
                yield Record(number, None, problem, raw=row)
                continue
            data, _ = split(row)
            yield Record(number, data, raw=dict(zip(names, row, strict=True)))


def _order_csv(path: Path) -> Iterator[Record]:
    """Group adjacent rows with the same order id into one order with several lines."""
    with path.open("r", encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle)
        names = _header(reader, ORDER_FIELDS | ITEM_FIELDS, ORDER_ALIASES)
        split = _splitter(names, ITEM_FIELDS)
        current: Record | None = None
        for number, row, problem in _rows(reader, names):
            if problem:
                if current is not None:
                    yield current
                    current = None
                yield Record(number, None, problem, raw=row)
                continue
            order, item = split(row)
            order_id = order.get("id")
            if (
                current is not None
                and current.data is not None
                and order_id is not None
                and current.data.get("id") == order_id
            ):
                if item:
                    current.data.setdefault("items", []).append(item)
                current.raw.append(row)
                continue
            if current is not None:
                yield current
            order["items"] = [item] if item else []
            current = Record(number, order, raw=[row])
        if current is not None:
            yield current
