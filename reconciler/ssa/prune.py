"""Prune: delete what left Git, safely (Flux's `DeleteAll` plus kustomize-controller's rules).

Only objects in the previous inventory and not desired now are candidates, in reverse apply
order. Each is re-read and deleted only when its live labels say this source owns it and it is
not marked `spindle.dev/prune: disabled` (nor `spindle.dev/ssa: Ignore`). A Namespace is deleted
only when nothing in it belongs to anyone else, is protected or is still in Git (`nsprune`); its
own leftovers go first. Deletes whose result is not confirmed, and Namespaces kept for what they
hold, stay in the inventory so the next reconcile retries them.
"""

from __future__ import annotations

from dataclasses import dataclass

from reconciler.changeset import Action, ObjectRef
from reconciler.kube import errors
from reconciler.kube.client import KubeClient
from reconciler.ssa import nsprune, objects
from reconciler.ssa.manager import Outcome


@dataclass(frozen=True)
class PruneResult:
    outcomes: list[Outcome]
    retry: list[ObjectRef]  # keep in the inventory: the delete failed


def prune(
    client: KubeClient,
    stale: list[ObjectRef],
    *,
    source: str,
    dry_run: bool,
    desired: set[tuple[str, str, str | None, str]] | None = None,
) -> PruneResult:
    """Delete the `stale` objects this source still owns; `desired` (the keys in Git now) keeps a
    Namespace that still holds some of them."""
    outcomes: list[Outcome] = []
    retry: list[ObjectRef] = []
    for ref in stale:
        try:
            live = client.get(ref.api_version, ref.kind, ref.name, ref.namespace)
        except errors.UnknownKind:
            continue  # the kind itself is gone (its CRD was pruned): nothing left to delete
        except errors.Unreachable:  # the run stops: not one object's failure
            raise
        except errors.KubeError as exc:
            outcomes.append(Outcome(ref, Action.FAILED, f"prune: {exc}"))
            retry.append(ref)
            continue
        if live is None:
            continue
        if not objects.owned_by(live, source):
            outcomes.append(
                Outcome(
                    ref,
                    Action.SKIPPED,
                    f"not pruned: not labelled {objects.SOURCE_LABEL}={source}",
                    live=live,
                )
            )
            continue
        if objects.prune_disabled(live) or objects.policy_of(live) is objects.SSAPolicy.IGNORE:
            outcomes.append(
                Outcome(ref, Action.SKIPPED, "not pruned: spindle.dev/prune: disabled", live=live)
            )
            continue
        inside: nsprune.Contents | None = None
        if ref.kind == "Namespace" and ref.group == "":
            try:
                inside = nsprune.classify(
                    nsprune.contents(client, ref.name), source=source, desired=desired or set()
                )
            except errors.Unreachable:  # the run stops: not one object's failure
                raise
            except errors.KubeError as exc:
                message = f"prune: cannot list what it holds: {exc}"
                outcomes.append(Outcome(ref, Action.FAILED, message, live=live))
                retry.append(ref)
                continue
            if inside.blocked:  # kept, and kept in the inventory: the next run checks again
                outcomes.append(Outcome(ref, Action.SKIPPED, inside.reason(), live=live))
                retry.append(ref)
                continue
        if dry_run:
            outcomes.append(Outcome(ref, Action.PRUNED, "would be pruned", live=live))
            continue
        try:
            if inside is not None:
                nsprune.delete_contents(client, inside.owned)
            client.delete(ref.api_version, ref.kind, ref.name, ref.namespace)
        except errors.Unreachable:  # the run stops: not one object's failure
            raise
        except errors.KubeError as exc:
            outcomes.append(Outcome(ref, Action.FAILED, f"prune: {exc}", live=live))
            retry.append(ref)
            continue
        outcomes.append(Outcome(ref, Action.PRUNED, live=live))
    return PruneResult(outcomes, retry)
