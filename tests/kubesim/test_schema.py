"""Type schemas (kubesim.schema): built-in list/map semantics and defaults, CRD schemas, OpenAPI."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from kubesim import schema as ks
from kubesim import ssa
from kubesim.schema import ListType, MapType, NodeType


def s(api_version: str, kind: str) -> ks.ResourceSchema:
    found = ks.schema_for(api_version, kind)
    assert found is not None, (api_version, kind)
    return found


KINDS = [
    ("v1", "Namespace", "namespaces", False),
    ("v1", "Node", "nodes", False),
    ("v1", "ConfigMap", "configmaps", True),
    ("v1", "Secret", "secrets", True),
    ("v1", "Service", "services", True),
    ("v1", "ServiceAccount", "serviceaccounts", True),
    ("v1", "Event", "events", True),
    ("v1", "Pod", "pods", True),
    ("apps/v1", "Deployment", "deployments", True),
    ("batch/v1", "Job", "jobs", True),
    ("node.k8s.io/v1", "RuntimeClass", "runtimeclasses", False),
    ("coordination.k8s.io/v1", "Lease", "leases", True),
    ("autoscaling/v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers", True),
    ("rbac.authorization.k8s.io/v1", "Role", "roles", True),
    ("rbac.authorization.k8s.io/v1", "ClusterRole", "clusterroles", False),
    ("rbac.authorization.k8s.io/v1", "RoleBinding", "rolebindings", True),
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", "clusterrolebindings", False),
    ("apiextensions.k8s.io/v1", "CustomResourceDefinition", "customresourcedefinitions", False),
]


@pytest.mark.parametrize(("api_version", "kind", "plural", "namespaced"), KINDS)
def test_builtin_kinds(api_version: str, kind: str, plural: str, namespaced: bool) -> None:
    sc = s(api_version, kind)
    assert (sc.plural, sc.namespaced, sc.api_version, sc.kind) == (plural, namespaced, api_version, kind)
    assert {"apiVersion", "kind", "metadata"} <= set(sc.root.fields)


def test_unknown_kind_is_none() -> None:
    assert ks.schema_for("apps/v1", "StatefulSetX") is None


P = ("spec", "template", "spec")


@pytest.mark.parametrize(
    ("api_version", "kind", "path", "list_type", "keys"),
    [
        ("apps/v1", "Deployment", (*P, "containers"), ListType.MAP, ("name",)),
        ("apps/v1", "Deployment", (*P, "initContainers"), ListType.MAP, ("name",)),
        ("apps/v1", "Deployment", (*P, "containers", "ports"), ListType.MAP, ("containerPort", "protocol")),
        ("apps/v1", "Deployment", (*P, "containers", "env"), ListType.MAP, ("name",)),
        ("apps/v1", "Deployment", (*P, "containers", "envFrom"), ListType.ATOMIC, ()),
        ("apps/v1", "Deployment", (*P, "containers", "volumeMounts"), ListType.MAP, ("mountPath",)),
        ("apps/v1", "Deployment", (*P, "containers", "args"), ListType.ATOMIC, ()),
        ("apps/v1", "Deployment", (*P, "volumes"), ListType.MAP, ("name",)),
        ("apps/v1", "Deployment", (*P, "imagePullSecrets"), ListType.MAP, ("name",)),
        ("apps/v1", "Deployment", (*P, "tolerations"), ListType.ATOMIC, ()),
        ("apps/v1", "Deployment", ("status", "conditions"), ListType.MAP, ("type",)),
        ("apps/v1", "Deployment", ("metadata", "finalizers"), ListType.SET, ()),
        ("apps/v1", "Deployment", ("metadata", "ownerReferences"), ListType.MAP, ("uid",)),
        ("v1", "Service", ("spec", "ports"), ListType.MAP, ("port", "protocol")),
        ("v1", "Pod", ("spec", "containers"), ListType.MAP, ("name",)),
        ("v1", "Pod", ("status", "conditions"), ListType.MAP, ("type",)),
        ("batch/v1", "Job", (*P, "containers"), ListType.MAP, ("name",)),
        ("batch/v1", "Job", ("status", "conditions"), ListType.ATOMIC, ()),
        ("rbac.authorization.k8s.io/v1", "Role", ("rules",), ListType.ATOMIC, ()),
        ("v1", "Node", ("status", "addresses"), ListType.MAP, ("type",)),
        ("autoscaling/v2", "HorizontalPodAutoscaler", ("status", "conditions"), ListType.MAP, ("type",)),
    ],
)
def test_list_semantics(
    api_version: str, kind: str, path: tuple[str, ...], list_type: ListType, keys: tuple[str, ...]
) -> None:
    node = s(api_version, kind).field(*path)
    assert node is not None and node.type is NodeType.LIST
    assert (node.list_type, node.keys) == (list_type, keys)


@pytest.mark.parametrize(
    ("api_version", "kind", "path", "map_type"),
    [
        ("apps/v1", "Deployment", ("spec", "selector"), MapType.ATOMIC),
        ("apps/v1", "Deployment", (*P, "nodeSelector"), MapType.ATOMIC),
        ("apps/v1", "Deployment", ("metadata", "labels"), MapType.GRANULAR),
        ("v1", "Service", ("spec", "selector"), MapType.ATOMIC),
        ("v1", "ConfigMap", ("data",), MapType.GRANULAR),
        ("apps/v1", "Deployment", (*P, "containers", "env", "valueFrom", "secretKeyRef"), MapType.ATOMIC),
    ],
)
def test_map_semantics(api_version: str, kind: str, path: tuple[str, ...], map_type: MapType) -> None:
    node = s(api_version, kind).field(*path)
    assert node is not None and node.map_type is map_type


def defaulted(api_version: str, kind: str, obj: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(obj)
    ks.default_object(s(api_version, kind), out)
    return out


@pytest.mark.parametrize(
    ("image", "policy"),
    [
        ("nginx", "Always"),
        ("nginx:latest", "Always"),
        ("nginx:1.25", "IfNotPresent"),
        ("reg:5000/nginx", "Always"),
        ("reg:5000/nginx:2", "IfNotPresent"),
        ("x@sha256:abc", "IfNotPresent"),
    ],
)
def test_image_pull_policy_default(image: str, policy: str) -> None:
    pod = defaulted("v1", "Pod", {"spec": {"containers": [{"name": "c", "image": image}]}})
    assert pod["spec"]["containers"][0]["imagePullPolicy"] == policy


def test_pod_defaults() -> None:
    pod = defaulted(
        "v1",
        "Pod",
        {
            "spec": {
                "containers": [
                    {
                        "name": "c",
                        "image": "i",
                        "ports": [{"containerPort": 1}],
                        "readinessProbe": {"httpGet": {"port": 8}},
                    }
                ],
                "volumes": [{"name": "v", "configMap": {"name": "m"}}, {"name": "e"}],
            }
        },
    )
    spec = pod["spec"]
    assert {
        k: spec[k]
        for k in (
            "dnsPolicy",
            "restartPolicy",
            "schedulerName",
            "terminationGracePeriodSeconds",
            "securityContext",
            "enableServiceLinks",
        )
    } == {
        "dnsPolicy": "ClusterFirst",
        "restartPolicy": "Always",
        "schedulerName": "default-scheduler",
        "terminationGracePeriodSeconds": 30,
        "securityContext": {},
        "enableServiceLinks": True,
    }
    c = spec["containers"][0]
    assert c["ports"] == [{"containerPort": 1, "protocol": "TCP"}]
    assert c["readinessProbe"] == {
        "httpGet": {"port": 8, "path": "/", "scheme": "HTTP"},
        "timeoutSeconds": 1,
        "periodSeconds": 10,
        "successThreshold": 1,
        "failureThreshold": 3,
    }
    assert spec["volumes"] == [
        {"name": "v", "configMap": {"name": "m", "defaultMode": 420}},
        {"name": "e", "emptyDir": {}},
    ]
    assert pod["status"] == {}


@pytest.mark.parametrize(
    ("api_version", "kind", "obj", "expected"),
    [
        ("v1", "Secret", {"data": {}}, {"type": "Opaque"}),
        ("v1", "Secret", {"type": "kubernetes.io/tls"}, {"type": "kubernetes.io/tls"}),
        (
            "v1",
            "Service",
            {"spec": {"ports": [{"port": 80}]}},
            {
                "spec": {
                    "type": "ClusterIP",
                    "sessionAffinity": "None",
                    "internalTrafficPolicy": "Cluster",
                    "ports": [{"port": 80, "protocol": "TCP", "targetPort": 80}],
                }
            },
        ),
        (
            "batch/v1",
            "Job",
            {"spec": {"template": {"spec": {"containers": []}}}},
            {
                "spec": {
                    "completions": 1,
                    "parallelism": 1,
                    "backoffLimit": 6,
                    "completionMode": "NonIndexed",
                    "suspend": False,
                    "podReplacementPolicy": "TerminatingOrFailed",
                }
            },
        ),
        (
            "v1",
            "Namespace",
            {"metadata": {"name": "team"}},
            {
                "metadata": {"labels": {"kubernetes.io/metadata.name": "team"}},
                "spec": {"finalizers": ["kubernetes"]},
                "status": {"phase": "Active"},
            },
        ),
        (
            "rbac.authorization.k8s.io/v1",
            "RoleBinding",
            {"subjects": [{"kind": "User", "name": "u"}]},
            {"subjects": [{"kind": "User", "name": "u", "apiGroup": "rbac.authorization.k8s.io"}]},
        ),
        (
            "apiextensions.k8s.io/v1",
            "CustomResourceDefinition",
            {"spec": {"names": {"kind": "SpinApp"}}},
            {
                "spec": {
                    "conversion": {"strategy": "None"},
                    "names": {"singular": "spinapp", "listKind": "SpinAppList"},
                }
            },
        ),
    ],
)
def test_kind_defaults(api_version: str, kind: str, obj: dict[str, Any], expected: dict[str, Any]) -> None:
    got = defaulted(api_version, kind, obj)

    def contains(big: Any, small: Any) -> bool:
        if isinstance(small, dict):
            return isinstance(big, dict) and all(k in big and contains(big[k], v) for k, v in small.items())
        return bool(big == small)

    assert contains(got, expected), got


def test_drop_unknown_keeps_declared_fields_only() -> None:
    sc = s("v1", "ConfigMap")
    out = ks.drop_unknown(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "data": {"a": "b"},
            "bogus": 1,
            "metadata": {"name": "x", "nope": 2},
        },
        sc.root,
    )
    assert out == {"apiVersion": "v1", "kind": "ConfigMap", "data": {"a": "b"}, "metadata": {"name": "x"}}


# --- CRDs --------------------------------------------------------------------------------------------

CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "spinapps.core.spinkube.dev"},
    "spec": {
        "group": "core.spinkube.dev",
        "names": {"kind": "SpinApp", "plural": "spinapps", "singular": "spinapp", "shortNames": ["spinapp"]},
        "scope": "Namespaced",
        "versions": [
            {
                "name": "v1alpha1",
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "properties": {
                                    "image": {"type": "string"},
                                    "replicas": {"type": "integer", "default": 1},
                                    "executor": {"type": "string"},
                                    "variables": {
                                        "type": "array",
                                        "items": {
                                            "type": "object",
                                            "properties": {
                                                "name": {"type": "string"},
                                                "value": {"type": "string"},
                                            },
                                        },
                                    },
                                    "ports": {
                                        "type": "array",
                                        "x-kubernetes-list-type": "map",
                                        "x-kubernetes-list-map-keys": ["port", "protocol"],
                                        "items": {
                                            "type": "object",
                                            "required": ["port"],
                                            "properties": {
                                                "port": {"type": "integer"},
                                                "protocol": {"type": "string", "default": "TCP"},
                                            },
                                        },
                                    },
                                    "tags": {
                                        "type": "array",
                                        "x-kubernetes-list-type": "set",
                                        "items": {"type": "string"},
                                    },
                                    "selector": {
                                        "type": "object",
                                        "x-kubernetes-map-type": "atomic",
                                        "additionalProperties": {"type": "string"},
                                    },
                                    "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                                    "size": {"x-kubernetes-int-or-string": True},
                                },
                            },
                            "status": {"type": "object", "properties": {"ready": {"type": "boolean"}}},
                        },
                    }
                },
            },
            {"name": "v0", "served": False, "storage": False},
        ],
    },
}


def spinapp_schema() -> ks.ResourceSchema:
    [sc] = ks.crd_schemas(CRD)
    return sc


def test_crd_schema_shape() -> None:
    sc = spinapp_schema()
    assert (sc.api_version, sc.kind, sc.plural, sc.namespaced, sc.status_subresource, sc.builtin) == (
        "core.spinkube.dev/v1alpha1",
        "SpinApp",
        "spinapps",
        True,
        True,
        False,
    )
    assert sc.short_names == ("spinapp",)
    variables, ports, tags = (sc.field("spec", n) for n in ("variables", "ports", "tags"))
    assert variables is not None and variables.list_type is ListType.ATOMIC
    assert ports is not None and (ports.list_type, ports.keys) == (ListType.MAP, ("port", "protocol"))
    assert tags is not None and tags.list_type is ListType.SET
    sel = sc.field("spec", "selector")
    assert sel is not None and sel.type is NodeType.MAP and sel.map_type is MapType.ATOMIC
    extra = sc.field("spec", "extra")
    assert extra is not None and extra.preserve_unknown
    assert sc.root.fields["metadata"] is ks.object_meta_node()


def spinapp(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "core.spinkube.dev/v1alpha1",
        "kind": "SpinApp",
        "metadata": {"name": "hello", "namespace": "default"},
        "spec": spec,
    }


def crd_apply(
    live: dict[str, Any] | None,
    cfg: dict[str, Any],
    manager: str,
    force: bool = False,
) -> ssa.ApplyResult:
    return ssa.apply(
        live,
        cfg,
        manager=manager,
        api_version="core.spinkube.dev/v1alpha1",
        force=force,
        schema=spinapp_schema(),
        now="2026-01-01T00:00:00Z",
    )


def test_crd_apply_defaults_and_keys() -> None:
    r = crd_apply(None, spinapp(image="x", ports=[{"port": 80}], extra={"any": {"thing": [1]}}), "a")
    assert r.object["spec"]["replicas"] == 1
    assert r.object["spec"]["ports"] == [{"port": 80, "protocol": "TCP"}]
    fields = r.object["metadata"]["managedFields"][0]["fieldsV1"]["f:spec"]
    assert 'k:{"port":80,"protocol":"TCP"}' in fields["f:ports"]
    # keys of a preserve-unknown-fields map are members themselves (SMD ToFieldSet)
    assert fields["f:extra"] == {"f:any": {".": {}, "f:thing": {}}}


def test_crd_lists_without_marker_are_atomic() -> None:
    live = crd_apply(None, spinapp(variables=[{"name": "a", "value": "1"}]), "a").object
    with pytest.raises(ssa.ConflictError) as err:
        crd_apply(live, spinapp(variables=[{"name": "b", "value": "2"}]), "b")
    assert err.value.conflicts[0].field == ".spec.variables"


def test_crd_list_map_and_set_merge_across_managers() -> None:
    live = crd_apply(None, spinapp(ports=[{"port": 80}], tags=["a"]), "a").object
    r = crd_apply(live, spinapp(ports=[{"port": 81}], tags=["b"]), "b")
    assert [p["port"] for p in r.object["spec"]["ports"]] == [80, 81]
    assert r.object["spec"]["tags"] == ["a", "b"]


def test_crd_undeclared_field_rejected_but_preserved_subtree_allowed() -> None:
    with pytest.raises(ssa.InvalidObjectError) as err:
        crd_apply(None, spinapp(imagee="x"), "a")
    assert err.value.message == (
        "failed to create typed patch object (default/hello; core.spinkube.dev/v1alpha1, Kind=SpinApp): "
        ".spec.imagee: field not declared in schema"
    )


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        (
            {
                "type": "object",
                "properties": {
                    "spec": {"type": "array", "x-kubernetes-list-type": "map", "items": {"type": "object"}}
                },
            },
            "spec.versions[0].schema.openAPIV3Schema.spec: x-kubernetes-list-type map needs "
            "x-kubernetes-list-map-keys",
        ),
        (
            {"type": "object", "properties": {"spec": {"type": "array", "x-kubernetes-list-type": "bag"}}},
            "spec.versions[0].schema.openAPIV3Schema.spec: unsupported x-kubernetes-list-type 'bag'",
        ),
    ],
)
def test_bad_crd_schema_names_field(schema: dict[str, Any], message: str) -> None:
    crd = copy.deepcopy(CRD)
    crd["spec"]["versions"] = [{"name": "v1", "served": True, "schema": {"openAPIV3Schema": schema}}]
    with pytest.raises(ks.CRDSchemaError) as err:
        ks.crd_schemas(crd)
    assert str(err.value) == f"CustomResourceDefinition 'spinapps.core.spinkube.dev': {message}"


# --- OpenAPI -----------------------------------------------------------------------------------------


def refs(doc: Any) -> list[str]:
    out: list[str] = []
    if isinstance(doc, dict):
        for k, v in doc.items():
            if k == "$ref" and isinstance(v, str):
                out.append(v)
            else:
                out.extend(refs(v))
    elif isinstance(doc, list):
        for v in doc:
            out.extend(refs(v))
    return out


def all_schemas() -> list[ks.ResourceSchema]:
    return [*ks.builtin_schemas().values(), spinapp_schema()]


def test_openapi_v2_definitions_carry_gvk_and_patch_metadata() -> None:
    doc = ks.openapi_v2_document(all_schemas())
    json.dumps(doc)
    defs = doc["definitions"]
    assert all(r.startswith("#/definitions/") and r[len("#/definitions/") :] in defs for r in refs(doc))
    dep = defs["io.k8s.api.apps.v1.Deployment"]
    assert dep["x-kubernetes-group-version-kind"] == [
        {"group": "apps", "kind": "Deployment", "version": "v1"}
    ]
    pod_spec = defs["io.k8s.api.core.v1.PodSpec"]
    containers = pod_spec["properties"]["containers"]
    assert {k: containers[k] for k in containers if k.startswith("x-")} == {
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["name"],
        "x-kubernetes-patch-strategy": "merge",
        "x-kubernetes-patch-merge-key": "name",
    }
    assert pod_spec["required"] == ["containers"]
    ports = defs["io.k8s.api.core.v1.Container"]["properties"]["ports"]
    assert ports["x-kubernetes-list-map-keys"] == ["containerPort", "protocol"]
    assert ports["x-kubernetes-patch-merge-key"] == "containerPort"
    assert defs["io.k8s.api.core.v1.ContainerPort"]["properties"]["protocol"]["default"] == "TCP"
    assert defs["io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector"]["x-kubernetes-map-type"] == "atomic"
    strategy = defs["io.k8s.api.apps.v1.DeploymentSpec"]["properties"]["strategy"]
    assert strategy["x-kubernetes-patch-strategy"] == "retainKeys"
    spin = defs["dev.spinkube.core.v1alpha1.SpinApp"]
    assert spin["properties"]["metadata"] == {
        "$ref": "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
    }
    assert spin["properties"]["spec"]["properties"]["ports"]["x-kubernetes-list-map-keys"] == [
        "port",
        "protocol",
    ]
    assert spin["x-kubernetes-group-version-kind"] == [
        {"group": "core.spinkube.dev", "kind": "SpinApp", "version": "v1alpha1"}
    ]
    assert "/apis/apps/v1/namespaces/{namespace}/deployments/{name}" in doc["paths"]


def test_openapi_v3_group_version_document() -> None:
    apps = [x for x in ks.builtin_schemas().values() if x.gvk.group == "apps"]
    doc = ks.openapi_v3_document(apps)
    json.dumps(doc)
    comps = doc["components"]["schemas"]
    assert all(r.startswith("#/components/schemas/") and r.split("/")[-1] in comps for r in refs(doc))
    patch = doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"]
    assert {p["name"] for p in patch["parameters"]} >= {"fieldValidation", "fieldManager", "force", "dryRun"}
    assert "application/apply-patch+yaml" in patch["requestBody"]["content"]
    assert comps["io.k8s.api.apps.v1.Deployment"]["properties"]["spec"]["allOf"] == [
        {"$ref": "#/components/schemas/io.k8s.api.apps.v1.DeploymentSpec"}
    ]
    replicas = comps["io.k8s.api.apps.v1.DeploymentSpec"]["properties"]["replicas"]
    assert replicas["type"] == "integer" and "Number of desired pods" in replicas["description"]


@pytest.mark.parametrize(
    ("given", "canonical"),
    [
        (0.5, "500m"),
        ("0.1", "100m"),
        (1, "1"),
        ("1000", "1k"),
        ("1500", "1500"),
        ("1.5", "1500m"),
        ("2048Ki", "2Mi"),
        ("1.5Gi", "1536Mi"),
        ("128Mi", "128Mi"),
        ("1000m", "1"),
        ("0", "0"),
        ("1e3", "1e3"),
        ("512", "512"),
        ("0.0000000001", "1n"),
        ("10G", "10G"),
        ("1.5k", "1500"),
        (1e-05, "10u"),
        ("not-a-quantity", "not-a-quantity"),
    ],
)
def test_quantity_canonical_form(given: Any, canonical: str) -> None:
    from kubesim.schema.quantity import canonical_quantity

    assert canonical_quantity(given) == canonical


def test_crd_list_turned_atomic_gives_item_owners_the_whole_list() -> None:
    live = crd_apply(None, spinapp(ports=[{"port": 80}]), "a").object
    crd = copy.deepcopy(CRD)
    ports = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"][
        "ports"
    ]
    ports["x-kubernetes-list-type"] = "atomic"
    del ports["x-kubernetes-list-map-keys"]
    [atomic] = ks.crd_schemas(crd)
    with pytest.raises(ssa.ConflictError) as err:
        ssa.apply(
            live,
            spinapp(ports=[{"port": 81}]),
            manager="b",
            api_version=atomic.api_version,
            force=False,
            schema=atomic,
            now="2026-01-01T00:00:00Z",
        )
    assert [c.field for c in err.value.conflicts] == [".spec.ports"]
