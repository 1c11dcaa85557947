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
    elif rtype.is_core("Pod"):
        causes += _pod_spec_rules(spec, "spec")
    elif rtype.kind in ("ConfigMap", "Secret") and not rtype.group:
        for key in ("data", "binaryData", "stringData"):
            value = obj.get(key)
            if value is not None and not (
                isinstance(value, dict) and all(isinstance(v, str) for v in value.values())
            ):
                causes.append(bad_value(key, value, "must be a map of string keys to string values"))
        if rtype.kind == "Secret" and not causes:
            data = obj.get("data") or {}
            for key in _SECRET_TYPE_KEYS.get(str(obj.get("type") or ""), ()):
                if key not in data:
                    causes.append(required(f"data[{key}]", ""))
    elif rtype.is_core("Service") and isinstance(spec, dict):
        for i, port in enumerate(spec.get("ports") or []):
            if not isinstance(port, dict) or not isinstance(port.get("port"), int):
                causes.append(required(f"spec.ports[{i}].port", ""))
    return causes


# The keys the real server requires of a typed Secret's data (after stringData is folded in).
_SECRET_TYPE_KEYS: dict[str, tuple[str, ...]] = {
    "kubernetes.io/tls": ("tls.crt", "tls.key"),
    "kubernetes.io/dockerconfigjson": (".dockerconfigjson",),
    "kubernetes.io/dockercfg": (".dockercfg",),
    "kubernetes.io/ssh-auth": ("ssh-privatekey",),
}


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


def _forbidden(path: str, detail: str) -> Cause:
    return Cause("FieldValueForbidden", f"Forbidden: {detail}", path)


def immutable_rules(rtype: ResourceType, live: dict[str, Any], new: dict[str, Any]) -> list[Cause]:
    """Fields an update may not change (the errors the reconciler answers by delete and recreate)."""
    causes: list[Cause] = []
    old_spec, new_spec = live.get("spec") or {}, new.get("spec") or {}
    if not isinstance(old_spec, dict) or not isinstance(new_spec, dict):
        return causes
    core, kind = not rtype.group, rtype.kind
    if kind == "Deployment" and rtype.group == "apps":
        if old_spec.get("selector") != new_spec.get("selector"):
            causes.append(bad_value("spec.selector", new_spec.get("selector"), "field is immutable"))
    elif kind == "Job" and rtype.group == "batch":
        for key in ("selector", "template", "completionMode"):
            if key in old_spec and old_spec.get(key) != new_spec.get(key):
                causes.append(bad_value(f"spec.{key}", new_spec.get(key), "field is immutable"))
    elif core and kind in ("ConfigMap", "Secret"):
        if live.get("immutable") is True:
            if new.get("immutable") is not True:
                causes.append(_forbidden("immutable", "field is immutable when `immutable` is set"))
            for key in ("data", "binaryData"):
                if (live.get(key) or {}) != (new.get(key) or {}):
                    causes.append(_forbidden(key, "field is immutable when `immutable` is set"))
        if kind == "Secret" and live.get("type", "Opaque") != new.get("type", "Opaque"):
            causes.append(bad_value("type", new.get("type"), "field is immutable"))
    elif core and kind == "Service":
        old_ip, new_ip = old_spec.get("clusterIP"), new_spec.get("clusterIP")
        if old_ip and new_ip and old_ip != new_ip and new_spec.get("type") != "ExternalName":
            causes.append(bad_value("spec.clusterIPs[0]", new_ip, "may not change once set"))
    elif (
        rtype.group == "rbac.authorization.k8s.io"
        and kind in ("RoleBinding", "ClusterRoleBinding")
        and live.get("roleRef") != new.get("roleRef")
    ):
        causes.append(bad_value("roleRef", new.get("roleRef"), "cannot change roleRef"))
    return causes
