"""Schemas of the built-in kinds: field structure from the ``kubernetes`` client's generated models,
list/map semantics from a hand table of k8s.io/api markers (``patchStrategy``/``patchMergeKey``,
``+listType``, ``+listMapKey``, ``+mapType``, ``+structType``), and the defaults that matter."""

from __future__ import annotations

import functools
import re
import sys
import threading
from dataclasses import dataclass
from typing import Any

from kubernetes.client import models as k8s_models

from kubesim.schema import defaults as _defaults
from kubesim.schema.types import (
    GroupVersionKind,
    ListType,
    MapType,
    NodeType,
    ResourceSchema,
    TypeNode,
)


@dataclass(frozen=True, slots=True)
class ListSpec:
    list_type: ListType
    keys: tuple[str, ...] = ()
    patch_strategy: str = ""
    patch_merge_key: str = ""


def _map(*keys: str, strategy: str = "merge", merge_key: str | None = None) -> ListSpec:
    return ListSpec(ListType.MAP, keys, strategy, merge_key or keys[0])


_SET_MERGE = ListSpec(ListType.SET, (), "merge", "")
_SET = ListSpec(ListType.SET)
_CONTAINER_LISTS = {
    "ports": _map("containerPort", "protocol", merge_key="containerPort"),
    "env": _map("name"),
    "volumeMounts": _map("mountPath"),
    "volumeDevices": _map("devicePath"),
}

#: (model, JSON field) → list semantics.  Every list not named here is atomic, as upstream.
LISTS: dict[tuple[str, str], ListSpec] = {
    ("V1ObjectMeta", "finalizers"): _SET_MERGE,
    ("V1ObjectMeta", "ownerReferences"): _map("uid"),
    ("V1PodSpec", "containers"): _map("name"),
    ("V1PodSpec", "initContainers"): _map("name"),
    ("V1PodSpec", "ephemeralContainers"): _map("name"),
    ("V1PodSpec", "volumes"): _map("name", strategy="merge,retainKeys"),
    ("V1PodSpec", "imagePullSecrets"): _map("name"),
    ("V1PodSpec", "hostAliases"): _map("ip"),
    ("V1PodSpec", "topologySpreadConstraints"): _map("topologyKey", "whenUnsatisfiable",
                                                      merge_key="topologyKey"),
    ("V1PodSpec", "resourceClaims"): _map("name", strategy="merge,retainKeys"),
    ("V1PodSpec", "schedulingGates"): _map("name"),
    **{("V1Container", f): s for f, s in _CONTAINER_LISTS.items()},
    **{("V1EphemeralContainer", f): s for f, s in _CONTAINER_LISTS.items()},
    ("V1PodStatus", "conditions"): _map("type"),
    ("V1PodStatus", "podIPs"): _map("ip"),
    ("V1PodStatus", "hostIPs"): _map("ip"),
    ("V1PodStatus", "resourceClaimStatuses"): _map("name", strategy="merge,retainKeys"),
    ("V1ServiceSpec", "ports"): _map("port", "protocol", merge_key="port"),
    ("V1ServiceStatus", "conditions"): _map("type"),
    ("V1ServiceAccount", "secrets"): _map("name"),
    ("V1NodeSpec", "podCIDRs"): _SET_MERGE,
    ("V1NodeStatus", "conditions"): _map("type"),
    ("V1NodeStatus", "addresses"): _map("type"),
    ("V1NamespaceStatus", "conditions"): _map("type"),
    ("V1DeploymentStatus", "conditions"): _map("type"),
    ("V2HorizontalPodAutoscalerStatus", "conditions"): _map("type"),
    ("V1CustomResourceDefinitionStatus", "conditions"): _map("type"),
    # +listType=atomic for SSA, yet strategic merge patch merges by type.
    ("V1JobStatus", "conditions"): ListSpec(ListType.ATOMIC, (), "merge", "type"),
}

#: (model, field) → patchStrategy of struct-valued fields.
FIELD_PATCH_STRATEGIES: dict[tuple[str, str], str] = {
    ("V1DeploymentSpec", "strategy"): "retainKeys",
}

