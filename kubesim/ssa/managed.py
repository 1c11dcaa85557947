"""``metadata.managedFields`` ⇄ per-manager field sets, as apimachinery's managedfields encodes them.

One entry per *manager identity*: (manager, operation, subresource) for Apply — appliers keep one
entry across apiVersions — and (manager, operation, apiVersion, subresource) for Update.
Entries are written in the API server's order: by operation (Apply before Update), then time,
manager, apiVersion, subresource.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass
from typing import Any

from kubesim.ssa.errors import ApplyBodyError
from kubesim.ssa.fieldpath import FieldSet, FieldsV1Error, decode_fields_v1, encode_fields_v1, union

APPLY = "Apply"
UPDATE = "Update"


@dataclass(frozen=True, slots=True, order=True)
class ManagerKey:
    manager: str
    operation: str
    #: Empty for Apply entries (an applier is one identity across versions).
    api_version: str
    subresource: str = ""


@dataclass(slots=True)
class ManagerEntry:
    fields: FieldSet
    api_version: str
    time: str | None


Managed = dict[ManagerKey, ManagerEntry]


def key_for(manager: str, operation: str, api_version: str, subresource: str | None) -> ManagerKey:
    return ManagerKey(manager, operation, "" if operation == APPLY else api_version, subresource or "")


def decode_managed_fields(entries: Any, *, what: str) -> Managed:
    """Parse a managedFields list; ``what`` names the object for the error message."""
    out: Managed = {}
    if entries is None:
        return out
    if not isinstance(entries, list):
        raise ApplyBodyError(f"{what}: metadata.managedFields must be a list")
    for i, e in enumerate(entries):
        if not isinstance(e, dict):
            raise ApplyBodyError(f"{what}: metadata.managedFields[{i}] must be an object")
        op = e.get("operation")
        if op not in (APPLY, UPDATE):
            raise ApplyBodyError(
                f"{what}: metadata.managedFields[{i}].operation: unsupported value {op!r}"
            )
        if e.get("fieldsType") != "FieldsV1":
            raise ApplyBodyError(
                f"{what}: metadata.managedFields[{i}].fieldsType: must be FieldsV1"
            )
        try:
            fields = decode_fields_v1(e.get("fieldsV1") or {})
        except FieldsV1Error as exc:
            raise ApplyBodyError(f"{what}: metadata.managedFields[{i}].fieldsV1: {exc}") from exc
        if not e.get("apiVersion"):
            raise ApplyBodyError(f"{what}: metadata.managedFields[{i}].apiVersion must not be empty")
        # Entries of one manager identity: the last one wins (apimachinery decodeManagedFields).
        key = key_for(str(e.get("manager", "")), op, str(e.get("apiVersion", "")), e.get("subresource"))
        out.pop(key, None)
        t = e.get("time")
        out[key] = ManagerEntry(fields, str(e.get("apiVersion", "")), t if isinstance(t, str) else None)
    return out


MAX_UPDATE_MANAGERS = 10
ANCIENT = "ancient-changes"


def cap_update_managers(managed: Managed) -> None:
    """apimachinery capManagers: past 10 Update entries, merge the oldest per apiVersion into
    ``ancient-changes`` buckets (in place)."""
    updaters = [k for k in managed if k.operation == UPDATE]
    if len(updaters) <= MAX_UPDATE_MANAGERS:
        return
    updaters.sort(key=lambda k: (int(_epoch(managed[k].time)), k.manager))
    first_by_version: dict[str, ManagerKey] = {}
    length = len(updaters)
    for k in updaters:
        if length <= MAX_UPDATE_MANAGERS:
            break
        entry = managed[k]
        version = entry.api_version
        bucket = ManagerKey(ANCIENT, UPDATE, version, "")
        first = first_by_version.get(version)
        if first is None:
            first_by_version[version] = k
            continue
        if bucket not in managed:
            managed[bucket] = managed.pop(first)
        merged = union(entry.fields, managed[bucket].fields)
        managed[bucket] = ManagerEntry(merged, version, entry.time)
        del managed[k]
        length -= 1


@functools.lru_cache(maxsize=4096)
def _epoch(t: str | None) -> float:
    if not t:
        return 0.0
    try:
        return dt.datetime.fromisoformat(t.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def encode_managed_fields(managed: Managed) -> list[dict[str, Any]]:
    def order(item: tuple[ManagerKey, ManagerEntry]) -> tuple[Any, ...]:
        k, e = item
        return (k.operation, int(_epoch(e.time)), k.manager, e.api_version, k.subresource)

    out: list[dict[str, Any]] = []
    items = list(managed.items())
    if len(items) > 1:
        items.sort(key=order)
    for k, e in items:
        entry: dict[str, Any] = {"manager": k.manager, "operation": k.operation, "apiVersion": e.api_version}
        if e.time is not None:
            entry["time"] = e.time
        entry["fieldsType"] = "FieldsV1"
        entry["fieldsV1"] = encode_fields_v1(e.fields)
        if k.subresource:
            entry["subresource"] = k.subresource
        out.append(entry)
    return out


def without_managed(obj: dict[str, Any] | None) -> dict[str, Any]:
    """The object without metadata.managedFields (a shallow copy when there were any)."""
    if not obj:
        return {}
    meta = obj.get("metadata")
    if isinstance(meta, dict) and "managedFields" in meta:
        obj = dict(obj)
        meta = dict(meta)
        del meta["managedFields"]
        obj["metadata"] = meta
    return obj
