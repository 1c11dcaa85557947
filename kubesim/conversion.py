"""Objects between the version a client reads or writes and the version they are stored in (pure).

Most resources are served in one version, or (custom resources) read the one stored object in
every version they serve. HorizontalPodAutoscalers are served as autoscaling/v2 and autoscaling/v1
(what ``kubectl autoscale`` posts) and stored as v2; the two convert as
k8s.io/kubernetes ``pkg/apis/autoscaling/v1/conversion.go`` does: v1's
``targetCPUUtilizationPercentage`` is v2's CPU utilization metric, and what v1 cannot say (other
metrics, their current values, the behavior, the conditions) travels in annotations.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from kubesim.schema import defaults

HPA = "horizontalpodautoscalers.autoscaling"
V1, V2 = "autoscaling/v1", "autoscaling/v2"
METRICS = "autoscaling.alpha.kubernetes.io/metrics"
CURRENT_METRICS = "autoscaling.alpha.kubernetes.io/current-metrics"
CONDITIONS = "autoscaling.alpha.kubernetes.io/conditions"
BEHAVIOR = "autoscaling.alpha.kubernetes.io/behavior"

#: storage key -> the apiVersion objects are stored in, where it is fixed.
STORAGE_VERSIONS = {HPA: V2}


def to_version(storage_key: str, obj: dict[str, Any], api_version: str) -> dict[str, Any]:
    """`obj` (a private copy) as `api_version` shows it."""
    if obj.get("apiVersion") == api_version:
        return obj
    if storage_key == HPA and obj.get("kind") == "HorizontalPodAutoscaler":
        if api_version == V1 and obj.get("apiVersion") == V2:
            return _hpa_v2_to_v1(obj)
        if api_version == V2 and obj.get("apiVersion") == V1:
            return _hpa_v1_to_v2(obj)
    obj["apiVersion"] = api_version
    return obj


def for_storage(storage_key: str, obj: dict[str, Any], stored: str | None) -> dict[str, Any]:
    """`obj` in the version it is stored in: the resource's storage version, else the version the
    object already has in storage (`stored`), else its own."""
    target = STORAGE_VERSIONS.get(storage_key) or stored or obj.get("apiVersion")
    return to_version(storage_key, obj, str(target))


# --- autoscaling/v1 <-> v2 ----------------------------------------------------------------------


def _cpu_utilization(metric: Any, target: str) -> int | None:
    """The averageUtilization of a CPU Resource metric (spec: target="target", status: "current")."""
    if not isinstance(metric, dict) or metric.get("type") != "Resource":
        return None
    res = metric.get("resource") or {}
    value = (res.get(target) or {}).get("averageUtilization")
    return value if res.get("name") == "cpu" and isinstance(value, int) else None


def _hpa_v2_to_v1(obj: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in obj.items() if k not in ("spec", "status")}
    out["apiVersion"] = V1
    meta = out["metadata"] = dict(obj.get("metadata") or {})
    notes: dict[str, str] = {}
    spec = obj.get("spec") or {}
    v1spec = {k: spec[k] for k in ("scaleTargetRef", "minReplicas", "maxReplicas") if k in spec}
    others = []
    for m in spec.get("metrics") or []:
        cpu = _cpu_utilization(m, "target")
        if cpu is not None:
            v1spec["targetCPUUtilizationPercentage"] = cpu
        else:
            others.append(_metric_to_v1(m, "spec"))
    if others:
        notes[METRICS] = _dump(others)
    if spec.get("behavior") is not None:
        notes[BEHAVIOR] = _dump(spec["behavior"])
    out["spec"] = v1spec
    status = obj.get("status")
    if isinstance(status, dict):
        v1status = {
            k: status[k]
            for k in ("observedGeneration", "lastScaleTime", "currentReplicas", "desiredReplicas")
            if k in status
        }
        current = []
        for m in status.get("currentMetrics") or []:
            cpu = _cpu_utilization(m, "current")
            if cpu is not None:
                v1status["currentCPUUtilizationPercentage"] = cpu
            current.append(_metric_to_v1(m, "status"))
        if current:
            notes[CURRENT_METRICS] = _dump(current)
        if status.get("conditions"):
            notes[CONDITIONS] = _dump(status["conditions"])
        out["status"] = v1status
    if notes:
        meta["annotations"] = {**(meta.get("annotations") or {}), **notes}
    return out


def _hpa_v1_to_v2(obj: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in obj.items() if k not in ("spec", "status")}
    out["apiVersion"] = V2
    meta = out["metadata"] = dict(obj.get("metadata") or {})
    annotations = dict(meta.get("annotations") or {})
    notes = {
        k: annotations.pop(k) for k in (METRICS, CURRENT_METRICS, CONDITIONS, BEHAVIOR) if k in annotations
    }
    if annotations:
        meta["annotations"] = annotations
    else:
        meta.pop("annotations", None)
    spec = obj.get("spec") or {}
    v2spec = {
        k: copy.deepcopy(spec[k]) for k in ("scaleTargetRef", "minReplicas", "maxReplicas") if k in spec
    }
    metrics = [_metric_to_v2(m, "spec") for m in _load(notes.get(METRICS))]
    cpu = spec.get("targetCPUUtilizationPercentage")
    if cpu is not None:
        metrics.append(
            {
                "type": "Resource",
                "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": cpu}},
            }
        )
    if metrics:
        v2spec["metrics"] = metrics
    behavior = _load(notes.get(BEHAVIOR), None)
    if behavior is not None:
        v2spec["behavior"] = behavior
    out["spec"] = v2spec
    status = obj.get("status")
    if isinstance(status, dict):
        v2status = {
            k: status[k]
            for k in ("observedGeneration", "lastScaleTime", "currentReplicas", "desiredReplicas")
            if k in status
        }
        current = [_metric_to_v2(m, "status") for m in _load(notes.get(CURRENT_METRICS))]
        cpu_now = status.get("currentCPUUtilizationPercentage")
        if cpu_now is not None and not any(_cpu_utilization(m, "current") is not None for m in current):
            current.append(
                {"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": cpu_now}}}
            )
        if current:
            v2status["currentMetrics"] = current
        conditions = _load(notes.get(CONDITIONS))
        if conditions:
            v2status["conditions"] = conditions
        out["status"] = v2status
    defaults.default_hpa(out)  # what v2 decoding fills in (the default CPU metric)
    return out


def _dump(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _load(text: str | None, empty: Any = ()) -> Any:
    if not text:
        return list(empty) if isinstance(empty, tuple) else empty
    try:
        return json.loads(text)
    except ValueError:
        return list(empty) if isinstance(empty, tuple) else empty


# One metric: v2 {type, <source>: {metric: {name, selector}, target|current: {...}, ...}} against
# v1's flattened {type, <source>: {metricName, selector, targetValue, targetAverageValue, ...}}.
_V1_NAMES = {  # (v2 key inside target/current, spec or status) -> v1 key
    ("averageUtilization", "spec"): "targetAverageUtilization",
    ("averageValue", "spec"): "targetAverageValue",
    ("value", "spec"): "targetValue",
    ("averageUtilization", "status"): "currentAverageUtilization",
    ("averageValue", "status"): "currentAverageValue",
    ("value", "status"): "currentValue",
}


def _metric_to_v1(metric: Any, part: str) -> Any:
    if not isinstance(metric, dict):
        return metric
    kind = str(metric.get("type", ""))
    key = kind[:1].lower() + kind[1:]
    src = metric.get(key)
    if not isinstance(src, dict):
        return metric
    values = src.get("target" if part == "spec" else "current") or {}
    out: dict[str, Any] = {}
    for k in ("name", "container"):
        if k in src:
            out[k] = src[k]
    ident = src.get("metric") or {}
    if "name" in ident:
        out["metricName"] = ident["name"]
    if "selector" in ident:
        out["metricSelector" if key == "external" else "selector"] = ident["selector"]
    if key == "object" and "describedObject" in src:
        out["target"] = src["describedObject"]
    for k, v in values.items():
        if k == "type":
            continue
        name = _V1_NAMES.get((k, part), k)
        if key == "object" and k == "averageValue":
            name = "averageValue"
        out[name] = v
    return {"type": kind, key: out}


def _metric_to_v2(metric: Any, part: str) -> Any:
    if not isinstance(metric, dict):
        return metric
    kind = str(metric.get("type", ""))
    key = kind[:1].lower() + kind[1:]
    src = metric.get(key)
    if not isinstance(src, dict):
        return metric
    out: dict[str, Any] = {k: src[k] for k in ("name", "container") if k in src}
    ident = {}
    if "metricName" in src:
        ident["name"] = src["metricName"]
    selector = src.get("metricSelector" if key == "external" else "selector")
    if selector is not None:
        ident["selector"] = selector
    if ident:
        out["metric"] = ident
    if key == "object" and "target" in src:
        out["describedObject"] = src["target"]
    values: dict[str, Any] = {}
    for (v2name, which), v1name in _V1_NAMES.items():
        if which == part and v1name in src:
            values[v2name] = src[v1name]
    if key == "object" and "averageValue" in src:
        values["averageValue"] = src["averageValue"]
    if part == "spec":
        values["type"] = (
            "Utilization"
            if "averageUtilization" in values
            else "AverageValue"
            if "averageValue" in values
            else "Value"
        )
        out["target"] = values
    else:
        out["current"] = values
    return {"type": kind, key: out}
