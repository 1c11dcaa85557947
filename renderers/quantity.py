"""Kubernetes resource quantities ("128Mi", "1.5G", "500m", "1e3") parsed exactly.

The webhook compares `invocationLimits.memory` with the container's memory limit and the
operator writes it as bytes (`resource.Quantity.Value()`, which rounds up), so this must agree
with apimachinery on every suffix. Values are `Fraction`s: no float rounding.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {
    "n": Fraction(1, 10**9),
    "u": Fraction(1, 10**6),
    "m": Fraction(1, 10**3),
    "": Fraction(1),
    "k": Fraction(10**3),
    "M": Fraction(10**6),
    "G": Fraction(10**9),
    "T": Fraction(10**12),
    "P": Fraction(10**15),
    "E": Fraction(10**18),
}
_QUANTITY = re.compile(
    r"^(?P<sign>[+-]?)(?P<num>\d+(?:\.\d*)?|\.\d+)"
    r"(?:(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE])|[eE](?P<exp>[+-]?\d+))?$"
)


class QuantityError(ValueError):
    """The text is not a Kubernetes quantity."""


def parse_quantity(text: str | int | float) -> Fraction:
    """Exact value of a quantity; raises QuantityError on anything apimachinery would reject."""
    if isinstance(text, bool):
        raise QuantityError(f"quantities must be a string or number, not {text!r}")
    if isinstance(text, int):
        return Fraction(text)
    if isinstance(text, float):
        if not math.isfinite(text):
            raise QuantityError(f"{text!r} is not a valid quantity")
        return Fraction(str(text))
    if not isinstance(text, str):
        raise QuantityError(f"quantities must be a string or number, not {type(text).__name__}")
    match = _QUANTITY.match(text.strip()) if text.strip() == text else None
    if match is None:
        raise QuantityError(f"{text!r} is not a valid quantity (e.g. 128Mi, 1G, 500m)")
    value = Fraction(match["num"])
    if match["exp"] is not None:
        value *= Fraction(10) ** int(match["exp"])
    else:
        suffix = match["suffix"] or ""
        value *= _BINARY[suffix] if suffix in _BINARY else _DECIMAL[suffix]
    return -value if match["sign"] == "-" else value


def quantity_value(text: str | int | float) -> int:
    """`Quantity.Value()`: the integer value, rounded up (away from zero)."""
    value = parse_quantity(text)
    return math.ceil(value) if value >= 0 else -math.ceil(-value)


# --- canonical form (resource.Quantity.String()) -------------------------------------------

_DECIMAL_SUFFIX = {-9: "n", -6: "u", -3: "m", 0: "", 3: "k", 6: "M", 9: "G", 12: "T", 15: "P", 18: "E"}
_BINARY_SUFFIX = {0: "", 1: "Ki", 2: "Mi", 3: "Gi", 4: "Ti", 5: "Pi", 6: "Ei"}


def _format_of(text: str) -> str:
    match = _QUANTITY.match(text)
    if match is None:
        raise QuantityError(f"{text!r} is not a valid quantity")
    if match["exp"] is not None:
        return "DecimalExponent"
    return "BinarySI" if (match["suffix"] or "") in _BINARY else "DecimalSI"


def _decimal(value: Fraction) -> tuple[int, int]:
    """(mantissa, exponent) with the exponent a multiple of 3 and no removable zeros, at nano
    precision (finer values round up, as the API server does)."""
    nanos = math.ceil(value * 10**9) if value >= 0 else -math.ceil(-value * 10**9)
    if nanos == 0:
        return 0, 0
    exponent = -9
    while nanos % 10 == 0:
        nanos //= 10
        exponent += 1
    while exponent % 3:
        nanos *= 10
        exponent -= 1
    return nanos, exponent


def canonical_quantity(text: str | int | float) -> str:
    """What the API server (and a Go client re-serialising a Quantity) writes for `text`:
    `0.5` → `500m`, `1000` → `1k`, `1.5Gi` → `1536Mi`, `1536` → `1536`."""
    value = parse_quantity(text)
    if value == 0:
        return "0"
    fmt = "DecimalSI" if isinstance(text, (int, float)) else _format_of(text.strip())
    if fmt == "BinarySI":
        if -1024 < value < 1024 or value.denominator != 1:
            fmt = "DecimalSI"
        else:
            amount, power = int(value), 0
            while amount % 1024 == 0 and power < 6:
                amount //= 1024
                power += 1
            return f"{amount}{_BINARY_SUFFIX[power]}"
    mantissa, exponent = _decimal(value)
    if fmt == "DecimalExponent":
        return f"{mantissa}e{exponent}" if exponent else str(mantissa)
    if exponent in _DECIMAL_SUFFIX:
        return f"{mantissa}{_DECIMAL_SUFFIX[exponent]}"
    return f"{mantissa}e{exponent}"