#: Types marked ``+structType=atomic`` (owned and replaced as a whole).
ATOMIC_STRUCTS = frozenset({
    "V1LabelSelector", "V1ObjectReference", "V1LocalObjectReference", "V1TypedLocalObjectReference",
    "V1ConfigMapKeySelector", "V1SecretKeySelector", "V1ObjectFieldSelector", "V1ResourceFieldSelector",
    "V1SecretReference", "V1NodeSelector",
})

#: (model, field) maps marked ``+mapType=atomic``.
ATOMIC_MAPS = frozenset({("V1PodSpec", "nodeSelector"), ("V1ServiceSpec", "selector")})

#: (model, field) holding resource.Quantity values (string or number, SMD "untyped" scalars).
QUANTITY_FIELDS = frozenset({
    ("V1ResourceRequirements", "limits"), ("V1ResourceRequirements", "requests"),
    ("V1VolumeResourceRequirements", "limits"), ("V1VolumeResourceRequirements", "requests"),
    ("V1EmptyDirVolumeSource", "sizeLimit"), ("V1PodSpec", "overhead"),
    ("V1NodeStatus", "capacity"), ("V1NodeStatus", "allocatable"),
    ("V1ContainerStatus", "allocatedResources"), ("V1ResourceFieldSelector", "divisor"),
    ("V2MetricTarget", "averageValue"), ("V2MetricTarget", "value"),
    ("V2MetricValueStatus", "averageValue"), ("V2MetricValueStatus", "value"),
})

#: (model, field) → JSON default declared in the OpenAPI (used to key list-map items).
FIELD_DEFAULTS: dict[tuple[str, str], Any] = {
    ("V1ContainerPort", "protocol"): "TCP",
    ("V1ServicePort", "protocol"): "TCP",
}

_ROOTS_WITH_SPEC_STATUS = ("V1Deployment", "V1Job", "V1Pod", "V1Service", "V1Namespace", "V1Node",
                           "V2HorizontalPodAutoscaler", "V1HorizontalPodAutoscaler",
                           "V1CustomResourceDefinition")

#: (model, field) that are Go non-pointer structs: the API server always serialises them.
ALWAYS_PRESENT: frozenset[tuple[str, str]] = frozenset({
    *((m, f) for m in _ROOTS_WITH_SPEC_STATUS for f in ("spec", "status")),
    ("V1Lease", "spec"),
    ("V1DeploymentSpec", "template"), ("V1DeploymentSpec", "strategy"), ("V1JobSpec", "template"),
    ("V1PodTemplateSpec", "metadata"), ("V1PodTemplateSpec", "spec"),
    ("V1Container", "resources"), ("V1EphemeralContainer", "resources"),
    ("V1ServiceStatus", "loadBalancer"), ("V1NodeStatus", "daemonEndpoints"), ("V1NodeStatus", "nodeInfo"),
    ("V1NodeDaemonEndpoints", "kubeletEndpoint"), ("V1CustomResourceDefinitionSpec", "names"),
    ("V1CustomResourceDefinitionStatus", "acceptedNames"),
})

#: Definitions that live in apimachinery's meta/v1 package rather than k8s.io/api.
_META_TYPES = frozenset({
    "ObjectMeta", "ListMeta", "LabelSelector", "LabelSelectorRequirement", "ManagedFieldsEntry",
    "OwnerReference", "Condition", "Status", "StatusDetails", "StatusCause",
})

_SCALARS = {"str": "string", "int": "integer", "float": "number", "bool": "boolean",
            "datetime": "string", "date": "string"}


@dataclass(frozen=True, slots=True)
class BuiltinKind:
    group: str
    version: str
    kind: str
    model: str
    plural: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    status: bool = False
    scale: bool = False
    categories: tuple[str, ...] = ()
    package: str = ""


