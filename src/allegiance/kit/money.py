"""Exact decimal amounts and integer minor units."""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal

# ISO 4217 minor-unit exponents that differ from 2
_EXPONENTS = {
    "BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0, "KRW": 0,
    "PYG": 0, "RWF": 0, "UGX": 0, "UYI": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0,
    "XPF": 0, "BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
    "CLF": 4, "UYW": 4,
}  # fmt: skip

ROUNDING_MODES = {
    "floor": ROUND_FLOOR,
    "ceil": ROUND_CEILING,
    "half_up": ROUND_HALF_UP,
    "half_even": ROUND_HALF_EVEN,
}


def currency_exponent(currency: str) -> int:
    return _EXPONENTS.get(currency.upper(), 2)


def decimal_places(value: Decimal) -> int:
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent >= 0:
        return 0
    exponent = value.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def to_minor(value: Decimal, exponent: int) -> int:
    """Exact conversion; the caller has checked the number of decimals."""
    return int(value.scaleb(exponent).to_integral_value())


def from_minor(amount_minor: int, exponent: int) -> Decimal:
    return Decimal(amount_minor).scaleb(-exponent)


def round_to_minor(value: Decimal, exponent: int, rounding: str) -> int:
    """Round an exact amount to integer minor units with a named rounding mode."""
    return int(value.scaleb(exponent).quantize(Decimal(1), rounding=ROUNDING_MODES[rounding]))


def money_str(amount_minor: int, exponent: int) -> str:
    return f"{from_minor(amount_minor, exponent):.{exponent}f}"


def number(amount_minor: int, exponent: int) -> int | float:
    """A JSON number for an amount held in minor units (an int when there are no decimals)."""
    if exponent == 0:
        return amount_minor
    return float(from_minor(amount_minor, exponent))
