"""Apply order (Flux's `sort.go`) and the stages of a staged apply."""

from __future__ import annotations

import enum

from reconciler.changeset import ObjectRef

_ORDER = [
    "CustomResourceDefinition",
    "Namespace",
    "ClusterRole",
    "ClusterClass",
    "RuntimeClass",
    "PriorityClass",
    "StorageClass",
    "VolumeSnapshotClass",
    "IngressClass",
    "GatewayClass",
    "ClusterRoleBinding",
    "ResourceQuota",
    "ServiceAccount",
    "Role",
    "RoleBinding",
    "ConfigMap",
    "Secret",
    "Service",
    "LimitRange",
    "Shim",
    "SpinAppExecutor",
    "Deployment",
    "StatefulSet",
    "CronJob",
    "PodDisruptionBudget",
    "SpinApp",
]
_LAST = ["MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"]
_RANK = {kind: i for i, kind in enumerate(_ORDER)}
_RANK.update({kind: 1000 + i for i, kind in enumerate(_LAST)})
_UNKNOWN = 500


class Stage(enum.IntEnum):
    DEFINITIONS = 0  # CRDs, Namespaces, ClusterRoles: wait until established before the rest
    CLASSES = 1  # cluster-wide *Class objects such as RuntimeClass
    REST = 2


def stage_of(kind: str) -> Stage:
    if kind in ("CustomResourceDefinition", "Namespace", "ClusterRole"):
        return Stage.DEFINITIONS
    if kind.endswith("Class"):
        return Stage.CLASSES
    return Stage.REST


def rank(kind: str) -> int:
    return _RANK.get(kind, _UNKNOWN)


def apply_key(ref: ObjectRef) -> tuple[int, str, str, str, str]:
    return (rank(ref.kind), ref.group, ref.kind, ref.namespace or "", ref.name)


def apply_order(refs: list[ObjectRef]) -> list[ObjectRef]:
    return sorted(refs, key=apply_key)


def prune_order(refs: list[ObjectRef]) -> list[ObjectRef]:
    """Reverse apply order: SpinApps before their executors, CRDs and Namespaces last."""
    return sorted(refs, key=apply_key, reverse=True)
