"""DELETE requests before they touch the store: the options (propagationPolicy, orphanDependents,
dryRun, preconditions, from the query or a DeleteOptions body) and the shape of the answer."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kubesim.bodies import decode
from kubesim.calls import Call, Reply
from kubesim.errors import ApiError, Cause, invalid, uid_precondition_failed
from kubesim.storage import Entry

POLICIES = ("Background", "Foreground", "Orphan")

# Finalizers of the garbage collector (foreground deletion: dependents first; orphan: drop their
# ownerReferences first) and of the namespace controller (empty the namespace first).
FOREGROUND_FINALIZER = "foregroundDeletion"
ORPHAN_FINALIZER = "orphan"
NAMESPACE_FINALIZER = "kubernetes"


@dataclass(frozen=True)
class DeleteOptions:
    policy: str | None
    dry_run: bool
    preconditions: dict[str, Any] = field(default_factory=dict)


def delete_options(call: Call) -> DeleteOptions:
    opts: dict[str, Any] = decode(call.body, allow_yaml=False) if call.body.strip() else {}
    policy = call.query.get("propagationPolicy") or opts.get("propagationPolicy")
    if opts.get("orphanDependents") is True or call.query.get("orphanDependents") == "true":
        policy = policy or "Orphan"
    if policy not in (None, *POLICIES):
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
    return DeleteOptions(policy, dry, opts.get("preconditions") or {})


def check_preconditions(call: Call, entry: Entry, pre: dict[str, Any]) -> None:
    """409 when the object is not the one (uid) or not the version (resourceVersion) the client named."""
    rtype = call.rtype
    live_uid = entry.obj["metadata"].get("uid")
    if pre.get("uid") and pre["uid"] != live_uid:
        raise uid_precondition_failed(rtype.plural, rtype.group, call.name, pre["uid"], live_uid)
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


def answer(call: Call, reply: Reply, dry_run: bool) -> Reply:
    """Deleted at once: most built-ins answer a Status; custom objects, Pods and anything that is
    still waiting (finalizers, foreground, namespaces) answer the object, like the real server."""
    rtype = call.rtype
    body = reply.body or {}
    pending = bool(body.get("metadata", {}).get("deletionTimestamp")) and not dry_run
    if rtype.crd or pending or (rtype.is_core("Pod")):
        return reply
    m = body.get("metadata", {})
    details = {"name": m.get("name", call.name), "kind": rtype.plural, "uid": m.get("uid", "")}
    if rtype.group:
        details["group"] = rtype.group
    return Reply(
        200,
        {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details},
    )
