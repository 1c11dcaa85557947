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
        return Fraction(str(text))
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
