"""Validate SpinApps, SpinAppExecutors and Shims against the CRDs, and apply CRD defaults.

The CRD's structural OpenAPI v3 schema is converted once per kind into a JSON Schema
(int-or-string, int32 bounds, and `additionalProperties: false` wherever the API server would
reject an unknown field under kubectl's default strict field validation), compiled into a
jsonschema validator, and cached. Defaulting walks a pruned tree holding only the schema paths
that carry a `default`, as the API server does on admission.
"""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from renderers.crds.definitions import Schema, all_crds
from renderers.crds.fastcheck import Check, Unsupported, compile_schema
from renderers.errors import SchemaError
from renderers.model import Obj, SourceDoc

if TYPE_CHECKING:
    import jsonschema

_INT32 = (-(2**31), 2**31 - 1)


def to_json_schema(node: Schema) -> Schema:
    """One structural OpenAPI v3 node → JSON Schema (draft 7)."""
    out: Schema = {}
    for key, value in node.items():
        if key.startswith("x-kubernetes-") or key in ("default", "description", "format", "nullable"):
            continue
        if key == "properties":
            out["properties"] = {name: to_json_schema(sub) for name, sub in value.items()}
        elif key in ("items", "additionalProperties") and isinstance(value, dict):
            out[key] = to_json_schema(value)
        elif key in ("anyOf", "allOf", "oneOf"):
            out[key] = [to_json_schema(sub) for sub in value]
        else:
            out[key] = value
    if node.get("format") == "int32":
        out["minimum"], out["maximum"] = _INT32
    if node.get("nullable"):
        out = {"anyOf": [out, {"type": "null"}]}
    if (
        "properties" in node
        and "additionalProperties" not in node
        and not node.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


def _schema_for_kind() -> dict[tuple[str, str], Schema]:
    schemas: dict[tuple[str, str], Schema] = {}
    for crd in all_crds():
        spec = crd["spec"]
        for version in spec["versions"]:
            api_version = f"{spec['group']}/{version['name']}"
            schemas[(api_version, spec["names"]["kind"])] = version["schema"]["openAPIV3Schema"]
    return schemas


@functools.cache
def _json_schema(api_version: str, kind: str) -> Schema | None:
    schema = _schema_for_kind().get((api_version, kind))
    if schema is None:
        return None
    json_schema = to_json_schema(schema)
    # metadata is validated by the API server's ObjectMeta rules, not the CRD schema.
    json_schema["properties"]["metadata"] = {"type": "object"}
    return json_schema


@functools.cache
def _validator(api_version: str, kind: str) -> jsonschema.protocols.Validator | None:
    import jsonschema  # only needed to explain a failure: valid documents never load it

    json_schema = _json_schema(api_version, kind)
    if json_schema is None:
        return None
    cls = jsonschema.Draft7Validator
    cls.check_schema(json_schema)
    validator: jsonschema.protocols.Validator = cls(json_schema)
    return validator


@functools.cache
def fast_check(api_version: str, kind: str) -> Check | None:
    """The compiled yes/no check of a kind (None: no CRD, or the schema is not compilable)."""
    json_schema = _json_schema(api_version, kind)
    if json_schema is None:
        return None
    try:
        return compile_schema(json_schema)
    except Unsupported:  # pragma: no cover - our CRDs only use the supported subset
        return None


def field_path(parts: Iterator[Any] | list[Any]) -> str:
    """`["spec", "variables", 0, "name"]` → `spec.variables[0].name`; map keys are written as
    they are (`spec.podLabels.app.kubernetes.io/name`), the form `SourceDoc.lines` uses."""
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def _with_hint(name: str, schema: dict[str, Any]) -> str:
    """`name` with what was likely meant: a close spelling of a known field, or the nested
    object that has a field of that name (the usual result of a wrong indentation)."""
    properties: dict[str, Any] = schema.get("properties", {})
    close = difflib.get_close_matches(name, sorted(properties), n=1, cutoff=0.75)
    if close:
        return f"{name} (did you mean {close[0]!r}?)"
    owners = [key for key, sub in sorted(properties.items()) if name in sub.get("properties", {})]
    if owners:
        return f"{name} (a field of {owners[0]}: check the indentation)"
    return name


# JSON-schema and Python type names → the words of the YAML the user wrote.
_YAML_WORDS = {
    "object": "mapping", "array": "list", "dict": "mapping", "str": "string", "int": "integer",
    "float": "number", "bool": "boolean", "NoneType": "null",
}


def _quote_hint(expected: Any, instance: Any) -> str:
    """How to write a YAML scalar that was meant as text (`value: 8080`, `value: yes`)."""
    if expected != "string":
        return ""
    if isinstance(instance, bool):
        return " (quote it: YAML reads unquoted true/false/yes/no/on/off as booleans)"
    if isinstance(instance, int | float):
        return f' (quote it: "{instance}")'
    return ""


def _describe(error: jsonschema.ValidationError) -> tuple[str, str]:
    """(field path, message) with the path pointing at the offending field itself."""
    parts = list(error.absolute_path)
    validator = error.validator
    if validator == "required":
        missing = re.match(r"'([^']+)' is a required property", error.message)
        if missing:
            parts.append(missing.group(1))
            return field_path(parts), "required field is missing"
    if validator == "additionalProperties":
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        if extra:
            parts.append(extra[0])
            names = ", ".join(_with_hint(name, error.schema) for name in extra)
            return field_path(parts), f"unknown field(s): {names}"
    if validator == "type":
        expected = _YAML_WORDS.get(str(error.validator_value), str(error.validator_value))
        got = _YAML_WORDS.get(type(error.instance).__name__, type(error.instance).__name__)
        message = f"must be {expected}, got {got}"
        return field_path(parts), message + _quote_hint(error.validator_value, error.instance)
    if validator == "enum":
        allowed = ", ".join(map(str, error.validator_value))
        return field_path(parts), f"{error.instance!r} is not one of: {allowed}"
    if validator == "anyOf" and error.schema.get("pattern"):
        return field_path(parts), f"{error.instance!r} is not a valid quantity"
    return field_path(parts), error.message


def validate(doc: SourceDoc) -> list[SchemaError]:
    """Every schema violation of `doc` (empty when its kind has no CRD of ours)."""
    quick = fast_check(doc.api_version, doc.kind)
    if quick is not None and quick(doc.body):
        return []
    validator = _validator(doc.api_version, doc.kind)
    if validator is None:
        return []
    errors = []
    for error in sorted(validator.iter_errors(doc.body), key=lambda e: list(map(str, e.absolute_path))):
        path, message = _describe(error)
        errors.append(SchemaError(message, doc.at(path), doc.subject))
    return errors


# --- defaulting ---------------------------------------------------------------------------

class _DefaultNode:
    __slots__ = ("additional", "defaults", "items", "props")

    def __init__(self) -> None:
        self.defaults: dict[str, Any] = {}
        self.props: dict[str, _DefaultNode] = {}
        self.items: _DefaultNode | None = None
        self.additional: _DefaultNode | None = None

    def empty(self) -> bool:
        return not (self.defaults or self.props or self.items or self.additional)


def _default_tree(schema: Schema) -> _DefaultNode | None:
    node = _DefaultNode()
    for name, sub in schema.get("properties", {}).items():
        if "default" in sub:
            node.defaults[name] = sub["default"]
        child = _default_tree(sub)
        if child is not None:
            node.props[name] = child
    if isinstance(schema.get("items"), dict):
        node.items = _default_tree(schema["items"])
    if isinstance(schema.get("additionalProperties"), dict):
        node.additional = _default_tree(schema["additionalProperties"])
    return None if node.empty() else node


@functools.cache
def _defaults_for(api_version: str, kind: str) -> _DefaultNode | None:
    schema = _schema_for_kind().get((api_version, kind))
    return None if schema is None else _default_tree(schema)


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def _apply(node: _DefaultNode, value: Any) -> Any:
    if isinstance(value, dict):
        if node.defaults or node.props:
            for name, default in node.defaults.items():
                if name not in value:
                    value[name] = _copy(default)
            for name, child in node.props.items():
                if name in value:
                    value[name] = _apply(child, value[name])
        if node.additional is not None:
            for name in value:
                value[name] = _apply(node.additional, value[name])
    elif isinstance(value, list) and node.items is not None:
        for i, element in enumerate(value):
            value[i] = _apply(node.items, element)
    return value


def apply_defaults(body: Obj) -> Obj:
    """A copy of `body` with its CRD's defaults filled in (the body itself is not changed)."""
    copied: Obj = _copy(body)
    node = _defaults_for(str(body.get("apiVersion", "")), str(body.get("kind", "")))
    if node is None:
        return copied
    result: Obj = _apply(node, copied)
    return result
