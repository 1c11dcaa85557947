"""Type schemas of the kinds kubesim serves: list/map semantics for SSA, defaults, OpenAPI.

Public API (all pure; schemas are built once and cached)::

    builtin_schemas() -> dict[GroupVersionKind, ResourceSchema]
        The built-in kinds (Namespace, Node, ConfigMap, Secret, Service, ServiceAccount, Event,
        Pod, apps/v1 Deployment, batch/v1 Job, node.k8s.io/v1 RuntimeClass,
        coordination.k8s.io/v1 Lease, autoscaling/v2 HorizontalPodAutoscaler, rbac/v1 Role,
        ClusterRole, RoleBinding, ClusterRoleBinding, apiextensions/v1 CustomResourceDefinition),
        with plural, scope, short names, categories, status/scale subresources.

    schema_for(api_version: str, kind: str) -> ResourceSchema | None
        A built-in kind by apiVersion ("apps/v1") and kind; None if not built in.

    crd_schemas(crd: dict) -> list[ResourceSchema]
        One schema per served version of a CustomResourceDefinition object (raises
        CRDSchemaError naming the CRD and field when its schema is unusable).

    unstructured_schema(gvk) -> ResourceSchema
        Fallback: all lists atomic, maps granular, unknown fields kept.

    default_object(schema, obj) -> None
        Fill the API server's defaults into ``obj`` in place (the SSA engine calls this).

    drop_unknown(obj, node) -> obj
        A copy without fields the schema does not declare (what Go decoding / CRD pruning does).

    openapi_v2_definitions(schemas) -> dict[str, dict]
        Swagger 2.0 ``definitions`` for the kinds and every named type they use, with
        x-kubernetes-group-version-kind, -patch-strategy/-patch-merge-key, -list-type/-map-keys.

    openapi_v2_document(schemas) -> dict
        A whole swagger 2.0 document (info, paths for each resource, definitions) for /openapi/v2.

    openapi_v3_document(schemas) -> dict
        An OpenAPI 3.0 document for ONE group-version (/openapi/v3/apis/<group>/<version> or
        /openapi/v3/api/v1): paths with the PATCH parameters kubectl probes (fieldValidation,
        fieldManager, force, dryRun) and components.schemas.

A ResourceSchema's ``root`` is a :class:`TypeNode` graph: see kubesim/schema/types.py.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from kubesim.schema import openapi as _openapi
from kubesim.schema.builtins import BUILTIN_KINDS, builtin_schemas
from kubesim.schema.crd import CRDSchemaError, node_from_openapi
from kubesim.schema.crd import crd_schemas as _crd_schemas
from kubesim.schema.crd import unstructured_schema as _unstructured_schema
from kubesim.schema.defaults import default_object, drop_unknown
from kubesim.schema.types import (
    MISSING,
    UNTYPED,
    GroupVersionKind,
    ListType,
    MapType,
    NodeType,
    ResourceSchema,
    TypeNode,
)


def schema_for(api_version: str, kind: str) -> ResourceSchema | None:
    return builtin_schemas().get(GroupVersionKind.from_api_version(api_version, kind))


def object_meta_node() -> TypeNode:
    """The shared ObjectMeta type (custom resources use it for ``metadata``)."""
    meta = schema_for("v1", "ConfigMap")
    assert meta is not None
    return meta.root.fields["metadata"]


def crd_schemas(crd: dict[str, Any]) -> list[ResourceSchema]:
    return _crd_schemas(crd, object_meta_node())


def unstructured_schema(gvk: GroupVersionKind) -> ResourceSchema:
    return _unstructured_schema(gvk, object_meta_node())


def openapi_v2_definitions(schemas: Iterable[ResourceSchema]) -> dict[str, Any]:
    return _openapi.v2_definitions(schemas)


def openapi_v2_document(schemas: Iterable[ResourceSchema]) -> dict[str, Any]:
    return _openapi.v2_document(schemas)


def openapi_v3_document(schemas: Iterable[ResourceSchema]) -> dict[str, Any]:
    return _openapi.v3_document(schemas)


__all__ = [
    "BUILTIN_KINDS",
    "MISSING",
    "UNTYPED",
    "CRDSchemaError",
    "GroupVersionKind",
    "ListType",
    "MapType",
    "NodeType",
    "ResourceSchema",
    "TypeNode",
    "builtin_schemas",
    "crd_schemas",
    "default_object",
    "drop_unknown",
    "node_from_openapi",
    "object_meta_node",
    "openapi_v2_definitions",
    "openapi_v2_document",
    "openapi_v3_document",
    "schema_for",
    "unstructured_schema",
]
