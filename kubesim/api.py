"""The verbs of the API server over the store: get, list, create, update, patch, delete, watch,
and the few writes the in-process controllers make (garbage collection, finalizers, status).

Independent of HTTP: a handler gets a parsed `Call` and returns a `Reply` or raises `ApiError`.
Every write goes through one pipeline: the managed-fields engine (`fields.apply` / `fields.update`,
which also default), then `_finish` (`admission`: immutable metadata kept, status split off by
subresource, validation; then generation, no-op detection, deletion once the last finalizer is
gone) and one committed store write. Creates take the same path through `_create`.

The request-shaped parts live beside it: `reads` (one object, selections, list answers), `watch`,
`patches` (patch types, options, apply bodies), `deletion` (DeleteOptions and the answer), `scale`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from kubesim import admission, bodies, conversion, crds, deletion, fields, meta, patches, reads, services
from kubesim import scale as scales
from kubesim.bodies import APPLY
from kubesim.calls import Call, Reply
from kubesim.errors import (
    ApiError,
    Cause,
    already_exists,
    bad_request,
    bad_value,
    conflict,
    forbidden,
    invalid,
    not_found,
    required,
    stale,
)
from kubesim.registry import Registry
from kubesim.resources import CRD_TYPE, DEFAULT_NAMESPACES, NAMESPACE_TYPE, ResourceType
from kubesim.storage import Entry, Store
from kubesim.watch import WatchEvent, watch

W = TypeVar("W", bound=Callable[..., Any])


def _settled(method: W) -> W:
    """A write verb answers only once what it wrote is committed (`Store.settle`, group commit)."""

    @functools.wraps(method)
    def run(self: Cluster, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        finally:
            self.store.settle()

    return run  # type: ignore[return-value]


class Cluster:
    """The API over one store: the verbs a handler calls with a `Call`, and the writes the
    controllers make by identity (`delete_entry`, `remove_finalizer`, `write_status`, `orphan`)."""

    def __init__(self, store: Store, *, on_delete: Callable[[str], None] | None = None) -> None:
        self.store = store
        self.registry = Registry(store)
        # Told the uid of every object that went away, so the garbage collector can act.
        self.on_delete = on_delete or (lambda uid: None)
        self._allocations = services.Allocations()  # cluster IPs and node ports, under store.lock
        # Called with every object a create or update is about to store (the server's RBAC
        # escalation check, `kubesim.access`); raises ApiError to refuse it.
        self.write_check: Callable[[ResourceType, dict[str, Any]], None] = lambda rtype, obj: None
        with store.lock:
            for ns in DEFAULT_NAMESPACES:
                if store.get(NAMESPACE_TYPE.storage_key, "", ns) is None:
                    self.internal_create(
                        NAMESPACE_TYPE,
                        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}},
                        "kube-apiserver",
                    )

    # -- reads -------------------------------------------------------------------------------

    def get(self, call: Call) -> Reply:
        entry = reads.existing(self.store, call)
        if call.subresource == "scale":
            return Reply(200, scales.scale_of(call.rtype, reads.view(call.rtype, entry)))
        return reads.answer(call.rtype, entry)

    def list_objects(self, call: Call) -> Reply:
        rtype = call.rtype
        entries, cont, remaining = reads.select(self.store, call)
        list_meta: dict[str, Any] = {"resourceVersion": str(self.store.rv)}
        if cont:
            list_meta["continue"] = cont
            list_meta["remainingItemCount"] = remaining
        return Reply(200, text=reads.list_text(rtype, entries, list_meta))

    # -- writes ------------------------------------------------------------------------------

    @_settled
    def create(self, call: Call) -> Reply:
        rtype = call.rtype
        decoded = bodies.read_body(call)
        obj = decoded.obj
        bodies.check_gvk(rtype, obj)
        obj.setdefault("apiVersion", rtype.api_version)
        obj.setdefault("kind", rtype.kind)
        m = obj.setdefault("metadata", {})
        _place(rtype, m, call.namespace)
        if m.get("resourceVersion"):
            raise bad_request("resourceVersion should not be set on objects to be created")
        if not m.get("name"):
            if m.get("generateName"):
                m["name"] = meta.generated_name(str(m["generateName"]))
            else:
                raise invalid(
                    rtype.kind,
                    rtype.group,
                    "",
                    [required("metadata.name", "name or generateName is required")],
                )
        dry = call.dry_run
        manager = call.manager()
        warnings = bodies.field_validation(call, decoded, obj)
        with self.store.lock:
            reply = self._create(rtype, obj, manager, dry_run=dry)
        reply.warnings = warnings
        return reply

    def _create(
        self,
        rtype: ResourceType,
        obj: dict[str, Any],
        manager: str,
        *,
        dry_run: bool,
        apply_config: dict[str, Any] | None = None,
        force: bool = False,
    ) -> Reply:
        m = obj["metadata"]
        name = str(m["name"])
        ns = str(m.get("namespace") or "")
        if self.store.get(rtype.storage_key, ns, name) is not None:
            raise already_exists(rtype.plural, rtype.group, name)
        if rtype.namespaced:
            self._namespace_open(ns, rtype)
        admission.clear_server_fields(rtype, obj)
        now = meta.now()
        if apply_config is not None:
            obj = fields.apply(
                rtype, None, apply_config, manager, force=force, subresource="", now=now
            ).object
        else:
            obj = fields.update(rtype, None, obj, manager, subresource="", now=now).object
        admission.stamp_new(rtype, obj, name, ns, now)
        if rtype.is_core("Service"):
            services.allocate(obj, self._service_allocations(rtype))
        admission.fold_string_data(rtype, obj)
        admission.admit(rtype, None, obj)
        self.write_check(rtype, obj)
        if dry_run:
            return Reply(201, obj)
        entry = self._store(rtype, obj)
        if rtype.storage_key == CRD_TYPE.storage_key:
            self._crd_established(entry)
            entry = self.store.get(rtype.storage_key, "", name) or entry
        return reads.answer(rtype, entry, 201)

    @_settled
    def internal_create(self, rtype: ResourceType, obj: dict[str, Any], manager: str) -> Entry:
        obj.setdefault("metadata", {})
        _place(rtype, obj["metadata"], obj["metadata"].get("namespace", ""))
        with self.store.lock:
            self._create(rtype, obj, manager, dry_run=False)
            entry = self.store.get(
                rtype.storage_key, obj["metadata"].get("namespace", ""), obj["metadata"]["name"]
            )
            assert entry is not None
            return entry

    @_settled
    def update(self, call: Call) -> Reply:
        rtype = call.rtype
        decoded = bodies.read_body(call)
        obj = decoded.obj
        if call.subresource == "scale":
            return self._update_scale(call, obj)
        bodies.check_gvk(rtype, obj)
        obj.setdefault("apiVersion", rtype.api_version)
        obj.setdefault("kind", rtype.kind)
        m = obj.setdefault("metadata", {})
        if m.get("name") and m["name"] != call.name:
            raise bad_request(
                f"the name of the object ({m['name']}) does not match the name on the URL ({call.name})"
            )
        m["name"] = call.name
        _place(rtype, m, call.namespace)
        dry = call.dry_run
        manager = call.manager()
        with self.store.lock:
            entry = reads.existing(self.store, call)
            if not m.get("resourceVersion") and rtype.crd:
                raise invalid(
                    rtype.kind,
                    rtype.group,
                    call.name,
                    [bad_value("metadata.resourceVersion", "0x0", "must be specified for an update")],
                )
            return self._write_back(call, entry, obj, manager, dry_run=dry,
                                    validate=lambda: bodies.field_validation(call, decoded, obj))

    @_settled
    def patch(self, call: Call) -> Reply:
        dry = patches.check_options(call)
        if call.content_type == APPLY:
            return self._apply(call, patches.forced(call), dry)
        rtype = call.rtype
        manager = call.manager()
        patch = patches.decode_patch(call)
        with self.store.lock:
            entry = reads.existing(self.store, call)
            live = reads.present(rtype, entry)
            if call.subresource == "scale":
                live = scales.scale_of(rtype, live)
            new = patches.patched(call, live, patch.obj)
            if call.subresource == "scale":
                return self._update_scale(call, new, locked_entry=entry)
            bodies.check_gvk(rtype, new)
            pm = new.setdefault("metadata", {})
            if pm.get("name") != call.name:
                raise bad_request("the name of the object may not be changed by a patch")
            return self._write_back(call, entry, new, manager, dry_run=dry,
                                    validate=lambda: patches.validate(call, patch, new))

    def _write_back(
        self, call: Call, entry: Entry, new: dict[str, Any], manager: str, *, dry_run: bool,
        validate: Callable[[], list[str]],
    ) -> Reply:
        """The end of PUT and non-apply PATCH: the body's preconditions, field validation, the write."""
        m = new["metadata"]
        _check_rv(call, entry, m)
        admission.check_uid(call.rtype, entry, m)
        warnings = validate()
        reply = self._replace(call.rtype, entry, new, manager, call.subresource, dry_run=dry_run)
        reply.warnings = warnings
        return reply

    def _apply(self, call: Call, force: bool, dry_run: bool) -> Reply:
        rtype = call.rtype
        if call.subresource == "scale":
            config = scales.apply_config(rtype, call.name, bodies.decode(call.body, allow_yaml=True))
            reply = self._apply_config(call, config, force, dry_run)
            return Reply(reply.code, scales.scale_of(rtype, reply.json()))
        config, warnings = patches.apply_config(call)
        reply = self._apply_config(call, config, force, dry_run)
        reply.warnings = warnings
        return reply

    def _apply_config(self, call: Call, config: dict[str, Any], force: bool, dry_run: bool) -> Reply:
        rtype = call.rtype
        fields.check_bytes(rtype, config)
        manager = call.manager()  # the required fieldManager, at most 128 bytes
        with self.store.lock:
            entry = self.store.get(rtype.storage_key, call.namespace if rtype.namespaced else "", call.name)
            if entry is None:
                if call.subresource:
                    raise not_found(rtype.plural, rtype.group, call.name)
                uid = config["metadata"].get("uid")
                if uid:
                    raise conflict(rtype.plural, rtype.group, call.name,
                                   f"uid mismatch: the provided object specified uid {uid}, "
                                   "and no existing object was found")
                base_meta: dict[str, Any] = {"name": call.name}
                _place(rtype, base_meta, call.namespace)
                base = {"apiVersion": rtype.api_version, "kind": rtype.kind, "metadata": base_meta}
                return self._create(rtype, base, manager, dry_run=dry_run, apply_config=config, force=force)
            _check_rv(call, entry, config["metadata"])
            live = reads.view(rtype, entry)
            result = fields.apply(
                rtype, live, config, manager, force=force, subresource=call.subresource, now=meta.now()
            )
            if not result.write_needed:
                return reads.answer(rtype, entry)
            return self._finish(rtype, entry, result.object, call.subresource, dry_run=dry_run)

    def _replace(
        self,
        rtype: ResourceType,
        entry: Entry,
        new: dict[str, Any],
        manager: str,
        subresource: str,
        *,
        dry_run: bool,
    ) -> Reply:
        live = reads.view(rtype, entry)
        if subresource:
            admission.subresource_managed_fields(live, new)
        new = admission.carry_over(rtype, live, new, subresource)
        result = fields.update(rtype, live, new, manager, subresource=subresource, now=meta.now())
        if not result.write_needed:
            return reads.answer(rtype, entry)
        return self._finish(rtype, entry, result.object, subresource, dry_run=dry_run)

    def _service_allocations(self, rtype: ResourceType) -> services.Allocations:
        self._allocations.refresh([(e.rv, e.obj) for e in self.store.items(rtype.storage_key)])
        return self._allocations

    def _finish(
        self, rtype: ResourceType, entry: Entry, new: dict[str, Any], subresource: str, *, dry_run: bool
    ) -> Reply:
        """Validate, bump generation, skip no-ops, store (or delete once the last finalizer is gone)."""
        live = reads.view(rtype, entry)
        new = admission.carry_over(rtype, live, new, subresource)
        if rtype.is_core("Service"):
            services.keep_allocated(live, new)
            services.allocate(new, self._service_allocations(rtype))
        admission.fold_string_data(rtype, new)
        admission.admit(rtype, live, new)
        self.write_check(rtype, new)
        m = new["metadata"]
        if rtype.generation:
            gen = int(live.get("metadata", {}).get("generation") or 1)
            # Without a status subresource a custom object's status is part of its "spec".
            keep_status = not (rtype.crd and not rtype.status)
            m["generation"] = gen + 1 if meta.spec_changed(live, new, ignore_status=keep_status) else gen
        m["resourceVersion"] = live["metadata"].get("resourceVersion")
        if new == live or meta.same_but_managed_times(new, live):
            return reads.answer(rtype, entry)
        if dry_run:
            return Reply(200, new)
        if m.get("deletionTimestamp") and not m.get("finalizers"):
            final = self._remove(rtype, new)
            return Reply(200, final)
        stored = self._store(rtype, new)
        if rtype.storage_key == CRD_TYPE.storage_key:
            self._crd_established(stored)
            stored = self.store.get(rtype.storage_key, "", m["name"]) or stored
        return reads.answer(rtype, stored)

    def _store(self, rtype: ResourceType, obj: dict[str, Any]) -> Entry:
        m = obj["metadata"]
        ns, name = str(m.get("namespace") or ""), str(m["name"])
        existing = self.store.get(rtype.storage_key, ns, name)
        existed = existing is not None
        stored_version = existing.obj.get("apiVersion") if existing else None
        obj = conversion.for_storage(rtype.storage_key, obj, stored_version)
        m = obj["metadata"]
        m["resourceVersion"] = str(self.store.next_rv())
        event = "MODIFIED" if existed else "ADDED"
        return self.store.put(rtype.storage_key, ns, name, obj, event, defer=True)

    def _crd_established(self, entry: Entry) -> None:
        """The apiextensions controllers' status write: names accepted, established."""
        crd = entry.load()
        if crd["metadata"].get("deletionTimestamp"):
            return
        status = crds.status_for(crd, meta.now())
        if crd.get("status") == status:
            return
        crd["status"] = status
        new = fields.update(
            CRD_TYPE, entry.obj, crd, "kube-apiserver", subresource="status", now=meta.now()
        ).object
        new["metadata"]["resourceVersion"] = str(self.store.next_rv())
        self.store.put(CRD_TYPE.storage_key, "", crd["metadata"]["name"], new, "MODIFIED", defer=True)
        self.registry.invalidate()

    # -- delete ------------------------------------------------------------------------------

    @_settled
    def delete(self, call: Call) -> Reply:
        opts = deletion.delete_options(call)
        with self.store.lock:
            entry = reads.existing(self.store, call)
            deletion.check_preconditions(call, entry, opts.preconditions)
            reply = self._delete(call.rtype, entry, opts.policy, dry_run=opts.dry_run)
        return deletion.answer(call, reply, opts.dry_run)

    def _delete(self, rtype: ResourceType, entry: Entry, policy: str | None, *, dry_run: bool) -> Reply:
        obj = reads.present(rtype, entry)
        m = obj["metadata"]
        finalizers = list(m.get("finalizers") or [])
        if rtype.is_core("Namespace"):
            if m["name"] in DEFAULT_NAMESPACES:
                raise forbidden("namespaces", "", m["name"], "this namespace may not be deleted")
            obj.setdefault("status", {})["phase"] = "Terminating"
        if policy == "Foreground" and deletion.FOREGROUND_FINALIZER not in finalizers:
            finalizers.append(deletion.FOREGROUND_FINALIZER)
        if policy == "Orphan" and not dry_run:
            self._orphan(m["uid"])
        waiting = finalizers or (rtype.is_core("Namespace"))
        if rtype.storage_key == CRD_TYPE.storage_key:
            waiting = True  # its objects go first (the customresourcecleanup finalizer's job)
        if dry_run:
            return Reply(200, obj)
        if waiting:
            if m.get("deletionTimestamp") and m.get("finalizers") == finalizers:
                return Reply(200, obj)
            m.setdefault("deletionTimestamp", meta.now())
            m.setdefault("deletionGracePeriodSeconds", 0)
            if finalizers:
                m["finalizers"] = finalizers
            stored = self._store(rtype, obj)
            if rtype.storage_key == CRD_TYPE.storage_key:
                self.registry.invalidate()
            self.on_delete(m["uid"])
            return Reply(200, reads.present(rtype, stored))
        return Reply(200, self._remove(rtype, obj))

    def _remove(self, rtype: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
        m = obj["metadata"]
        m["resourceVersion"] = str(self.store.next_rv())
        self.store.delete(rtype.storage_key, str(m.get("namespace") or ""), m["name"], obj, defer=True)
        self.on_delete(m["uid"])
        return obj

    @_settled
    def orphan(self, uid: str) -> None:
        """Drop the ownerReferences to uid from its dependents (the "orphan" finalizer's work)."""
        with self.store.lock:
            self._orphan(uid)

    def _orphan(self, uid: str) -> None:
        for res, dep in self.dependents(uid):
            obj = dep.load()
            obj["metadata"]["ownerReferences"] = [
                r for r in obj["metadata"].get("ownerReferences") or [] if r.get("uid") != uid
            ]
            if not obj["metadata"]["ownerReferences"]:
                del obj["metadata"]["ownerReferences"]
            rtype = self._type_of(res, obj)
            if rtype is not None:
                self._replace(rtype, dep, obj, "kube-controller-manager", "", dry_run=False)

    def dependents(self, uid: str) -> list[tuple[str, Entry]]:
        out = []
        for res, entry in self.store.all_entries():
            refs = entry.obj.get("metadata", {}).get("ownerReferences") or []
            if any(isinstance(r, dict) and r.get("uid") == uid for r in refs):
                out.append((res, entry))
        return out

    def _type_of(self, res: str, obj: dict[str, Any]) -> ResourceType | None:
        versions = self.registry.versions_of(res)
        for t in versions:
            if t.api_version == obj.get("apiVersion"):
                return t
        return versions[0] if versions else None

    @_settled
    def delete_collection(self, call: Call) -> Reply:
        entries, _, _ = reads.select(
            self.store,
            Call(
                call.rtype,
                call.namespace,
                "",
                "",
                {k: v for k, v in call.query.items() if k in ("labelSelector", "fieldSelector")},
            ),
        )
        dry = call.dry_run
        items = []
        with self.store.lock:
            for e in entries:
                current = self.store.get(
                    call.rtype.storage_key,
                    str(e.obj["metadata"].get("namespace") or ""),
                    e.obj["metadata"]["name"],
                )
                if current is not None:
                    items.append(
                        self._delete(
                            call.rtype, current, call.query.get("propagationPolicy"), dry_run=dry
                        ).body
                    )
        rtype = call.rtype
        return Reply(
            200,
            {
                "kind": rtype.list_kind,
                "apiVersion": rtype.api_version,
                "metadata": {"resourceVersion": str(self.store.rv)},
                "items": items,
            },
        )

    # Controllers use these: delete by identity, and drop a finalizer.
    @_settled
    def delete_entry(self, res: str, entry: Entry, policy: str | None = "Background") -> None:
        with self.store.lock:
            current = self.store.get(
                res, str(entry.obj["metadata"].get("namespace") or ""), entry.obj["metadata"]["name"]
            )
            rtype = self._type_of(res, entry.obj)
            if current is None or rtype is None or current.obj["metadata"].get("deletionTimestamp"):
                return
            self._delete(rtype, current, policy, dry_run=False)

    @_settled
    def remove_finalizer(self, res: str, entry: Entry, finalizer: str) -> None:
        with self.store.lock:
            m = entry.obj["metadata"]
            current = self.store.get(res, str(m.get("namespace") or ""), m["name"])
            rtype = self._type_of(res, entry.obj)
            if current is None or rtype is None:
                return
            obj = current.load()
            fins = [f for f in obj["metadata"].get("finalizers") or [] if f != finalizer]
            if fins:
                obj["metadata"]["finalizers"] = fins
            else:
                obj["metadata"].pop("finalizers", None)
            if rtype.is_core("Namespace"):
                obj["spec"] = {}
            self._finish(rtype, current, obj, "", dry_run=False)
            if rtype.is_core("Namespace") and not fins:
                still = self.store.get(res, "", m["name"])
                if still is not None:
                    self._remove(rtype, still.load())

    @_settled
    def write_status(self, rtype: ResourceType, entry: Entry, status: dict[str, Any], manager: str) -> None:
        """A controller's status write (the workload simulator's), attributed to its manager; skipped
        when the object changed since the controller looked at it (it will look again)."""
        with self.store.lock:
            m = entry.obj["metadata"]
            current = self.store.get(rtype.storage_key, str(m.get("namespace") or ""), m["name"])
            if current is None or current.rv != entry.rv:
                return
            obj = current.load()
            obj["status"] = status
            self._replace(rtype, current, obj, manager, "status", dry_run=False)

    def watch(self, call: Call, stop: Callable[[], bool], timeout: float) -> Iterator[WatchEvent]:
        return watch(self.store, call, stop, timeout)

    # -- helpers -----------------------------------------------------------------------------

    def _namespace_open(self, ns: str, rtype: ResourceType) -> None:
        entry = self.store.get(NAMESPACE_TYPE.storage_key, "", ns)
        if entry is None:
            raise not_found("namespaces", "", ns)
        if entry.obj["metadata"].get("deletionTimestamp"):
            raise ApiError(
                403,
                "Forbidden",
                f"{rtype.plural} is forbidden: unable to create new content in "
                f"namespace {ns} because it is being terminated",
                ns,
                rtype.group,
                rtype.plural,
                [Cause("NamespaceTerminating", f"namespace {ns} is being terminated", "metadata.namespace")],
            )

    def _update_scale(self, call: Call, body: dict[str, Any], locked_entry: Entry | None = None) -> Reply:
        rtype = call.rtype
        replicas = scales.wanted_replicas(call.name, body)
        dry = call.dry_run
        manager = call.manager()
        with self.store.lock:
            entry = locked_entry or reads.existing(self.store, call)
            _check_rv(call, entry, body.get("metadata") or {})
            obj = reads.present(rtype, entry)
            meta.set_path(obj, rtype.scale_paths[0], replicas)
            reply = self._replace(rtype, entry, obj, manager, "scale", dry_run=dry)
            return Reply(reply.code, scales.scale_of(rtype, reply.json()))


def _check_rv(call: Call, entry: Entry, m: dict[str, Any]) -> None:
    """A write that names a resourceVersion must name the live one (optimistic concurrency)."""
    rv = m.get("resourceVersion")
    if rv and str(rv) != str(entry.rv):
        raise stale(call.rtype.plural, call.rtype.group, call.name)


def _place(rtype: ResourceType, m: dict[str, Any], url_ns: str) -> None:
    """Set the namespace a write lands in: the URL's or the body's (400 if they differ); none for
    cluster-scoped kinds."""
    if rtype.namespaced:
        body_ns = m.get("namespace")
        if body_ns and url_ns and body_ns != url_ns:
            raise bad_request(patches.NAMESPACE_MISMATCH)
        if not url_ns and not body_ns:
            raise bad_request("a namespace is required for namespaced resources")
        m["namespace"] = url_ns or body_ns
    else:
        m.pop("namespace", None)
