"""Server-side field validation, the ``fieldValidation`` query parameter: unknown fields (by the
kind's schema) and duplicate fields (found while decoding the body). ``Strict`` answers them with
a 400, ``Warn`` (the default) with one warning each, ``Ignore`` says nothing; unknown fields are
dropped either way. Messages and their order follow k8s.io/apiserver's strict decoding, as
kubernetes' ``test/integration/apiserver/field_validation_test.go`` pins them:

  * a JSON create/update: the problems in document order (a field both unknown and repeated is
    reported once, as unknown);
  * a YAML body: go-yaml's ``line N: key "k" already set in map`` lines, then the unknown fields
    in sorted order;
  * a merge or strategic merge patch: the patch's repeated fields, then the patched object's
    unknown fields in sorted order; a JSON patch: ``json patch unknown|duplicate field`` of its
    operations first;
  * an apply: only repeated keys (the engine rejects unknown fields itself), YAML-style.

Pure apart from the schemas it reads.
"""

from __future__ import annotations

import bisect
import json
import re
from dataclasses import dataclass, field
from typing import Any

from kubesim import fields
from kubesim.calls import Call
from kubesim.errors import bad_request
from kubesim.resources import ResourceType
from kubesim.schema import NodeType, TypeNode

MODES = ("Strict", "Warn", "Ignore")


@dataclass(frozen=True)
class Duplicate:
    """A key repeated in one JSON object or YAML mapping."""

    key: str
    path: str  # "spec.paused" (JSON; for YAML the key alone)
    line: int  # 1-based line of the repetition
    offset: int = 0  # where the repetition is in the body (JSON)


@dataclass
class Decoded:
    """A decoded body and what decoding noticed about it."""

    obj: Any
    duplicates: list[Duplicate] = field(default_factory=list)
    yaml: bool = False
    #: JSON only, when there are duplicates: path -> offset of the key's first occurrence.
    first_seen: dict[str, int] = field(default_factory=dict)


# --- decoding -----------------------------------------------------------------------------------


class _Repeated(Exception):
    pass


def _strict_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    d = dict(pairs)
    if len(d) != len(pairs):
        raise _Repeated
    return d


def loads_json(text: str | bytes, parse_constant: Any) -> Decoded:
    """JSON with its repeated keys found (the common case, none, costs one dict per object)."""
    try:
        return Decoded(json.loads(text, object_pairs_hook=_strict_pairs, parse_constant=parse_constant))
    except _Repeated:
        pass
    raw = text.decode() if isinstance(text, bytes) else text
    obj = json.loads(raw, parse_constant=parse_constant)
    dups, first = scan_json_keys(raw)
    return Decoded(obj, dups, False, first)


_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[{}\[\],:]|[^\s{}\[\],:"]+')


def scan_json_keys(text: str) -> tuple[list[Duplicate], dict[str, int]]:
    """The repeated keys of a (valid) JSON text with their paths and lines, and where each path's
    key first occurs."""
    newlines = [m.start() for m in re.finditer("\n", text)]
    dups: list[Duplicate] = []
    first: dict[str, int] = {}
    # frames: [is_object, path, seen keys / index, expecting a key]
    stack: list[list[Any]] = []
    pending = ""  # path of the value that comes next
    for m in _TOKEN.finditer(text):
        tok = m.group()
        top = stack[-1] if stack else None
        if tok in ("{", "["):
            path = pending if top is not None else ""
            stack.append([tok == "{", path, set() if tok == "{" else 0, True])
            if tok == "[":
                pending = f"{path}[0]"
            continue
        if tok in ("}", "]"):
            stack.pop()
            continue
        if top is None:
            continue
        if tok == ",":
            if top[0]:
                top[3] = True
            else:
                top[2] += 1
                pending = f"{top[1]}[{top[2]}]"
            continue
        if tok == ":":
            continue
        if top[0] and top[3]:
            key = json.loads(tok)
            path = f"{top[1]}.{key}" if top[1] else key
            if key in top[2]:
                dups.append(Duplicate(key, path, bisect.bisect_left(newlines, m.start()) + 1, m.start()))
            else:
                top[2].add(key)
                first.setdefault(path, m.start())
            top[3] = False
            pending = path
    return dups, first


def yaml_duplicates(loader_class: Any) -> Any:
    """A YAML loader class that records repeated mapping keys (go-yaml's "already set in map")."""

    class Loader(loader_class):  # type: ignore[misc]
        def __init__(self, stream: Any) -> None:
            super().__init__(stream)
            self.duplicates: list[Duplicate] = []

        def construct_mapping(self, node: Any, deep: bool = False) -> Any:
            self.flatten_mapping(node)
            seen: set[Any] = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)
                try:
                    repeated = key in seen
                    seen.add(key)
                except TypeError:
                    continue
                if repeated:
                    self.duplicates.append(Duplicate(str(key), str(key), key_node.start_mark.line + 1))
            return super().construct_mapping(node, deep=deep)

    return Loader


# --- unknown fields ------------------------------------------------------------------------------


def unknown_fields(rtype: ResourceType, obj: Any, *, sort: bool) -> list[str]:
    """Dotted paths of the fields the type does not declare, in document (or sorted key) order."""
    out: list[str] = []
    _walk(obj, fields.schema_of(rtype).root, "", out, sort)
    return out


