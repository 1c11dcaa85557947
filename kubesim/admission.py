"""What every write must satisfy before it is stored, as pure functions of the live and new object:
identity and system metadata carried over, status vs the rest split by subresource, a Secret's
stringData folded in, uid preconditions, and validation (metadata, CRDs, custom objects against
their schema, the built-in rules)."""

from __future__ import annotations

import base64
import random
import uuid
from typing import Any

from kubesim import crds, fields, meta, rules
from kubesim.deletion import NAMESPACE_FINALIZER
from kubesim.errors import Cause, bad_value, invalid, uid_precondition_failed
from kubesim.resources import CRD_TYPE, ResourceType
from kubesim.storage import Entry

# Set by the server, never by a write.
SYSTEM_METADATA = (
    "uid",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "namespace",
    "name",
    "generation",
)


def carry_over(
    rtype: ResourceType, live: dict[str, Any], new: dict[str, Any], subresource: str
) -> dict[str, Any]:
    """What a write may not change: identity and system metadata; status vs the rest by subresource.

    ``metadata.managedFields`` is left as `new` has it: before the field manager a body's entries
    are its request (see `subresource_managed_fields`), after it they are the manager's answer."""
    lm, nm = live["metadata"], new.setdefault("metadata", {})
    for key in SYSTEM_METADATA:
        if key in lm:
            nm[key] = lm[key]
        else:
            nm.pop(key, None)
    if subresource == "status":
        out = {k: v for k, v in live.items() if k != "status"}
        out["metadata"] = {k: v for k, v in lm.items() if k != "managedFields"}
        if nm.get("managedFields") is not None:
            out["metadata"]["managedFields"] = nm["managedFields"]
        for key in fields.schema_of(rtype).status_metadata:
            if key in nm:
                out["metadata"][key] = nm[key]
            else:
                out["metadata"].pop(key, None)
        if "status" in new:
            out["status"] = new["status"]
        return out
    if rtype.status:
        if "status" in live:
            new["status"] = live["status"]
        else:
            new.pop("status", None)
    return new


def subresource_managed_fields(live: dict[str, Any], new: dict[str, Any]) -> None:
    """A status or scale write never sets managedFields from its body (apimachinery's
    ignoreManagedFieldsFromRequestObject): the field manager starts from the live entries."""
    nm = new.setdefault("metadata", {})
    if isinstance(nm, dict):
        nm.pop("managedFields", None)
        if live["metadata"].get("managedFields") is not None:
            nm["managedFields"] = live["metadata"]["managedFields"]


def clear_server_fields(rtype: ResourceType, obj: dict[str, Any]) -> None:
    """What a create body may carry but the server sets (or, for status, a later write does)."""
    m = obj["metadata"]
    for key in (
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "generation",
        "resourceVersion",
        "selfLink",
    ):
        m.pop(key, None)
    if rtype.status and not rtype.is_core("Namespace"):
        obj.pop("status", None)


def stamp_new(rtype: ResourceType, obj: dict[str, Any], name: str, namespace: str, now: str) -> None:
    """The server's part of a new object: identity, creation time, first generation; a
    Namespace's finalizer, phase and name label."""
    m = obj.setdefault("metadata", {})
    m["name"] = name
    if rtype.namespaced:
        m["namespace"] = namespace
    else:
        m.pop("namespace", None)
    # A random (version 4) UUID: from `random`, not os.urandom (a system call per create); uids
    # need to be unique, not unguessable.
    m["uid"] = str(uuid.UUID(int=random.getrandbits(128), version=4))
    m["creationTimestamp"] = now
    if rtype.generation:
        m["generation"] = 1
    if rtype.status and not rtype.is_core("Namespace"):
        obj.pop("status", None)  # defaulting may have added one
    if rtype.is_core("Pod"):
        obj["status"] = {"phase": "Pending", "qosClass": _qos_class(obj.get("spec") or {})}
    if rtype.is_core("Namespace"):
        obj["spec"] = {"finalizers": [NAMESPACE_FINALIZER]}
        obj["status"] = {"phase": "Active"}
        m.setdefault("labels", {})["kubernetes.io/metadata.name"] = name


def _qos_class(spec: dict[str, Any]) -> str:
    """A new Pod's status.qosClass (pkg/apis/core/helper/qos): Guaranteed when every container
    limits cpu and memory with requests equal to them, BestEffort when none asks for anything."""
    containers = [c for c in (spec.get("containers") or []) + (spec.get("initContainers") or [])
                  if isinstance(c, dict)]
    resources = [c.get("resources") or {} for c in containers]
    if not any((r.get("requests") or r.get("limits")) for r in resources):
        return "BestEffort"
    for r in resources:
        limits = r.get("limits") or {}
        requests = r.get("requests") or limits
        if any(k not in limits or str(requests.get(k)) != str(limits[k]) for k in ("cpu", "memory")):
            return "Burstable"
    return "Guaranteed"


def fold_string_data(rtype: ResourceType, obj: dict[str, Any]) -> None:
    """A Secret's stringData is write-only: the server merges it into data (base64) and drops it."""
    if not rtype.is_core("Secret"):
        return
    extra = obj.pop("stringData", None)
    if isinstance(extra, dict) and extra:
        current = obj.get("data")
        data: dict[str, Any] = current if isinstance(current, dict) else {}
        for key, value in extra.items():
            if isinstance(value, str):
                data[key] = base64.b64encode(value.encode()).decode()
        obj["data"] = data


def check_uid(rtype: ResourceType, entry: Entry, m: dict[str, Any]) -> None:
    """A write that names a uid must name the live object's (the object may have been recreated)."""
    given, live = m.get("uid"), entry.obj["metadata"].get("uid")
    if given and given != live:
        raise uid_precondition_failed(rtype.plural, rtype.group, str(m.get("name", "")), given, live)


def admit(rtype: ResourceType, live: dict[str, Any] | None, obj: dict[str, Any]) -> None:
    """Validation: metadata, CRDs, custom objects against their schema (which also prunes and
    defaults `obj` in place), a few built-in rules; one 422 naming every failing field."""
    m = obj["metadata"]
    name = str(m.get("name", ""))
    causes = meta.validate_name(name, rule=_name_rule(rtype))
    causes += meta.validate_metadata(m)
    if rtype.storage_key == CRD_TYPE.storage_key:
        causes += crds.validate_crd(obj)
        if live is not None and not causes:
            causes += _crd_immutable(live, obj)
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


def _name_rule(rtype: ResourceType) -> str:
    if rtype.group == "rbac.authorization.k8s.io":
        return "path"
    if rtype.group:
        return "subdomain"
    return {"Namespace": "label", "Service": "dns1035"}.get(rtype.kind, "subdomain")


def _crd_immutable(live: dict[str, Any], obj: dict[str, Any]) -> list[Cause]:
    causes = []
    for path in ("group", "scope", "names.plural"):
        new = meta.get_path(obj["spec"], path)
        if meta.get_path(live["spec"], path) != new:
            causes.append(bad_value(f"spec.{path}", new, "field is immutable"))
    return causes
