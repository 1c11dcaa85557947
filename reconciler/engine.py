"""One reconcile: render → plan → apply → prune → health → inventory → events.

`run()` returns the `ReconcileRecord` the history stores and reports print, with the per-object
outcomes (masked before/after views) that `spindle diff` prints. The render step and the
cluster client are seams passed in; nothing here is patched in tests.

Errors never escape: a cluster error (`reconciler.kube.errors.KubeError`) stops the reconcile
and is recorded in `record.errors`, like render errors (also in `record.invalid`: the repo is
invalid, exit 1); per-object failures are Failed entries, except an unreachable API server
(`errors.Unreachable`), which stops the run with that one error. What goes wrong without failing
the run (a Namespace kept for what it holds, Events that could not be recorded) is in
`record.warnings`; Events are never written into a namespace that is gone or terminating.

Safety rules: nothing is pruned when the render reported errors, when the inventory could not be
read, or with `prune=False`; an empty desired set is refused unless `allow_empty`. Before
applying, the inventory is widened to include every object about to be created, so a reconcile
killed half-way leaves nothing orphaned: the next one prunes or keeps them as Git says.
"""

from __future__ import annotations

import datetime as dt
import enum
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reconciler.changeset import (
    DRIFT_ACTIONS,
    Action,
    ChangeSetEntry,
    ObjectRef,
    PublishedApp,
    ReconcileRecord,
    Revision,
)
from reconciler.kube import errors
from reconciler.kube.client import KubeClient
from reconciler.publish.config import PublishConfig
from reconciler.ssa import inventory, nodes, nsprune, objects, prune, sort
from reconciler.ssa.inventory import Inventory
from reconciler.ssa.manager import Applier, ApplyOptions, Outcome

Obj = dict[str, Any]
MAX_OBJECT_EVENTS = 50  # beyond this, one summary event instead of an event storm
_NODE_STATES = frozenset({"pending", "provisioned", "failed", "uninstall"})  # see ssa.nodes


class Mode(enum.StrEnum):
    RENDER = "render"  # spindle renders SpinApps into Deployments/Services like spin-operator
    OPERATOR = "operator"  # apply the SpinApps themselves for an in-cluster spin-operator


@dataclass(frozen=True)
class Options:
    dry_run: bool = False
    detect_only: bool = False
    prune: bool = True
    force: bool = False
    allow_empty: bool = False
    mode: Mode = Mode.RENDER
    path: str | None = None  # sub-path of the checkout to render
    timeout: float = 60.0  # bounded health wait
    concurrency: int = 8
    events: bool = True
    publish: PublishConfig = field(default_factory=PublishConfig)  # projects with `publish` in their table

    @property
    def changes_nothing(self) -> bool:
        return self.dry_run or self.detect_only

    @property
    def record_mode(self) -> str:
        return "detect-only" if self.detect_only else "dry-run" if self.dry_run else "apply"


@dataclass(frozen=True)
class RenderRequest:
    path: str | None
    mode: Mode
    nodes: list[Obj]
    retired_shims: list[Obj] = field(default_factory=list)
    publish: PublishConfig | None = None  # None: projects with `publish` render unpinned, nothing pushed
    dry_run: bool = False  # publish computes digests but pushes nothing


@dataclass
class Rendered:
    objects: list[tuple[Obj, str | None]] = field(default_factory=list)  # (object, repo path)
    errors: list[str] = field(default_factory=list)
    published: list[PublishedApp] = field(default_factory=list)


Renderer = Callable[[Path, RenderRequest], Rendered]


@dataclass
class Result:
    record: ReconcileRecord
    outcomes: list[Outcome]


def _now() -> str:
    # Milliseconds: a reconcile takes about a second, and reports print its duration.
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def run(
    checkout_dir: Path,
    *,
    source_name: str,
    revision: Revision | None,
    options: Options,
    client: KubeClient,
    render: Renderer | None = None,
    progress: Callable[[str], None] | None = None,
    clock: Callable[[], str] = _now,
) -> Result:
    say = progress or (lambda _m: None)
    record = ReconcileRecord(source=source_name, revision=revision, started=clock(), mode=options.record_mode)
    result = Result(record, [])
    source = objects.label_value(source_name)
    try:
        _run(checkout_dir, source, options, client, render or default_renderer, say, result)
    except errors.KubeError as exc:
        record.errors.append(str(exc))
    record.finished = clock()
    return result


