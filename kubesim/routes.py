"""Which API a request path names: a discovery or OpenAPI document, or a resource (its type,
namespace, name and subresource). Pure: paths in, documents or `Target`s out; unknown paths are
the real server's 404 `NotFound` Status."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kubesim import discovery
from kubesim.calls import Reply
from kubesim.errors import not_acceptable, path_not_found
from kubesim.openapi import Documents
from kubesim.registry import Registry
from kubesim.resources import ResourceType

HEALTH = ("/healthz", "/livez", "/readyz")


@dataclass(frozen=True)
class Target:
    rtype: ResourceType
    namespace: str
    name: str
    subresource: str


def document(
    parts: list[str], types: list[ResourceType], docs: Documents, accept: str, address: str
) -> Reply | None:
    """The answer to a GET of a discovery, OpenAPI, version or health path; None for other paths."""
    path = "/" + "/".join(parts)
    if path == "/version":
        return Reply(200, discovery.VERSION)
    if path in HEALTH:
        return Reply(200, text='"ok"')
    if path in ("/api", "/apis"):
        # Legacy discovery only: a client that accepts nothing but the aggregated form gets
        # 406; client-go lists plain application/json as its fallback and takes this answer.
        if not discovery.accepts_legacy(accept):
            raise not_acceptable("only the legacy discovery documents (application/json) are served")
        if path == "/api":
            return Reply(200, discovery.api_versions(address))
        return Reply(200, discovery.group_list(types))
    if parts[:1] == ["openapi"]:
        return _openapi(docs, parts[1:])
    if len(parts) == 2 and parts[0] == "api":
        return _found(discovery.resource_list(types, "", parts[1]))
    if len(parts) == 2 and parts[0] == "apis":
        return _found(discovery.group(types, parts[1]))
    if len(parts) == 3 and parts[0] == "apis":
        return _found(discovery.resource_list(types, parts[1], parts[2]))
    return None


def resource(registry: Registry, parts: list[str]) -> Target:
    """The resource an /api/<v>/... or /apis/<g>/<v>/... path names."""
    if parts[:1] == ["api"] and len(parts) >= 3:
        group, version, rest = "", parts[1], parts[2:]
    elif parts[:1] == ["apis"] and len(parts) >= 4:
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        raise path_not_found("")
    namespace = ""
    if len(rest) >= 3 and rest[0] == "namespaces" and rest[2] not in ("status", "finalize"):
        namespace, rest = rest[1], rest[2:]
    if not rest or len(rest) > 3:
        raise path_not_found("")
    rtype = registry.lookup(group, version, rest[0])
    if rtype is None or (namespace and not rtype.namespaced):
        raise path_not_found("")
    name = rest[1] if len(rest) > 1 else ""
    sub = rest[2] if len(rest) > 2 else ""
    if sub and not ((sub == "status" and rtype.status) or (sub == "scale" and rtype.scale)):
        raise path_not_found("")
    return Target(rtype, namespace, name, sub)


def _openapi(docs: Documents, rest: list[str]) -> Reply:
    if rest == ["v2"]:
        return Reply(200, text=docs.v2())
    if rest == ["v3"]:
        return Reply(200, docs.v3_index())
    if rest[:1] == ["v3"] and len(rest) > 1:
        found = docs.v3("/".join(rest[1:]))
        if found is not None:
            return Reply(200, text=found)
    raise path_not_found("")


def _found(doc: dict[str, Any] | None) -> Reply:
    """A discovery document, or the real server's 404 for a path it does not serve."""
    if doc is None:
        raise path_not_found("")
    return Reply(200, doc)
