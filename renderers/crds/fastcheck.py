"""A compiled yes/no validator for the JSON Schema subset our CRDs use.

jsonschema builds rich errors but spends ~1 ms per SpinApp walking the schema. Almost every
document in a repo is valid, so validation first asks this closure tree "valid?" and only runs
jsonschema (for the messages) when the answer is no. The compiler refuses any keyword it does not
implement (`Unsupported`), so it can never silently accept more than jsonschema would; the
tests check both agree on every broken input of the bad-input table.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

Check = Callable[[Any], bool]

_TYPES: dict[str, Check] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "integer": lambda v: (isinstance(v, int) and not isinstance(v, bool))
    or (isinstance(v, float) and v.is_integer()),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "null": lambda v: v is None,
}
_KNOWN = frozenset({
    "type", "properties", "required", "additionalProperties", "items", "enum", "pattern",
    "minItems", "minimum", "maximum", "minLength", "maxLength", "anyOf", "description",
})


class Unsupported(ValueError):
    """The schema uses a keyword this compiler does not implement."""


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def compile_schema(schema: dict[str, Any]) -> Check:
    unknown = set(schema) - _KNOWN
    if unknown:
        raise Unsupported(", ".join(sorted(unknown)))
    checks: list[Check] = []

    type_ = schema.get("type")
    if type_ is not None:
        names = [type_] if isinstance(type_, str) else list(type_)
        type_checks = [_TYPES[n] for n in names]
        checks.append(lambda v: any(c(v) for c in type_checks))
    if "enum" in schema:
        allowed = schema["enum"]
        if not all(isinstance(a, str) for a in allowed):
            raise Unsupported("enum of non-strings")
        allowed_set = frozenset(allowed)
        checks.append(lambda v: isinstance(v, str) and v in allowed_set)
    if "pattern" in schema:
        search = re.compile(schema["pattern"]).search
        checks.append(lambda v: not isinstance(v, str) or search(v) is not None)
    if "minLength" in schema or "maxLength" in schema:
        lo, hi = schema.get("minLength", 0), schema.get("maxLength")
        checks.append(lambda v: not isinstance(v, str) or (lo <= len(v) and (hi is None or len(v) <= hi)))
    if "minimum" in schema:
        minimum = schema["minimum"]
        checks.append(lambda v: not _is_number(v) or v >= minimum)
    if "maximum" in schema:
        maximum = schema["maximum"]
        checks.append(lambda v: not _is_number(v) or v <= maximum)
    if "minItems" in schema:
        min_items = schema["minItems"]
        checks.append(lambda v: not isinstance(v, list) or len(v) >= min_items)
    if "items" in schema:
        item = compile_schema(schema["items"])
        checks.append(lambda v: not isinstance(v, list) or all(item(x) for x in v))
    if "anyOf" in schema:
        options = [compile_schema(s) for s in schema["anyOf"]]
        checks.append(lambda v: any(o(v) for o in options))
    if "required" in schema:
        required = tuple(schema["required"])
        checks.append(lambda v: not isinstance(v, dict) or all(r in v for r in required))
    if "properties" in schema or "additionalProperties" in schema:
        props = {name: compile_schema(sub) for name, sub in schema.get("properties", {}).items()}
        extra = schema.get("additionalProperties", True)
        extra_check: Check | None
        if extra is True:
            extra_check = None
        elif extra is False:
            extra_check = _never
        else:
            extra_check = compile_schema(extra)

        def check_object(v: Any) -> bool:
            if not isinstance(v, dict):
                return True
            for key, value in v.items():
                sub = props.get(key)
                if sub is not None:
                    if not sub(value):
                        return False
                elif extra_check is not None and not extra_check(value):
                    return False
            return True

        checks.append(check_object)

    if not checks:
        return _always
    if len(checks) == 1:
        return checks[0]
    return lambda v: all(c(v) for c in checks)


def _always(_: Any) -> bool:
    return True


def _never(_: Any) -> bool:
    return False
