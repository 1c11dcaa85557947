"""Health of live objects: Deployments available, Jobs complete, CRDs established, SpinApps by
their Available/Progressing conditions; kinds without a status are healthy once they exist."""

from __future__ import annotations

from typing import Any

from reconciler.changeset import Health

Obj = dict[str, Any]


def _conditions(obj: Obj) -> dict[str, str]:
    conds = (obj.get("status") or {}).get("conditions") or []
    return {str(c.get("type")): str(c.get("status")) for c in conds if isinstance(c, dict)}


def of(obj: Obj | None) -> Health:
    if obj is None:
        return Health.UNKNOWN
    kind = obj.get("kind")
    status = obj.get("status") or {}
    conds = _conditions(obj)
    if kind == "Deployment":
        generation = (obj.get("metadata") or {}).get("generation")
        observed = status.get("observedGeneration")
        if generation is not None and observed is not None and observed < generation:
            return Health.PROGRESSING
        if conds.get("Progressing") == "False":
            return Health.DEGRADED
        want = (obj.get("spec") or {}).get("replicas", 1)
        if conds.get("Available") == "True" and status.get("availableReplicas", 0) >= want:
            return Health.HEALTHY
        if want == 0 and observed is not None:
            return Health.HEALTHY
        return Health.PROGRESSING
    if kind == "Job":
        if conds.get("Complete") == "True" or conds.get("SuccessCriteriaMet") == "True":
            return Health.HEALTHY
        if conds.get("Failed") == "True":
            return Health.DEGRADED
        return Health.PROGRESSING
    if kind == "CustomResourceDefinition":
        return Health.HEALTHY if conds.get("Established") == "True" else Health.PROGRESSING
    if kind == "SpinApp":
        if conds.get("Available") == "True":
            return Health.HEALTHY
        if conds.get("Progressing") == "True" or not conds:
            return Health.PROGRESSING
        return Health.DEGRADED
    return Health.HEALTHY


def is_terminal(health: Health) -> bool:
    return health in (Health.HEALTHY, Health.DEGRADED)


WATCHED_KINDS = frozenset({"Deployment", "Job", "CustomResourceDefinition", "SpinApp"})
