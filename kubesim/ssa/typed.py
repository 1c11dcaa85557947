"""Schema-guided walks over JSON values, modelled on structured-merge-diff's ``typed`` package.

``field_set``  → the set of leaf paths a value sets (``ToFieldSet``), optionally validating it;
``merge``      → applied configuration merged over a live value (``TypedValue.Merge``);
``remove_items`` → a copy of a value without the members of a set (``TypedValue.RemoveItems``);
``ensure_named`` → a set where named struct fields on the way to members are members too;
``reconcile_with_schema`` → a set adjusted to a schema that made parts atomic.
(``compare``, SMD's ``TypedValue.Compare``, is in `kubesim.ssa.compare`.)

Values are plain JSON (dict / list / str / int / float / bool / None) and are never mutated;
results share no containers with the inputs, so callers may mutate them.
"""

from __future__ import annotations

import json
from typing import Any

from kubesim.schema.types import MISSING, UNTYPED, ListType, MapType, NodeType, TypeNode
from kubesim.ssa.fieldpath import MEMBER, FieldSet, key_pe, pe_string, value_pe


def deep_copy(v: Any) -> Any:
    """A fast deep copy for JSON values."""
    if isinstance(v, dict):
        return {k: deep_copy(x) if isinstance(x, dict | list) else x for k, x in v.items()}
    if isinstance(v, list):
        return [deep_copy(x) if isinstance(x, dict | list) else x for x in v]
    return v


def child_node(node: TypeNode, name: str) -> TypeNode | None:
    """The type of field ``name`` of a struct/map/untyped node; None for an undeclared field."""
    t = node.type
    if t is NodeType.STRUCT:
        f = node.fields.get(name)
        if f is None and node.preserve_unknown:
            return UNTYPED
        return f
    if t is NodeType.MAP:
        return node.item or UNTYPED
    return UNTYPED


def _is_leaf(node: TypeNode, value: Any) -> bool:
    """True when SMD handles this value as one atom (scalar, atomic list/map, untyped list)."""
    t = node.type
    if t is NodeType.SCALAR:
        return True
    if t is NodeType.UNTYPED:
        return not isinstance(value, dict)
    if t is NodeType.LIST:
        return node.list_type is ListType.ATOMIC or not isinstance(value, list)
    return node.map_type is MapType.ATOMIC or not isinstance(value, dict)


class TypeErrors(Exception):
    """Validation errors with SMD's path-prefixed messages."""

    def __init__(self, errors: list[tuple[str, str]]) -> None:
        self.errors = errors
        super().__init__(self.text)

    @property
    def text(self) -> str:
        msgs = [f"{path}: {msg}" for path, msg in self.errors]
        if len(msgs) == 1:
            return msgs[0]
        return "\n".join(["errors:", *("  " + m for m in msgs)])


def _path_text(path: list[str]) -> str:
    return "".join(pe_string(pe) for pe in path)


def _json_short(v: Any) -> str:
    try:
        return json.dumps(v)[:80]
    except (TypeError, ValueError):
        return repr(v)[:80]


# --- keys --------------------------------------------------------------------------------------


def item_key(node: TypeNode, item: Any) -> str:
    """The path element of one list item (``k:{...}`` for list-maps, ``v:...`` for sets).

    Raises ValueError with SMD's message when a list-map item lacks a key field without default.
    """
    if node.list_type is ListType.SET:
        return value_pe(item)
    if item.__class__ is dict:
        keys = node.keys
        try:
            # the value's class is part of the key: 1, 1.0 and True hash alike
            if len(keys) == 1:
                v = item[keys[0]]
                cache_key: Any = (keys, v.__class__, v)
            else:
                cache_key = (keys, *((item[k].__class__, item[k]) for k in keys))
            cached = _KEY_CACHE.get(cache_key)
            if cached is not None:
                return cached
        except (KeyError, TypeError):
            cache_key = None
    else:
        cache_key = None
    pe = _item_key_slow(node, item)
    if cache_key is not None and len(_KEY_CACHE) < 50_000:
        _KEY_CACHE[cache_key] = pe
    return pe