def _run(
    checkout: Path,
    source: str,
    options: Options,
    client: KubeClient,
    render: Renderer,
    say: Callable[[str], None],
    result: Result,
) -> None:
    record = result.record
    node_list, node_error = _read_nodes(client)
    say("reading inventory")
    previous, inventory_ok = _read_inventory(client, source, record)
    say("rendering")
    retired = _retired_shims(client, previous, node_list)
    publish = options.publish if options.publish.enabled else None
    request = RenderRequest(
        options.path, options.mode, node_list, retired, publish, dry_run=options.changes_nothing
    )
    try:
        rendered = render(checkout, request)
    except OSError as exc:  # the checkout or its sub-path cannot be read: nothing to apply or prune
        record.errors.append(f"render of {checkout}: {exc}")
        return
    record.errors.extend(rendered.errors)
    record.invalid.extend(rendered.errors)
    record.published = list(rendered.published)
    if node_error and any(o.get("kind") == "Shim" for o, _ in rendered.objects):
        record.errors.append(node_error)
    desired = [_with_path(obj, path) for obj, path in rendered.objects]
    # spindle adds its CRDs to every render: "empty" means nothing came from the repo.
    from_repo = [o for o, path in rendered.objects if not (path or "").startswith("(spindle)")]
    if not from_repo and rendered.errors:  # --allow-empty would not help: the repo is broken
        record.errors.append("nothing rendered without errors, so nothing was applied or pruned: "
                             "fix the errors above")
        record.invalid.append(record.errors[-1])
        return
    if not from_repo and not options.allow_empty:
        record.errors.append(
            "refusing to reconcile an empty desired set (it would prune everything); pass --allow-empty"
        )
        return
    applier = Applier(
        client,
        ApplyOptions(
            source,
            dry_run=options.changes_nothing,
            force=options.force,
            concurrency=options.concurrency,
            wait_timeout=options.timeout,
            spinapp_health=options.mode is Mode.OPERATOR,
        ),
        progress=say,
    )
    refs = [objects.ref_of(o) for o in desired]
    if not options.changes_nothing:
        _widen_inventory(client, source, previous, refs)
    outcomes = applier.run(desired, previous)
    _publish(result, outcomes)  # kept even if a later step fails
    can_prune = options.prune and inventory_ok and not rendered.errors
    pruned: prune.PruneResult | None = None
    if can_prune:
        stale = inventory.stale(previous, set(refs))
        if stale:
            say(f"pruning {len(stale)} objects")
        pruned = prune.prune(
            client, stale, source=source, dry_run=options.changes_nothing, desired={r.key for r in refs}
        )
        outcomes.extend(pruned.outcomes)
        kept = [
            o for o in pruned.outcomes if o.action is Action.SKIPPED and nsprune.kept_for_contents(o.message)
        ]
        record.warnings.extend(f"{o.ref.subject} {o.message}" for o in kept)
        _publish(result, outcomes)
    elif options.prune and previous is not None and inventory.stale(previous, set(refs)):
        record.errors.append("nothing pruned: the render or the inventory read failed")
    if not options.changes_nothing:
        labels = {str(n["metadata"]["name"]): dict(n["metadata"].get("labels") or {}) for n in node_list}
        record.errors.extend(nodes.label_nodes(client, outcomes, labels))
        _write_inventory(client, source, record, previous, outcomes, pruned, can_prune)
        if options.events:
            _emit_events(client, source, record, outcomes)
    _publish(result, outcomes)  # node labels and waits may have updated health


def _publish(result: Result, outcomes: list[Outcome]) -> None:
    result.outcomes = outcomes
    result.record.entries = [_entry(o) for o in outcomes]


# -- pieces ----------------------------------------------------------------------------------


def _with_path(obj: Obj, path: str | None) -> Obj:
    if not path:
        return obj
    out = dict(obj)
    meta = dict(out.get("metadata") or {})
    annotations = dict(meta.get("annotations") or {})
    annotations.setdefault(objects.SOURCE_PATH_ANNOTATION, path)
    meta["annotations"] = annotations
    out["metadata"] = meta
    return out


def _entry(o: Outcome) -> ChangeSetEntry:
    path = objects.annotation(o.desired or o.live or {}, objects.SOURCE_PATH_ANNOTATION)
    return ChangeSetEntry(o.ref, o.action, o.health, o.message, o.patch, o.fields, path)


def _read_nodes(client: KubeClient) -> tuple[list[Obj], str | None]:
    """The Nodes, or an error that only matters when the repo has Shims (a user without the
    right to list Nodes can still reconcile apps)."""
    try:
        return client.list("v1", "Node"), None
    except errors.Unreachable:  # the run stops: not one object's failure
        raise
    except errors.KubeError as exc:
        return [], f"cannot read Nodes, so no Shim installer Jobs were rendered: {exc}"


