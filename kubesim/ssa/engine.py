"""Server-side apply and update, following sigs.k8s.io/structured-merge-diff ``merge.Updater`` and
k8s.io/apimachinery ``managedfields`` (strip-meta, managed-fields-updater, conflict errors)."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from kubesim.schema.defaults import default_object, drop_unknown
from kubesim.schema.types import ResourceSchema, TypeNode
from kubesim.ssa import fieldpath as fp
from kubesim.ssa import last_applied, typed
from kubesim.ssa.compare import Comparison, compare
from kubesim.ssa.errors import ApplyBodyError, Cause, Conflict, ConflictError, InvalidObjectError
from kubesim.ssa.managed import (
    APPLY,
    UPDATE,
    Managed,
    ManagerEntry,
    ManagerKey,
    cap_update_managers,
    decode_managed_fields,
    encode_managed_fields,
    key_for,
    without_managed,
)

#: Paths apimachinery's stripMetaManager never records as owned.
_STRIP: fp.FieldSet = {
    "f:apiVersion": {fp.MEMBER: {}},
    "f:kind": {fp.MEMBER: {}},
    "f:metadata": {
        fp.MEMBER: {},
        **{
            "f:" + n: {fp.MEMBER: {}}
            for n in (
                "name", "namespace", "creationTimestamp", "selfLink", "uid", "clusterName",
                "generation", "managedFields", "resourceVersion",
            )
        },
    },
}

_KEEP_ON_STATUS = ("apiVersion", "kind", "metadata", "status")


@dataclass(slots=True)
class ApplyResult:
    #: The resulting object, with ``metadata.managedFields``.  A fresh dict (callers may mutate it).
    object: dict[str, Any]
    #: The object's content (anything but managedFields) changed.
    changed: bool
    #: ``metadata.managedFields`` changed (new owner, new times, dropped managers, ...).
    managed_fields_changed: bool
    #: There was no live object: this apply creates it (HTTP 201).
    created: bool

    @property
    def write_needed(self) -> bool:
        """False for a true no-op: the stored object (and its resourceVersion) stays as is."""
        return self.changed or self.managed_fields_changed or self.created


UpdateResult = ApplyResult


def _gvknn(obj: Any, schema: ResourceSchema) -> str:
    meta = obj.get("metadata") if isinstance(obj, dict) else None
    if not isinstance(meta, dict):
        meta = {}
    g = schema.gvk
    ns = meta.get("namespace") or ""
    name = meta.get("name") or ""
    return f"{ns}/{name}; {g.group}/{g.version}, Kind={g.kind}"


def _ignored(schema: ResourceSchema, subresource: str | None) -> fp.FieldSet:
    """Reset fields: the main resource never owns status, the status subresource owns only status."""
    if not schema.status_subresource:
        return {}
    if subresource == "status":
        return {"f:" + n: {fp.MEMBER: {}} for n in schema.root.fields if n not in _KEEP_ON_STATUS}
    return {"f:status": {fp.MEMBER: {}}}  # the main resource, and scale


def _reset(merged: dict[str, Any], live: dict[str, Any], schema: ResourceSchema, subresource: str | None,
           ) -> dict[str, Any]:
    """What the registry strategies do: status writes touch only status, main writes never do."""
    if not schema.status_subresource:
        return merged
    if subresource != "status":  # the main resource, and scale (which writes the replicas only)
        if "status" in live:
            merged["status"] = typed.deep_copy(live["status"])
        else:
            merged.pop("status", None)
        return merged
    out: dict[str, Any] = typed.deep_copy(live)
    if "status" in merged:
        out["status"] = merged["status"]
    else:
        out.pop("status", None)
    if schema.status_metadata:
        meta, new_meta = out.setdefault("metadata", {}), merged.get("metadata") or {}
        for key in schema.status_metadata:
            if key in new_meta:
                meta[key] = typed.deep_copy(new_meta[key])
            else:
                meta.pop(key, None)
    return out


def _set_managed(obj: dict[str, Any], managed: Managed) -> None:
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        meta = obj["metadata"] = {}
    meta.pop("managedFields", None)
    encoded = encode_managed_fields(managed)
    if encoded:
        meta["managedFields"] = encoded


def conflict_error(conflicts: dict[ManagerKey, fp.FieldSet], managed: Managed) -> ConflictError:
    """SMD ``ConflictsFromManagers``: one Conflict per (manager, member path), managers in key order
    and each manager's paths in ``Set.Iterate`` order, with apimachinery's message."""
    listed: list[tuple[Conflict, tuple[str, ...]]] = []
    for key in sorted(conflicts):
        entry = managed[key]
        for path in fp.iter_paths(conflicts[key]):
            listed.append((Conflict(fp.path_string(path), key.manager, key.operation, entry.api_version,
                                    key.subresource), path))
    return ConflictError([c for c, _ in listed], paths=[p for _, p in listed])


def _copy_managed(managed: Managed, schema: ResourceSchema | None = None) -> Managed:
    """A working copy; for custom resources (whose schema may have changed since the sets were
    recorded) the sets are reconciled with the current schema, as SMD does."""
    out = {k: ManagerEntry(v.fields, v.api_version, v.time) for k, v in managed.items()}
    if schema is not None and not schema.builtin:
        for entry in out.values():
            reconciled = typed.reconcile_with_schema(entry.fields, schema.root)
            if reconciled is not None:
                entry.fields = reconciled
    return out


def _typed_error(prefix: str, exc: typed.TypeErrors) -> InvalidObjectError:
    return InvalidObjectError(
        f"{prefix}: {exc.text}",
        causes=tuple(Cause("FieldValueInvalid", msg, path.lstrip(".")) for path, msg in exc.errors),
    )


def _prune(merged: Any, managed: Managed, last: fp.FieldSet, root: TypeNode) -> Any:
    """SMD ``Updater.prune``: drop what the applier owned last time, owns no more, and no one owns."""
    last_en = typed.ensure_named(last, root)
    pruned = typed.remove_items(merged, last_en, root)
    # addBackOwnedItems
    all_owned: fp.FieldSet = {}
    for e in managed.values():
        all_owned = fp.union(all_owned, e.fields)
    merged_set = typed.ensure_named(typed.field_set(merged, root), root)
    pruned_set = typed.ensure_named(typed.field_set(pruned, root), root)
    owned_en = typed.ensure_named(all_owned, root)
    pruned = typed.remove_items(merged, fp.difference(merged_set, fp.union(pruned_set, owned_en)), root)
    # addBackDanglingItems
    pruned_set = typed.ensure_named(typed.field_set(pruned, root), root)
    return typed.remove_items(merged, fp.intersection(fp.difference(merged_set, pruned_set), last_en), root)


def apply(
    live: dict[str, Any] | None,
    config: dict[str, Any],
    *,
    manager: str,
    api_version: str,
    force: bool,
    schema: ResourceSchema,
    now: str,
    subresource: str | None = None,
) -> ApplyResult:
    """Server-side apply ``config`` (the request body) as ``manager`` onto ``live`` (None: create)."""
    run = functools.partial(
        _apply, live, config, manager=manager, api_version=api_version, schema=schema, now=now,
        subresource=subresource,
    )
    try:
        result = run(force=force)
    except ConflictError as err:
        # kubectl moving from client-side apply: fields still holding their last-applied value
        # are its own, so conflicts on them alone do not count.
        allowed = last_applied.takeover(live, schema.root) if manager == last_applied.KUBECTL else None
        if allowed is None:
            raise
        remaining = [(c, p) for c, p in zip(err.conflicts, err.paths, strict=True) if not fp.has(allowed, p)]
        if remaining:
            raise ConflictError([c for c, _ in remaining], paths=[p for _, p in remaining]) from None
        result = run(force=True)
    if manager == last_applied.KUBECTL and last_applied.sync(result.object, config):
        result.changed = True
    return result


def _apply(
    live: dict[str, Any] | None,
    config: dict[str, Any],
    *,
    manager: str,
    api_version: str,
    force: bool,
    schema: ResourceSchema,
    now: str,
    subresource: str | None = None,
) -> ApplyResult:
    """One apply attempt: the merge, conflicts, pruning and managedFields, without kubectl's
    last-applied takeover (`apply` retries through here with force when that clears the conflicts)."""
    if not isinstance(config, dict):
        raise ApplyBodyError("error decoding YAML: the apply body must be an object")
    if config.get("apiVersion") != api_version or config.get("kind") != schema.kind:
        # apimachinery versionCheckManager, the outermost check of the apply chain.
        av = config.get("apiVersion")
        group, _, version = (av if isinstance(av, str) else "").rpartition("/")
        kind = config.get("kind")
        raise ApplyBodyError(
            f"invalid object type: {group}/{version}, Kind={kind if isinstance(kind, str) else ''}"
        )
    meta = config.get("metadata")
    if isinstance(meta, dict) and meta.get("managedFields") is not None:
        raise ApplyBodyError("metadata.managedFields must be nil")
    root = schema.root
    try:
        config_set = typed.field_set(config, root, strict=True)
    except typed.TypeErrors as exc:
        raise _typed_error(f"failed to create typed patch object ({_gvknn(config, schema)})", exc) from exc

    created = live is None
    live_clean = without_managed(live)
    what = _gvknn(live_clean or config, schema)
    managed_before = decode_managed_fields((live or {}).get("metadata", {}).get("managedFields"), what=what)
    managed = _copy_managed(managed_before, schema)
    if live is not None and not managed:
        # skipNonAppliedManager: fields of an object nobody tracked yet belong to
        # "before-first-apply", as if it had created them, so the first apply can conflict.
        managed = _before_first_apply(live_clean, schema, api_version, now)
    ignored = _ignored(schema, subresource)

    merged = typed.merge(live_clean, config, root) if live_clean else typed.deep_copy(config)
    merged = _reset(merged, live_clean, schema, subresource)

    me = key_for(manager, APPLY, api_version, subresource)
    last = managed.get(me)
    new_set = fp.recursive_difference(config_set, ignored) if ignored else config_set
    managed[me] = ManagerEntry(new_set, api_version, last.time if last else None)
    if last is not None and fp.difference(last.fields, new_set):
        merged = _prune(merged, managed, last.fields, root)

    # A create has nothing to compare with: no other owner to conflict with, nothing removed.
    cmp = compare(live_clean, merged, root) if not created else Comparison()
    if ignored:
        cmp.added = fp.recursive_difference(cmp.added, ignored)
        cmp.modified = fp.recursive_difference(cmp.modified, ignored)
        cmp.removed = fp.recursive_difference(cmp.removed, ignored)
    touched = fp.union(cmp.modified, cmp.added)
    conflicts: dict[ManagerKey, fp.FieldSet] = {}
    if touched:
        for key, entry in managed.items():
            if key == me:
                continue
            c = fp.intersection(entry.fields, touched)
            if c:
                conflicts[key] = c
    if conflicts and not force:
        raise conflict_error(conflicts, managed)
    for key, c in conflicts.items():
        managed[key].fields = fp.difference(managed[key].fields, c)
    if cmp.removed:
        for key, entry in managed.items():
            if key != me:
                entry.fields = fp.difference(entry.fields, cmp.removed)
    mine = fp.difference(managed[me].fields, _STRIP)
    managed[me].fields = mine
    for key in [k for k, e in managed.items() if not e.fields]:
        del managed[key]

    # Upstream compares the merged object (before defaulting) with live: any difference counts as a
    # change and bumps this manager's time, even if defaulting then restores the live value.
    merged_changed = created or not cmp.is_same()
    if merged_changed:
        # merge shares subtrees with live and config (a create's merged is already a copy)
        result = merged if created else typed.deep_copy(merged)
        default_object(schema, result)
    else:
        result = typed.deep_copy(live_clean)
    # managedFieldsUpdater: the applier's time moves only when the object changed (a new applier
    # that merely shares values gets an entry without time, as upstream).
    if me in managed and merged_changed:
        managed[me].time = now
    changed = created or (merged_changed and result != live_clean)
    _set_managed(result, managed)
    mf_changed = _managed_differs(managed_before, managed)
    return ApplyResult(result, changed, mf_changed, created)


def _managed_differs(a: Managed, b: Managed) -> bool:
    if a.keys() != b.keys():
        return True
    return any(
        a[k].fields != b[k].fields or a[k].time != b[k].time or a[k].api_version != b[k].api_version
        for k in a
    )


BEFORE_FIRST_APPLY = "before-first-apply"


def _before_first_apply(live: dict[str, Any], schema: ResourceSchema, api_version: str, now: str,
                        ) -> Managed:
    base = {**_zero_struct(schema.root), "apiVersion": live.get("apiVersion"), "kind": live.get("kind")}
    cmp = compare(base, live, schema.root)
    fields = fp.difference(fp.union(cmp.added, cmp.modified), _STRIP)
    ignored = _ignored(schema, None)
    if ignored:
        fields = fp.recursive_difference(fields, ignored)
    if not fields:
        return {}
    return {key_for(BEFORE_FIRST_APPLY, UPDATE, api_version, None): ManagerEntry(fields, api_version, now)}


def _zero_struct(node: TypeNode) -> dict[str, Any]:
    """The object a Go ``New()`` serialises to: non-pointer structs as {}, required fields as null."""
    out: dict[str, Any] = {}
    for name, f in node.fields.items():
        if name in node.present_fields:
            out[name] = _zero_struct(f)
        elif name in node.required and name not in ("apiVersion", "kind"):
            out[name] = None
    return out


def _is_reset_request(obj: dict[str, Any]) -> bool:
    """apimachinery isResetManagedFields: ``managedFields: []`` or one empty entry ``[{}]``."""
    mf = (obj.get("metadata") or {}).get("managedFields")
    if not isinstance(mf, list):
        return False
    return not mf or (len(mf) == 1 and isinstance(mf[0], dict) and not any(mf[0].values()))


def update(
    live: dict[str, Any] | None,
    new: dict[str, Any],
    *,
    manager: str,
    api_version: str,
    schema: ResourceSchema,
    now: str,
    subresource: str | None = None,
) -> UpdateResult:
    """Record a non-apply write (create, PUT, merge/JSON/strategic patch, status write).

    ``new`` is the complete object after the patch; it is pruned of undeclared fields and
    defaulted here.  Never raises conflicts.  ``managedFields: [{}]`` in ``new`` clears all
    entries; other managedFields in ``new`` (if any) replace the live ones, as upstream.
    """
    root = schema.root
    created = live is None
    live_clean = without_managed(live)
    what = _gvknn(live_clean or new, schema)
    managed_before = decode_managed_fields((live or {}).get("metadata", {}).get("managedFields"), what=what)
    if not isinstance(new, dict):
        raise ApplyBodyError(f"{what}: the object must be a JSON object")
    obj = drop_unknown(new, root)
    try:
        typed.field_set(obj, root, strict=True)
    except typed.TypeErrors as exc:
        # Duplicate list-map keys are tolerated on updates (SMD AllowDuplicates), bad types are not.
        kept = [(p, m) for p, m in exc.errors if not m.startswith("duplicate entries")]
        if kept:
            raise _typed_error(f"failed to create typed new object ({what})", typed.TypeErrors(kept)) from exc
    reset = _is_reset_request(obj)
    if reset and not created:
        # The entries go, and an object nobody tracks stays untracked (skipNonAppliedManager).
        obj["metadata"].pop("managedFields", None)
        obj = _reset(obj, live_clean, schema, subresource)
        default_object(schema, obj)
        return ApplyResult(obj, obj != live_clean, bool(managed_before), created)
    try:
        given = {} if reset else decode_managed_fields(
            (obj.get("metadata") or {}).get("managedFields"), what=what)
    except ApplyBodyError:
        given = {}
    managed = _copy_managed(given if given else managed_before, schema)
    if isinstance(obj.get("metadata"), dict):
        obj["metadata"].pop("managedFields", None)
    if live_clean:
        obj = _reset(obj, live_clean, schema, subresource)
    elif schema.status_subresource and subresource is None:
        obj.pop("status", None)  # PrepareForCreate: a new object starts without status
    default_object(schema, obj)
    if live is not None and not managed:
        # skipNonAppliedManager: an existing object nobody tracks stays untracked by updates.
        return ApplyResult(obj, obj != live_clean, False, False)

    base = live_clean if live_clean else {**_zero_struct(root), "apiVersion": obj.get("apiVersion"),
                                          "kind": obj.get("kind")}
    cmp = compare(base, obj, root)
    ignored = _ignored(schema, subresource)
    if ignored:
        cmp.added = fp.recursive_difference(cmp.added, ignored)
        cmp.modified = fp.recursive_difference(cmp.modified, ignored)
        cmp.removed = fp.recursive_difference(cmp.removed, ignored)
    touched = fp.union(cmp.modified, cmp.added)
    if touched or cmp.removed:
        # An update is a forced write: it takes what it changed from everyone else.
        for entry in managed.values():
            entry.fields = fp.difference(fp.difference(entry.fields, touched), cmp.removed)
    taken = fp.difference(touched, _STRIP)
    me = key_for(manager, UPDATE, api_version, subresource)
    if taken:
        prev = managed.get(me)
        managed[me] = ManagerEntry(fp.union(prev.fields, taken) if prev else taken, api_version, now)
    for key in [k for k, e in managed.items() if not e.fields]:
        del managed[key]
    cap_update_managers(managed)
    changed = created or obj != live_clean
    _set_managed(obj, managed)
    return ApplyResult(obj, changed, _managed_differs(managed_before, managed), created)