_KEY_CACHE: dict[Any, str] = {}


def _item_key_slow(node: TypeNode, item: Any) -> str:
    if item is None:
        raise ValueError("associative list with keys may not have a null element")
    if not isinstance(item, dict):
        raise ValueError("associative list with keys may not have non-map elements")
    fields: dict[str, Any] = {}
    item_type = node.item
    for name in node.keys:
        if name in item:
            fields[name] = item[name]
            continue
        default = MISSING
        if item_type is not None and item_type.type is NodeType.STRUCT:
            f = item_type.fields.get(name)
            if f is not None:
                default = f.default
        if default is MISSING:
            raise ValueError(
                f'associative list with keys has an element that omits key field "{name}" '
                "(and doesn't have default value)"
            )
        fields[name] = default
    return key_pe(fields)


def index_items(
    node: TypeNode, items: list[Any], path: list[str] | None, errors: list[tuple[str, str]] | None
) -> tuple[list[str], dict[str, Any]]:
    """Path elements of a granular list's items, and pe → item.  Errors collected when asked."""
    pes: list[str] = []
    seen: dict[str, Any] = {}
    for i, item in enumerate(items):
        try:
            pe = item_key(node, item)
        except (ValueError, TypeError) as exc:
            if errors is not None and path is not None:
                errors.append((_path_text(path), f"element {i}: {exc}"))
                continue
            pe = "i:" + str(i)
        if pe in seen and errors is not None and path is not None:
            errors.append((_path_text(path), f"duplicate entries for key {pe_string(pe)}"))
            continue
        pes.append(pe)
        seen[pe] = item
    return pes, seen


# --- ToFieldSet / validation ------------------------------------------------------------------


def field_set(value: Any, node: TypeNode, *, strict: bool = False) -> FieldSet:
    """The set of paths ``value`` sets.  With ``strict`` raise :class:`TypeErrors` on bad values."""
    out: FieldSet = {}
    errors: list[tuple[str, str]] | None = [] if strict else None
    _fs_struct(value, node, out, [] if strict else None, errors)
    if errors:
        raise TypeErrors(errors)
    return out


def _type_error(node: TypeNode, value: Any) -> str | None:
    t = node.type
    if t is NodeType.STRUCT or t is NodeType.MAP:
        return None if isinstance(value, dict) else f"expected map, got {_json_short(value)}"
    if t is NodeType.LIST:
        return None if isinstance(value, list) else f"expected list, got {_json_short(value)}"
    if t is NodeType.SCALAR:
        if isinstance(value, dict | list):
            return f"expected {node.scalar}, got {'map' if isinstance(value, dict) else 'list'}"
        s = node.scalar
        if s == "string" and not isinstance(value, str):
            return f"expected string, got {_json_short(value)}"
        if s == "quantity" and (isinstance(value, bool) or not isinstance(value, str | int | float)):
            return f"expected string or number, got {_json_short(value)}"
        if s == "integer" and (isinstance(value, bool) or not isinstance(value, int | float)):
            return f"expected numeric (int or float), got {_json_short(value)}"
        if s == "number" and (isinstance(value, bool) or not isinstance(value, int | float)):
            return f"expected numeric (int or float), got {_json_short(value)}"
        if s == "boolean" and not isinstance(value, bool):
            return f"expected boolean, got {_json_short(value)}"
    return None


def _fs_struct(value: Any, node: TypeNode, out: FieldSet, path: list[str] | None,
               errors: list[tuple[str, str]] | None) -> None:
    """Fill ``out`` with the paths below a map-like ``value``."""
    if not isinstance(value, dict):
        return
    declared = node.fields if node.type is NodeType.STRUCT else _NO_FIELDS
    for name, v in value.items():
        cn = child_node(node, name)
        pe = "f:" + name
        if cn is None:
            if errors is not None and path is not None:
                errors.append((_path_text([*path, pe]), "field not declared in schema"))
                continue
            cn = UNTYPED
        _fs_value(v, cn, pe, out, path, errors)
        # SMD ToFieldSet (visitMapItems): a map key (not a declared field) and an empty map are
        # members themselves, whatever they hold.
        if name not in declared or v == {}:
            sub = out.get(pe)
            if sub is None:
                out[pe] = {MEMBER: {}}
            elif MEMBER not in sub:
                sub[MEMBER] = {}


