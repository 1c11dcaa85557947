"""Defaulting: what the API server fills in on every write (SetDefaults_* of k8s.io/kubernetes
pkg/apis/*/v1, plus structural ``default``s of CRD schemas and Go non-pointer structs)."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

from kubesim.schema.quantity import canonical_quantity
from kubesim.schema.types import MISSING, UNTYPED, NodeType, ResourceSchema, TypeNode

Obj = dict[str, Any]

# --- structural defaults ------------------------------------------------------------------------

def _has_defaults(node: TypeNode, seen: frozenset[int] = frozenset()) -> bool:
    """Whether a walk below ``node`` can add anything (memoised on the node)."""
    cached = node.has_defaults
    if cached is not None:
        return cached
    key = id(node)
    if key in seen:
        return False
    seen = seen | {key}
    result = False
    if node.type is NodeType.SCALAR:
        result = node.scalar == "quantity"
    elif node.type is NodeType.STRUCT:
        if node.present_fields:
            result = True
        for f in node.fields.values():
            if result or f.default is not MISSING or _has_defaults(f, seen):
                result = True
                break
    elif node.type in (NodeType.LIST, NodeType.MAP) and node.item is not None:
        result = _has_defaults(node.item, seen)
    if not seen - {key}:
        node.has_defaults = result  # only cache results not cut short by a cycle
    return result


def _defaulting(node: TypeNode) -> tuple[tuple[str, TypeNode], ...]:
    """The fields of a STRUCT where defaulting can add or change anything (memoised on the node):
    those with a default, the non-pointer structs, and those with defaults below them."""
    cached = node.defaulting
    if cached is None:
        cached = tuple(
            (name, f)
            for name, f in node.fields.items()
            if f.default is not MISSING or name in node.present_fields or _has_defaults(f)
        )
        node.defaulting = cached
    return cached


def _copy(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _copy(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_copy(x) for x in v]
    return v


def apply_structural_defaults(value: Any, node: TypeNode) -> None:
    """Fill declared ``default``s and non-pointer structs below ``value`` (in place)."""
    if not _has_defaults(node):
        return
    t = node.type
    if t is NodeType.STRUCT and isinstance(value, dict):
        for name, f in _defaulting(node):
            if name not in value:
                if f.default is not MISSING:
                    value[name] = _copy(f.default)
                elif name in node.present_fields:
                    value[name] = {}
                else:
                    continue
            v = value[name]
            if isinstance(v, dict | list):
                apply_structural_defaults(v, f)
            elif f.scalar == "quantity" and f.type is NodeType.SCALAR:
                value[name] = canonical_quantity(v)
    elif t is NodeType.LIST and isinstance(value, list) and node.item is not None:
        for item in value:
            if isinstance(item, dict | list):
                apply_structural_defaults(item, node.item)
    elif t is NodeType.MAP and isinstance(value, dict) and node.item is not None:
        item_node = node.item
        if item_node.type is NodeType.SCALAR and item_node.scalar == "quantity":
            for k, item in value.items():
                value[k] = canonical_quantity(item)
            return
        for item in value.values():
            if isinstance(item, dict | list):
                apply_structural_defaults(item, item_node)


def drop_unknown(value: Any, node: TypeNode) -> Any:
    """A copy of ``value`` without fields its schema does not declare (Go decoding / CRD pruning)."""
    t = node.type
    if isinstance(value, dict):
        if t is NodeType.STRUCT:
            out: dict[str, Any] = {}
            for k, v in value.items():
                f = node.fields.get(k)
                if f is None:
                    if not node.preserve_unknown:
                        continue
                    f = UNTYPED
                out[k] = drop_unknown(v, f) if isinstance(v, dict | list) else v
            return out
        if t is NodeType.MAP and node.item is not None:
            item = node.item
            return {k: drop_unknown(v, item) if isinstance(v, dict | list) else v for k, v in value.items()}
        return _copy(value)
    if isinstance(value, list):
        if t is NodeType.LIST and node.item is not None:
            item = node.item
            return [drop_unknown(v, item) if isinstance(v, dict | list) else v for v in value]
        return _copy(value)
    return value


def drop_omitted(value: Any, node: TypeNode) -> None:
    """What a round trip through the Go types does to a built-in object (in place): optional
    fields that are null, and optional slices/maps that are empty (``omitempty``), disappear.
    Empty structs stay (pointers to ``{}`` and non-pointer structs are always written)."""
    if isinstance(value, dict):
        if node.type is NodeType.STRUCT:
            drop: list[str] = []
            for k, v in value.items():
                f = node.fields.get(k)
                if f is None:
                    continue
                if v is None:
                    if k not in node.required:
                        drop.append(k)
                elif isinstance(v, dict | list):
                    if not v and f.type in (NodeType.LIST, NodeType.MAP) and k not in node.required:
                        drop.append(k)
                    else:
                        drop_omitted(v, f)
            for k in drop:
                del value[k]
        elif node.type is NodeType.MAP and node.item is not None and node.item.type is not NodeType.SCALAR:
            for v in value.values():
                drop_omitted(v, node.item)
    elif (isinstance(value, list) and node.type is NodeType.LIST and node.item is not None
          and node.item.type is NodeType.STRUCT):
        for v in value:
            drop_omitted(v, node.item)


def default_object(schema: ResourceSchema, obj: Obj) -> None:
    """Apply every default the API server would to ``obj`` (in place)."""
    apply_structural_defaults(obj, schema.root)
    if schema.defaulter is not None:
        schema.defaulter(obj)
    if schema.builtin:
        drop_omitted(obj, schema.root)


# --- built-in SetDefaults_* ----------------------------------------------------------------------


def _d(obj: Obj, key: str, value: Any) -> Any:
    if key not in obj or obj[key] is None:
        obj[key] = value
    return obj[key]


def _items(obj: Any, key: str) -> list[Any]:
    v = obj.get(key) if isinstance(obj, dict) else None
    return v if isinstance(v, list) else []


def _sub(obj: Obj, key: str) -> Obj | None:
    v = obj.get(key)
    return v if isinstance(v, dict) else None


def _image_pull_policy(image: Any) -> str:
    if not isinstance(image, str):
        return "IfNotPresent"
    if "@" in image:
        return "IfNotPresent"
    last = image.rsplit("/", 1)[-1]
    tag = last.rsplit(":", 1)[1] if ":" in last else ""
    return "Always" if tag in ("", "latest") else "IfNotPresent"


def _default_probe(probe: Any) -> None:
    if not isinstance(probe, dict):
        return
    _d(probe, "timeoutSeconds", 1)
    _d(probe, "periodSeconds", 10)
    _d(probe, "successThreshold", 1)
    _d(probe, "failureThreshold", 3)
    _default_handler(probe)


def _default_handler(h: Any) -> None:
    if not isinstance(h, dict):
        return
    get = _sub(h, "httpGet")
    if get is not None:
        if not get.get("path"):
            get["path"] = "/"
        _d(get, "scheme", "HTTP")


def _default_container(c: Any) -> None:
    if not isinstance(c, dict):
        return
    _d(c, "terminationMessagePath", "/dev/termination-log")
    _d(c, "terminationMessagePolicy", "File")
    _d(c, "imagePullPolicy", _image_pull_policy(c.get("image")))
    _d(c, "resources", {})
    for p in _items(c, "ports"):
        if isinstance(p, dict):
            _d(p, "protocol", "TCP")
    for e in _items(c, "env"):
        vf = _sub(e, "valueFrom") if isinstance(e, dict) else None
        ref = _sub(vf, "fieldRef") if vf else None
        if ref is not None:
            _d(ref, "apiVersion", "v1")
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        _default_probe(c.get(probe))
    lc = _sub(c, "lifecycle")
    if lc is not None:
        _default_handler(lc.get("postStart"))
        _default_handler(lc.get("preStop"))


def _default_volume(v: Any) -> None:
    if not isinstance(v, dict):
        return
    sources = [k for k in v if k != "name"]
    if not sources:
        v["emptyDir"] = {}
    for src in ("secret", "configMap", "projected", "downwardAPI"):
        s = _sub(v, src)
        if s is not None:
            _d(s, "defaultMode", 420)


def default_pod_spec(spec: Any) -> None:
    """SetDefaults_PodSpec and the container/volume defaults below it."""
    if not isinstance(spec, dict):
        return
    _d(spec, "dnsPolicy", "ClusterFirst")
    _d(spec, "restartPolicy", "Always")
    _d(spec, "terminationGracePeriodSeconds", 30)
    _d(spec, "securityContext", {})
    _d(spec, "schedulerName", "default-scheduler")
    for key in ("containers", "initContainers"):
        for c in _items(spec, key):
            _default_container(c)
    for v in _items(spec, "volumes"):
        _default_volume(v)


def _default_template(spec: Obj | None) -> None:
    if spec is None:
        return
    tpl = _sub(spec, "template")
    if tpl is not None:
        _d(tpl, "metadata", {})
        default_pod_spec(_d(tpl, "spec", {}))


def default_deployment(obj: Obj) -> None:
    spec = _sub(obj, "spec")
    if spec is None:
        return
    _d(spec, "replicas", 1)
    strategy = _d(spec, "strategy", {})
    if isinstance(strategy, dict):
        _d(strategy, "type", "RollingUpdate")
        if strategy.get("type") == "RollingUpdate":
            ru = _d(strategy, "rollingUpdate", {})
            if isinstance(ru, dict):
                _d(ru, "maxUnavailable", "25%")
                _d(ru, "maxSurge", "25%")
    _d(spec, "revisionHistoryLimit", 10)
    _d(spec, "progressDeadlineSeconds", 600)
    _default_template(spec)


def default_job(obj: Obj) -> None:
    spec = _sub(obj, "spec")
    if spec is None:
        return
    if spec.get("completions") is None and spec.get("parallelism") is None:
        spec["completions"] = 1
        spec["parallelism"] = 1
    _d(spec, "parallelism", 1)
    if spec.get("backoffLimitPerIndex") is None:
        _d(spec, "backoffLimit", 6)
    _d(spec, "completionMode", "NonIndexed")
    _d(spec, "suspend", False)
    if spec.get("podFailurePolicy") is None:
        _d(spec, "podReplacementPolicy", "TerminatingOrFailed")
    _default_template(spec)


def default_pod(obj: Obj) -> None:
    spec = _sub(obj, "spec")
    if spec is None:
        return
    default_pod_spec(spec)
    _d(spec, "enableServiceLinks", True)
    for c in _items(spec, "containers"):
        res = _sub(c, "resources") if isinstance(c, dict) else None
        if res is not None and isinstance(res.get("limits"), dict):
            req = _d(res, "requests", {})
            if isinstance(req, dict):
                for k, v in res["limits"].items():
                    req.setdefault(k, v)


def default_service(obj: Obj) -> None:
    spec = _sub(obj, "spec")
    if spec is None:
        return
    _d(spec, "sessionAffinity", "None")
    stype = _d(spec, "type", "ClusterIP")
    for p in _items(spec, "ports"):
        if isinstance(p, dict):
            _d(p, "protocol", "TCP")
            if stype != "ExternalName" and "port" in p:
                _d(p, "targetPort", p["port"])
    if stype in ("ClusterIP", "NodePort", "LoadBalancer"):
        _d(spec, "internalTrafficPolicy", "Cluster")
    if stype in ("NodePort", "LoadBalancer"):
        _d(spec, "externalTrafficPolicy", "Cluster")
    if stype == "LoadBalancer":
        _d(spec, "allocateLoadBalancerNodePorts", True)


def default_secret(obj: Obj) -> None:
    """Also folds write-only ``stringData`` into ``data`` (base64), as v1 → internal conversion does."""
    _d(obj, "type", "Opaque")
    string_data = obj.pop("stringData", None)
    if isinstance(string_data, dict) and string_data:
        data = obj.get("data")
        if not isinstance(data, dict):
            data = obj["data"] = {}
        for k, v in string_data.items():
            data[k] = base64.b64encode(str(v).encode()).decode()


def default_namespace(obj: Obj) -> None:
    meta = _sub(obj, "metadata")
    if meta is not None and isinstance(meta.get("name"), str):
        labels = _d(meta, "labels", {})
        if isinstance(labels, dict):
            labels["kubernetes.io/metadata.name"] = meta["name"]
    spec = _d(obj, "spec", {})
    if isinstance(spec, dict):
        _d(spec, "finalizers", ["kubernetes"])
    status = _d(obj, "status", {})
    if isinstance(status, dict):
        _d(status, "phase", "Active")


def default_event(obj: Obj) -> None:
    _d(obj, "reportingComponent", "")
    _d(obj, "reportingInstance", "")


def default_hpa(obj: Obj) -> None:
    spec = _sub(obj, "spec")
    if spec is None:
        return
    _d(spec, "minReplicas", 1)
    if obj.get("apiVersion") == "autoscaling/v1":
        return  # v1 has targetCPUUtilizationPercentage, left unset (the v2 form then defaults it)
    if not spec.get("metrics"):
        spec["metrics"] = [{
            "type": "Resource",
            "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}},
        }]


def default_binding(obj: Obj) -> None:
    for s in _items(obj, "subjects"):
        if isinstance(s, dict) and "apiGroup" not in s:
            kind = s.get("kind")
            if kind in ("User", "Group"):
                s["apiGroup"] = "rbac.authorization.k8s.io"
            elif kind == "ServiceAccount":
                s["apiGroup"] = ""


def default_crd(obj: Obj) -> None:
    spec = _sub(obj, "spec")
    if spec is None:
        return
    conv = _d(spec, "conversion", {})
    if isinstance(conv, dict):
        _d(conv, "strategy", "None")
    names = _sub(spec, "names")
    if names is not None and isinstance(names.get("kind"), str):
        _d(names, "singular", names["kind"].lower())
        _d(names, "listKind", names["kind"] + "List")


BUILTIN_DEFAULTERS: dict[str, Callable[[Obj], None]] = {
    "Deployment": default_deployment,
    "Job": default_job,
    "Pod": default_pod,
    "Service": default_service,
    "Secret": default_secret,
    "Namespace": default_namespace,
    "Event": default_event,
    "HorizontalPodAutoscaler": default_hpa,
    "RoleBinding": default_binding,
    "ClusterRoleBinding": default_binding,
    "CustomResourceDefinition": default_crd,
}
