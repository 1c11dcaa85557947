"""Field sets as tries of canonical path-element strings, and the FieldsV1 wire encoding.

A field set is a ``dict[str, FieldSet]`` whose keys are path elements exactly as FieldsV1 spells
them (``f:name``, ``k:{"name":"web"}``, ``v:"x"``, ``i:0``).  The key ``"."`` inside a node marks
the path *to* that node as a member of the set (structured-merge-diff's "Members"); a node
without ``"."`` only exists because some descendant is a member.  Keeping the in-memory form
this close to FieldsV1 makes decode/encode cheap, which matters because every write decodes and
encodes every manager's set.

Set operations mirror sigs.k8s.io/structured-merge-diff/v4/fieldpath ``Set``: ``union``,
``intersection`` and ``difference`` work on exact membership, ``recursive_difference`` removes
whole subtrees.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

FieldSet = dict[str, Any]
"""A trie node: path element → child node; the key ``"."`` marks membership of the node itself."""

MEMBER = "."
_EMPTY: dict[str, Any] = {}


_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, sort_keys=True)
_encode_str = json.encoder.encode_basestring


def _go_json(value: Any) -> str:
    """JSON exactly as Go's encoding/json (HTML-escaping, compact, sorted map keys) writes it."""
    if isinstance(value, str):
        text: str = _encode_str(value)
    elif isinstance(value, bool):
        return "true" if value else "false"
    elif isinstance(value, int):
        return str(value)
    else:
        text = _ENCODER.encode(value)
    if "<" in text or ">" in text or "&" in text or "\u2028" in text or "\u2029" in text:
        text = (
            text.replace("<", "\\u003c")
            .replace(">", "\\u003e")
            .replace("&", "\\u0026")
            .replace("\u2028", "\\u2028")
            .replace("\u2029", "\\u2029")
        )
    return text


def key_pe(fields: dict[str, Any]) -> str:
    """``k:{...}`` with the key fields sorted by name, as SMD's ``KeyByFields`` orders them."""
    if len(fields) == 1:
        for name, v in fields.items():
            return 'k:{' + _encode_str(name) + ":" + _go_json(v) + "}"
    return "k:{" + ",".join(_encode_str(n) + ":" + _go_json(fields[n]) for n in sorted(fields)) + "}"


def value_pe(value: Any) -> str:
    return "v:" + _go_json(value)


def index_pe(index: int) -> str:
    return "i:" + str(index)


# --- set construction and algebra -------------------------------------------------------------


def insert(fs: FieldSet, path: tuple[str, ...] | list[str]) -> None:
    node = fs
    for pe in path:
        nxt = node.get(pe)
        if nxt is None:
            nxt = node[pe] = {}
        node = nxt
    node[MEMBER] = {}


def has(fs: FieldSet, path: tuple[str, ...] | list[str]) -> bool:
    node = fs
    for pe in path:
        nxt = node.get(pe)
        if nxt is None:
            return False
        node = nxt
    return MEMBER in node


def union(a: FieldSet, b: FieldSet) -> FieldSet:
    """Sets are persistent: results share unchanged subtrees with the inputs (never mutate them)."""
    if not a:
        return b
    if not b:
        return a
    out: FieldSet = dict(a)
    for k, w in b.items():
        v = a.get(k)
        if v is None:
            out[k] = w
        elif v is not w:
            out[k] = union(v, w)
    return out


def intersection(a: FieldSet, b: FieldSet) -> FieldSet:
    out: FieldSet = {}
    small, big = (a, b) if len(a) <= len(b) else (b, a)
    for k, v in small.items():
        w = big.get(k)
        if w is None:
            continue
        if k == MEMBER:
            out[k] = _EMPTY
            continue
        sub = v if v is w else intersection(v, w)
        if sub:
            out[k] = sub
    return out


def difference(a: FieldSet, b: FieldSet) -> FieldSet:
    """Members of ``a`` that are not members of ``b`` (exact paths, not subtrees)."""
    return _difference(a, b, recursive=False)


def recursive_difference(a: FieldSet, b: FieldSet) -> FieldSet:
    """Members of ``a`` that are neither members of ``b`` nor below a member of ``b``."""
    return _difference(a, b, recursive=True)


def _difference(a: FieldSet, b: FieldSet, *, recursive: bool) -> FieldSet:
    if not b or not a:
        return a
    out: FieldSet = {}
    for k, v in a.items():
        if k == MEMBER:
            if MEMBER not in b:
                out[k] = _EMPTY
            continue
        w = b.get(k)
        if w is None:
            out[k] = v
            continue
        if recursive and MEMBER in w:
            continue
        sub = _difference(v, w, recursive=recursive)
        if sub:
            out[k] = sub
    return out


# --- ordering and printing ------------------------------------------------------------------

_TYPE_ORDER = {"f": 0, "k": 1, "v": 2, "i": 3}


def _value_sort_key(v: Any) -> tuple[Any, ...]:
    """A total order like SMD's ``value.Compare``: numbers < strings < bools < lists < maps < null."""
    if isinstance(v, bool):
        return (2, v)
    if isinstance(v, int | float):
        return (0, v)
    if isinstance(v, str):
        return (1, v.encode())
    if isinstance(v, list):
        return (3, tuple(_value_sort_key(x) for x in v))
    if isinstance(v, dict):
        return (4, tuple((k.encode(), _value_sort_key(v[k])) for k in sorted(v)))
    return (5,)


