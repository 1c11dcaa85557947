"""The handful of built-in validation rules that matter for spindle's objects (pure)."""

from __future__ import annotations

from typing import Any

from kubesim.errors import Cause, bad_value, required
from kubesim.resources import ResourceType


def builtin_rules(rtype: ResourceType, obj: dict[str, Any]) -> list[Cause]:
    """The handful of built-in validations that matter for spindle's objects."""
    causes: list[Cause] = []
    spec = obj.get("spec")
    if rtype.kind in ("Deployment", "Job") and rtype.group in ("apps", "batch"):
        if not isinstance(spec, dict):
            return [required("spec", "")]
        replicas = spec.get("replicas")
        if replicas is not None and (
            not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0
        ):
            causes.append(bad_value("spec.replicas", replicas, "must be greater than or equal to 0"))
        template = spec.get("template")
        if not isinstance(template, dict):
            causes.append(required("spec.template", ""))
        else:
            causes += _pod_spec_rules(template.get("spec"), "spec.template.spec")
        if rtype.kind == "Deployment":
            sel = spec.get("selector")
            if not isinstance(sel, dict) or not sel:
                causes.append(required("spec.selector", ""))
            elif isinstance(template, dict):
                labels = (template.get("metadata") or {}).get("labels") or {}
                wanted = sel.get("matchLabels") or {}
                if isinstance(wanted, dict) and any(labels.get(k) != v for k, v in wanted.items()):
                    causes.append(
                        bad_value(
                            "spec.template.metadata.labels",
                            labels,
                            "`selector` does not match template `labels`",
                        )
                    )
    elif rtype.kind == "Pod" and not rtype.group:
        causes += _pod_spec_rules(spec, "spec")
    elif rtype.kind in ("ConfigMap", "Secret") and not rtype.group:
        for key in ("data", "binaryData", "stringData"):
            value = obj.get(key)
            if value is not None and not (
                isinstance(value, dict) and all(isinstance(v, str) for v in value.values())
            ):
                causes.append(bad_value(key, value, "must be a map of string keys to string values"))
    elif rtype.kind == "Service" and not rtype.group and isinstance(spec, dict):
        for i, port in enumerate(spec.get("ports") or []):
            if not isinstance(port, dict) or not isinstance(port.get("port"), int):
                causes.append(required(f"spec.ports[{i}].port", ""))
    return causes


def _pod_spec_rules(spec: Any, path: str) -> list[Cause]:
    if not isinstance(spec, dict):
        return [required(path, "")]
    causes = []
    containers = spec.get("containers")
    if not isinstance(containers, list) or not containers:
        return [required(f"{path}.containers", "")]
    for i, c in enumerate(containers):
        if not isinstance(c, dict) or not c.get("name"):
            causes.append(required(f"{path}.containers[{i}].name", ""))
        elif not c.get("image"):
            causes.append(required(f"{path}.containers[{i}].image", ""))
    return causes
