"""Schemas for custom resources, built from a CRD's structural OpenAPI v3 schema.

Follows k8s.io/kube-openapi ``schemaconv`` for CRDs: arrays are atomic unless
``x-kubernetes-list-type`` says ``set`` or ``map`` (with ``x-kubernetes-list-map-keys``), objects
with ``properties`` are structs, objects with ``additionalProperties`` are maps, maps/structs are
granular unless ``x-kubernetes-map-type: atomic``, ``x-kubernetes-preserve-unknown-fields`` keeps
(and untypes) undeclared fields, and ``default``s are applied and key list-map items.
"""

from __future__ import annotations

from typing import Any

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


class CRDSchemaError(ValueError):
    """A CRD whose spec cannot be turned into a schema; the message names the CRD and field."""


def node_from_openapi(s: Any, path: str = "") -> TypeNode:
    """One OpenAPI v3 (structural) schema → TypeNode."""
    if not isinstance(s, dict):
        return TypeNode(NodeType.UNTYPED)
    t = s.get("type")
    preserve = bool(s.get("x-kubernetes-preserve-unknown-fields"))
    node: TypeNode
    if s.get("x-kubernetes-int-or-string"):
        node = TypeNode(NodeType.SCALAR, scalar="int-or-string")
    elif t == "object" or (t is None and ("properties" in s or "additionalProperties" in s)):
        addl = s.get("additionalProperties")
        if "properties" in s or addl is None or addl is False:
            fields = {
                name: node_from_openapi(sub, f"{path}.{name}")
                for name, sub in (s.get("properties") or {}).items()
            }
            node = TypeNode(NodeType.STRUCT, fields=fields, preserve_unknown=preserve)
            if s.get("x-kubernetes-embedded-resource"):
                for meta in ("apiVersion", "kind"):
                    node.fields.setdefault(meta, TypeNode(NodeType.SCALAR))
                node.fields.setdefault("metadata", TypeNode(NodeType.UNTYPED))
            node.required = tuple(s.get("required") or ())
        else:
            item = (
                node_from_openapi(addl, f"{path}.*") if isinstance(addl, dict) else TypeNode(NodeType.UNTYPED)
            )
            node = TypeNode(NodeType.MAP, item=item)
        if s.get("x-kubernetes-map-type") == "atomic":
            node.map_type = MapType.ATOMIC
    elif t == "array":
        item = node_from_openapi(s.get("items"), f"{path}[]")
        node = TypeNode(NodeType.LIST, item=item)
        lt = s.get("x-kubernetes-list-type", "atomic")
        if lt == "map":
            keys = s.get("x-kubernetes-list-map-keys") or []
            if not keys:
                raise CRDSchemaError(
                    f"{path or '.'}: x-kubernetes-list-type map needs x-kubernetes-list-map-keys"
                )
            node.list_type = ListType.MAP
            node.keys = tuple(keys)
        elif lt == "set":
            node.list_type = ListType.SET
        elif lt != "atomic":
            raise CRDSchemaError(f"{path or '.'}: unsupported x-kubernetes-list-type {lt!r}")
    elif t in ("string", "integer", "number", "boolean"):
        node = TypeNode(NodeType.SCALAR, scalar=t)
        node.format = str(s.get("format", ""))
    elif preserve or t is None:
        node = TypeNode(NodeType.UNTYPED)
    else:
        raise CRDSchemaError(f"{path or '.'}: unsupported type {t!r}")
    node.default = s.get("default", MISSING)
    node.description = str(s.get("description", ""))
    if isinstance(s.get("enum"), list):
        node.enum = tuple(s["enum"])
    return node


def crd_schemas(crd: dict[str, Any], object_meta: TypeNode) -> list[ResourceSchema]:
    """One :class:`ResourceSchema` per served version of a CRD object."""
    name = (crd.get("metadata") or {}).get("name", "")
    spec = crd.get("spec")
    if not isinstance(spec, dict):
        raise CRDSchemaError(f"CustomResourceDefinition {name!r}: spec is required")
    group = spec.get("group", "")
    names = spec.get("names") or {}
    kind = names.get("kind", "")
    plural = names.get("plural", "")
    out: list[ResourceSchema] = []
    for i, ver in enumerate(spec.get("versions") or []):
        if not isinstance(ver, dict) or not ver.get("served", True):
            continue
        raw = ((ver.get("schema") or {}).get("openAPIV3Schema")) or {
            "type": "object", "x-kubernetes-preserve-unknown-fields": True,
        }
        try:
            root = node_from_openapi(raw)
        except CRDSchemaError as exc:
            raise CRDSchemaError(
                f"CustomResourceDefinition {name!r}: spec.versions[{i}].schema.openAPIV3Schema{exc}"
            ) from exc
        if root.type is not NodeType.STRUCT:
            root = TypeNode(NodeType.STRUCT, preserve_unknown=True)
        root.fields["apiVersion"] = TypeNode(NodeType.SCALAR)
        root.fields["kind"] = TypeNode(NodeType.SCALAR)
        root.fields["metadata"] = object_meta
        root.name = f"{_reverse(group)}.{ver.get('name', '')}.{kind}"
        subresources = ver.get("subresources") or {}
        out.append(ResourceSchema(
            gvk=GroupVersionKind(group, str(ver.get("name", "")), kind),
            root=root,
            plural=plural,
            singular=names.get("singular") or kind.lower(),
            namespaced=spec.get("scope", "Namespaced") == "Namespaced",
            short_names=tuple(names.get("shortNames") or ()),
            categories=tuple(names.get("categories") or ()),
            status_subresource="status" in subresources,
            scale_subresource="scale" in subresources,
            builtin=False,
            defaulter=None,
            crd_openapi=raw,
        ))
    return out


def _reverse(group: str) -> str:
    return ".".join(reversed(group.split("."))) if group else "core"


def unstructured_schema(gvk: GroupVersionKind, object_meta: TypeNode) -> ResourceSchema:
    """Schema for a kind kubesim knows nothing about: everything untyped, lists atomic."""
    root = TypeNode(NodeType.STRUCT, preserve_unknown=True,
                    fields={"apiVersion": TypeNode(NodeType.SCALAR), "kind": TypeNode(NodeType.SCALAR),
                            "metadata": object_meta})
    return ResourceSchema(gvk=gvk, root=root, plural=gvk.kind.lower() + "s", singular=gvk.kind.lower(),
                          namespaced=True, builtin=False)


__all__ = ["UNTYPED", "CRDSchemaError", "crd_schemas", "node_from_openapi", "unstructured_schema"]