def _read_inventory(
    client: KubeClient, source: str, record: ReconcileRecord
) -> tuple[Inventory | None, bool]:
    """The previous inventory and whether it was readable. An API failure propagates (the
    reconcile stops before changing anything: writing a fresh inventory would forget what to
    prune); unreadable content is reported, disables prune, and is replaced."""
    name = inventory.configmap_name(source)
    cm = client.get("v1", "ConfigMap", name, objects.SYSTEM_NAMESPACE)
    try:
        return inventory.from_configmap(source, cm), True
    except inventory.InventoryError as exc:
        record.errors.append(f"{exc}; nothing pruned, the inventory is rewritten from this reconcile")
        return None, False


def _retired_shims(client: KubeClient, previous: Inventory | None, node_list: list[Obj]) -> list[Obj]:
    """Live Shims this source applied before whose name a node still carries as a state label:
    if they left Git, their uninstall Jobs need the spec (RUNTIME_OPTIONS must match the
    install). They are read before prune deletes them."""
    if previous is None:
        return []
    labelled = {
        key
        for n in node_list
        for key, value in ((n.get("metadata") or {}).get("labels") or {}).items()
        if value in _NODE_STATES
    }
    out = []
    for ref in previous.entries:
        if ref.kind == "Shim" and ref.name in labelled:
            try:
                live = client.get(ref.api_version, ref.kind, ref.name, ref.namespace)
            except errors.Unreachable:  # the run stops: not one object's failure
                raise
            except errors.KubeError:
                continue
            if live is not None:
                out.append(live)
    return out



def _save(client: KubeClient, inv: Inventory) -> None:
    client.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": objects.SYSTEM_NAMESPACE}})
    client.apply(inventory.to_configmap(inv))


def _widen_inventory(
    client: KubeClient,
    source: str,
    previous: Inventory | None,
    refs: list[ObjectRef],
) -> None:
    """Add the objects about to be created to the inventory first, so a crash between their
    create and the final inventory write cannot orphan them."""
    known = {r.key for r in (previous.entries if previous else {})}
    new = [r for r in refs if r.key not in known]
    if not new:
        return
    widened = Inventory(
        source, previous.revision if previous else "", dict(previous.entries) if previous else {}
    )
    for r in new:
        widened.entries[r] = inventory.Entry(r)
    _save(client, widened)


def _write_inventory(
    client: KubeClient,
    source: str,
    record: ReconcileRecord,
    previous: Inventory | None,
    outcomes: list[Outcome],
    pruned: prune.PruneResult | None,
    pruned_ran: bool,
) -> None:
    inv = Inventory(source, record.revision.sha if record.revision else "")
    for o in outcomes:
        if o.action is Action.PRUNED or o.desired is None:
            continue
        verified = o.action in (Action.CREATED, Action.CONFIGURED, Action.UNCHANGED) and bool(o.verified_rv)
        inv.entries[o.ref] = inventory.Entry(
            o.ref, o.digest if verified else "", o.verified_rv if verified else ""
        )
    if previous is not None:
        keep = set(pruned.retry) if pruned else set()
        if not pruned_ran:  # prune skipped: everything previously owned stays owned
            keep |= set(previous.entries)
        present = {r.key for r in inv.entries}
        for ref in keep:
            if ref.key not in present:
                inv.entries[ref] = previous.entries.get(ref, inventory.Entry(ref))
    if previous is not None and previous.to_json() == inv.to_json():
        return
    _save(client, inv)


def _emit_events(client: KubeClient, source: str, record: ReconcileRecord, outcomes: list[Outcome]) -> None:
    """One Event per changed object (a summary beyond MAX_OBJECT_EVENTS), never into a Namespace
    that is gone or terminating; a failure to record one is a warning, never a failed run."""
    changed = [o for o in outcomes if o.action in DRIFT_ACTIONS]
    rev = record.revision.short if record.revision else "local"
    writable = _EventNamespaces(client, outcomes)
    events = [
        _event(
            o.ref,
            o.action.value,
            f"{o.ref.subject} {o.action.value.lower()} (revision {rev})",
            _uid(o.result) or _uid(o.live),
        )
        for o in changed[:MAX_OBJECT_EVENTS]
    ]
    if len(changed) > MAX_OBJECT_EVENTS:
        counts: dict[str, int] = {}
        for o in changed:
            counts[o.action.value] = counts.get(o.action.value, 0) + 1
        summary = ", ".join(f"{n} {a.lower()}" for a, n in sorted(counts.items()))
        inv_ref = ObjectRef("v1", "ConfigMap", objects.SYSTEM_NAMESPACE, inventory.configmap_name(source))
        events.append(_event(inv_ref, "Reconciled", f"{summary} (revision {rev})"))
    failed: dict[str, str] = {}
    for event in events:
        ns = str(event["metadata"]["namespace"])
        if ns in failed or not writable(ns):
            continue
        try:
            client.create(event)
        except errors.Unreachable:  # the run stops: not one object's failure
            raise
        except errors.KubeError as exc:
            failed[ns] = str(exc)
    for ns, message in sorted(failed.items()):
        record.warnings.append(f"cannot record events in namespace {ns}: {message}")


