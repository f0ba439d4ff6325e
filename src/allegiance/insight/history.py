"""Purchase histories summarised per customer, vectorised (no database, no business rules).

Input: one row per purchase (customer index, day number, value), any order. Same-day
purchases merge into one (their values add up). Output per customer, with days measured to
the end day (inclusive: a purchase on it counts) and divided by the time unit's length:
x = repeat purchase days, t_x = last − first, T = end − first, the mean value of the repeat
purchase days (the first is left out, as in the Gamma-Gamma paper), and the gaps between
consecutive purchase days.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

UNIT_DAYS = {"day": 1.0, "week": 7.0}


@dataclass(frozen=True)
class Summary:
    customers: int
    x: NDArray[np.float64]  # repeat purchase days
    t_x: NDArray[np.float64]  # time of the last purchase since the first, in time units
    T: NDArray[np.float64]  # age at the end day, in time units
    repeat_mean: NDArray[np.float64]  # mean value of the repeat purchase days (0 when x = 0)
    total: NDArray[np.float64]  # value of all purchase days
    first_day: NDArray[np.int64]
    last_day: NDArray[np.int64]
    # gaps between consecutive purchase days, in days: gaps[gap_start[i]:gap_start[i+1]]
    gaps: NDArray[np.int64]
    gap_start: NDArray[np.int64]

    def gaps_of(self, index: int) -> NDArray[np.int64]:
        return self.gaps[self.gap_start[index] : self.gap_start[index + 1]]


def summarise(
    customer: NDArray[np.int64],
    day: NDArray[np.int64],
    value: NDArray[np.float64],
    *,
    customers: int,
    end_day: int,
    time_unit: str,
) -> Summary:
    """Summaries of ``customers`` customers (indexes 0..customers−1; each needs a purchase
    on or before ``end_day``; later purchases must be filtered out by the caller)."""
    unit = UNIT_DAYS[time_unit]
    customer = np.asarray(customer, dtype=np.int64)
    day = np.asarray(day, dtype=np.int64)
    value = np.asarray(value, dtype=np.float64)
    order = np.lexsort((day, customer))
    customer, day, value = customer[order], day[order], value[order]
    # merge same-day purchases
    new = np.ones(len(day), dtype=bool)
    new[1:] = (customer[1:] != customer[:-1]) | (day[1:] != day[:-1])
    starts = np.flatnonzero(new)
    day_value = np.add.reduceat(value, starts) if len(starts) else np.zeros(0)
    day_customer = customer[starts]
    day_day = day[starts]
    counts = np.bincount(day_customer, minlength=customers)
    first_index = np.concatenate(([0], np.cumsum(counts)[:-1])).astype(np.int64)
    last_index = first_index + counts - 1
    has = counts > 0
    if not np.all(has):
        raise ValueError("every customer needs at least one purchase")
    first_day = day_day[first_index]
    last_day = day_day[last_index]
    total = np.bincount(day_customer, weights=day_value, minlength=customers).astype(np.float64)
    x = (counts - 1).astype(np.float64)
    first_value = day_value[first_index]
    repeat_sum = total - first_value
    repeat_mean = np.divide(repeat_sum, x, out=np.zeros(customers), where=x > 0)
    same = np.zeros(len(day_day), dtype=bool)
    same[1:] = day_customer[1:] == day_customer[:-1]
    gaps = (day_day[1:] - day_day[:-1])[same[1:]]
    gap_counts = counts - 1
    gap_start = np.concatenate(([0], np.cumsum(gap_counts))).astype(np.int64)
    return Summary(
        customers=customers,
        x=x,
        t_x=(last_day - first_day) / unit,
        T=(end_day - first_day) / unit,
        repeat_mean=repeat_mean,
        total=total,
        first_day=first_day.astype(np.int64),
        last_day=last_day.astype(np.int64),
        gaps=gaps.astype(np.int64),
        gap_start=gap_start,
    )
