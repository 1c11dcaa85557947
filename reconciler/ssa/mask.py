"""Secret masking (Flux's `SanitizeUnstructuredData` and `jsondiff` masks).

Every value under a Secret's `data` and `stringData` becomes `***`. When a live and a desired
Secret are masked as a pair, a value that differs shows as `*** (before)` / `*** (after)` so a
reader still sees *that* it changed, never what it was.
"""

from __future__ import annotations

import base64
import contextlib
import copy
from typing import Any

Obj = dict[str, Any]

MASK = "***"
BEFORE = "*** (before)"
AFTER = "*** (after)"
SECRET_SECTIONS = ("data", "stringData")  # where a Secret keeps its values


def is_secret(obj: Any) -> bool:
    return isinstance(obj, dict) and obj.get("kind") == "Secret" and str(obj.get("apiVersion", "v1")) == "v1"


def mask(obj: Obj) -> Obj:
    if not is_secret(obj):
        return obj
    out = copy.deepcopy(obj)
    for section in SECRET_SECTIONS:
        values = out.get(section)
        if isinstance(values, dict):
            out[section] = {k: MASK for k in values}
    return out


def mask_pair(live: Obj | None, desired: Obj | None) -> tuple[Obj | None, Obj | None]:
    """Mask a (live, desired) pair of Secrets, marking the values that changed."""
    if not (is_secret(live) or is_secret(desired)):
        return live, desired
    live_out = copy.deepcopy(live) if live is not None else None
    desired_out = copy.deepcopy(desired) if desired is not None else None
    for section in SECRET_SECTIONS:
        before = (live_out or {}).get(section) or {}
        after = (desired_out or {}).get(section) or {}
        if live_out is not None and isinstance(before, dict) and section in live_out:
            live_out[section] = {k: (MASK if after.get(k) == v else BEFORE) for k, v in before.items()}
        if desired_out is not None and isinstance(after, dict) and section in desired_out:
            desired_out[section] = {k: (MASK if before.get(k) == v else AFTER) for k, v in after.items()}
    return live_out, desired_out


def scrub(message: str, obj: Obj | None) -> str:
    """`message` (say, an API error) with the Secret's values, encoded or decoded, masked."""
    if obj is None or not is_secret(obj):
        return message
    values: set[str] = set()
    for section in SECRET_SECTIONS:
        for value in (obj.get(section) or {}).values():
            text = str(value)
            values.add(text)
            if section == "data":
                with contextlib.suppress(ValueError, UnicodeDecodeError):
                    values.add(base64.b64decode(text, validate=True).decode())
    for value in sorted((v for v in values if len(v) >= 4), key=len, reverse=True):
        message = message.replace(value, MASK)
    return message
