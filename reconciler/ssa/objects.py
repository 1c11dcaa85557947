"""Object identity, spindle's labels and annotations, and the per-object apply policy."""

from __future__ import annotations

import enum
import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any

from reconciler.changeset import ObjectRef

Obj = dict[str, Any]

SOURCE_LABEL = "spindle.dev/source"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
PRUNE_ANNOTATION = "spindle.dev/prune"  # "disabled" keeps an object when it leaves Git
FORCE_ANNOTATION = "spindle.dev/force"  # "enabled" recreates on immutable-field changes
SSA_ANNOTATION = "spindle.dev/ssa"
SOURCE_PATH_ANNOTATION = "spindle.dev/source-path"
SYSTEM_NAMESPACE = "spindle-system"


class SSAPolicy(enum.StrEnum):
    OVERRIDE = "Override"  # default: spindle takes over fields kubectl managers changed
    MERGE = "Merge"  # keep fields other managers added
    IF_NOT_PRESENT = "IfNotPresent"  # create only, never update
    IGNORE = "Ignore"  # never touch


def ref_of(obj: Mapping[str, Any]) -> ObjectRef:
    meta = obj.get("metadata") or {}
    ns = meta.get("namespace")
    return ObjectRef(
        str(obj.get("apiVersion", "")),
        str(obj.get("kind", "")),
        str(ns) if ns else None,
        str(meta.get("name", "")),
    )


def annotation(obj: Mapping[str, Any], key: str) -> str | None:
    value = ((obj.get("metadata") or {}).get("annotations") or {}).get(key)
    return None if value is None else str(value)


def label(obj: Mapping[str, Any], key: str) -> str | None:
    value = ((obj.get("metadata") or {}).get("labels") or {}).get(key)
    return None if value is None else str(value)


def policy_of(obj: Mapping[str, Any]) -> SSAPolicy:
    """The `spindle.dev/ssa` annotation, case-insensitive; unknown values mean Override."""
    raw = (annotation(obj, SSA_ANNOTATION) or "").strip().lower()
    for p in SSAPolicy:
        if p.value.lower() == raw:
            return p
    return SSAPolicy.OVERRIDE


def force_enabled(obj: Mapping[str, Any]) -> bool:
    return (annotation(obj, FORCE_ANNOTATION) or "").lower() == "enabled"


def prune_disabled(obj: Mapping[str, Any]) -> bool:
    return (annotation(obj, PRUNE_ANNOTATION) or label(obj, PRUNE_ANNOTATION) or "").lower() == "disabled"


def owned_by(obj: Mapping[str, Any], source: str) -> bool:
    return label(obj, SOURCE_LABEL) == source


def spindle_builtin(obj: Mapping[str, Any]) -> bool:
    """An object spindle adds to every source's render itself (the SpinKube CRDs, a namespace's
    spin-ca Secret): its source-path annotation reads "(spindle) ..." instead of a repo path."""
    return (annotation(obj, SOURCE_PATH_ANNOTATION) or "").startswith("(spindle)")


def with_owner_labels(obj: Obj, source: str) -> Obj:
    """A copy of `obj` stamped with the ownership labels prune relies on."""
    out = dict(obj)
    meta = dict(out.get("metadata") or {})
    labels = dict(meta.get("labels") or {})
    labels[SOURCE_LABEL] = source
    labels.setdefault(MANAGED_BY_LABEL, "spindle")
    meta["labels"] = labels
    out["metadata"] = meta
    return out


def digest(obj: Any) -> str:
    """A stable digest of a desired object (canonical JSON)."""
    blob = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:32]


def label_value(text: str) -> str:
    """`text` as a valid label value (≤63 chars of [A-Za-z0-9._-], alphanumeric at both ends)."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-._")[:63].rstrip("-._")
    return cleaned or "default"
