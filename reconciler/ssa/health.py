"""Health of live objects: Deployments available, Jobs complete, CRDs established, SpinApps by
their Available/Progressing conditions; every other kind (custom resources spindle knows nothing
about included) by the kstatus conventions (sigs.k8s.io/cli-utils `kstatus`, as Flux reads them):

- being deleted (`metadata.deletionTimestamp`): Progressing;
- `status.observedGeneration` behind `metadata.generation`: Progressing (its controller has not
  seen the change yet);
- condition `Stalled=True`: Degraded; `Reconciling=True`: Progressing;
- condition `Ready`: `True` Healthy, `False`/`Unknown` Progressing (until the wait times out);
- otherwise (no status, or conditions that follow none of these conventions): Healthy.
"""

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
    return kstatus(obj)


def kstatus(obj: Obj) -> Health:
    """Health of any object by the kstatus conventions (see the module docstring)."""
    meta = obj.get("metadata") or {}
    status = obj.get("status") or {}
    conds = _conditions(obj)
    if meta.get("deletionTimestamp"):
        return Health.PROGRESSING
    generation, observed = meta.get("generation"), status.get("observedGeneration")
    if isinstance(generation, int) and isinstance(observed, int) and observed < generation:
        return Health.PROGRESSING
    if conds.get("Stalled") == "True":
        return Health.DEGRADED
    if conds.get("Reconciling") == "True":
        return Health.PROGRESSING
    if "Ready" in conds:
        return Health.HEALTHY if conds["Ready"] == "True" else Health.PROGRESSING
    return Health.HEALTHY


def is_terminal(health: Health) -> bool:
    return health in (Health.HEALTHY, Health.DEGRADED)


WATCHED_KINDS = frozenset({"Deployment", "Job", "CustomResourceDefinition", "SpinApp"})


def waits_for(kind: str, current: Health) -> bool:
    """Whether a created or configured object is worth waiting for: a watched kind, or any kind
    whose kstatus says it is still on its way."""
    if is_terminal(current):
        return False
    return kind in WATCHED_KINDS or current is Health.PROGRESSING