_NO_FIELDS: dict[str, TypeNode] = {}


def _fs_value(v: Any, cn: TypeNode, pe: str, out: FieldSet, path: list[str] | None,
              errors: list[tuple[str, str]] | None) -> None:
    if v is None:
        out[pe] = {MEMBER: {}}  # null is a leaf of any type (SMD ToFieldSet)
        return
    if errors is not None and path is not None and cn.type is not NodeType.UNTYPED:
        problem = _type_error(cn, v)
        if problem is not None:
            errors.append((_path_text([*path, pe]), problem))
            return
    if _is_leaf(cn, v):
        out[pe] = {MEMBER: {}}
        return
    sub: FieldSet = {}
    sub_path = None if path is None else [*path, pe]
    if isinstance(v, dict):
        _fs_struct(v, cn, sub, sub_path, errors)
    else:
        _fs_list(v, cn, sub, sub_path, errors)
    if sub:
        out[pe] = sub


def _fs_list(items: list[Any], node: TypeNode, out: FieldSet, path: list[str] | None,
             errors: list[tuple[str, str]] | None) -> None:
    pes, seen = index_items(node, items, path, errors)
    if node.list_type is ListType.SET:
        for pe in pes:
            out[pe] = {MEMBER: {}}
        return
    item_node = node.item or UNTYPED
    for pe in pes:
        sub: FieldSet = {MEMBER: {}}
        item = seen[pe]
        if isinstance(item, dict):
            _fs_struct(item, item_node, sub, None if path is None else [*path, pe], errors)
        out[pe] = sub


# --- merge --------------------------------------------------------------------------------------


def merge(lhs: Any, rhs: Any, node: TypeNode) -> Any:
    """``rhs`` (applied configuration) merged over ``lhs`` (live).

    Containers present on both sides are fresh; one-sided subtrees are SHARED with the inputs,
    so deep-copy the result before mutating below the top level.
    """
    if lhs is None or rhs is None:
        return rhs
    if _is_leaf(node, rhs) or _is_leaf(node, lhs):
        return rhs
    if isinstance(rhs, dict):
        if not isinstance(lhs, dict):
            return rhs
        return _merge_map(lhs, rhs, node)
    if isinstance(lhs, list):
        return _merge_list(lhs, rhs, node)
    return rhs


def _merge_map(lhs: dict[str, Any], rhs: dict[str, Any], node: TypeNode) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, lv in lhs.items():
        if k in rhs:
            rv = rhs[k]
            cn = child_node(node, k) or UNTYPED
            if rv is None:
                # SMD: null is a value for scalars and atomic values, but "nothing" for a granular
                # map/struct/list that has content (an untyped map too): the live content stays.
                out[k] = lv if lv and not _is_leaf(cn, lv) else None
            else:
                out[k] = merge(lv, rv, cn)
        else:
            out[k] = lv
    for k, rv in rhs.items():
        if k not in lhs:
            out[k] = rv
    return out


