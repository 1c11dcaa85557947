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


def _pod_specs(obj: Obj) -> list[Obj]:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return []
    kind = obj.get("kind")
    if kind == "Pod":
        return [spec]
    if kind == "CronJob":
        spec = ((spec.get("jobTemplate") or {}).get("spec")) or {}
    template = spec.get("template")
    if isinstance(template, dict) and isinstance(template.get("spec"), dict):
        return [template["spec"]]
    return []


def _default_protocols(ports: Any) -> None:
    if isinstance(ports, list):
        for port in ports:
            if isinstance(port, dict) and "protocol" not in port:
                port["protocol"] = "TCP"


def desired(obj: Obj) -> Obj:
    """A normalised deep copy of an object read from Git."""
    out = copy.deepcopy(obj)
    meta = out.get("metadata")
    if isinstance(meta, dict) and "creationTimestamp" in meta and meta["creationTimestamp"] is None:
        del meta["creationTimestamp"]
    if out.get("kind") != "CustomResourceDefinition":
        out.pop("status", None)
    for pod in _pod_specs(out):
        for key in ("containers", "initContainers", "ephemeralContainers"):
            for c in pod.get(key) or []:
                if isinstance(c, dict):
                    _default_protocols(c.get("ports"))
    if out.get("kind") == "Service" and out.get("apiVersion") == "v1":
        _default_protocols((out.get("spec") or {}).get("ports"))
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


def strip_server_fields(obj: Obj) -> Obj:
    """A copy without the fields the server generates (for YAML diffs and `-o yaml`)."""
    out = copy.deepcopy(obj)
    out.pop("status", None)
    meta = out.get("metadata")
    if isinstance(meta, dict):
        for key in ("managedFields", "resourceVersion", "uid", "generation", "creationTimestamp", "selfLink"):
            meta.pop(key, None)
        annotations = meta.get("annotations")
        if isinstance(annotations, dict):
            annotations.pop(_LAST_APPLIED, None)
            if not annotations:
                del meta["annotations"]
    return out
