"""OpenAPI v2 (swagger 2.0) and v3 documents generated from the schemas, as kubectl reads them.

Named struct types become definitions (``#/definitions/<name>`` in v2,
``#/components/schemas/<name>`` in v3); lists carry ``x-kubernetes-list-type`` /
``-list-map-keys`` and, for built-ins, ``x-kubernetes-patch-strategy`` / ``-patch-merge-key``
(kubectl's strategic-merge logic reads these); kinds carry ``x-kubernetes-group-version-kind``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from kubesim.schema.types import MISSING, ListType, MapType, NodeType, ResourceSchema, TypeNode

_V2_REF = "#/definitions/"
_V3_REF = "#/components/schemas/"


# What the apiextensions server publishes for a custom resource's metadata.
_METADATA_DESCRIPTION = (
    "Standard object's metadata. More info: "
    "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata"
)

class _Gen:
    def __init__(self, v3: bool) -> None:
        self.v3 = v3
        self.defs: dict[str, dict[str, Any]] = {}
        self.anon = 0

    def ref(self, name: str) -> str:
        return (_V3_REF if self.v3 else _V2_REF) + name

    def struct_def(self, node: TypeNode, name: str) -> None:
        if name in self.defs:
            return
        d: dict[str, Any] = {}
        self.defs[name] = d  # placeholder first: the graph may be cyclic
        if node.description:
            d["description"] = node.description
        d["type"] = "object"
        if node.required:
            d["required"] = list(node.required)
        props = {k: self.prop(f, node.field_descriptions.get(k, "")) for k, f in node.fields.items()}
        for k, strategy in node.field_patch_strategies.items():
            props[k]["x-kubernetes-patch-strategy"] = strategy
        if props:
            d["properties"] = props
        if node.map_type is MapType.ATOMIC:
            d["x-kubernetes-map-type"] = "atomic"
        if node.preserve_unknown:
            d["x-kubernetes-preserve-unknown-fields"] = True

    def prop(self, node: TypeNode, description: str = "") -> dict[str, Any]:
        t = node.type
        p: dict[str, Any]
        if t is NodeType.STRUCT:
            if node.name:
                self.struct_def(node, node.name)
                ref = self.ref(node.name)
                p = {"allOf": [{"$ref": ref}]} if self.v3 else {"$ref": ref}
            else:
                p = {"type": "object"}
                if node.required:
                    p["required"] = list(node.required)
                if node.fields:
                    p["properties"] = {
                        k: self.prop(f, node.field_descriptions.get(k, "")) for k, f in node.fields.items()
                    }
                if node.map_type is MapType.ATOMIC:
                    p["x-kubernetes-map-type"] = "atomic"
                if node.preserve_unknown:
                    p["x-kubernetes-preserve-unknown-fields"] = True
        elif t is NodeType.MAP:
            p = {"type": "object", "additionalProperties": self.prop(node.item) if node.item else {}}
            if node.map_type is MapType.ATOMIC:
                p["x-kubernetes-map-type"] = "atomic"
        elif t is NodeType.LIST:
            p = {"type": "array", "items": self.prop(node.item) if node.item else {}}
            if node.list_type is ListType.MAP:
                p["x-kubernetes-list-type"] = "map"
                p["x-kubernetes-list-map-keys"] = list(node.keys)
            elif node.list_type is ListType.SET:
                p["x-kubernetes-list-type"] = "set"
            else:
                p["x-kubernetes-list-type"] = "atomic"
            if node.patch_strategy:
                p["x-kubernetes-patch-strategy"] = node.patch_strategy
            if node.patch_merge_key:
                p["x-kubernetes-patch-merge-key"] = node.patch_merge_key
        elif t is NodeType.SCALAR:
            if node.scalar == "quantity":
                p = ({"oneOf": [{"type": "string"}, {"type": "number"}]} if self.v3
                     else {"type": "string", "format": "quantity"})
            elif node.scalar == "int-or-string":
                p = {"x-kubernetes-int-or-string": True} if self.v3 else {"type": "string",
                                                                         "format": "int-or-string"}
            else:
                p = {"type": node.scalar}
                if node.format:
                    p["format"] = node.format
        else:
            p = {"x-kubernetes-preserve-unknown-fields": True} if self.v3 else {}
        if description or node.description:
            p["description"] = description or node.description
        if node.default is not MISSING:
            p["default"] = node.default
        if node.enum:
            p["enum"] = list(node.enum)
        return p

    def kind(self, s: ResourceSchema) -> None:
        name = s.root.name or f"{s.gvk.group}.{s.gvk.version}.{s.gvk.kind}"
        if s.crd_openapi is not None:
            self.crd_def(s, name)
        else:
            self.struct_def(s.root, name)
        self.defs[name]["x-kubernetes-group-version-kind"] = [
            {"group": s.gvk.group, "kind": s.gvk.kind, "version": s.gvk.version}
        ]
        self.list_def(s, name)

    def crd_def(self, s: ResourceSchema, name: str) -> None:
        """A custom resource is published with its own schema (validation keywords included),
        ``metadata`` pointing at ObjectMeta, as the apiextensions server does."""
        raw = s.crd_openapi or {}
        d: dict[str, Any] = {k: v for k, v in raw.items() if k != "properties"}
        d.setdefault("type", "object")
        props = dict(raw.get("properties") or {})
        meta_node = s.root.fields["metadata"]
        self.struct_def(meta_node, meta_node.name)
        meta_ref = self.ref(meta_node.name)
        props["metadata"] = {"allOf": [{"$ref": meta_ref}]} if self.v3 else {"$ref": meta_ref}
        if self.v3:  # what `kubectl explain` reads
            props["metadata"]["description"] = _METADATA_DESCRIPTION
        props.setdefault("apiVersion", {"type": "string", "description": "APIVersion defines the versioned "
                                        "schema of this representation of an object."})
        props.setdefault("kind", {"type": "string", "description": "Kind is a string value representing "
                                  "the REST resource this object represents."})
        d["properties"] = props
        self.defs[name] = d

    def list_def(self, s: ResourceSchema, item_name: str) -> None:
        list_name = item_name + "List"
        if list_name in self.defs:
            return
        meta_ref = self.ref("io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta")
        self.defs.setdefault("io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta", {
            "description": "ListMeta describes metadata that synthetic resources must have.",
            "type": "object",
            "properties": {
                "continue": {"type": "string"},
                "remainingItemCount": {"type": "integer", "format": "int64"},
                "resourceVersion": {"type": "string"},
                "selfLink": {"type": "string"},
            },
        })
        item_ref: dict[str, Any] = {"$ref": self.ref(item_name)}
        self.defs[list_name] = {
            "description": f"{s.gvk.kind}List is a list of {s.gvk.kind} objects.",
            "type": "object",
            "required": ["items"],
            "properties": {
                "apiVersion": {"type": "string"},
                "items": {"type": "array", "items": item_ref},
                "kind": {"type": "string"},
                "metadata": {"allOf": [{"$ref": meta_ref}]} if self.v3 else {"$ref": meta_ref},
            },
            "x-kubernetes-group-version-kind": [
                {"group": s.gvk.group, "kind": s.gvk.kind + "List", "version": s.gvk.version}
            ],
        }


def v2_definitions(schemas: Iterable[ResourceSchema]) -> dict[str, Any]:
    g = _Gen(v3=False)
    for s in schemas:
        g.kind(s)
    return dict(sorted(g.defs.items()))


def _base_path(s: ResourceSchema) -> str:
    g = s.gvk
    prefix = f"/apis/{g.group}/{g.version}" if g.group else f"/api/{g.version}"
    if s.namespaced:
        return f"{prefix}/namespaces/{{namespace}}/{s.plural}"
    return f"{prefix}/{s.plural}"


def _params(v3: bool) -> dict[str, Any]:
    def q(name: str, desc: str, typ: str = "string") -> dict[str, Any]:
        p: dict[str, Any] = {"name": name, "in": "query", "description": desc, "uniqueItems": True}
        if v3:
            p["schema"] = {"type": typ}
        else:
            p["type"] = typ
        return p

    return {
        "dryRun": q("dryRun", "When present, indicates that modifications should not be persisted."),
        "fieldManager": q("fieldManager", "fieldManager is a name associated with the actor or entity "
                          "that is making these changes."),
        "fieldValidation": q("fieldValidation", "fieldValidation instructs the server on how to handle "
                             "objects in the request containing unknown or duplicate fields."),
        "force": q("force", "Force is going to \"force\" Apply requests.", "boolean"),
        "pretty": q("pretty", "If 'true', then the output is pretty printed."),
    }


def _operations(s: ResourceSchema, v3: bool, ref: str) -> dict[str, dict[str, Any]]:
    """Item-path operations; kubectl probes PATCH for the fieldValidation parameter."""
    params = _params(v3)
    body_schema = {"$ref": ref}
    gvk = {"group": s.gvk.group, "kind": s.gvk.kind, "version": s.gvk.version}

    def op(verb: str, action: str, extra: list[str], body: bool) -> dict[str, Any]:
        o: dict[str, Any] = {
            "operationId": f"{verb}{s.gvk.kind}",
            "x-kubernetes-action": action,
            "x-kubernetes-group-version-kind": gvk,
            "parameters": [params[p] for p in extra],
            "responses": {"200": {"description": "OK"}},
        }
        if body:
            if v3:
                o["requestBody"] = {"content": {
                    ct: {"schema": body_schema} for ct in (
                        ["application/apply-patch+yaml", "application/json-patch+json",
                         "application/merge-patch+json", "application/strategic-merge-patch+json"]
                        if verb == "patch" else ["*/*"])
                }, "required": True}
            else:
                body_param = {"name": "body", "in": "body", "required": True, "schema": body_schema}
                o["parameters"].insert(0, body_param)
        return o

    return {
        "get": op("read", "get", ["pretty"], False),
        "put": op("replace", "put", ["dryRun", "fieldManager", "fieldValidation", "pretty"], True),
        "patch": op("patch", "patch", ["dryRun", "fieldManager", "fieldValidation", "force", "pretty"], True),
        "delete": op("delete", "delete", ["dryRun", "pretty"], False),
    }


def v2_document(schemas: Iterable[ResourceSchema]) -> dict[str, Any]:
    schemas = list(schemas)
    paths: dict[str, Any] = {}
    for s in schemas:
        ref = _V2_REF + (s.root.name or f"{s.gvk.group}.{s.gvk.version}.{s.gvk.kind}")
        base = _base_path(s)
        paths[base] = {"get": {"operationId": f"list{s.gvk.kind}", "x-kubernetes-action": "list",
                               "responses": {"200": {"description": "OK"}}},
                       "post": {"operationId": f"create{s.gvk.kind}", "x-kubernetes-action": "post",
                                "parameters": [{"name": "body", "in": "body", "required": True,
                                                "schema": {"$ref": ref}}],
                                "responses": {"201": {"description": "Created"}}}}
        paths[base + "/{name}"] = _operations(s, False, ref)
    return {
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": "v1.32.0"},
        "paths": paths,
        "definitions": v2_definitions(schemas),
    }


def v3_document(schemas: Iterable[ResourceSchema]) -> dict[str, Any]:
    """The document of one group-version: pass only that group-version's schemas."""
    schemas = list(schemas)
    g = _Gen(v3=True)
    paths: dict[str, Any] = {}
    for s in schemas:
        g.kind(s)
        ref = _V3_REF + (s.root.name or f"{s.gvk.group}.{s.gvk.version}.{s.gvk.kind}")
        paths[_base_path(s) + "/{name}"] = _operations(s, True, ref)
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.32.0"},
        "paths": paths,
        "components": {"schemas": dict(sorted(g.defs.items()))},
    }
