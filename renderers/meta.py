"""Label and annotation keys spindle writes, the ones SpinKube's operators use, and the
SpinKube API identities (groups, versions, kinds).

Kept in one module so the renderers, the reconciler and the tests agree on every key.
"""

from __future__ import annotations

import difflib

# spindle's own marks on every rendered object.
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY_VALUE = "spindle"
SOURCE_PATH_ANNOTATION = "spindle.dev/source-path"

# spin-operator (pkg/spinapp, internal/constants).
SPINAPP_NAME_LABEL = "core.spinkube.dev/app-name"
SPINAPP_STATUS_LABEL_TEMPLATE = "core.spinkube.dev/app.{app}.status"
SPINAPP_STATUS_READY = "ready"
SPIN_OPERATOR_MANAGED_BY = "spin-operator.spinkube.dev"

# runtime-class-manager (shim_controller.go).
RCM_NODE_NAME_KEY = "spinkube.dev/nodeName"
RCM_SHIM_NAME_KEY = "spinkube.dev/shimName"
RCM_OPERATION_KEY = "spinkube.dev/operation"
RCM_JOB_KEY = "spinkube.dev/job"

SPINKUBE_DOMAIN = ".spinkube.dev"
SPINAPP_GROUP = "core.spinkube.dev"
SHIM_GROUP = "runtime.spinkube.dev"
SPINAPP_API_VERSION = f"{SPINAPP_GROUP}/v1alpha1"
SHIM_API_VERSION = f"{SHIM_GROUP}/v1alpha1"

# The kinds of each SpinKube API version, and the groups they had before being renamed.
SPINKUBE_KINDS = {SPINAPP_API_VERSION: ("SpinApp", "SpinAppExecutor"), SHIM_API_VERSION: ("Shim",)}
RENAMED_GROUPS = {
    "core.spinoperator.dev": "core.spinkube.dev (renamed in spin-operator v0.4.0)",
    "runtime.kwasm.sh": "runtime.spinkube.dev (renamed in runtime-class-manager in 2025)",
}


def spinkube_kind_problem(api_version: str, kind: str) -> str | None:
    """Why an object must not be passed through to the cluster as it is: a SpinKube kind under
    the wrong (or an old) API group or version, or an unknown kind or version of a SpinKube
    group. None for every other object."""
    group = api_version.rpartition("/")[0]
    for expected, kinds in SPINKUBE_KINDS.items():
        if api_version == expected:
            if kind in kinds:
                return None
            return f"unknown kind {kind!r} in {api_version} (expected {' or '.join(kinds)})"
        if kind in kinds:
            if group in RENAMED_GROUPS:
                return f"{kind} uses the old API group {group}: use {RENAMED_GROUPS[group]}, i.e. {expected}"
            return f"{kind} must have apiVersion {expected}, not {api_version!r}"
    if group in RENAMED_GROUPS:
        return f"the old API group {group} is not served: use {RENAMED_GROUPS[group]}"
    if group.endswith(SPINKUBE_DOMAIN):
        known = ", ".join(SPINKUBE_KINDS)
        return f"{api_version} is not a served version of a SpinKube API (spindle knows {known})"
    return None


# Built-in API versions whose kinds are a closed set in every Kubernetes release spindle targets,
# so a kind they do not serve is a typo (the apply would fail with "no matches for kind").
BUILTIN_KINDS = {
    "v1": (
        "Binding", "ComponentStatus", "ConfigMap", "Endpoints", "Event", "LimitRange", "Namespace",
        "Node", "PersistentVolume", "PersistentVolumeClaim", "Pod", "PodTemplate",
        "ReplicationController", "ResourceQuota", "Secret", "Service", "ServiceAccount",
    ),
    "apps/v1": ("ControllerRevision", "DaemonSet", "Deployment", "ReplicaSet", "StatefulSet"),
    "batch/v1": ("CronJob", "Job"),
    "rbac.authorization.k8s.io/v1": ("ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"),
    "autoscaling/v1": ("HorizontalPodAutoscaler",),
    "autoscaling/v2": ("HorizontalPodAutoscaler",),
}


def builtin_kind_problem(api_version: str, kind: str) -> tuple[str, str] | None:
    """(field to fix, why) when a kind cannot be right for one of the closed built-in API
    versions: a misspelled kind, or the kind of another of them under the wrong apiVersion.
    None otherwise, and for every other API group."""
    kinds = BUILTIN_KINDS.get(api_version)
    if kinds is None or kind in kinds or kind.endswith("List"):
        return None
    served_by = [version for version, known in BUILTIN_KINDS.items() if kind in known]
    if served_by:
        return "apiVersion", f"{kind} is served by apiVersion {served_by[-1]}, not {api_version}"
    close = difflib.get_close_matches(kind, kinds, n=1, cutoff=0.6) or [
        k for k in kinds if k.lower() == kind.lower()
    ]
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return "kind", f"unknown kind {kind!r} in {api_version}{hint}"


def status_label(app: str) -> str:
    return SPINAPP_STATUS_LABEL_TEMPLATE.format(app=app)
