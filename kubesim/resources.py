"""The resource types kubesim serves: the built-ins and, at run time, those CRDs add.

A `ResourceType` is one REST resource (`deployments` in `apps/v1`); objects are stored under its
`storage_key` (`deployments.apps`), which does not depend on the version, so a CRD that serves
two versions keeps one set of objects.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True)
class ResourceType:
    group: str
    version: str
    kind: str
    plural: str
    singular: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    status: bool = False  # serves the `status` subresource; the main resource then ignores status
    scale: bool = False  # serves the `scale` subresource (spec.replicas)
    generation: bool = False  # metadata.generation counts spec changes
    crd: bool = False
    # For CRDs: the version's openAPIV3Schema, and the scale subresource's paths.
    schema: dict[str, Any] | None = field(default=None, compare=False, hash=False)
    printer_columns: tuple[dict[str, Any], ...] = field(default=(), compare=False, hash=False)
    selectable_fields: tuple[dict[str, Any], ...] = field(default=(), compare=False, hash=False)
    # The scale subresource's paths: specReplicasPath, statusReplicasPath, labelSelectorPath ("" if none).
    scale_paths: tuple[str, str, str] = (".spec.replicas", ".status.replicas", "")
    # For CRDs: the version's kubesim.schema.ResourceSchema (built-ins look theirs up by kind).
    ssa_schema: Any = field(default=None, compare=False, hash=False)

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def storage_key(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    def is_core(self, kind: str) -> bool:
        """This is the core (v1) `kind`, not a custom kind that happens to share its name."""
        return self.kind == kind and not self.group


def _b(
    group: str,
    version: str,
    kind: str,
    plural: str,
    namespaced: bool,
    short: tuple[str, ...] = (),
    *,
    status: bool = False,
    scale: bool = False,
    generation: bool = False,
    categories: tuple[str, ...] = (),
) -> ResourceType:
    return ResourceType(
        group,
        version,
        kind,
        plural,
        kind.lower(),
        namespaced,
        short,
        categories,
        status=status,
        scale=scale,
        generation=generation,
    )


BUILTINS: tuple[ResourceType, ...] = (
    _b("", "v1", "Namespace", "namespaces", False, ("ns",), status=True),
    _b("", "v1", "Node", "nodes", False, ("no",), status=True),
    _b("", "v1", "ConfigMap", "configmaps", True, ("cm",)),
    _b("", "v1", "Secret", "secrets", True),
    _b("", "v1", "Service", "services", True, ("svc",), status=True, categories=("all",)),
    _b("", "v1", "ServiceAccount", "serviceaccounts", True, ("sa",)),
    _b("", "v1", "Event", "events", True, ("ev",)),
    _b("", "v1", "Pod", "pods", True, ("po",), status=True, categories=("all",)),
    _b(
        "apps",
        "v1",
        "Deployment",
        "deployments",
        True,
        ("deploy",),
        status=True,
        scale=True,
        generation=True,
        categories=("all",),
    ),
    _b("batch", "v1", "Job", "jobs", True, (), status=True, generation=True, categories=("all",)),
    _b("node.k8s.io", "v1", "RuntimeClass", "runtimeclasses", False),
    _b("coordination.k8s.io", "v1", "Lease", "leases", True),
    *(
        _b(
            "autoscaling",
            version,
            "HorizontalPodAutoscaler",
            "horizontalpodautoscalers",
            True,
            ("hpa",),
            status=True,
            generation=True,
            categories=("all",),
        )
        for version in ("v2", "v1")  # both read the one stored (v2) object, converted: `kubesim.conversion`
    ),
    _b("rbac.authorization.k8s.io", "v1", "Role", "roles", True),
    _b("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", True),
    _b("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", False),
    _b("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings", False),
    _b(
        "apiextensions.k8s.io",
        "v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
        False,
        ("crd", "crds"),
        status=True,
        generation=True,
    ),
)

CRD_TYPE = BUILTINS[-1]
NAMESPACE_TYPE = BUILTINS[0]
DEFAULT_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


def group_versions(types: list[ResourceType]) -> dict[str, list[str]]:
    """group → versions served, in first-seen order (the first is the preferred one)."""
    out: dict[str, list[str]] = {}
    for t in types:
        versions = out.setdefault(t.group, [])
        if t.version not in versions:
            versions.append(t.version)
    return out


def resource_entries(types: list[ResourceType]) -> list[dict[str, Any]]:
    """The `resources` of an APIResourceList, subresources included."""
    out: list[dict[str, Any]] = []
    for t in types:
        entry: dict[str, Any] = {
            "name": t.plural,
            "singularName": t.singular,
            "namespaced": t.namespaced,
            "kind": t.kind,
            "verbs": list(VERBS),
        }
        if t.short_names:
            entry["shortNames"] = list(t.short_names)
        if t.categories:
            entry["categories"] = list(t.categories)
        out.append(entry)
        if t.status:
            out.append(
                {
                    "name": f"{t.plural}/status",
                    "singularName": "",
                    "namespaced": t.namespaced,
                    "kind": t.kind,
                    "verbs": ["get", "patch", "update"],
                }
            )
        if t.is_core("ServiceAccount"):
            out.append(
                {
                    "name": "serviceaccounts/token",
                    "singularName": "",
                    "namespaced": True,
                    "group": "authentication.k8s.io",
                    "version": "v1",
                    "kind": "TokenRequest",
                    "verbs": ["create"],
                }
            )
        if t.scale:
            out.append(
                {
                    "name": f"{t.plural}/scale",
                    "singularName": "",
                    "namespaced": t.namespaced,
                    "group": "autoscaling",
                    "version": "v1",
                    "kind": "Scale",
                    "verbs": ["get", "patch", "update"],
                }
            )
    return out
