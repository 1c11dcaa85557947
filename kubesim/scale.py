"""The `scale` subresource: an autoscaling/v1 Scale view of a Deployment or a custom object whose
CRD declares one (its specReplicasPath, statusReplicasPath and labelSelectorPath)."""

from __future__ import annotations

from typing import Any

from kubesim import meta
from kubesim.errors import bad_request, bad_value, invalid
from kubesim.resources import ResourceType


def scale_of(rtype: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
    m = obj["metadata"]
    spec_path, status_path, selector_path = rtype.scale_paths
    if rtype.crd:
        wanted = meta.get_path(obj, spec_path)
        have = meta.get_path(obj, status_path)
        found = meta.get_path(obj, selector_path) if selector_path else None
        selector = found if isinstance(found, str) else ""
    else:
        spec = obj.get("spec") or {}
        wanted, have = spec.get("replicas", 1), (obj.get("status") or {}).get("replicas", 0)
        labels = (spec.get("selector") or {}).get("matchLabels") or {}
        selector = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            k: m[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp") if k in m
        },
        "spec": {"replicas": wanted if isinstance(wanted, int) else 0},
        "status": {"replicas": have if isinstance(have, int) else 0, "selector": selector},
    }


def wanted_replicas(name: str, scale: dict[str, Any]) -> int:
    """The replicas a Scale body asks for: 400 when it is not a Scale, 422 when negative."""
    for part in ("spec", "metadata", "status"):
        if scale.get(part) is not None and not isinstance(scale[part], dict):
            raise bad_request(f'Scale in version "v1" cannot be handled as a Scale: {part} must be an object')
    replicas = (scale.get("spec") or {}).get("replicas")
    if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
        raise invalid(
            "Scale",
            "autoscaling",
            name,
            [bad_value("spec.replicas", replicas, "must be greater than or equal to 0")],
        )
    return replicas


def apply_config(rtype: ResourceType, name: str, scale: dict[str, Any]) -> dict[str, Any]:
    """A Scale apply body as the parent's apply configuration: the replicas and nothing else (the
    scale subresource's field manager maps Scale's spec.replicas onto the parent's replicas path)."""
    if scale.get("apiVersion") != "autoscaling/v1" or scale.get("kind") != "Scale":
        raise bad_request(
            "Incorrect version specified in apply patch. Specified patch version: "
            f"{scale.get('apiVersion')}, expected: autoscaling/v1"
        )
    if (scale.get("metadata") or {}).get("managedFields") is not None:
        raise bad_request("metadata.managedFields must be nil")
    config: dict[str, Any] = {"apiVersion": rtype.api_version, "kind": rtype.kind, "metadata": {"name": name}}
    meta.set_path(config, rtype.scale_paths[0], wanted_replicas(name, scale))
    return config

