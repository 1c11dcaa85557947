"""Drift between a live object and what Git wants: an RFC 6902 patch, the changed fields with
both values and their owners, and a unified YAML diff for people. Secrets arrive masked."""

from __future__ import annotations

import difflib
from typing import Any

import jsonpatch
import yaml

from reconciler.changeset import FieldDrift
from reconciler.ssa import fieldsv1

Obj = dict[str, Any]
Token = str | int


def patch(live: Obj, desired: Obj) -> tuple[dict[str, Any], ...]:
    """The JSON patch that turns `live` into `desired`."""
    ops: list[dict[str, Any]] = jsonpatch.make_patch(live, desired).patch
    return tuple(ops)


def changed_paths(
    live: Any, desired: Any, prefix: tuple[Token, ...] = ()
) -> list[tuple[tuple[Token, ...], Any, Any]]:
    """Leaf-most paths whose values differ; lists of different length change as a whole."""
    if isinstance(live, dict) and isinstance(desired, dict):
        out: list[tuple[tuple[Token, ...], Any, Any]] = []
        for key in sorted(set(live) | set(desired)):
            if live.get(key) != desired.get(key):
                out.extend(changed_paths(live.get(key), desired.get(key), (*prefix, key)))
        return out
    if isinstance(live, list) and isinstance(desired, list) and len(live) == len(desired):
        out = []
        for i, (a, b) in enumerate(zip(live, desired, strict=True)):
            if a != b:
                out.extend(changed_paths(a, b, (*prefix, i)))
        return out
    return [(prefix, live, desired)]


def dotted(path: tuple[Token, ...]) -> str:
    text = ""
    for token in path:
        text += f"[{token}]" if isinstance(token, int) else f".{token}"
    return text or "."


def field_drifts(live_cmp: Obj, desired_cmp: Obj, live_full: Obj) -> tuple[FieldDrift, ...]:
    """Each changed field with its live and desired value and who owns it in `live_full`."""
    return tuple(
        FieldDrift(dotted(path), a, b, fieldsv1.owners(path, live_full))
        for path, a, b in changed_paths(live_cmp, desired_cmp)
    )


class _PlainDumper(yaml.SafeDumper):
    """Writes a sub-tree shared by two fields twice, never as `&id001`/`*id001`: a reader of a
    diff must see each field's value where it stands."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def to_yaml(obj: Any) -> str:
    if obj is None:
        return ""
    return str(yaml.dump(obj, Dumper=_PlainDumper, sort_keys=True, default_flow_style=False))


def unified(subject: str, live: Obj | None, desired: Obj | None) -> str:
    """A `kubectl diff`-style unified diff of two (masked, stripped) objects."""
    lines = difflib.unified_diff(
        to_yaml(live).splitlines(keepends=True),
        to_yaml(desired).splitlines(keepends=True),
        fromfile=f"live/{subject}",
        tofile=f"git/{subject}",
    )
    return "".join(lines)
