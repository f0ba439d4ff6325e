"""The simulator's output: one JSON document, or Rich tables side by side."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from allegiance.simulation.service import History


def as_document(
    history: History, results: list[dict[str, Any]], redemption_rate: float
) -> dict[str, Any]:
    return {
        "orders": {
            "read": history.read,
            "replayed": history.orders,
            "rejected": len(history.rejected) + max((r["orders_rejected"] for r in results),
                                                    default=0),
            "rejected_records": history.rejected[:100],
        },
        "assumptions": {"redemption_rate": redemption_rate},
        "programs": results,
    }  # fmt: skip


def _num(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f} %"


def _tiers(tiers: dict[str, int]) -> str:
    return ", ".join(f"{k or 'none'} {v}" for k, v in tiers.items()) or "-"


def print_tables(console: Console, body: dict[str, Any]) -> None:
    """Month by month; with two programs each figure has a column per program."""
    programs = body["programs"]
    labels = ["A", "B"][: len(programs)]
    title = "  vs  ".join(
        f"{label}: {p['name']} ({p['program']})" for label, p in zip(labels, programs, strict=True)
    )
    table = Table(title=title, show_lines=False)
    table.add_column("Month")
    table.add_column("Orders", justify="right")
    table.add_column("Revenue", justify="right")
    metrics = [
        ("Issued", "points_issued", _num),
        ("Redeemed", "points_redeemed", _num),
        ("Expired", "points_expired", _num),
        ("Liability", "liability", _num),
        ("Cost/Rev", "cost_share", _share),
    ]
    for name, _, _ in metrics:
        for label in labels:
            table.add_column(f"{name} {label}" if len(labels) > 1 else name, justify="right")
    if any(p["months"] and p["months"][-1]["tiers"] for p in programs):
        for label in labels:
            table.add_column(f"Tiers {label}" if len(labels) > 1 else "Tiers")
        with_tiers = True
    else:
        with_tiers = False
    rows = zip(*(p["months"] for p in programs), strict=True)
    for months in rows:
        first = months[0]
        cells = [first["month"], _num(first["orders"]), _num(first["revenue"])]
        for _, key, fmt in metrics:
            cells += [fmt(m[key]) for m in months]
        if with_tiers:
            cells += [_tiers(m["tiers"]) for m in months]
        table.add_row(*cells)
    totals = [p["totals"] for p in programs]
    cells = ["Total", _num(totals[0]["orders"]), _num(totals[0]["revenue"])]
    for _, key, fmt in metrics:
        cells += [fmt(t[key]) for t in totals]
    if with_tiers:
        cells += [_tiers(t["tiers"]) for t in totals]
    table.add_row(*cells, style="bold")
    console.print(table)
    orders = body["orders"]
    console.print(
        f"orders: read {orders['read']:,}, replayed {orders['replayed']:,}, "
        f"rejected {orders['rejected']:,}; liability = outstanding points x point value at "
        "month end; cost = points issued x point value"
    )
