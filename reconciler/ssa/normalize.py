"""Normalisation, so that Git, the dry-run result and the live object compare equal when they
mean the same thing (Flux's `normalize` package).

`desired()` prepares what spindle applies: port `protocol: TCP` defaulted (the list-map key of
container and Service ports includes it), Secret `stringData` folded into `data`, `status`
dropped (except on CRDs), a null `creationTimestamp` removed. `comparable()` reduces a live or
dry-run object to what drift is judged on: labels, annotations and everything outside
`metadata` and `status`.
"""

from __future__ import annotations

import base64
import copy
from typing import Any

Obj = dict[str, Any]

_LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def _pod_spec_path(obj: Obj) -> tuple[str, ...] | None:
    """Where the pod spec sits in a workload (None for kinds without one)."""
    kind = obj.get("kind")
    if kind == "Pod":
        return ("spec",)
    if kind == "CronJob":
        return ("spec", "jobTemplate", "spec", "template", "spec")
    spec = obj.get("spec")
    if isinstance(spec, dict) and isinstance((spec.get("template") or {}).get("spec"), dict):
        return ("spec", "template", "spec")
    return None


def _defaulted_ports(ports: Any) -> Any:
    """`ports` with `protocol: TCP` filled in, copied only when something was missing."""
    if not isinstance(ports, list) or all(not isinstance(p, dict) or "protocol" in p for p in ports):
        return ports
    return [{**p, "protocol": "TCP"} if isinstance(p, dict) and "protocol" not in p else p for p in ports]


def _with_pod_ports(pod: Obj) -> Obj:
    out = pod
    for key in ("containers", "initContainers", "ephemeralContainers"):
        containers = pod.get(key)
        if not isinstance(containers, list):
            continue
        fixed = [
            {**c, "ports": _defaulted_ports(c["ports"])}
            if isinstance(c, dict) and _defaulted_ports(c.get("ports")) is not c.get("ports")
            else c
            for c in containers
        ]
        if any(a is not b for a, b in zip(fixed, containers, strict=True)):
            out = {**out, key: fixed}
    return out


def _replace_at(obj: Obj, path: tuple[str, ...], fn: Any) -> Obj:
    """`obj` with `fn` applied at `path`, copying only the dicts along the path."""
    head, rest = path[0], path[1:]
    child = obj.get(head)
    if not isinstance(child, dict):
        return obj
    new_child = fn(child) if not rest else _replace_at(child, rest, fn)
    return obj if new_child is child else {**obj, head: new_child}


def desired(obj: Obj) -> Obj:
    """A normalised copy of an object read from Git. Copy-on-write: the input is never
    modified, and unchanged sub-trees are shared with it (callers must not mutate either)."""
    out = dict(obj)
    meta = out.get("metadata")
    if isinstance(meta, dict) and "creationTimestamp" in meta and meta["creationTimestamp"] is None:
        out["metadata"] = {k: v for k, v in meta.items() if k != "creationTimestamp"}
    if out.get("kind") != "CustomResourceDefinition":
        out.pop("status", None)
    path = _pod_spec_path(out)
    if path is not None:
        out = _replace_at(out, path, _with_pod_ports)
    if out.get("kind") == "Service" and out.get("apiVersion") == "v1":
        out = _replace_at(
            out,
            ("spec",),
            lambda spec: (
                {**spec, "ports": _defaulted_ports(spec.get("ports"))}
                if "ports" in spec and _defaulted_ports(spec.get("ports")) is not spec.get("ports")
                else spec
            ),
        )
    if out.get("kind") == "Secret" and out.get("apiVersion") == "v1" and "stringData" in out:
        string_data = out.pop("stringData") or {}
        data = dict(out.get("data") or {})
        for key, value in string_data.items():
            data[key] = base64.b64encode(str(value).encode()).decode()
        out["data"] = data
    return out


def comparable(obj: Obj) -> Obj:
    """What drift is judged on: labels, annotations and everything but metadata and status."""
    out = {k: copy.deepcopy(v) for k, v in obj.items() if k not in ("metadata", "status")}
    meta = obj.get("metadata") or {}
    kept: Obj = {}
    labels = meta.get("labels")
    if labels:
        kept["labels"] = dict(labels)
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if k != _LAST_APPLIED}
    if annotations:
        kept["annotations"] = annotations
    out["metadata"] = kept
    return out
