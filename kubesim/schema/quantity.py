"""resource.Quantity canonical form (k8s.io/apimachinery/pkg/api/resource), as the API server
stores quantities: ``0.5`` → ``500m``, ``1000`` → ``1k``, ``2048Ki`` → ``2Mi``, ``1.5Gi`` →
``1536Mi``.  Values that do not parse are returned unchanged (validation reports them)."""

from __future__ import annotations

import math
import re
from decimal import Decimal
from fractions import Fraction
from typing import Any

_RE = re.compile(r"^([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?[0-9]+)?$")
_BINARY = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_DECIMAL_SUFFIX = {v: k for k, v in _DECIMAL.items()}
_BINARY_SUFFIX = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"]
_NANO = Fraction(1, 10**9)


def canonical_quantity(value: Any) -> Any:
    """The canonical string of a quantity given as a JSON string or number."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        if isinstance(value, float) and not math.isfinite(value):
            return value
        text = format(Decimal(repr(value)), "f") if isinstance(value, float) else str(value)
    elif isinstance(value, str):
        text = value.strip()
    else:
        return value
    m = _RE.match(text)
    if m is None:
        return value
    number, suffix = m.group(1), m.group(2) or ""
    amount = Fraction(number)
    if suffix in _BINARY:
        fmt = "binary"
        amount *= 1024 ** _BINARY[suffix]
    elif suffix[:1] in ("e", "E"):
        fmt = "exponent"
        amount *= Fraction(10) ** int(suffix[1:])
    else:
        fmt = "decimal"
        amount *= Fraction(10) ** _DECIMAL[suffix]
    # Quantities keep nano precision, rounding away from zero.
    if amount % _NANO:
        scaled = amount / _NANO
        amount = (math.ceil(scaled) if amount > 0 else math.floor(scaled)) * _NANO
    if fmt == "binary" and (-1024 < amount < 1024 or amount.denominator != 1):
        fmt = "decimal"
    if fmt == "binary":
        n, exp = int(amount), 0
        while n and n % 1024 == 0 and exp < 6:
            n //= 1024
            exp += 1
        return f"{n}{_BINARY_SUFFIX[exp]}"
    if amount == 0:
        return "0"
    exponent = -9
    mantissa = int(amount / _NANO)
    while mantissa % 10 == 0:
        mantissa //= 10
        exponent += 1
    shift = exponent % 3
    mantissa *= 10**shift
    exponent -= shift
    if fmt == "decimal" and exponent in _DECIMAL_SUFFIX:
        return f"{mantissa}{_DECIMAL_SUFFIX[exponent]}"
    return f"{mantissa}e{exponent}" if exponent else str(mantissa)
