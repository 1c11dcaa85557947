"""kubectl's move from client-side to server-side apply, as apimachinery's lastAppliedManager and
lastAppliedUpdater do it for the manager named "kubectl" only.

A client-side `kubectl apply` leaves its configuration in the last-applied annotation and owns
nothing in managedFields; so its first `kubectl apply --server-side` would conflict with every
field. The server lets it take over, without a conflict, the fields whose live value still equals
the last-applied one (`takeover`), and keeps the annotation in step with each server-side apply
(`sync`) so a later client-side apply sees the truth.
"""

from __future__ import annotations

import json
from typing import Any

from kubesim.schema.types import TypeNode
from kubesim.ssa import fieldpath as fp
from kubesim.ssa import typed
from kubesim.ssa.compare import compare
from kubesim.ssa.managed import without_managed

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
KUBECTL = "kubectl"


def annotation(obj: dict[str, Any] | None) -> str | None:
    ann = ((obj or {}).get("metadata") or {}).get("annotations")
    value = ann.get(LAST_APPLIED) if isinstance(ann, dict) else None
    return value if isinstance(value, str) and value else None


def takeover(live: dict[str, Any] | None, root: TypeNode) -> fp.FieldSet | None:
    """Fields of the last-applied configuration that still hold their last-applied value (None:
    no usable annotation); they may be taken without a conflict."""
    text = annotation(live)
    if live is None or text is None:
        return None
    try:
        last = json.loads(text)
        if not isinstance(last, dict):
            return None
        last_set = typed.field_set(last, root)
    except (ValueError, TypeError):
        return None
    cmp = compare(last, without_managed(live), root)
    return fp.difference(last_set, cmp.modified)


def sync(result: dict[str, Any], config: dict[str, Any]) -> bool:
    """Rewrite the annotation of an object that has one to the applied config; True if it changed."""
    before = annotation(result)
    if before is None:
        return False
    cfg = typed.deep_copy(config)
    ann = (cfg.get("metadata") or {}).get("annotations")
    if isinstance(ann, dict):
        ann.pop(LAST_APPLIED, None)
    text = json.dumps(cfg, separators=(",", ":"), sort_keys=True, ensure_ascii=False) + "\n"
    result["metadata"]["annotations"][LAST_APPLIED] = text
    return text != before
