"""The verbs of the API server over the store: get, list, create, update, patch, delete, watch.

Independent of HTTP: a handler gets a parsed `Call` and returns a `Reply` or raises `ApiError`.
Every write goes through one pipeline: the managed-fields engine (`fields.apply` / `fields.update`,
which also default), then `_finish` (immutable metadata kept, status split off by subresource,
validation, generation, no-op detection, deletion once the last finalizer is gone) and one
committed store write. Creates take the same path through `_create`.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import jsonpatch

from kubesim import bodies, crds, fields, meta, rules, selectors, services
from kubesim.bodies import APPLY, JSON_PATCH, MERGE, PATCH_TYPES, STRATEGIC, decode
from kubesim.calls import Call, Reply
from kubesim.errors import (
    ApiError,
    Cause,
    already_exists,
    bad_request,
    bad_value,
    forbidden,
    gone,
    invalid,
    not_found,
    required,
    stale,
    unsupported_media_type,
)
from kubesim.registry import Registry
from kubesim.resources import CRD_TYPE, DEFAULT_NAMESPACES, NAMESPACE_TYPE, ResourceType
from kubesim.selectors import parse_fields, parse_labels
from kubesim.storage import Entry, Event, Store, dumps

FOREGROUND = "foregroundDeletion"
ORPHAN = "orphan"
NS_FINALIZER = "kubernetes"


class Cluster:
    def __init__(self, store: Store, *, on_delete: Callable[[str], None] | None = None) -> None:
        self.store = store
        self.registry = Registry(store)
        # Told the uid of every object that went away, so the garbage collector can act.
        self.on_delete = on_delete or (lambda uid: None)
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
        entry = self._existing(call)
        obj = self._present(call.rtype, entry)
        if call.subresource == "scale":
            return Reply(200, self._scale_of(call.rtype, obj))
        return Reply(200, obj)

    def list_objects(self, call: Call) -> Reply:
        rtype = call.rtype
        entries, cont, remaining = self._select(call)
        list_meta: dict[str, Any] = {"resourceVersion": str(self.store.rv)}
        if cont:
            list_meta["continue"] = cont
            list_meta["remainingItemCount"] = remaining
        if any(e.obj.get("apiVersion") != rtype.api_version for e in entries):
            texts = [dumps(self._present(rtype, e)) for e in entries]
        else:
            texts = [e.text for e in entries]
        head = dumps({"kind": rtype.list_kind, "apiVersion": rtype.api_version, "metadata": list_meta})
        return Reply(200, text=head[:-1] + ',"items":[' + ",".join(texts) + "]}")

    def select(self, call: Call) -> tuple[list[Entry], str, int]:
        return self._select(call)

    def _select(self, call: Call) -> tuple[list[Entry], str, int]:
        q = call.query
        ns = call.namespace if call.rtype.namespaced and call.namespace else None
        entries = self.store.items(call.rtype.storage_key, ns)
        if q.get("labelSelector"):
            pred = parse_labels(q["labelSelector"])
            entries = [e for e in entries if pred(e.labels)]
        if q.get("fieldSelector"):
            fpred = parse_fields(q["fieldSelector"], selectors.selectable_fields(call.rtype))
            entries = [e for e in entries if fpred(e.obj)]
        start = q.get("continue")
        if start:
            after = _decode_continue(start, self.store.oldest_event_rv())
            entries = [e for e in entries if _key(e) > after]
        limit = _int_param(q, "limit")
        if limit and len(entries) > limit:
            last = entries[limit - 1]
            token = base64.urlsafe_b64encode(
                json.dumps({"rv": self.store.rv, "after": list(_key(last))}).encode()
            ).decode()
            return entries[:limit], token, len(entries) - limit
        return entries, "", 0

    # -- writes ------------------------------------------------------------------------------

    def create(self, call: Call) -> Reply:
        rtype = call.rtype
        obj = bodies.read_body(call)
        bodies.check_gvk(rtype, obj)
        obj.setdefault("apiVersion", rtype.api_version)
        obj.setdefault("kind", rtype.kind)
        m = obj.setdefault("metadata", {})
        self._place(rtype, m, call.namespace)
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
        warnings = bodies.field_validation(call, obj)
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
        for key in (
            "resourceVersion",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
            "uid",
            "creationTimestamp",
            "selfLink",
        ):
            m.pop(key, None)
        if rtype.status and rtype.kind != "Namespace":
            obj.pop("status", None)
        now = meta.now()
        if apply_config is not None:
            obj = fields.apply(
                rtype, None, apply_config, manager, force=force, subresource="", now=now
            ).object
        else:
            obj = fields.update(rtype, None, obj, manager, subresource="", now=now).object
        m = obj.setdefault("metadata", {})
        m["name"] = name
        if rtype.namespaced:
            m["namespace"] = ns
        else:
            m.pop("namespace", None)
        m["uid"] = str(uuid.uuid4())
        m["creationTimestamp"] = now
        if rtype.generation:
            m["generation"] = 1
        if rtype.status and rtype.kind != "Namespace":
            obj.pop("status", None)
        if rtype.kind == "Namespace" and not rtype.group:
            obj["spec"] = {"finalizers": [NS_FINALIZER]}
            obj["status"] = {"phase": "Active"}
            m.setdefault("labels", {})["kubernetes.io/metadata.name"] = name
        if rtype.kind == "Service" and not rtype.group:
            services.allocate(obj, (e.obj for e in self.store.items(rtype.storage_key)))
        _fold_string_data(rtype, obj)
        self._admit(rtype, None, obj)
        if dry_run:
            return Reply(201, obj)
        entry = self._store(rtype, obj)
        if rtype is CRD_TYPE or rtype.storage_key == CRD_TYPE.storage_key:
            self._crd_established(entry)
            entry = self.store.get(rtype.storage_key, "", name) or entry
        return Reply(201, self._present(rtype, entry))

    def internal_create(self, rtype: ResourceType, obj: dict[str, Any], manager: str) -> Entry:
        obj.setdefault("metadata", {})
        self._place(rtype, obj["metadata"], obj["metadata"].get("namespace", ""))
        with self.store.lock:
            self._create(rtype, obj, manager, dry_run=False)
            entry = self.store.get(
                rtype.storage_key, obj["metadata"].get("namespace", ""), obj["metadata"]["name"]
            )
            assert entry is not None
            return entry

    def update(self, call: Call) -> Reply:
        rtype = call.rtype
        obj = bodies.read_body(call)
        if call.subresource == "scale":
            return self._update_scale(call, obj)
        bodies.check_gvk(rtype, obj)
        obj.setdefault("apiVersion", rtype.api_version)
        obj.setdefault("kind", rtype.kind)
        m = obj["metadata"] if isinstance(obj.get("metadata"), dict) else obj.setdefault("metadata", {})
        if m.get("name") and m["name"] != call.name:
            raise bad_request(
                f"the name of the object ({m['name']}) does not match the name on the URL ({call.name})"
            )
        m["name"] = call.name
        self._place(rtype, m, call.namespace)
        dry = call.dry_run
        manager = call.manager()
        with self.store.lock:
            entry = self._existing(call)
            rv = m.get("resourceVersion")
            if not rv and rtype.crd:
                raise invalid(
                    rtype.kind,
                    rtype.group,
                    call.name,
                    [bad_value("metadata.resourceVersion", "0x0", "must be specified for an update")],
                )
            if rv and str(rv) != str(entry.rv):
                raise stale(rtype.plural, rtype.group, call.name)
            _check_uid(rtype, entry, m)
            warnings = bodies.field_validation(call, obj)
            reply = self._replace(rtype, entry, obj, manager, call.subresource, dry_run=dry)
            reply.warnings = warnings
            return reply

    def patch(self, call: Call) -> Reply:
        rtype = call.rtype
        ctype = call.content_type
        if ctype not in (APPLY, MERGE, JSON_PATCH, STRATEGIC) or (ctype == STRATEGIC and rtype.crd):
            raise unsupported_media_type(ctype, PATCH_TYPES + ([] if rtype.crd else [STRATEGIC]))
        force = call.query.get("force")
        if ctype != APPLY and force is not None:
            raise invalid(
                "PatchOptions",
                "meta.k8s.io",
                "",
                [
                    Cause(
                        "FieldValueForbidden", "Forbidden: may not be specified for non-apply patch", "force"
                    )
                ],
            )
        dry = call.dry_run
        if ctype == APPLY:
            if not call.query.get("fieldManager"):
                raise invalid(
                    "PatchOptions",
                    "meta.k8s.io",
                    "",
                    [required("fieldManager", "is required for apply patch")],
                )
            return self._apply(call, force in ("true", "1", "True"), dry)
        manager = call.manager()
        if ctype == JSON_PATCH:
            try:
                ops = json.loads(call.body)
            except ValueError as exc:
                raise bad_request(f"the JSON patch could not be decoded: {exc}") from None
            if not isinstance(ops, list):
                raise bad_request("a JSON patch must be a list of operations")
        else:
            patch_doc: dict[str, Any] = decode(call.body, allow_yaml=False)
        with self.store.lock:
            entry = self._existing(call)
            live = self._present(rtype, entry)
            if call.subresource == "scale":
                live = self._scale_of(rtype, live)
            if ctype == JSON_PATCH:
                try:
                    patched = jsonpatch.apply_patch(live, ops)
                except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as exc:
                    raise ApiError(
                        422,
                        "Invalid",
                        f"the JSON patch could not be applied: {exc}",
                        call.name,
                        rtype.group,
                        rtype.kind,
                    ) from None
                except (TypeError, AttributeError, KeyError, ValueError) as exc:
                    raise bad_request(f"the JSON patch is malformed: {exc}") from None
            elif ctype == MERGE:
                patched = meta.merge_patch(live, patch_doc)
            else:
                patched = fields.strategic_merge(rtype, live, patch_doc)
            if not isinstance(patched, dict) or not isinstance(patched.get("metadata", {}), dict):
                raise bad_request("the patched object is not an object")
            if call.subresource == "scale":
                return self._update_scale(call, patched, locked_entry=entry)
            bodies.check_gvk(rtype, patched)
            pm = patched.setdefault("metadata", {})
            if pm.get("name") != call.name:
                raise bad_request("the name of the object may not be changed by a patch")
            rv = pm.get("resourceVersion")
            if rv and str(rv) != str(entry.rv):
                raise stale(rtype.plural, rtype.group, call.name)
            _check_uid(rtype, entry, pm)
            warnings = bodies.field_validation(call, patched)
            reply = self._replace(rtype, entry, patched, manager, call.subresource, dry_run=dry)
            reply.warnings = warnings
            return reply

    def _apply(self, call: Call, force: bool, dry_run: bool) -> Reply:
        rtype = call.rtype
        config = decode(call.body, allow_yaml=True)
        cm = config.get("metadata")
        if not isinstance(cm, dict):
            cm = config["metadata"] = {}
        if cm.get("managedFields") is not None:
            raise bad_request("metadata.managedFields must be nil")
        version = config.get("apiVersion")
        if version != rtype.api_version:
            raise bad_request(
                f"Incorrect version specified in apply patch. Specified patch version: "
                f"{version}, expected: {rtype.api_version}"
            )
        if config.get("kind") != rtype.kind:
            raise bad_request(
                f"Incorrect kind specified in apply patch. Specified patch kind: "
                f"{config.get('kind')}, expected: {rtype.kind}"
            )
        if cm.get("name") not in (None, call.name):
            raise bad_request(
                f"the name of the object ({cm['name']}) does not match the name on the URL ({call.name})"
            )
        if rtype.namespaced and cm.get("namespace") not in (None, "", call.namespace):
            raise bad_request(
                "the namespace of the provided object does not match the namespace sent on the request"
            )
        manager = call.query["fieldManager"]
        if len(manager) > 128:
            call.manager()
        with self.store.lock:
            entry = self.store.get(rtype.storage_key, call.namespace if rtype.namespaced else "", call.name)
            if entry is None:
                if call.subresource:
                    raise not_found(rtype.plural, rtype.group, call.name)
                base_meta: dict[str, Any] = {"name": call.name}
                self._place(rtype, base_meta, call.namespace)
                base = {"apiVersion": rtype.api_version, "kind": rtype.kind, "metadata": base_meta}
                return self._create(rtype, base, manager, dry_run=dry_run, apply_config=config, force=force)
            rv = cm.get("resourceVersion")
            if rv and str(rv) != str(entry.rv):
                raise stale(rtype.plural, rtype.group, call.name)
            live = self._present(rtype, entry)
            result = fields.apply(
                rtype, live, config, manager, force=force, subresource=call.subresource, now=meta.now()
            )
            if not result.write_needed:
                return Reply(200, live)
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
        live = self._present(rtype, entry)
        new = self._carry_over(rtype, live, new, subresource)
        result = fields.update(rtype, live, new, manager, subresource=subresource, now=meta.now())
        if not result.write_needed:
            return Reply(200, live)
        return self._finish(rtype, entry, result.object, subresource, dry_run=dry_run)

    def _finish(
        self, rtype: ResourceType, entry: Entry, new: dict[str, Any], subresource: str, *, dry_run: bool
    ) -> Reply:
        """Validate, bump generation, skip no-ops, store (or delete once the last finalizer is gone)."""
        live = entry.obj
        new = self._carry_over(rtype, live, new, subresource)
        if rtype.kind == "Service" and not rtype.group:
            services.keep_allocated(live, new)
            services.allocate(new, (e.obj for e in self.store.items(rtype.storage_key)))
        _fold_string_data(rtype, new)
        self._admit(rtype, live, new)
        m = new["metadata"]
        if rtype.generation:
            gen = int(live.get("metadata", {}).get("generation") or 1)
            # Without a status subresource a custom object's status is part of its "spec".
            keep_status = not (rtype.crd and not rtype.status)
            m["generation"] = gen + 1 if meta.spec_changed(live, new, ignore_status=keep_status) else gen
        m["resourceVersion"] = live["metadata"].get("resourceVersion")
        if new == live or _same(new, live):
            return Reply(200, self._present(rtype, entry))
        if dry_run:
            return Reply(200, new)
        if m.get("deletionTimestamp") and not m.get("finalizers"):
            final = self._remove(rtype, new)
            return Reply(200, final)
        stored = self._store(rtype, new)
        if rtype.storage_key == CRD_TYPE.storage_key:
            self._crd_established(stored)
            stored = self.store.get(rtype.storage_key, "", m["name"]) or stored
        return Reply(200, self._present(rtype, stored))

    def _carry_over(
        self, rtype: ResourceType, live: dict[str, Any], new: dict[str, Any], subresource: str
    ) -> dict[str, Any]:
        """What a write may not change: identity and system metadata; status vs the rest by subresource."""
        lm, nm = live["metadata"], new.setdefault("metadata", {})
        for key in (
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "namespace",
            "name",
            "generation",
        ):
            if key in lm:
                nm[key] = lm[key]
            else:
                nm.pop(key, None)
        if nm.get("managedFields") is None and lm.get("managedFields") is not None:
            nm["managedFields"] = lm["managedFields"]
        if subresource == "status":
            out = {k: v for k, v in live.items() if k != "status"}
            out["metadata"] = {**lm, "managedFields": nm.get("managedFields", lm.get("managedFields"))}
            if "status" in new:
                out["status"] = new["status"]
            if out["metadata"].get("managedFields") is None:
                out["metadata"].pop("managedFields", None)
            return out
        if rtype.status:
            if "status" in live:
                new["status"] = live["status"]
            else:
                new.pop("status", None)
        return new

    def _admit(self, rtype: ResourceType, live: dict[str, Any] | None, obj: dict[str, Any]) -> None:
        """Validation: metadata, CRDs, custom objects against their schema, a few built-in rules."""
        m = obj["metadata"]
        name = str(m.get("name", ""))
        rule = (
            {"Namespace": "label", "Service": "dns1035"}.get(rtype.kind, "subdomain")
            if not rtype.group
            else "subdomain"
        )
        causes = meta.validate_name(name, rule=rule)
        causes += meta.validate_metadata(m)
        if rtype.storage_key == CRD_TYPE.storage_key:
            causes += crds.validate_crd(obj)
            if live is not None and not causes:
                for key in ("group", "scope"):
                    if live["spec"].get(key) != obj["spec"].get(key):
                        causes.append(bad_value(f"spec.{key}", obj["spec"].get(key), "field is immutable"))
                if live["spec"]["names"].get("plural") != obj["spec"]["names"].get("plural"):
                    causes.append(
                        bad_value(
                            "spec.names.plural", obj["spec"]["names"].get("plural"), "field is immutable"
                        )
                    )
        elif rtype.crd:
            checked = crds.check_object(rtype.schema, obj)
            obj.clear()
            obj.update(checked.obj)
            causes += checked.causes
        else:
            causes += rules.builtin_rules(rtype, obj)
            if live is not None:
                causes += rules.immutable_rules(rtype, live, obj)
        if causes:
            raise invalid(rtype.kind, rtype.group, name, causes)

    def _store(self, rtype: ResourceType, obj: dict[str, Any]) -> Entry:
        m = obj["metadata"]
        ns, name = str(m.get("namespace") or ""), str(m["name"])
        existed = self.store.get(rtype.storage_key, ns, name) is not None
        m["resourceVersion"] = str(self.store.next_rv())
        return self.store.put(rtype.storage_key, ns, name, obj, "MODIFIED" if existed else "ADDED")

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
        self.store.put(CRD_TYPE.storage_key, "", crd["metadata"]["name"], new, "MODIFIED")
        self.registry.invalidate()

    # -- delete ------------------------------------------------------------------------------

    def delete(self, call: Call) -> Reply:
        rtype = call.rtype
        opts: dict[str, Any] = {}
        if call.body.strip():
            opts = decode(call.body, allow_yaml=False)
        policy = call.query.get("propagationPolicy") or opts.get("propagationPolicy")
        if opts.get("orphanDependents") is True or call.query.get("orphanDependents") == "true":
            policy = policy or "Orphan"
        if policy not in (None, "Background", "Foreground", "Orphan"):
            raise invalid(
                "DeleteOptions",
                "meta.k8s.io",
                "",
                [
                    Cause(
                        "FieldValueNotSupported",
                        f'Unsupported value: "{policy}": supported values: "Foreground", '
                        '"Background", "Orphan", "nil"',
                        "propagationPolicy",
                    )
                ],
            )
        dry = call.dry_run or opts.get("dryRun") == ["All"]
        pre = opts.get("preconditions") or {}
        with self.store.lock:
            entry = self._existing(call)
            lm = entry.obj["metadata"]
            if pre.get("uid") and pre["uid"] != lm.get("uid"):
                raise ApiError(
                    409,
                    "Conflict",
                    f"Precondition failed: UID in precondition: {pre['uid']}, UID in "
                    f"object meta: {lm.get('uid')}",
                    call.name,
                    rtype.group,
                    rtype.plural,
                )
            if pre.get("resourceVersion") and str(pre["resourceVersion"]) != str(entry.rv):
                raise ApiError(
                    409,
                    "Conflict",
                    f"Precondition failed: ResourceVersion in precondition: "
                    f"{pre['resourceVersion']}, ResourceVersion in object meta: {entry.rv}",
                    call.name,
                    rtype.group,
                    rtype.plural,
                )
            reply = self._delete(rtype, entry, policy, dry_run=dry)
        # Deleted at once: most built-ins answer a Status; custom objects, Pods and anything that is
        # still waiting (finalizers, foreground, namespaces) answer the object, like the real server.
        body = reply.body or {}
        pending = bool(body.get("metadata", {}).get("deletionTimestamp")) and not dry
        if rtype.crd or pending or (rtype.kind == "Pod" and not rtype.group):
            return reply
        m = body.get("metadata", {})
        details = {"name": m.get("name", call.name), "kind": rtype.plural, "uid": m.get("uid", "")}
        if rtype.group:
            details["group"] = rtype.group
        return Reply(
            200,
            {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details},
        )

    def _delete(self, rtype: ResourceType, entry: Entry, policy: str | None, *, dry_run: bool) -> Reply:
        obj = self._present(rtype, entry)
        m = obj["metadata"]
        finalizers = list(m.get("finalizers") or [])
        if rtype.kind == "Namespace" and not rtype.group:
            if m["name"] in DEFAULT_NAMESPACES:
                raise forbidden("namespaces", "", m["name"], "this namespace may not be deleted")
            obj.setdefault("status", {})["phase"] = "Terminating"
        if policy == "Foreground" and FOREGROUND not in finalizers:
            finalizers.append(FOREGROUND)
        if policy == "Orphan" and not dry_run:
            self._orphan(m["uid"])
        waiting = finalizers or (rtype.kind == "Namespace" and not rtype.group)
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
            return Reply(200, self._present(rtype, stored))
        return Reply(200, self._remove(rtype, obj))

    def _remove(self, rtype: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
        m = obj["metadata"]
        m["resourceVersion"] = str(self.store.next_rv())
        self.store.delete(rtype.storage_key, str(m.get("namespace") or ""), m["name"], obj)
        self.on_delete(m["uid"])
        return obj

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

    def delete_collection(self, call: Call) -> Reply:
        entries, _, _ = self._select(
            Call(
                call.rtype,
                call.namespace,
                "",
                "",
                {k: v for k, v in call.query.items() if k in ("labelSelector", "fieldSelector")},
            )
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
    def delete_entry(self, res: str, entry: Entry, policy: str | None = "Background") -> None:
        with self.store.lock:
            current = self.store.get(
                res, str(entry.obj["metadata"].get("namespace") or ""), entry.obj["metadata"]["name"]
            )
            rtype = self._type_of(res, entry.obj)
            if current is None or rtype is None or current.obj["metadata"].get("deletionTimestamp"):
                return
            self._delete(rtype, current, policy, dry_run=False)

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
            if rtype.kind == "Namespace" and not rtype.group:
                obj["spec"] = {}
            self._finish(rtype, current, obj, "", dry_run=False)
            if rtype.kind == "Namespace" and not rtype.group and not fins:
                still = self.store.get(res, "", m["name"])
                if still is not None:
                    self._remove(rtype, still.load())

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

    # -- watch -------------------------------------------------------------------------------

    def watch(
        self, call: Call, stop: Callable[[], bool], timeout: float
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        """(type, object) events: the current objects first unless resuming, then changes.

        Client errors (bad selector, bad resourceVersion) are raised here, before the stream starts.
        """
        rtype = call.rtype
        q = call.query
        ns = call.namespace if rtype.namespaced and call.namespace else None
        lpred = parse_labels(q["labelSelector"]) if q.get("labelSelector") else None
        fpred = (
            parse_fields(q["fieldSelector"], selectors.selectable_fields(rtype))
            if q.get("fieldSelector")
            else None
        )
        rv_param = q.get("resourceVersion", "")
        bookmarks = q.get("allowWatchBookmarks") in ("true", "1")

        def matches(e: Entry) -> bool:
            return (lpred is None or lpred(e.labels)) and (fpred is None or fpred(e.obj))

        # Watch-list (sendInitialEvents=true): the current state first, then a bookmark marking its end.
        watch_list = q.get("sendInitialEvents") in ("true", "1")
        with self.store.lock:
            if rv_param in ("", "0") or watch_list:
                since = self.store.rv
                initial = [e for e in self.store.items(rtype.storage_key, ns) if matches(e)]
            else:
                try:
                    since = int(rv_param)
                except ValueError:
                    raise bad_request(f'invalid resource version "{rv_param}"') from None
                initial = []
                oldest = self.store.oldest_event_rv() - 1
                if since < oldest:
                    expired = gone(f"too old resource version: {since} ({oldest})").status()
                    return iter([("ERROR", expired)])
        stream = self._stream(rtype, ns, initial, since, matches, bookmarks, stop, timeout)
        if not watch_list:
            return stream
        return self._initial_events_end(stream, len(initial), rtype, since)

    def _initial_events_end(
        self, stream: Iterator[tuple[str, dict[str, Any]]], count: int, rtype: ResourceType, rv: int
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        for _ in range(count):
            item = next(stream, None)
            if item is None:
                return
            yield item
        yield (
            "BOOKMARK",
            {
                "kind": rtype.kind,
                "apiVersion": rtype.api_version,
                "metadata": {
                    "resourceVersion": str(rv),
                    "annotations": {"k8s.io/initial-events-end": "true"},
                },
            },
        )
        yield from stream

    def _stream(
        self,
        rtype: ResourceType,
        ns: str | None,
        initial: list[Entry],
        since: int,
        matches: Callable[[Entry], bool],
        bookmarks: bool,
        stop: Callable[[], bool],
        timeout: float,
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        for e in initial:
            yield "ADDED", self._present(rtype, e)
        deadline = time.monotonic() + timeout
        last_bookmark = time.monotonic()
        while not stop():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            with self.store.changed:
                if self.store.rv <= since:
                    self.store.changed.wait(min(remaining, 1.0))
                pending: list[Event] = [ev for ev in _events_after(self.store.events, since)]
                if pending:
                    since = pending[-1].rv
            for ev in pending:
                if ev.res != rtype.storage_key or (ns is not None and ev.ns != ns):
                    continue
                now_matches = matches(ev.entry)
                if ev.type == "MODIFIED" and ev.prev is not None:
                    was = matches(ev.prev)
                    if now_matches and not was:
                        yield "ADDED", self._present(rtype, ev.entry)
                    elif was and not now_matches:
                        yield "DELETED", self._present(rtype, ev.entry)
                    elif now_matches:
                        yield "MODIFIED", self._present(rtype, ev.entry)
                    continue
                if now_matches:
                    yield ev.type, self._present(rtype, ev.entry)
            if bookmarks and time.monotonic() - last_bookmark > 30:
                last_bookmark = time.monotonic()
                yield (
                    "BOOKMARK",
                    {
                        "kind": rtype.kind,
                        "apiVersion": rtype.api_version,
                        "metadata": {"resourceVersion": str(since)},
                    },
                )

    # -- helpers -----------------------------------------------------------------------------

    def _existing(self, call: Call) -> Entry:
        rtype = call.rtype
        entry = self.store.get(rtype.storage_key, call.namespace if rtype.namespaced else "", call.name)
        if entry is None:
            raise not_found(rtype.plural, rtype.group, call.name)
        return entry

    def _place(self, rtype: ResourceType, m: dict[str, Any], url_ns: str) -> None:
        if rtype.namespaced:
            body_ns = m.get("namespace")
            if body_ns and url_ns and body_ns != url_ns:
                raise bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request"
                )
            if not url_ns and not body_ns:
                raise bad_request("a namespace is required for namespaced resources")
            m["namespace"] = url_ns or body_ns
        else:
            m.pop("namespace", None)

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

    def _present(self, rtype: ResourceType, entry: Entry) -> dict[str, Any]:
        obj = entry.load()
        obj["apiVersion"] = rtype.api_version
        return obj

    def _scale_of(self, rtype: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
        m = obj["metadata"]
        spec_path, status_path, selector_path = rtype.scale_paths
        if rtype.crd:
            wanted = meta.get_path(obj, spec_path)
            have = meta.get_path(obj, status_path)
            found = meta.get_path(obj, selector_path) if selector_path else None
            selector = found if isinstance(found, str) else ""
        else:
            spec = obj.get("spec") or {}
            wanted, have = spec.get("replicas", 1), (obj.get("status") or {}).get("replicas", 0)
            labels = (spec.get("selector") or {}).get("matchLabels") or {}
            selector = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
        return {
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": {
                k: m[k]
                for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                if k in m
            },
            "spec": {"replicas": wanted if isinstance(wanted, int) else 0},
            "status": {"replicas": have if isinstance(have, int) else 0, "selector": selector},
        }

    def _update_scale(self, call: Call, scale: dict[str, Any], locked_entry: Entry | None = None) -> Reply:
        rtype = call.rtype
        for part in ("spec", "metadata", "status"):
            if scale.get(part) is not None and not isinstance(scale[part], dict):
                raise bad_request(
                    f'Scale in version "v1" cannot be handled as a Scale: {part} must be an object'
                )
        replicas = (scale.get("spec") or {}).get("replicas")
        if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
            raise invalid(
                "Scale",
                "autoscaling",
                call.name,
                [bad_value("spec.replicas", replicas, "must be greater than or equal to 0")],
            )
        dry = call.dry_run
        manager = call.manager()
        with self.store.lock:
            entry = locked_entry or self._existing(call)
            rv = (scale.get("metadata") or {}).get("resourceVersion")
            if rv and str(rv) != str(entry.rv):
                raise stale(rtype.plural, rtype.group, call.name)
            obj = self._present(rtype, entry)
            meta.set_path(obj, rtype.scale_paths[0], replicas)
            reply = self._replace(rtype, entry, obj, manager, "scale", dry_run=dry)
            assert reply.body is not None
            return Reply(reply.code, self._scale_of(rtype, reply.body))


def _fold_string_data(rtype: ResourceType, obj: dict[str, Any]) -> None:
    """A Secret's stringData is write-only: the server merges it into data (base64) and drops it."""
    if rtype.kind != "Secret" or rtype.group:
        return
    extra = obj.pop("stringData", None)
    if isinstance(extra, dict) and extra:
        current = obj.get("data")
        data: dict[str, Any] = current if isinstance(current, dict) else {}
        for key, value in extra.items():
            if isinstance(value, str):
                data[key] = base64.b64encode(value.encode()).decode()
        obj["data"] = data