def _walk(value: Any, node: TypeNode, path: str, out: list[str], sort: bool) -> None:
    t = node.type
    if isinstance(value, dict):
        if t is NodeType.STRUCT:
            for k in sorted(value) if sort else value:
                sub = f"{path}.{k}" if path else k
                child = node.fields.get(k)
                if child is None:
                    if not node.preserve_unknown:
                        out.append(sub)
                    continue
                _walk(value[k], child, sub, out, sort)
        elif t is NodeType.MAP and node.item is not None:
            for k in sorted(value) if sort else value:
                _walk(value[k], node.item, f"{path}.{k}" if path else k, out, sort)
    elif isinstance(value, list) and t is NodeType.LIST and node.item is not None:
        for i, v in enumerate(value):
            _walk(v, node.item, f"{path}[{i}]", out, sort)


# --- the checks ----------------------------------------------------------------------------------


def mode(call: Call) -> str:
    value = call.query.get("fieldValidation") or "Warn"
    if value not in MODES:
        raise bad_request(
            f'fieldValidation: Unsupported value: "{value}": supported values: "Ignore", "Strict", "Warn"'
        )
    return value


def _yaml_lines(dups: list[Duplicate]) -> list[str]:
    return [f'line {d.line}: key "{d.key}" already set in map' for d in sorted(dups, key=lambda d: d.line)]


def _under(path: str, unknown: set[str]) -> bool:
    return any(path == u or path.startswith(u + ".") or path.startswith(u + "[") for u in unknown)


def _answer(call: Call, problems: list[str], strict_text: str) -> list[str]:
    if not problems or mode(call) == "Ignore":
        return []
    if mode(call) == "Strict":
        rtype = call.rtype
        prefix = (
            ""
            if rtype.crd
            else (f'{rtype.kind} in version "{rtype.version}" cannot be handled as a {rtype.kind}: ')
        )
        raise bad_request(prefix + strict_text)
    return problems


def check_object(call: Call, decoded: Decoded, obj: dict[str, Any]) -> list[str]:
    """A create or update body (`obj` is `decoded.obj` as it will be stored)."""
    if mode(call) == "Ignore":
        return []
    if decoded.yaml:
        lines = _yaml_lines(decoded.duplicates)
        unknown = [f'unknown field "{u}"' for u in unknown_fields(call.rtype, obj, sort=True)]
        text = ", ".join((["yaml: unmarshal errors:\n  " + "\n  ".join(lines)] if lines else []) + unknown)
        return _answer(call, lines + unknown, "strict decoding error: " + text)
    found = unknown_fields(call.rtype, obj, sort=False)
    if not decoded.duplicates:
        problems = [f'unknown field "{u}"' for u in found]
    elif call.rtype.crd:
        problems = [f'duplicate field "{d.path}"' for d in decoded.duplicates]
        problems += [f'unknown field "{u}"' for u in found]
    else:
        # typed decoding: one pass in document order; a repeated unknown field is just unknown
        events = [(decoded.first_seen.get(u, 0), f'unknown field "{u}"') for u in found]
        events += [
            (d.offset, f'duplicate field "{d.path}"')
            for d in decoded.duplicates
            if not _under(d.path, set(found))
        ]
        problems = [text for _, text in sorted(events, key=lambda e: e[0])]
    return _answer(call, problems, "strict decoding error: " + ", ".join(problems))


def check_patch(
    call: Call,
    duplicates: list[Duplicate],
    new: dict[str, Any],
    json_patch_ops: list[str],
) -> list[str]:
    """A merge, strategic merge or JSON patch: the patch's own problems, then the patched object's
    unknown fields in sorted order."""
    if mode(call) == "Ignore":
        return []
    problems = list(json_patch_ops)
    problems += [f'duplicate field "{d.path}"' for d in duplicates]
    problems += [f'unknown field "{u}"' for u in unknown_fields(call.rtype, new, sort=True)]
    return _answer(call, problems, "strict decoding error: " + ", ".join(problems))


def json_patch_problems(decoded: Decoded) -> list[str]:
    """Unknown and repeated fields of a JSON patch's operations, in order."""
    out: list[str] = []
    dups = {d.path for d in decoded.duplicates}
    for i, op in enumerate(decoded.obj if isinstance(decoded.obj, list) else []):
        if not isinstance(op, dict):
            continue
        for k in op:
            if k not in ("op", "path", "value", "from"):
                out.append(f'json patch unknown field "[{i}].{k}"')
            if f"[{i}].{k}" in dups:
                out.append(f'json patch duplicate field "[{i}].{k}"')
    return out


def check_apply(call: Call, decoded: Decoded) -> list[str]:
    """An apply body: repeated keys, reported as go-yaml does (an apply body is YAML)."""
    if not decoded.duplicates or mode(call) == "Ignore":
        return []
    lines = _yaml_lines(decoded.duplicates)
    if mode(call) == "Strict":
        raise bad_request(
            "error strict decoding YAML: error converting YAML to JSON: "
            "yaml: unmarshal errors:\n  " + "\n  ".join(lines)
        )
    return lines
