"""Pruning a Namespace without taking what spindle does not own with it.

Deleting a Namespace deletes everything in it. So before a stale Namespace is deleted, its
contents are listed (every namespaced kind the server lists) and sorted by `classify`:

- objects the cluster makes by itself (Events, the `default` ServiceAccount, the
  `kube-root-ca.crt` ConfigMap, anything with an owner reference: it goes with its owner) are
  ignored;
- objects another source or nobody owns, objects marked `spindle.dev/prune: disabled` (or
  `spindle.dev/ssa: Ignore`) and objects still in Git are *blockers*: the Namespace is kept and
  the outcome names each of them;
- the rest is this source's and is deleted first, then the Namespace.

`classify` is pure; `contents` and `delete_contents` do the I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from reconciler.changeset import ObjectRef
from reconciler.kube import errors
from reconciler.kube.client import KubeClient
from reconciler.ssa import objects

Obj = dict[str, Any]

_EVENT_KINDS = frozenset({("v1", "Event"), ("events.k8s.io/v1", "Event")})
_CLUSTER_MADE = frozenset({("ServiceAccount", "default"), ("ConfigMap", "kube-root-ca.crt")})
SHOWN = 10  # blockers named in full in the message
KEPT = "not pruned: it holds"  # how the outcome of a Namespace kept for its contents begins


@dataclass
class Contents:
    """What a Namespace holds, sorted by what prune may do with it."""

    foreign: list[ObjectRef] = field(default_factory=list)  # another source's or nobody's
    protected: list[ObjectRef] = field(default_factory=list)  # marked prune: disabled / ssa: Ignore
    desired: list[ObjectRef] = field(default_factory=list)  # still in Git
    owned: list[ObjectRef] = field(default_factory=list)  # this source's: deleted before the Namespace

    @property
    def blocked(self) -> bool:
        return bool(self.foreign or self.protected or self.desired)

    def reason(self) -> str:
        """`not pruned: it holds objects spindle does not own: ConfigMap/x/a, ...; ...`."""
        parts = []
        for label, refs in (
            ("objects spindle does not own", self.foreign),
            ("objects marked spindle.dev/prune: disabled", self.protected),
            ("objects still in Git", self.desired),
        ):
            if refs:
                names = ", ".join(r.subject for r in refs[:SHOWN])
                more = f" and {len(refs) - SHOWN} more" if len(refs) > SHOWN else ""
                parts.append(f"{label}: {names}{more}")
        return f"{KEPT} " + "; ".join(parts)


def kept_for_contents(message: str) -> bool:
    """Whether a Skipped outcome is a Namespace kept for what it holds (a finding to report)."""
    return message.startswith(KEPT)


def cluster_made(obj: Obj) -> bool:
    """Whether the cluster made `obj` itself (it goes with the Namespace or its owner)."""
    meta = obj.get("metadata") or {}
    if (obj.get("apiVersion"), obj.get("kind")) in _EVENT_KINDS:
        return True
    if meta.get("ownerReferences"):
        return True
    if (obj.get("kind"), meta.get("name")) in _CLUSTER_MADE:
        return True
    return obj.get("kind") == "Secret" and obj.get("type") == "kubernetes.io/service-account-token"


def classify(
    items: Iterable[Obj], *, source: str, desired: set[tuple[str, str, str | None, str]]
) -> Contents:
    """Sort a Namespace's objects (`desired`: the keys of the objects in Git now)."""
    out = Contents()
    for obj in items:
        if cluster_made(obj):
            continue
        ref = objects.ref_of(obj)
        if not objects.owned_by(obj, source):
            out.foreign.append(ref)
        elif objects.prune_disabled(obj) or objects.policy_of(obj) is objects.SSAPolicy.IGNORE:
            out.protected.append(ref)
        elif ref.key in desired:
            out.desired.append(ref)
        else:
            out.owned.append(ref)
    for refs in (out.foreign, out.protected, out.desired, out.owned):
        refs.sort()
    return out


def contents(client: KubeClient, namespace: str) -> list[Obj]:
    """Every object in `namespace`, of every kind the server lists there."""
    items: list[Obj] = []
    for res in client.namespaced_listable():
        try:
            listed = client.list(res.api_version, res.kind, namespace=namespace)
        except (errors.UnknownKind, errors.NotFound):
            continue  # a kind that went away between discovery and the list
        for obj in listed:
            obj.setdefault("apiVersion", res.api_version)
            obj.setdefault("kind", res.kind)
            items.append(obj)
    return items


def delete_contents(client: KubeClient, refs: list[ObjectRef]) -> None:
    """Delete this source's objects left in a Namespace before the Namespace itself."""
    for ref in refs:
        client.delete(ref.api_version, ref.kind, ref.name, ref.namespace)
