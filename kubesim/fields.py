"""The one seam between the API server and the server-side-apply engine (`kubesim.ssa`) and the
type schemas (`kubesim.schema`): managed fields, merges, defaults, and their errors as Statuses."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from typing import Any

from kubesim import schema as kschema
from kubesim import ssa
from kubesim.errors import ApiError, Cause
from kubesim.resources import ResourceType


@functools.lru_cache(maxsize=256)
def _builtin(api_version: str, kind: str) -> kschema.ResourceSchema:
    found = kschema.schema_for(api_version, kind)
    if found is not None:
        return found
    group, _, version = api_version.rpartition("/")
    return kschema.unstructured_schema(kschema.GroupVersionKind(group, version, kind))


def schema_of(rtype: ResourceType) -> kschema.ResourceSchema:
    if rtype.ssa_schema is not None:
        found: kschema.ResourceSchema = rtype.ssa_schema
        return found
    return _builtin(rtype.api_version, rtype.kind)


@contextlib.contextmanager
def _as_status(rtype: ResourceType, obj: dict[str, Any]) -> Iterator[None]:
    """The engine's errors as the API server's, naming the object."""
    try:
        yield
    except ssa.SSAError as exc:
        raise to_api_error(exc, rtype, _name(obj)) from None


def apply(
    rtype: ResourceType,
    live: dict[str, Any] | None,
    config: dict[str, Any],
    manager: str,
    *,
    force: bool,
    subresource: str,
    now: str,
) -> ssa.ApplyResult:
    with _as_status(rtype, live or config):
        return ssa.apply(
            live,
            config,
            manager=manager,
            api_version=rtype.api_version,
            force=force,
            schema=schema_of(rtype),
            now=now,
            subresource=subresource or None,
        )


def update(
    rtype: ResourceType,
    live: dict[str, Any] | None,
    new: dict[str, Any],
    manager: str,
    *,
    subresource: str,
    now: str,
) -> ssa.UpdateResult:
    with _as_status(rtype, live or new):
        return ssa.update(
            live,
            new,
            manager=manager,
            api_version=rtype.api_version,
            schema=schema_of(rtype),
            now=now,
            subresource=subresource or None,
        )


def strategic_merge(rtype: ResourceType, live: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    with _as_status(rtype, live):
        return ssa.apply_strategic_merge_patch(live, patch, schema_of(rtype))


def unknown_fields(rtype: ResourceType, obj: dict[str, Any]) -> list[str]:
    """Dotted paths of the fields the type does not declare (what strict field validation reports)."""
    kept = kschema.drop_unknown(obj, schema_of(rtype).root)
    out: list[str] = []
    _diff(obj, kept, "", out)
    return out


def check_types(rtype: ResourceType, obj: dict[str, Any]) -> None:
    """What Go's JSON decoding rejects for a built-in kind (a string where an object belongs, ...):
    a 400 like the real server's "cannot be handled as a Deployment"."""
    if rtype.crd:
        return  # custom objects are checked against their OpenAPI schema (422) instead
    problems: list[str] = []
    _types(obj, schema_of(rtype).root, "", problems)
    if problems:
        raise ApiError(
            400,
            "BadRequest",
            f'{rtype.kind} in version "{rtype.version}" cannot be handled as a '
            f"{rtype.kind}: json: cannot unmarshal {problems[0]}",
        )
    check_bytes(rtype, obj)


def check_bytes(rtype: ResourceType, obj: dict[str, Any]) -> None:
    """A Secret's data and a ConfigMap's binaryData are []byte: base64 that Go must decode (400)."""
    if not rtype.group and rtype.kind in ("Secret", "ConfigMap"):
        field = "data" if rtype.kind == "Secret" else "binaryData"
        values = obj.get(field)
        for value in values.values() if isinstance(values, dict) else ():
            at = _illegal_base64_at(value) if isinstance(value, str) else None
            if at is not None:
                raise ApiError(
                    400,
                    "BadRequest",
                    f'{rtype.kind} in version "{rtype.version}" cannot be handled as a '
                    f"{rtype.kind}: illegal base64 data at input byte {at}",
                )