BUILTIN_KINDS: tuple[BuiltinKind, ...] = (
    BuiltinKind("", "v1", "Namespace", "V1Namespace", "namespaces", False, ("ns",), status=True),
    BuiltinKind("", "v1", "Node", "V1Node", "nodes", False, ("no",), status=True),
    BuiltinKind("", "v1", "ConfigMap", "V1ConfigMap", "configmaps", True, ("cm",)),
    BuiltinKind("", "v1", "Secret", "V1Secret", "secrets", True),
    BuiltinKind("", "v1", "Service", "V1Service", "services", True, ("svc",), status=True,
                categories=("all",)),
    BuiltinKind("", "v1", "ServiceAccount", "V1ServiceAccount", "serviceaccounts", True, ("sa",)),
    BuiltinKind("", "v1", "Event", "CoreV1Event", "events", True, ("ev",)),
    BuiltinKind("", "v1", "Pod", "V1Pod", "pods", True, ("po",), status=True, categories=("all",)),
    BuiltinKind("apps", "v1", "Deployment", "V1Deployment", "deployments", True, ("deploy",), status=True,
                scale=True, categories=("all",)),
    BuiltinKind("batch", "v1", "Job", "V1Job", "jobs", True, (), status=True, categories=("all",)),
    BuiltinKind("node.k8s.io", "v1", "RuntimeClass", "V1RuntimeClass", "runtimeclasses", False),
    BuiltinKind("coordination.k8s.io", "v1", "Lease", "V1Lease", "leases", True),
    BuiltinKind("autoscaling", "v2", "HorizontalPodAutoscaler", "V2HorizontalPodAutoscaler",
                "horizontalpodautoscalers", True, ("hpa",), status=True, categories=("all",)),
    BuiltinKind("autoscaling", "v1", "HorizontalPodAutoscaler", "V1HorizontalPodAutoscaler",
                "horizontalpodautoscalers", True, ("hpa",), status=True, categories=("all",),
                package="io.k8s.api.autoscaling.v1"),
    BuiltinKind("rbac.authorization.k8s.io", "v1", "Role", "V1Role", "roles", True),
    BuiltinKind("rbac.authorization.k8s.io", "v1", "ClusterRole", "V1ClusterRole", "clusterroles", False),
    BuiltinKind("rbac.authorization.k8s.io", "v1", "RoleBinding", "V1RoleBinding", "rolebindings", True),
    BuiltinKind("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "V1ClusterRoleBinding",
                "clusterrolebindings", False),
    BuiltinKind("apiextensions.k8s.io", "v1", "CustomResourceDefinition", "V1CustomResourceDefinition",
                "customresourcedefinitions", False, ("crd", "crds"), status=True),
)

_GROUP_PACKAGE = {
    "": "io.k8s.api.core.v1", "apps": "io.k8s.api.apps.v1", "batch": "io.k8s.api.batch.v1",
    "node.k8s.io": "io.k8s.api.node.v1", "coordination.k8s.io": "io.k8s.api.coordination.v1",
    "autoscaling": "io.k8s.api.autoscaling.v2", "rbac.authorization.k8s.io": "io.k8s.api.rbac.v1",
    "apiextensions.k8s.io": "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1",
}

_PREFIX = re.compile(r"^(?:CoreV1|V\d+(?:alpha\d+|beta\d+)?)")
_REQUIRED = re.compile(r"Invalid value for `(\w+)`, must not be `None`")


def _short_name(model: str) -> str:
    return _PREFIX.sub("", model)


@functools.cache
def _required_attrs(model: str) -> frozenset[str]:
    cls = getattr(k8s_models, model)
    path = getattr(sys.modules[cls.__module__], "__file__", None)
    if not path:
        return frozenset()
    with open(path, encoding="utf-8") as f:
        return frozenset(_REQUIRED.findall(f.read()))


def _description(cls: Any, attr: str) -> str:
    doc = getattr(getattr(cls, attr, None), "__doc__", None) or ""
    parts = [p.strip() for p in doc.split("\n\n")]
    text = parts[1] if len(parts) > 2 else ""
    return text.replace("  # noqa: E501", "").strip()