class _EventNamespaces:
    """Whether Events may be written into a namespace: not one this run pruned, nor one that is
    gone or terminating (asked once per namespace)."""

    def __init__(self, client: KubeClient, outcomes: list[Outcome]) -> None:
        self.client = client
        self.known: dict[str, bool] = {
            o.ref.name: False for o in outcomes if o.ref.kind == "Namespace" and o.action is Action.PRUNED
        }

    def __call__(self, namespace: str) -> bool:
        if namespace not in self.known:
            try:
                live = self.client.get("v1", "Namespace", namespace)
            except errors.Unreachable:  # the run stops: not one object's failure
                raise
            except errors.KubeError:
                live = None
            phase = ((live or {}).get("status") or {}).get("phase")
            deleting = bool(((live or {}).get("metadata") or {}).get("deletionTimestamp"))
            self.known[namespace] = live is not None and phase != "Terminating" and not deleting
        return self.known[namespace]


def _uid(obj: Obj | None) -> str:
    return str(((obj or {}).get("metadata") or {}).get("uid") or "")


def _event(ref: ObjectRef, reason: str, message: str, uid: str = "") -> Obj:
    now = dt.datetime.now(dt.UTC)
    stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    ns = ref.namespace or "default"
    involved: Obj = {
        "apiVersion": ref.api_version,
        "kind": ref.kind,
        "name": ref.name,
        "namespace": ref.namespace,
    }
    if uid:  # kubectl describe selects an object's events by involvedObject.uid
        involved["uid"] = uid
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": f"{ref.name[:200]}.{secrets.token_hex(8)}", "namespace": ns},
        "involvedObject": involved,
        "reason": reason,
        "message": message,
        "type": "Normal",
        "source": {"component": "spindle"},
        "reportingComponent": "spindle",
        "reportingInstance": "spindle",
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
    }


# -- rendering -------------------------------------------------------------------------------


def default_renderer(checkout: Path, request: RenderRequest) -> Rendered:
    """The renderers' pipeline (discovery → render); in operator mode the workloads rendered
    from SpinApps are left to the in-cluster spin-operator."""
    from renderers import discovery, tooltable
    from renderers import render as pipeline
    from renderers.settings import DEFAULT_SETTINGS

    tree = discovery.discover(checkout, request.path)
    published: list[PublishedApp] = []
    if request.publish is not None and any(tooltable.publish_target(p.app) for p in tree.projects):
        from reconciler.publish.step import publish_tree

        tree, published = publish_tree(checkout, tree, request.publish, dry_run=request.dry_run)
    result = pipeline.render(tree, request.nodes, retired_shims=request.retired_shims)
    out = Rendered(errors=[str(e) for e in result.errors], published=published)
    for obj in result.objects:
        if request.mode is Mode.OPERATOR and _operator_renders(obj):
            continue
        namespace = pipeline.namespace_of(obj, DEFAULT_SETTINGS)
        if namespace and not (obj.get("metadata") or {}).get("namespace"):
            obj = {**obj, "metadata": {**(obj.get("metadata") or {}), "namespace": namespace}}
        out.objects.append((obj, objects.annotation(obj, objects.SOURCE_PATH_ANNOTATION)))
    out.objects.sort(key=lambda pair: sort.apply_key(objects.ref_of(pair[0])))
    return out


_OPERATOR_KINDS = frozenset({"Deployment", "Service", "Secret", "HorizontalPodAutoscaler"})


def _operator_renders(obj: Obj) -> bool:
    """Whether spin-operator creates this object itself from a SpinApp."""
    if obj.get("kind") not in _OPERATOR_KINDS:
        return False
    if objects.label(obj, "core.spinkube.dev/app-name") is not None:
        return True
    return (objects.annotation(obj, objects.SOURCE_PATH_ANNOTATION) or "").startswith("(spindle) spin-ca")
