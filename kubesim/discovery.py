"""Legacy discovery documents: /version, /api, /api/v1, /apis, /apis/<group>[/<version>] (pure).

kubectl asks first for aggregated discovery (`apidiscovery.k8s.io/v2`); kubesim answers with the
legacy documents as plain `application/json`, and client-go then falls back to legacy discovery,
exactly as it does against an older API server.
"""

from __future__ import annotations

import platform
from typing import Any

from kubesim.resources import ResourceType, resource_entries
from kubesim.resources import group_versions as _stored_group_versions


def _virtual(name: str, kind: str, namespaced: bool = False) -> dict[str, Any]:
    return {"name": name, "singularName": "", "namespaced": namespaced, "kind": kind, "verbs": ["create"]}


# The create-only resources kubesim answers without storing anything (`kubesim.reviews`).
VIRTUAL: dict[tuple[str, str], list[dict[str, Any]]] = {
    ("authentication.k8s.io", "v1"): [
        _virtual("selfsubjectreviews", "SelfSubjectReview"),
        _virtual("tokenreviews", "TokenReview"),
    ],
    ("authorization.k8s.io", "v1"): [
        _virtual("localsubjectaccessreviews", "LocalSubjectAccessReview", True),
        _virtual("selfsubjectaccessreviews", "SelfSubjectAccessReview"),
        _virtual("selfsubjectrulesreviews", "SelfSubjectRulesReview"),
        _virtual("subjectaccessreviews", "SubjectAccessReview"),
    ],
}


def group_versions(types: list[ResourceType]) -> dict[str, list[str]]:
    """group → versions served, the stored types' and the virtual ones'."""
    out = _stored_group_versions(types)
    for group, version in VIRTUAL:
        versions = out.setdefault(group, [])
        if version not in versions:
            versions.append(version)
    return out

VERSION = {
    "major": "1",
    "minor": "32",
    "gitVersion": "v1.32.0-kubesim",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2026-01-01T00:00:00Z",
    "goVersion": "go1.23.0",
    "compiler": "gc",
    "platform": f"linux/{'arm64' if platform.machine() in ('aarch64', 'arm64') else 'amd64'}",
}


def api_versions(address: str) -> dict[str, Any]:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": address}],
    }


def resource_list(types: list[ResourceType], group: str, version: str) -> dict[str, Any] | None:
    mine = [t for t in types if t.group == group and t.version == version]
    virtual = VIRTUAL.get((group, version), [])
    if not mine and not virtual:
        return None
    gv = f"{group}/{version}" if group else version
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": gv,
        "resources": resource_entries(mine) + [dict(v) for v in virtual],
    }


def _group(name: str, versions: list[str]) -> dict[str, Any]:
    vs = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
    return {"name": name, "versions": vs, "preferredVersion": vs[0]}


def group_list(types: list[ResourceType]) -> dict[str, Any]:
    groups = [_group(g, vs) for g, vs in group_versions(types).items() if g]
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def group(types: list[ResourceType], name: str) -> dict[str, Any] | None:
    versions = group_versions(types).get(name)
    if not versions or not name:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group(name, versions)}


def accepts_legacy(accept: str) -> bool:
    """Does the Accept header allow plain JSON (or anything)? An empty header does."""
    if not accept.strip():
        return True
    for item in accept.split(","):
        media, *params = [p.strip() for p in item.split(";")]
        if media in ("*/*", "application/*") or (
            media == "application/json" and not any(p.startswith(("as=", "g=")) for p in params)
        ):
            return True
    return False