class _Builder:
    def __init__(self) -> None:
        self.nodes: dict[str, TypeNode] = {}
        self.package: dict[str, str] = {}
        self.current_package = "io.k8s.api.core.v1"

    def model(self, model: str) -> TypeNode:
        node = self.nodes.get(model)
        if node is not None:
            return node
        cls = getattr(k8s_models, model)
        short = _short_name(model)
        pkg = "io.k8s.apimachinery.pkg.apis.meta.v1" if short in _META_TYPES else self.current_package
        node = TypeNode(NodeType.STRUCT, name=f"{pkg}.{short}")
        self.nodes[model] = node
        if model in ATOMIC_STRUCTS:
            node.map_type = MapType.ATOMIC
        node.present_fields = frozenset(
            cls.attribute_map[a] for a in cls.openapi_types if (model, cls.attribute_map[a]) in ALWAYS_PRESENT
        )
        node.description = (cls.__doc__ or "").split("NOTE:")[0].strip()
        if node.description.startswith("NOTE") or "Auto generated" in node.description:
            node.description = ""
        required = _required_attrs(model)
        req_json: list[str] = []
        for attr, t in cls.openapi_types.items():
            jname = cls.attribute_map[attr]
            child = self.type_string(t, model, jname)
            desc = _description(cls, attr)
            if desc:
                node.field_descriptions[jname] = desc
                if not child.description and child.type is not NodeType.STRUCT:
                    child.description = desc
            node.fields[jname] = child
            strategy = FIELD_PATCH_STRATEGIES.get((model, jname))
            if strategy:
                node.field_patch_strategies[jname] = strategy
            if attr in required:
                req_json.append(jname)
        node.required = tuple(req_json)
        return node

    def type_string(self, t: str, model: str, field: str) -> TypeNode:
        if t in _SCALARS:
            n = TypeNode(NodeType.SCALAR, scalar=_SCALARS[t])
            if t == "str" and (model, field) in QUANTITY_FIELDS:
                n.scalar = "quantity"
            if t == "datetime":
                n.format = "date-time"
            default = FIELD_DEFAULTS.get((model, field))
            if default is not None:
                n.default = default
            return n
        if t == "object":
            return TypeNode(NodeType.UNTYPED)
        if t.startswith("list["):
            item = self.type_string(t[5:-1], model, field)
            spec = LISTS.get((model, field))
            n = TypeNode(NodeType.LIST, item=item)
            if spec is None and item.type is not NodeType.STRUCT and item.type is not NodeType.UNTYPED:
                n.list_type = ListType.ATOMIC
            elif spec is not None:
                n.list_type = spec.list_type
                n.keys = spec.keys
                n.patch_strategy = spec.patch_strategy
                n.patch_merge_key = spec.patch_merge_key
            return n
        if t.startswith("dict("):
            inner = t[len("dict(str, "):-1]
            n = TypeNode(NodeType.MAP, item=self.type_string(inner, model, field))
            if (model, field) in ATOMIC_MAPS:
                n.map_type = MapType.ATOMIC
            return n
        return self.model(t)


#: Kinds whose status strategy (PrepareForUpdate of pkg/registry/*/*/strategy.go) resets only the
#: spec, so a status write may change labels and annotations too.
_STATUS_METADATA: dict[tuple[str, str], tuple[str, ...]] = {
    (group, kind): ("labels", "annotations")
    for group, kind in (("", "Pod"), ("", "Node"), ("", "Namespace"), ("", "Service"), ("batch", "Job"),
                        ("autoscaling", "HorizontalPodAutoscaler"))
}


@functools.lru_cache(maxsize=1)
def _build_all() -> dict[GroupVersionKind, ResourceSchema]:
    b = _Builder()
    out: dict[GroupVersionKind, ResourceSchema] = {}
    for k in BUILTIN_KINDS:
        b.current_package = k.package or _GROUP_PACKAGE[k.group]
        root = b.model(k.model)
        gvk = GroupVersionKind(k.group, k.version, k.kind)
        if k.model == "CoreV1Event":
            root.name = "io.k8s.api.core.v1.Event"
        out[gvk] = ResourceSchema(
            gvk=gvk,
            root=root,
            plural=k.plural,
            singular=k.kind.lower(),
            namespaced=k.namespaced,
            short_names=k.short_names,
            categories=k.categories,
            status_subresource=k.status,
            scale_subresource=k.scale,
            status_metadata=_STATUS_METADATA.get((k.group, k.kind), ()),
            builtin=True,
            defaulter=_defaults.BUILTIN_DEFAULTERS.get(k.kind),
        )
    # apiVersion/kind/metadata of every kind are plain; metadata is always serialised.
    return out


_BUILD_LOCK = threading.Lock()


def builtin_schemas() -> dict[GroupVersionKind, ResourceSchema]:
    """All built-in kinds, built once (about 0.3 s, thread-safe) and cached."""
    with _BUILD_LOCK:
        return _build_all()