def _merge_list(lhs: list[Any], rhs: list[Any], node: TypeNode) -> list[Any]:
    """Port of SMD ``visitListItems``: keeps live order, places applied items by shared order."""
    rpes, rseen = index_items(node, rhs, None, None)
    lpes, lseen = index_items(node, lhs, None, None)
    is_set = node.list_type is ListType.SET
    item_node = node.item or UNTYPED

    def merge_item(pe: str) -> Any:
        lv = lseen.get(pe)
        rv = rseen.get(pe)
        if is_set:
            return rv if pe in rseen else lv
        if pe not in rseen:
            return lv
        if pe not in lseen:
            return rv
        return merge(lv, rv, item_node)

    shared = [pe for pe in rpes if pe in lseen]
    shared_i = 0
    next_shared = shared[0] if shared else None
    merged_rhs: set[str] = set()
    out: list[Any] = []
    li = ri = 0
    llen, rlen = len(lpes), len(rpes)
    while li < llen or ri < rlen:
        if li < llen and ri < rlen:
            pe = lpes[li]
            if pe == rpes[ri]:
                merged_rhs.add(pe)
                out.append(merge_item(pe))
                li += 1
                ri += 1
                shared_i += 1
                next_shared = shared[shared_i] if shared_i < len(shared) else None
                continue
            if pe in rseen and next_shared is not None and next_shared != pe:
                li += 1
                continue
        if li < llen:
            pe = lpes[li]
            if pe not in rseen:
                out.append(merge_item(pe))
                li += 1
                continue
            if pe in merged_rhs:
                li += 1
                continue
        if ri < rlen:
            pe = rpes[ri]
            merged_rhs.add(pe)
            out.append(merge_item(pe))
            ri += 1
            if next_shared is not None and next_shared == pe:
                shared_i += 1
                next_shared = shared[shared_i] if shared_i < len(shared) else None
    return out


# --- RemoveItems / EnsureNamedFieldsAreMembers ---------------------------------------------------


def remove_items(value: Any, fs: FieldSet, node: TypeNode) -> Any:
    """``value`` without the members of ``fs`` (a member removes its whole subtree); shares the rest.

    As SMD's (v6) removingWalker: a map or list whose items are all removed stays, empty."""
    if not fs:
        return value
    if isinstance(value, dict) and not _is_leaf(node, value):
        out: dict[str, Any] = {}
        for k, v in value.items():
            sub = fs.get("f:" + k)
            if sub is None:
                out[k] = v
            elif MEMBER in sub:
                continue
            else:
                out[k] = remove_items(v, sub, child_node(node, k) or UNTYPED)
        return out
    if isinstance(value, list) and not _is_leaf(node, value):
        item_node = node.item or UNTYPED
        outl: list[Any] = []
        for i, item in enumerate(value):
            try:
                pe = item_key(node, item)
            except (ValueError, TypeError):
                pe = "i:" + str(i)
            sub = fs.get(pe)
            if sub is None:
                outl.append(item)
            elif MEMBER in sub:
                continue
            else:
                outl.append(remove_items(item, sub, item_node))
        return outl
    return value


def ensure_named(fs: FieldSet, node: TypeNode) -> FieldSet:
    """SMD ``EnsureNamedFieldsAreMembers``: struct fields that have children become members."""
    out: FieldSet = {}
    for pe, sub in fs.items():
        if pe == MEMBER:
            out[MEMBER] = {}
            continue
        if pe[0] == "f":
            name = pe[2:]
            if node.type is NodeType.STRUCT and name in node.fields:
                cn: TypeNode = node.fields[name]
                new = ensure_named(sub, cn)
                new[MEMBER] = {}
                out[pe] = new
                continue
            cn = child_node(node, name) or UNTYPED
            out[pe] = ensure_named(sub, cn)
        else:
            out[pe] = ensure_named(sub, node.item or UNTYPED)
    return out


def reconcile_with_schema(fs: FieldSet, node: TypeNode) -> FieldSet | None:
    """SMD ``ReconcileFieldSetWithSchema``: where the schema now says atomic but the set still owns
    parts, own the whole value instead.  None when nothing changes."""
    changed = False
    out: FieldSet = {}
    for pe, sub in fs.items():
        if pe == MEMBER:
            out[pe] = sub
            continue
        cn = (child_node(node, pe[2:]) if pe[0] == "f" else node.item) or UNTYPED
        children = len(sub) - (1 if MEMBER in sub else 0)
        if children and cn.type is not NodeType.UNTYPED and cn.type is not NodeType.SCALAR and cn.is_atomic:
            out[pe] = {MEMBER: {}}
            changed = True
            continue
        new = reconcile_with_schema(sub, cn) if children else None
        if new is not None:
            changed = True
            out[pe] = new
        else:
            out[pe] = sub
    return out if changed else None
