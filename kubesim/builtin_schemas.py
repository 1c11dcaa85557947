"""OpenAPI definitions of the built-in types, from the type schemas in `kubesim.schema`.

Placeholder until the schemas land: every built-in is an open object.
"""

from __future__ import annotations

from typing import Any

from kubesim.resources import BUILTINS, ResourceType

_PKG = {
    "": "io.k8s.api.core",
    "apps": "io.k8s.api.apps",
    "batch": "io.k8s.api.batch",
    "node.k8s.io": "io.k8s.api.node",
    "coordination.k8s.io": "io.k8s.api.coordination",
    "autoscaling": "io.k8s.api.autoscaling",
    "rbac.authorization.k8s.io": "io.k8s.api.rbac",
    "apiextensions.k8s.io": "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions",
}
OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"


def definition_name(rtype: ResourceType) -> str:
    return f"{_PKG.get(rtype.group, rtype.group)}.{rtype.version}.{rtype.kind}"


def definitions(ref_prefix: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        OBJECT_META: {
            "type": "object",
            "description": "ObjectMeta is metadata that all persisted resources must have.",
            "properties": {
                "name": {"type": "string"},
                "namespace": {"type": "string"},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            },
        },
    }
    for t in BUILTINS:
        out[definition_name(t)] = {
            "type": "object",
            "description": f"{t.kind} of {t.api_version}.",
            "properties": {
                "apiVersion": {"type": "string"},
                "kind": {"type": "string"},
                "metadata": {"$ref": f"{ref_prefix}{OBJECT_META}"},
            },
            "x-kubernetes-group-version-kind": [{"group": t.group, "version": t.version, "kind": t.kind}],
        }
    return out
