"""managedFields: who owns which field, and folding kubectl's fields into spindle's.

A FieldsV1 set is a trie keyed by `f:<field>`, `k:<JSON of the list-map key>`, `v:<JSON value>`
(set members) and `i:<index>`; `.` marks ownership of the element itself and an empty `{}` a
leaf (an atomic value owned whole). Paths here are lists of tokens: `str` for a map key, `int`
for a list index, resolved against a concrete object to find the matching `k:`/`v:` entry.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Sequence
from typing import Any

from reconciler.changeset import Attribution

Obj = dict[str, Any]
Token = str | int

# Like Flux's kustomize-controller: fields written by these managers become spindle's, so the
# next apply reverts (or removes) them. Matched by prefix ("kubectl" covers kubectl-edit,
# kubectl-client-side-apply, kubectl-scale, kubectl-patch, kubectl-label ...).
FOLD_PREFIXES = ("kubectl",)
FOLD_EXACT = ("before-first-apply",)


def is_fold_manager(name: str) -> bool:
    return name in FOLD_EXACT or any(name.startswith(p) for p in FOLD_PREFIXES)


def _child(node: Obj, token: Token, value: Any) -> tuple[Obj | None, Any]:
    """The trie child matching `token` and the value under it in the object."""
    if isinstance(token, str):
        sub = node.get(f"f:{token}")
        return sub, (value.get(token) if isinstance(value, dict) else None)
    element = value[token] if isinstance(value, list) and 0 <= token < len(value) else None
    for key, sub in node.items():
        if key.startswith("k:") and isinstance(element, dict):
            try:
                wanted = json.loads(key[2:])
            except ValueError:
                continue
            if isinstance(wanted, dict) and all(element.get(k) == v for k, v in wanted.items()):
                return sub, element
        elif key.startswith("v:"):
            try:
                if json.loads(key[2:]) == element:
                    return sub, element
            except ValueError:
                continue
        elif key == f"i:{token}":
            return sub, element
    return None, element


def owns(fields: Obj, path: Sequence[Token], obj: Any) -> bool:
    """Whether the FieldsV1 set `fields` covers `path` in `obj` (the path, a descendant, or an
    atomic ancestor of it)."""
    node: Obj | None = fields
    value = obj
    for i, token in enumerate(path):
        if node is None:
            return False
        if i > 0 and node == {}:
            return True  # an atomic leaf owns everything below it
        node, value = _child(node, token, value)
    return node is not None


def owners(path: Sequence[Token], live: Obj) -> tuple[Attribution, ...]:
    """The managers of `live` whose managedFields cover `path`, with when they wrote."""
    found: list[Attribution] = []
    for entry in (live.get("metadata") or {}).get("managedFields") or []:
        fields = entry.get("fieldsV1")
        if isinstance(fields, dict) and owns(fields, path, live):
            op = str(entry.get("operation", ""))
            if entry.get("subresource"):
                op += f" ({entry['subresource']})"
            found.append(Attribution(str(entry.get("manager", "")), op, entry.get("time")))
    return tuple(found)


def union(a: Obj, b: Obj) -> Obj:
    """The union of two FieldsV1 sets."""
    out = copy.deepcopy(a)
    for key, sub in b.items():
        if key in out and isinstance(out[key], dict) and isinstance(sub, dict):
            out[key] = union(out[key], sub)
        else:
            out[key] = copy.deepcopy(sub)
    return out


def fold(managed_fields: list[Obj], owner: str = "spindle") -> list[Obj] | None:
    """managedFields with kubectl managers' fields merged into `owner`'s Apply entry (Flux's
    `PatchReplaceFieldsManagers`); None when there is nothing to fold. Subresource entries
    (e.g. `kubectl scale` on /scale) are left alone: force-apply already takes those fields."""
    folded = [
        e for e in managed_fields if is_fold_manager(str(e.get("manager", ""))) and not e.get("subresource")
    ]
    if not folded:
        return None
    rest = [e for e in managed_fields if e not in folded]
    target = next(
        (
            e
            for e in rest
            if e.get("manager") == owner and e.get("operation") == "Apply" and not e.get("subresource")
        ),
        None,
    )
    merged: Obj = dict(target.get("fieldsV1") or {}) if target else {}
    for entry in folded:
        merged = union(merged, entry.get("fieldsV1") or {})
    if target is None:
        base = folded[0]
        target = {
            "manager": owner,
            "operation": "Apply",
            "apiVersion": base.get("apiVersion"),
            "time": base.get("time"),
            "fieldsType": "FieldsV1",
            "fieldsV1": merged,
        }
        rest.append(target)
    else:
        rest = [dict(e, fieldsV1=merged) if e is target else e for e in rest]
    return rest


_MISSING = object()


def drop_unowned_folded(predicted: Obj, live: Obj, applied: Obj, owner: str = "spindle") -> Obj:
    """`predicted` (a dry-run result) minus what folding would remove: fields a kubectl manager
    wrote that the applied config does not set and no other manager keeps. Lets a dry-run or
    detect-only reconcile report the same drift a real one would revert."""
    entries = (live.get("metadata") or {}).get("managedFields") or []
    folded = [
        e.get("fieldsV1") or {}
        for e in entries
        if is_fold_manager(str(e.get("manager", ""))) and not e.get("subresource")
    ]
    if not folded:
        return predicted
    keepers = [
        e.get("fieldsV1") or {}
        for e in entries
        if not is_fold_manager(str(e.get("manager", "")))
        and e.get("manager") != owner
        and not e.get("subresource")
    ]
    trie: Obj = {}
    for f in folded:
        trie = union(trie, f)
    out = copy.deepcopy(predicted)
    _drop(out, trie, applied, keepers)
    return out


def _drop(node: Any, trie: Obj, applied: Any, keepers: Iterable[Obj]) -> None:
    keepers = list(keepers)
    for key, sub in trie.items():
        if key.startswith("f:") and isinstance(node, dict):
            name = key[2:]
            if name not in node:
                continue
            want = applied.get(name, _MISSING) if isinstance(applied, dict) else _MISSING
            kept = [k[key] for k in keepers if isinstance(k.get(key), dict)]
            if want is _MISSING and not kept:
                del node[name]
            elif isinstance(sub, dict) and sub and want is not _MISSING:
                _drop(node[name], sub, want, kept)
        elif key.startswith("k:") and isinstance(node, list):
            try:
                match = json.loads(key[2:])
            except ValueError:
                continue
            if not isinstance(match, dict):
                continue
            hits = [
                i
                for i, el in enumerate(node)
                if isinstance(el, dict) and all(el.get(k) == v for k, v in match.items())
            ]
            if not hits:
                continue
            wanted = [
                el
                for el in (applied if isinstance(applied, list) else [])
                if isinstance(el, dict) and all(el.get(k) == v for k, v in match.items())
            ]
            kept = [k[key] for k in keepers if isinstance(k.get(key), dict)]
            if not wanted and not kept:
                del node[hits[0]]
            elif wanted and isinstance(sub, dict):
                _drop(node[hits[0]], sub, wanted[0], kept)
