"""Plan and apply: Flux's `ApplyAllStaged`, per source, with a digest cache.

Per stage (definitions, classes, the rest; see `sort`): list each kind once (objects labelled
for this source), then per desired object, with bounded concurrency:

- inventory digest and live resourceVersion unchanged since the last verified apply → Unchanged,
  no request at all;
- live object present → dry-run apply with force, compare after normalising (minus the fields
  folding kubectl managers would drop) → Unchanged, or Configured: fold kubectl managers into
  spindle's managedFields, then a real apply;
- not listed → a real apply creates it (201) or adopts an unlabelled object (200); dry-run modes
  read and dry-run instead.

Immutable-field errors recreate the object when forced, else fail with a clear message. A
failure never stops the other objects. Definitions are waited for (CRDs established) before the
next stage, and changed Deployments, Jobs, CRDs and SpinApps are waited for at the end.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from reconciler.changeset import Action, FieldDrift, Health, ObjectRef
from reconciler.kube import errors
from reconciler.kube.client import KubeClient
from reconciler.ssa import diff, fieldsv1, health, mask, normalize, objects, sort
from reconciler.ssa.inventory import Inventory
from reconciler.ssa.objects import SSAPolicy

Obj = dict[str, Any]
Key = tuple[str, str, str | None, str]  # ObjectRef.key: group, kind, namespace, name


@dataclass(frozen=True)
class ApplyOptions:
    source: str
    dry_run: bool = False  # nothing persists: dry-run applies only
    force: bool = False  # recreate on immutable-field changes
    concurrency: int = 8
    wait_timeout: float = 30.0  # bounded health wait; 0 evaluates once
    poll_interval: float = 0.5
    # Judge SpinApps by their conditions (an in-cluster spin-operator runs them); otherwise
    # spindle renders their workloads and a SpinApp is only a record.
    spinapp_health: bool = False


@dataclass
class Outcome:
    ref: ObjectRef
    action: Action
    message: str = ""
    health: Health = Health.NOT_CHECKED
    desired: Obj | None = None
    live: Obj | None = None  # before
    result: Obj | None = None  # after (or predicted, in dry-run)
    patch: tuple[dict[str, Any], ...] = ()
    fields: tuple[FieldDrift, ...] = ()
    digest: str = ""
    verified_rv: str = ""  # live resourceVersion once verified equal to desired
    # Masked, comparable views for a unified diff.
    live_view: Obj | None = None
    desired_view: Obj | None = None

    @property
    def subject(self) -> str:
        return self.ref.subject


@dataclass
class _Item:
    ref: ObjectRef
    desired: Obj
    digest: str
    policy: SSAPolicy
    force: bool


def _claimed_by(item: _Item, owner: str) -> _Item:
    """`item` as the source `owner` labels it (a spindle built-in another source created)."""
    desired = objects.with_owner_labels(item.desired, owner)
    return _Item(item.ref, desired, objects.digest(desired), item.policy, item.force)


def _same_but_status(before: Obj | None, after: Obj) -> bool:
    def shape(obj: Obj | None) -> tuple[Any, ...]:
        meta = (obj or {}).get("metadata") or {}
        return meta.get("generation"), meta.get("labels"), meta.get("annotations")

    return shape(before) == shape(after)


def _rv(obj: Obj | None) -> str:
    return str(((obj or {}).get("metadata") or {}).get("resourceVersion") or "")


@dataclass
class Applier:
    client: KubeClient
    options: ApplyOptions
    progress: Callable[[str], None] = field(default=lambda _msg: None)
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    _new_namespaces: set[str] = field(default_factory=set, init=False, repr=False)
    _new_api_versions: set[str] = field(default_factory=set, init=False, repr=False)

    def run(self, desired: Iterable[Obj], cache: Inventory | None) -> list[Outcome]:
        # Dry-run only: namespaces and API versions this plan would create first, so objects
        # inside them are "would be created" rather than failures.
        self._new_namespaces.clear()
        self._new_api_versions.clear()
        items = self._items(desired)
        outcomes: dict[ObjectRef, Outcome] = {}
        by_stage: dict[sort.Stage, list[_Item]] = defaultdict(list)
        for item in items:
            by_stage[sort.stage_of(item.ref.kind)].append(item)
        for stage in sorted(by_stage):
            self.progress(f"applying {stage.name.lower()} ({len(by_stage[stage])} objects)")
            stage_out = self._apply_stage(by_stage[stage], cache)
            outcomes.update({o.ref: o for o in stage_out})
            if stage is sort.Stage.DEFINITIONS:
                self._wait_established(stage_out)
                self._note_new_definitions(stage_out)
        ordered = [outcomes[i.ref] for i in items]
        self._assess_health(ordered)
        return ordered

    # -- preparation -----------------------------------------------------------------------

    def _items(self, desired: Iterable[Obj]) -> list[_Item]:
        items = []
        for raw in desired:
            obj = objects.with_owner_labels(normalize.desired(raw), self.options.source)
            ref = objects.ref_of(obj)
            items.append(
                _Item(ref, obj, objects.digest(obj), objects.policy_of(obj), objects.force_enabled(obj))
            )
        items.sort(key=lambda i: sort.apply_key(i.ref))
        return items

    def _list_owned(self, items: list[_Item]) -> tuple[dict[Key, Obj], dict[tuple[str, str], str]]:
        """Live objects of this source, one list request per kind; and per-kind list errors."""
        live: dict[Key, Obj] = {}
        failed: dict[tuple[str, str], str] = {}
        selector = f"{objects.SOURCE_LABEL}={self.options.source}"
        namespaces: dict[tuple[str, str], set[str | None]] = defaultdict(set)
        for i in items:
            namespaces[(i.ref.api_version, i.ref.kind)].add(i.ref.namespace)
        for (api_version, kind), wanted in sorted(namespaces.items(), key=lambda kv: kv[0]):
            try:
                for obj in self._list_kind(api_version, kind, selector, wanted):
                    live[objects.ref_of(obj).key] = obj
            except errors.Unreachable:  # the run stops: not one object's failure
                raise
            except errors.KubeError as exc:
                failed[(api_version, kind)] = str(exc)
        return live, failed

    def _list_kind(
        self, api_version: str, kind: str, selector: str, namespaces: set[str | None]
    ) -> list[Obj]:
        """One cluster-wide list; when that is forbidden (least-privilege RBAC), one list per
        namespace the desired objects live in."""
        try:
            return self.client.list(api_version, kind, label_selector=selector)
        except errors.Forbidden:
            if None in namespaces or not self.client.resource(api_version, kind).namespaced:
                raise
        out: list[Obj] = []
        for ns in sorted(n for n in namespaces if n):
            out.extend(self.client.list(api_version, kind, namespace=ns, label_selector=selector))
        return out

    # -- one stage -------------------------------------------------------------------------

    def _apply_stage(self, items: list[_Item], cache: Inventory | None) -> list[Outcome]:
        live, list_errors = self._list_owned(items)
        results: dict[ObjectRef, Outcome] = {}
        pending: list[tuple[_Item, Obj | None]] = []
        for item in items:
            err = list_errors.get((item.ref.api_version, item.ref.kind))
            if err is not None and self.options.dry_run and (planned := self._would_create(item)):
                results[item.ref] = planned
                continue
            if err is not None:
                results[item.ref] = Outcome(item.ref, Action.FAILED, err, desired=item.desired)
                continue
            current = live.get(item.ref.key)
            quick = self._shortcut(item, current, cache)
            if quick is not None:
                results[item.ref] = quick
            else:
                pending.append((item, current))
        # Apply rank by rank (SpinAppExecutors before SpinApps), concurrently within a rank.
        by_rank: dict[int, list[tuple[_Item, Obj | None]]] = defaultdict(list)
        for item, current in pending:
            by_rank[sort.rank(item.ref.kind)].append((item, current))
        with ThreadPoolExecutor(max_workers=max(1, self.options.concurrency)) as pool:
            for rank in sorted(by_rank):
                batch = by_rank[rank]
                for (item, _), outcome in zip(batch, pool.map(self._one_safe, batch), strict=True):
                    results[item.ref] = outcome
        return [results[i.ref] for i in items]

    def _note_new_definitions(self, outcomes: list[Outcome]) -> None:
        if not self.options.dry_run:
            return
        for o in outcomes:
            if o.action is not Action.CREATED:
                continue
            if o.ref.kind == "Namespace":
                self._new_namespaces.add(o.ref.name)
            elif o.ref.kind == "CustomResourceDefinition":
                spec = (o.desired or {}).get("spec") or {}
                for v in spec.get("versions") or []:
                    self._new_api_versions.add(f"{spec.get('group')}/{v.get('name')}")

    def _would_create(self, item: _Item) -> Outcome | None:
        """In a dry-run, an object whose namespace or CRD the plan creates first."""
        if item.ref.api_version in self._new_api_versions:
            why = f"its CustomResourceDefinition ({item.ref.api_version}) is created first"
        elif item.ref.namespace in self._new_namespaces:
            why = f"its namespace {item.ref.namespace} is created first"
        else:
            return None
        view = mask.mask(normalize.comparable(item.desired))
        return Outcome(
            item.ref,
            Action.CREATED,
            f"would be created ({why})",
            desired=item.desired,
            digest=item.digest,
            desired_view=view,
        )

    def _shortcut(self, item: _Item, current: Obj | None, cache: Inventory | None) -> Outcome | None:
        if item.policy is SSAPolicy.IGNORE:
            return Outcome(
                item.ref,
                Action.SKIPPED,
                "annotated spindle.dev/ssa: Ignore",
                desired=item.desired,
                live=current,
            )
        if current is not None and item.policy is SSAPolicy.IF_NOT_PRESENT:
            return Outcome(
                item.ref,
                Action.SKIPPED,
                "exists (spindle.dev/ssa: IfNotPresent)",
                desired=item.desired,
                live=current,
            )
        entry = cache.entries.get(item.ref) if cache is not None else None
        if (
            current is not None
            and entry is not None
            and entry.digest == item.digest
            and entry.resource_version == _rv(current)
        ):
            return Outcome(
                item.ref,
                Action.UNCHANGED,
                desired=item.desired,
                live=current,
                result=current,
                digest=item.digest,
                verified_rv=_rv(current),
            )
        return None

    def _read(self, ref: ObjectRef) -> Obj | None:
        return self.client.get(ref.api_version, ref.kind, ref.name, ref.namespace)

    def _one_safe(self, pair: tuple[_Item, Obj | None]) -> Outcome:
        item, current = pair
        try:
            if current is None:
                return self._absent(item)
            return self._check(item, current)
        except errors.Unreachable:  # the run stops: not one object's failure
            raise
        except errors.KubeError as exc:
            if (
                self.options.dry_run
                and isinstance(exc, errors.NotFound)
                and (planned := self._would_create(item))
            ):
                return planned
            message = mask.scrub(str(exc), item.desired)
            return Outcome(item.ref, Action.FAILED, message, desired=item.desired, live=current)
        except Exception as exc:  # a bug on one object must not stop the others
            return Outcome(
                item.ref, Action.FAILED, f"{item.ref.subject}: internal error: {exc!r}", desired=item.desired
            )

    def _absent(self, item: _Item) -> Outcome:
        """Not listed as this source's: create it, or adopt an object that lacks our label."""
        if objects.spindle_builtin(item.desired):
            current = self._read(item.ref)
            owner = objects.label(current, objects.SOURCE_LABEL) if current is not None else None
            if current is not None and owner and owner != self.options.source:
                # Every source renders these: the first source to create one keeps it, so two
                # sources do not relabel it in turn (each then seeing drift after the other ran).
                return self._check(_claimed_by(item, owner), current)
        d = item.desired
        if item.policy is SSAPolicy.IF_NOT_PRESENT or self.options.dry_run:
            current = self._read(item.ref)
            if current is not None:
                if item.policy is SSAPolicy.IF_NOT_PRESENT:
                    return Outcome(
                        item.ref,
                        Action.SKIPPED,
                        "exists (spindle.dev/ssa: IfNotPresent)",
                        desired=d,
                        live=current,
                    )
                return self._check(item, current)
        try:
            result, created = self.client.apply_status(d, dry_run=self.options.dry_run)
        except errors.Unreachable:  # the run stops: not one object's failure
            raise
        except errors.KubeError as exc:
            if errors.is_immutable(exc):  # it existed after all, without our label
                current = self._read(item.ref)
                if current is not None:
                    return self._check(item, current)
            raise
        view = mask.mask(normalize.comparable(d))
        if created or self.options.dry_run:
            return Outcome(
                item.ref,
                Action.CREATED,
                "would be created" if self.options.dry_run else "",
                desired=d,
                result=result,
                digest=item.digest,
                verified_rv="" if self.options.dry_run else _rv(result),
                desired_view=view,
            )
        return Outcome(
            item.ref,
            Action.CONFIGURED,
            f"adopted: was not labelled {objects.SOURCE_LABEL}={self.options.source}",
            desired=d,
            result=result,
            digest=item.digest,
            verified_rv=_rv(result),
            desired_view=view,
        )

    def _check(self, item: _Item, live: Obj) -> Outcome:
        """Dry-run against the live object; apply for real only if it drifted."""
        d = item.desired
        try:
            predicted = self.client.apply(d, dry_run=True)
        except errors.Unreachable:  # the run stops: not one object's failure
            raise
        except errors.KubeError as exc:
            if not errors.is_immutable(exc):
                raise
            return self._immutable(item, live, exc)
        if item.policy is not SSAPolicy.MERGE:
            predicted = fieldsv1.drop_unowned_folded(predicted, live, d)
        live_c, want_c = normalize.comparable(live), normalize.comparable(predicted)
        if live_c == want_c:
            return Outcome(
                item.ref,
                Action.UNCHANGED,
                desired=d,
                live=live,
                result=live,
                digest=item.digest,
                verified_rv=_rv(live),
            )
        live_m, want_m = mask.mask_pair(live_c, want_c)
        assert live_m is not None and want_m is not None
        out = Outcome(
            item.ref,
            Action.CONFIGURED,
            "would be configured" if self.options.dry_run else "",
            desired=d,
            live=live,
            result=predicted,
            digest=item.digest,
            patch=diff.patch(live_m, want_m),
            fields=diff.field_drifts(live_m, want_m, live),
            live_view=live_m,
            desired_view=want_m,
        )
        if self.options.dry_run:
            return out
        if item.policy is not SSAPolicy.MERGE:
            self._fold_managers(item.ref, live)
        out.result = self.client.apply(d)
        out.verified_rv = _rv(out.result)
        return out

    def _fold_managers(self, ref: ObjectRef, live: Obj) -> None:
        folded = fieldsv1.fold((live.get("metadata") or {}).get("managedFields") or [])
        if folded is not None:
            ops = [{"op": "replace", "path": "/metadata/managedFields", "value": folded}]
            self.client.patch(ref.api_version, ref.kind, ref.name, ref.namespace, ops, json_patch=True)

    def _immutable(self, item: _Item, live: Obj, exc: errors.KubeError) -> Outcome:
        d = item.desired
        if not (self.options.force or item.force):
            return Outcome(
                item.ref,
                Action.FAILED,
                f"{exc}; an immutable field changed: annotate the object spindle.dev/force: enabled "
                "or pass --force to delete and recreate it",
                desired=d,
                live=live,
            )
        if self.options.dry_run:
            return Outcome(
                item.ref,
                Action.CONFIGURED,
                "would be recreated (immutable field changed)",
                desired=d,
                live=live,
            )
        self.client.delete(item.ref.api_version, item.ref.kind, item.ref.name, item.ref.namespace)
        deadline = self.clock() + max(self.options.wait_timeout, 5.0)
        while self._read(item.ref) is not None:
            if self.clock() > deadline:
                return Outcome(
                    item.ref,
                    Action.FAILED,
                    f"{item.ref.subject}: timed out waiting for deletion before recreate",
                    desired=d,
                    live=live,
                )
            self.sleep(self.options.poll_interval)
        result = self.client.apply(d)
        return Outcome(
            item.ref,
            Action.CREATED,
            "recreated: an immutable field changed",
            desired=d,
            live=live,
            result=result,
            digest=item.digest,
            verified_rv=_rv(result),
        )

    # -- waiting ---------------------------------------------------------------------------

    def _wait_established(self, outcomes: list[Outcome]) -> None:
        crds = [
            o
            for o in outcomes
            if o.ref.kind == "CustomResourceDefinition" and o.action in (Action.CREATED, Action.CONFIGURED)
        ]
        for o in crds:
            spec = (o.desired or {}).get("spec") or {}
            for v in spec.get("versions") or []:
                self.client.forget(f"{spec.get('group')}/{v.get('name')}")
        if not crds or self.options.dry_run:
            return
        self._wait(crds, "to be established")

    def _health(self, obj: Obj | None) -> Health:
        if obj is not None and obj.get("kind") == "SpinApp" and not self.options.spinapp_health:
            return Health.HEALTHY
        return health.of(obj)

    def _assess_health(self, outcomes: list[Outcome]) -> None:
        for o in outcomes:
            if o.action in (Action.FAILED, Action.SKIPPED):
                continue
            o.health = self._health(o.result)
        if self.options.dry_run:
            return
        waiting = [
            o
            for o in outcomes
            if o.action in (Action.CREATED, Action.CONFIGURED)
            and health.waits_for(o.ref.kind, o.health)
        ]
        if waiting:
            self._wait(waiting, "to become healthy")

    def _wait(self, outcomes: list[Outcome], what: str) -> None:
        """Poll (one list per kind per round) until every outcome is terminal or time is up,
        telling the progress which objects it still waits for whenever that changes."""
        deadline = self.clock() + self.options.wait_timeout
        todo = list(outcomes)
        while True:
            self.progress(waiting_message(todo, what, self.options.wait_timeout))
            by_kind: dict[tuple[str, str], list[Outcome]] = defaultdict(list)
            for o in todo:
                by_kind[(o.ref.api_version, o.ref.kind)].append(o)
            for (api_version, kind), group in by_kind.items():
                try:
                    live = {
                        objects.ref_of(x).key: x
                        for x in self.client.list(
                            api_version, kind, label_selector=objects.SOURCE_LABEL  # built-ins: any source
                        )
                    }
                except errors.Unreachable:  # the run stops: not one object's failure
                    raise
                except errors.KubeError:
                    continue
                for o in group:
                    current = live.get(o.ref.key)
                    if current is not None:
                        # Still verified only if just status moved on: same generation (spec)
                        # and same labels and annotations as right after the apply.
                        if o.verified_rv and not _same_but_status(o.result, current):
                            o.verified_rv = ""
                        elif o.verified_rv:
                            o.verified_rv = _rv(current)
                        o.result = current
                        o.health = self._health(current)
            todo = [o for o in todo if not health.is_terminal(o.health)]
            if not todo or self.clock() >= deadline:
                for o in todo:
                    if self.options.wait_timeout > 0:
                        o.message = (o.message + "; " if o.message else "") + "timed out waiting for health"
                return
            self.sleep(self.options.poll_interval)


def waiting_message(todo: list[Outcome], what: str, timeout: float, shown: int = 5) -> str:
    """`waiting for 2 objects to become healthy (up to 60s): Deployment/apps/a (Progressing), ...`,
    naming the first `shown` objects in full."""
    names = [
        o.ref.subject + ("" if o.health is Health.NOT_CHECKED else f" ({o.health.value})")
        for o in todo[:shown]
    ]
    more = f" and {len(todo) - shown} more" if len(todo) > shown else ""
    noun = "object" if len(todo) == 1 else "objects"
    return f"waiting for {len(todo)} {noun} {what} (up to {timeout:g}s): {', '.join(names)}{more}"
