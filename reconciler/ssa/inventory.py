"""The per-source inventory: what spindle applied, at which revision, and the digest cache.

Stored as a ConfigMap `spindle-inventory-<source>` in `spindle-system`. Entries use Flux's id
form `<namespace>_<name>_<group>_<kind>` plus the version, and carry the digest cache: the
digest of the desired object and the live resourceVersion after the last verified apply. When
both still match, the object is Unchanged without a dry-run.

Errors: `InventoryError` (names the ConfigMap) when the stored inventory cannot be parsed.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from reconciler.changeset import ObjectRef
from reconciler.ssa import sort
from reconciler.ssa.objects import MANAGED_BY_LABEL, SOURCE_LABEL, SYSTEM_NAMESPACE

Obj = dict[str, Any]
DATA_KEY = "inventory.json"


class InventoryError(Exception):
    """The inventory object exists but cannot be read; names the ConfigMap."""


@dataclass(frozen=True)
class Entry:
    ref: ObjectRef
    digest: str = ""  # digest of the desired object last applied
    resource_version: str = ""  # live resourceVersion after that apply

    @property
    def id(self) -> str:
        return entry_id(self.ref)


def entry_id(ref: ObjectRef) -> str:
    return f"{ref.namespace or ''}_{ref.name}_{ref.group}_{ref.kind}"


def ref_from_id(ident: str, version: str) -> ObjectRef:
    ns, name, group, kind = ident.split("_", 3)
    return ObjectRef(f"{group}/{version}" if group else version, kind, ns or None, name)


@dataclass
class Inventory:
    source: str
    revision: str = ""
    entries: dict[ObjectRef, Entry] = field(default_factory=dict)

    @property
    def refs(self) -> list[ObjectRef]:
        return sort.apply_order(list(self.entries))

    def to_json(self) -> str:
        rows = [
            {"id": e.id, "v": e.ref.api_version.rpartition("/")[2], "d": e.digest, "rv": e.resource_version}
            for e in (self.entries[r] for r in self.refs)
        ]
        return json.dumps(
            {"source": self.source, "revision": self.revision, "entries": rows}, separators=(",", ":")
        )

    @classmethod
    def from_json(cls, source: str, text: str) -> Inventory:
        doc = json.loads(text)
        inv = cls(source=source, revision=str(doc.get("revision", "")))
        for row in doc.get("entries") or []:
            ref = ref_from_id(str(row["id"]), str(row["v"]))
            inv.entries[ref] = Entry(ref, str(row.get("d", "")), str(row.get("rv", "")))
        return inv


def configmap_name(source: str) -> str:
    slug = re.sub(r"[^a-z0-9-]+", "-", source.lower()).strip("-") or "default"
    return f"spindle-inventory-{slug}"[:253]


def to_configmap(inv: Inventory) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": configmap_name(inv.source),
            "namespace": SYSTEM_NAMESPACE,
            "labels": {MANAGED_BY_LABEL: "spindle", "spindle.dev/inventory": "true"},
            "annotations": {SOURCE_LABEL: inv.source, "spindle.dev/revision": inv.revision},
        },
        "data": {DATA_KEY: inv.to_json()},
    }


def from_configmap(source: str, cm: Obj | None) -> Inventory | None:
    if cm is None:
        return None
    text = (cm.get("data") or {}).get(DATA_KEY)
    if not text:
        return Inventory(source)
    try:
        return Inventory.from_json(source, text)
    except (ValueError, KeyError) as exc:
        raise InventoryError(
            f"ConfigMap/{SYSTEM_NAMESPACE}/{configmap_name(source)}: unreadable inventory: {exc}"
        ) from exc


def stale(previous: Inventory | None, desired: set[ObjectRef]) -> list[ObjectRef]:
    """Previous inventory minus the desired set, in prune (reverse apply) order. Objects are
    compared without their version so a version bump is not a delete-and-create."""
    if previous is None:
        return []
    wanted = {r.key for r in desired}
    gone = [r for r in previous.entries if r.key not in wanted]
    return sort.prune_order(gone)
