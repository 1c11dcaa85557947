"""Strategic merge patch (k8s.io/apimachinery/pkg/util/strategicpatch) for built-in kinds.

Lists whose schema says ``x-kubernetes-patch-strategy: merge`` are merged: by
``patchMergeKey`` for lists of objects, as a union for lists of scalars; every other list is
replaced.  Directives: ``$patch: replace|delete|merge`` on maps and list items,
``$retainKeys``, ``$setElementOrder/<field>``, ``$deleteFromPrimitiveList/<field>``; ``null``
deletes a field.
"""

from __future__ import annotations

from typing import Any

from kubesim.schema.types import UNTYPED, NodeType, ResourceSchema, TypeNode
from kubesim.ssa.errors import PatchError
from kubesim.ssa.typed import child_node, deep_copy

_DIRECTIVE = "$patch"
_RETAIN = "$retainKeys"
_ORDER = "$setElementOrder/"
_DELETE_PRIMITIVE = "$deleteFromPrimitiveList/"


def apply_strategic_merge_patch(live: dict[str, Any], patch: dict[str, Any], schema: ResourceSchema,
                                ) -> dict[str, Any]:
    """``live`` patched by ``patch``; neither is modified.  Raises PatchError on a bad patch."""
    if not isinstance(patch, dict):
        raise PatchError(f"{schema.kind}: a strategic merge patch must be a JSON object")
    out = _merge_map(live if isinstance(live, dict) else {}, patch, schema.root, "")
    return out if isinstance(out, dict) else {}


def _merge_map(orig: dict[str, Any], patch: dict[str, Any], node: TypeNode, path: str,
               ) -> dict[str, Any] | None:
    directive = patch.get(_DIRECTIVE)
    if directive == "delete":
        return None
    if directive == "replace":
        return {k: deep_copy(v) for k, v in patch.items() if not k.startswith("$")}
    if directive not in (None, "merge"):
        raise PatchError(f"{path or '.'}: unknown patch type: {directive!r}")
    out = {k: deep_copy(v) for k, v in orig.items()}
    orders: dict[str, Any] = {}
    for key, value in patch.items():
        if key in (_DIRECTIVE, _RETAIN):
            continue
        if key.startswith(_ORDER):
            orders[key[len(_ORDER):]] = value
            continue
        if key.startswith(_DELETE_PRIMITIVE):
            field = key[len(_DELETE_PRIMITIVE):]
            if isinstance(out.get(field), list) and isinstance(value, list):
                out[field] = [x for x in out[field] if x not in value]
            continue
        if key.startswith("$"):
            raise PatchError(f"{path}.{key}: unknown patch directive")
        if value is None:
            out.pop(key, None)
            continue
        cn = child_node(node, key) or UNTYPED
        cur = out.get(key)
        if isinstance(value, dict):
            if isinstance(cur, dict) and cn.type is not NodeType.SCALAR and not _is_atomic_map(cn):
                merged = _merge_map(cur, value, cn, f"{path}.{key}")
            else:
                merged = _merge_map({}, value, cn, f"{path}.{key}")
            if merged is None:
                out.pop(key, None)
            else:
                out[key] = merged
        elif isinstance(value, list):
            out[key] = _merge_list(cur if isinstance(cur, list) else [], value, cn, f"{path}.{key}")
        else:
            out[key] = value
    retain = patch.get(_RETAIN)
    if isinstance(retain, list):
        keep = set(retain)
        out = {k: v for k, v in out.items() if k in keep or (k not in orig and k in patch)}
    for field, order in orders.items():
        if isinstance(out.get(field), list) and isinstance(order, list):
            out[field] = _reorder(out[field], order, child_node(node, field) or UNTYPED)
    return out


def _is_atomic_map(node: TypeNode) -> bool:
    return node.type in (NodeType.STRUCT, NodeType.MAP) and node.is_atomic


def _merge_list(orig: list[Any], patch: list[Any], node: TypeNode, path: str) -> list[Any]:
    if node.type is not NodeType.LIST or "merge" not in node.patch_strategy.split(","):
        return [_strip(v) for v in patch if not (isinstance(v, dict) and v.get(_DIRECTIVE))]
    key = node.patch_merge_key
    if not key:
        # merge strategy without a key: a set of scalars.
        out = [deep_copy(v) for v in orig]
        for v in patch:
            if v not in out:
                out.append(deep_copy(v))
        return out
    for item in patch:
        if isinstance(item, dict) and item.get(_DIRECTIVE) == "replace":
            return [_strip(v) for v in patch if not (isinstance(v, dict) and v.get(_DIRECTIVE) == "replace")]
    result = [deep_copy(v) for v in orig]
    item_node = node.item or UNTYPED
    for item in patch:
        if not isinstance(item, dict):
            raise PatchError(f"{path}: list items must be objects with the merge key {key!r}")
        if key not in item:
            raise PatchError(f"{path}: map: {item} does not contain declared merge key: {key}")
        idx = next((i for i, v in enumerate(result) if isinstance(v, dict) and v.get(key) == item[key]), None)
        if item.get(_DIRECTIVE) == "delete":
            result = [v for v in result if not (isinstance(v, dict) and v.get(key) == item[key])]
            continue
        if idx is None:
            merged = _merge_map({}, item, item_node, f"{path}[{key}={item[key]}]")
            if merged is not None:
                result.append(merged)
        else:
            merged = _merge_map(result[idx], item, item_node, f"{path}[{key}={item[key]}]")
            if merged is None:
                del result[idx]
            else:
                result[idx] = merged
    return result


def _strip(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _strip(x) for k, x in v.items() if not k.startswith("$")}
    if isinstance(v, list):
        return [_strip(x) for x in v]
    return v


def _reorder(items: list[Any], order: list[Any], node: TypeNode) -> list[Any]:
    key = node.patch_merge_key if node.type is NodeType.LIST else ""

    def ident(v: Any) -> Any:
        return v.get(key) if key and isinstance(v, dict) else v

    wanted = [ident(o) for o in order]
    pos = {repr(w): i for i, w in enumerate(wanted)}
    ranked = sorted(enumerate(items), key=lambda iv: (pos.get(repr(ident(iv[1])), len(pos) + iv[0])))
    return [v for _, v in ranked]
