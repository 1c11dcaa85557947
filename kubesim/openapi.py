"""The OpenAPI documents kubectl reads: /openapi/v2 and /openapi/v3 (index and one doc per group/version).

kubectl uses them to check that the server supports server-side field validation (the
`fieldValidation` query parameter on the PATCH/PUT/POST operations), for `explain`, and for
client-side strategic merges. Built-in definitions come from the type schemas (`kubesim.schema`);
a CRD's come from its `openAPIV3Schema`. Documents are built once per set of served types.
"""

from __future__ import annotations

import hashlib
import threading
from typing import Any

from kubesim import builtin_schemas
from kubesim.registry import Registry
from kubesim.resources import ResourceType
from kubesim.storage import dumps

_QUERY_PARAMS = ("dryRun", "fieldManager", "fieldValidation")
OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"


def definition_name(rtype: ResourceType) -> str:
    if rtype.crd:
        parts = rtype.group.split(".")
        return ".".join(reversed(parts)) + f".{rtype.version}.{rtype.kind}"
    return builtin_schemas.definition_name(rtype)


def _gvk(rtype: ResourceType) -> list[dict[str, str]]:
    return [{"group": rtype.group, "version": rtype.version, "kind": rtype.kind}]


def _crd_definitions(rtype: ResourceType, ref_prefix: str) -> dict[str, Any]:
    schema = dict(rtype.schema or {"type": "object", "x-kubernetes-preserve-unknown-fields": True})
    props = dict(schema.get("properties") or {})
    props.setdefault(
        "apiVersion",
        {
            "type": "string",
            "description": "APIVersion defines the versioned schema of this representation of an object.",
        },
    )
    props.setdefault(
        "kind",
        {
            "type": "string",
            "description": "Kind is a string value representing the REST resource this object represents.",
        },
    )
    props["metadata"] = {
        "$ref": f"{ref_prefix}{OBJECT_META}",
        "description": "Standard object's metadata.",
    }
    if ref_prefix.startswith("#/components"):
        props["metadata"] = {
            "allOf": [{"$ref": f"{ref_prefix}{OBJECT_META}"}],
            "description": "Standard object's metadata.",
        }
    schema["properties"] = props
    schema["x-kubernetes-group-version-kind"] = _gvk(rtype)
    return {definition_name(rtype): schema}


def _operations(rtype: ResourceType, ref: str) -> dict[str, Any]:
    """The paths for one resource; enough for kubectl's parameter-support checks and explain."""
    base = f"/apis/{rtype.group}/{rtype.version}" if rtype.group else f"/api/{rtype.version}"
    coll = f"{base}/namespaces/{{namespace}}/{rtype.plural}" if rtype.namespaced else f"{base}/{rtype.plural}"
    params = [
        {"name": p, "in": "query", "schema": {"type": "string"}, "type": "string", "uniqueItems": True}
        for p in _QUERY_PARAMS
    ]
    action = {"x-kubernetes-group-version-kind": _gvk(rtype)[0]}
    ok = {
        "200": {
            "description": "OK",
            "schema": {"$ref": ref},
            "content": {"application/json": {"schema": {"$ref": ref}}},
        }
    }

    def op(verb: str, action_name: str, with_params: bool) -> dict[str, Any]:
        out: dict[str, Any] = {
            "operationId": f"{verb}{rtype.kind}",
            "responses": ok,
            "x-kubernetes-action": action_name,
            **action,
        }
        if with_params:
            out["parameters"] = params
        return out

    return {
        coll: {"get": op("list", "list", False), "post": op("create", "post", True)},
        f"{coll}/{{name}}": {
            "get": op("read", "get", False),
            "put": op("replace", "put", True),
            "patch": op("patch", "patch", True),
            "delete": op("delete", "delete", False),
        },
    }


class Documents:
    def __init__(self, registry: Registry) -> None:
        self._registry = registry
        self._lock = threading.Lock()
        self._key: tuple[ResourceType, ...] = ()
        self._v2 = ""
        self._v3: dict[str, str] = {}

    def _build(self) -> None:
        types = tuple(self._registry.types())
        with self._lock:
            if types == self._key and self._v2:
                return
            v2_defs: dict[str, Any] = dict(builtin_schemas.definitions("#/definitions/"))
            v2_paths: dict[str, Any] = {}
            by_gv: dict[str, list[ResourceType]] = {}
            for t in types:
                by_gv.setdefault(f"apis/{t.group}/{t.version}" if t.group else f"api/{t.version}", []).append(
                    t
                )
                if t.crd:
                    v2_defs.update(_crd_definitions(t, "#/definitions/"))
                v2_paths.update(_operations(t, f"#/definitions/{definition_name(t)}"))
            self._v2 = dumps(
                {
                    "swagger": "2.0",
                    "info": {"title": "Kubernetes", "version": "v1.32.0"},
                    "paths": v2_paths,
                    "definitions": v2_defs,
                }
            )
            v3: dict[str, str] = {}
            base = builtin_schemas.definitions("#/components/schemas/")
            for gv, members in by_gv.items():
                schemas: dict[str, Any] = {}
                paths: dict[str, Any] = {}
                for t in members:
                    if t.crd:
                        schemas.update(_crd_definitions(t, "#/components/schemas/"))
                    paths.update(_operations(t, f"#/components/schemas/{definition_name(t)}"))
                # The builtin graph is shared; each doc carries all of it so every $ref resolves.
                schemas = {**base, **schemas}
                v3[gv] = dumps(
                    {
                        "openapi": "3.0.0",
                        "info": {"title": "Kubernetes", "version": "v1.32.0"},
                        "paths": paths,
                        "components": {"schemas": schemas},
                    }
                )
            self._v3 = v3
            self._key = types

    def v2(self) -> str:
        self._build()
        return self._v2

    def v3_index(self) -> dict[str, Any]:
        self._build()
        paths = {
            gv: {"serverRelativeURL": f"/openapi/v3/{gv}?hash={_hash(doc)}"} for gv, doc in self._v3.items()
        }
        return {"paths": paths}

    def v3(self, gv: str) -> str | None:
        self._build()
        return self._v3.get(gv)


def _hash(text: str) -> str:
    return hashlib.sha512(text.encode()).hexdigest()[:64].upper()