def _check_uid(rtype: ResourceType, entry: Entry, m: dict[str, Any]) -> None:
    """A write that names a uid must name the live object's (the object may have been recreated)."""
    given, live = m.get("uid"), entry.obj["metadata"].get("uid")
    if given and given != live:
        raise ApiError(
            409,
            "Conflict",
            f"Precondition failed: UID in precondition: {given}, UID in object meta: {live}",
            str(m.get("name", "")),
            rtype.group,
            rtype.plural,
        )


def _same(new: dict[str, Any], live: dict[str, Any]) -> bool:
    return dumps(new) == dumps(live)


def _events_after(events: Any, since: int) -> Iterator[Event]:
    # The log is ordered by rv: walk back from the end to the first newer event.
    n = len(events)
    i = n
    while i > 0 and events[i - 1].rv > since:
        i -= 1
    for j in range(i, n):
        yield events[j]


def _key(e: Entry) -> tuple[str, str]:
    m = e.obj.get("metadata", {})
    return (str(m.get("namespace") or ""), str(m.get("name")))


def _decode_continue(token: str, oldest: int) -> tuple[str, str]:
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
        after = data["after"]
        rv = int(data["rv"])
        if not (isinstance(after, list) and len(after) == 2):
            raise ValueError(token)
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise bad_request("continue key is not valid: incorrect encoded start resourceVersion") from None
    if rv < oldest - 1:
        raise gone(
            "The provided continue parameter is too old to display a consistent list result. You can "
            "start a new list without the continue parameter."
        )
    return (str(after[0]), str(after[1]))


def _int_param(q: dict[str, str], name: str) -> int:
    raw = q.get(name)
    if not raw:
        return 0
    try:
        return max(0, int(raw))
    except ValueError:
        raise bad_request(f'invalid value for {name}: "{raw}"') from None