_SORT_CACHE: dict[str, tuple[Any, ...]] = {}


def pe_sort_key(pe: str) -> tuple[Any, ...]:
    key = _SORT_CACHE.get(pe)
    if key is not None:
        return key
    kind = pe[0]
    body = pe[2:]
    if kind == "f":
        key = (0, body.encode())
    elif kind == "k":
        fields = json.loads(body)
        key = (1, tuple((name.encode(), _value_sort_key(fields[name])) for name in sorted(fields)))
    elif kind == "v":
        key = (2, _value_sort_key(json.loads(body)))
    elif kind == "i":
        key = (3, int(body))
    else:
        key = (-1,)
    if len(_SORT_CACHE) < 100_000:
        _SORT_CACHE[pe] = key
    return key


def _go_value_string(v: Any) -> str:
    """``value.ToString`` of SMD: strings quoted like Go's %q, numbers bare."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, int | float):
        return str(v)
    if isinstance(v, list):
        return "[" + ", ".join(_go_value_string(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}={_go_value_string(v[k])}" for k in sorted(v)) + "}"
    return str(v)


def pe_string(pe: str) -> str:
    """One path element as ``fieldpath.PathElement.String`` prints it: ``.name``, ``[name="web"]``."""
    kind, body = pe[0], pe[2:]
    if kind == "f":
        return "." + body
    if kind == "k":
        fields = json.loads(body)
        return "[" + ",".join(f"{k}={_go_value_string(fields[k])}" for k in sorted(fields)) + "]"
    if kind == "v":
        return "[=" + _go_value_string(json.loads(body)) + "]"
    if kind == "i":
        return "[" + body + "]"
    return pe


def path_string(path: tuple[str, ...] | list[str]) -> str:
    return "".join(pe_string(pe) for pe in path)


def iter_paths(fs: FieldSet, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Members in SMD's ``Set.Iterate`` order: a node's leaf members first, then its subtrees."""
    children = sorted((k for k in fs if k != MEMBER), key=pe_sort_key)
    for k in children:
        if MEMBER in fs[k]:
            yield (*prefix, k)
    for k in children:
        sub = fs[k]
        if len(sub) > 1 or MEMBER not in sub:
            yield from iter_paths(sub, (*prefix, k))


# --- FieldsV1 --------------------------------------------------------------------------------


class FieldsV1Error(ValueError):
    """A managedFields ``fieldsV1`` value that is not a valid FieldsV1 trie."""


_CANON_CACHE: dict[str, str] = {}


def _canonical_pe(pe: str) -> str:
    cached = _CANON_CACHE.get(pe)
    if cached is not None:
        return cached
    out = _canonical_pe_slow(pe)
    if len(_CANON_CACHE) < 50_000:
        _CANON_CACHE[pe] = out
    return out


def _canonical_pe_slow(pe: str) -> str:
    kind = pe[:2]
    if kind == "f:":
        return pe
    try:
        if kind == "k:":
            fields = json.loads(pe[2:])
            if not isinstance(fields, dict) or not fields:
                raise FieldsV1Error(f"invalid key path element {pe!r}")
            return key_pe(fields)
        if kind == "v:":
            return value_pe(json.loads(pe[2:]))
        if kind == "i:":
            return index_pe(int(pe[2:]))
    except (ValueError, TypeError) as exc:
        raise FieldsV1Error(f"invalid path element {pe!r}: {exc}") from exc
    raise FieldsV1Error(f"unknown path element {pe!r}")


def decode_fields_v1(raw: Any) -> FieldSet:
    """FieldsV1 JSON → field set.  ``{}`` as a value means the path is a member."""
    if not isinstance(raw, dict):
        raise FieldsV1Error("fieldsV1 must be a JSON object")
    out: FieldSet = {}
    for pe, child in raw.items():
        if pe == MEMBER:
            out[MEMBER] = {}
            continue
        if not isinstance(child, dict):
            raise FieldsV1Error(f"value of {pe!r} must be an object")
        key = _canonical_pe(pe) if pe[:2] != "f:" else pe
        node = decode_fields_v1(child) if child else {MEMBER: {}}
        if key in out:
            node = union(out[key], node)
        out[key] = node
    return out


def _sorted_children(fs: FieldSet) -> list[str]:
    """A node's path elements in SMD order. Field names alone (the common case) sort as plain
    strings do (UTF-8 keeps code point order); keys and values need their typed order."""
    keys = [k for k in fs if k != MEMBER]
    keys.sort()
    if keys and (keys[0][0] != "f" or keys[-1][0] != "f"):
        keys.sort(key=pe_sort_key)
    return keys


def encode_fields_v1(fs: FieldSet) -> dict[str, Any]:
    """Field set → FieldsV1 JSON with the API server's element order ('.' first, then sorted)."""
    out: dict[str, Any] = {}
    if MEMBER in fs and len(fs) > 1:
        out[MEMBER] = {}
    for pe in _sorted_children(fs):
        child = fs[pe]
        if MEMBER in child and len(child) == 1:
            out[pe] = {}
        else:
            out[pe] = encode_fields_v1(child)
    return out