_B64 = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")


def _illegal_base64_at(text: str) -> int | None:
    """Where Go's base64.StdEncoding (what decodes a []byte field) fails on `text`, or None.
    Like Go, CR and LF are skipped; padding is required."""
    chars = [(i, c) for i, c in enumerate(text) if c not in "\r\n"]
    body = [(i, c) for i, c in chars if c != "="]
    pad = len(chars) - len(body)
    for n, (i, c) in enumerate(chars):
        if c == "=":
            if n < len(body) or pad > 2:
                return i
        elif c not in _B64:
            return i
    if len(chars) % 4:
        return chars[-(len(chars) % 4)][0] if chars else 0
    if pad and len(body) % 4 not in (4 - pad,):
        return chars[len(body)][0]
    return None


_JSON_KIND = {dict: "object", list: "array", str: "string", bool: "bool", int: "number", float: "number"}
_SCALAR_OK: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "int-or-string": (int, str),
    "quantity": (int, float, str),
}


def _types(value: Any, node: kschema.TypeNode, path: str, out: list[str]) -> None:
    if value is None or out:
        return
    t = node.type
    got = _JSON_KIND.get(type(value), "value")
    if t is kschema.NodeType.STRUCT:
        if not isinstance(value, dict):
            out.append(f"{got} into Go struct field {path or '.'} of type object")
            return
        for k, v in value.items():
            child = node.fields.get(k)
            if child is not None:
                _types(v, child, f"{path}.{k}" if path else k, out)
    elif t is kschema.NodeType.MAP:
        if not isinstance(value, dict):
            out.append(f"{got} into Go struct field {path} of type map")
        elif node.item is not None:
            for k, v in value.items():
                _types(v, node.item, f"{path}.{k}", out)
    elif t is kschema.NodeType.LIST:
        if not isinstance(value, list):
            out.append(f"{got} into Go struct field {path} of type array")
        elif node.item is not None:
            for i, v in enumerate(value):
                _types(v, node.item, f"{path}[{i}]", out)
    elif t is kschema.NodeType.SCALAR:
        ok = _SCALAR_OK.get(node.scalar)
        wrong_bool = isinstance(value, bool) and node.scalar in (
            "integer",
            "number",
            "int-or-string",
            "quantity",
        )
        if ok is not None and (not isinstance(value, ok) or wrong_bool):
            out.append(f"{got} into Go struct field {path} of type {node.scalar}")


def _diff(full: Any, kept: Any, path: str, out: list[str]) -> None:
    if isinstance(full, dict) and isinstance(kept, dict):
        for k, v in full.items():
            sub = f"{path}.{k}" if path else k
            if k not in kept:
                out.append(sub)
            else:
                _diff(v, kept[k], sub, out)
    elif isinstance(full, list) and isinstance(kept, list) and len(full) == len(kept):
        for i, (a, b) in enumerate(zip(full, kept, strict=True)):
            _diff(a, b, f"{path}[{i}]", out)


def to_api_error(exc: ssa.SSAError, rtype: ResourceType, name: str) -> ApiError:
    causes = [Cause(c.type, c.message, c.field) for c in exc.causes]
    if isinstance(exc, ssa.ConflictError):
        return ApiError(exc.code, exc.reason, exc.message, causes=causes)
    if exc.code == 422:
        return ApiError(422, "Invalid", exc.message, name, rtype.group, rtype.kind, causes)
    return ApiError(exc.code, exc.reason, exc.message, causes=causes)


def _name(obj: dict[str, Any]) -> str:
    m = obj.get("metadata")
    return str(m.get("name", "")) if isinstance(m, dict) else ""
