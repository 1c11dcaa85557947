"""Server-side printing: `meta.k8s.io/v1` Table answers, which `kubectl get` asks for (pure)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from kubesim.calls import Reply
from kubesim.resources import ResourceType

TABLE_MEDIA = "as=Table"


def wants_table(accept: str) -> bool:
    return TABLE_MEDIA in accept.replace(" ", "")


def _col(name: str, kind: str = "string", fmt: str = "", priority: int = 0, desc: str = "") -> dict[str, Any]:
    return {"name": name, "type": kind, "format": fmt, "description": desc or name, "priority": priority}


# The real server's event printer: its own columns, no Name or Age among the default ones.
_EVENT_COLUMNS = [
    _col("Last Seen"),
    _col("Type"),
    _col("Reason"),
    _col("Object"),
    _col("Subobject", priority=1),
    _col("Source", priority=1),
    _col("Message"),
    _col("First Seen", priority=1),
    _col("Count", "integer", priority=1),
    _col("Name", fmt="name", priority=1),
]


def _is_crd(rtype: ResourceType) -> bool:
    return rtype.kind == "CustomResourceDefinition" and rtype.group == "apiextensions.k8s.io"


def columns(rtype: ResourceType) -> list[dict[str, Any]]:
    if rtype.is_core("Event"):
        return list(_EVENT_COLUMNS)
    cols = [_col("Name", fmt="name", desc="Name must be unique within a namespace.")]
    if _is_crd(rtype):
        # The apiserver's default table convertor, which CRDs are served with.
        return [*cols, _col("Created At", "date", desc="CreationTimestamp")]
    if rtype.kind == "Deployment":
        cols += [_col("Ready"), _col("Up-to-date", "integer"), _col("Available", "integer")]
    elif rtype.kind == "Job":
        cols += [_col("Status"), _col("Completions")]
    elif rtype.kind == "HorizontalPodAutoscaler" and rtype.group == "autoscaling":
        cols += [_col("Reference"), _col("Targets"), _col("MinPods", "integer"), _col("MaxPods", "integer"),
                 _col("Replicas", "integer")]
    elif rtype.kind == "Pod":
        cols += [_col("Ready"), _col("Status"), _col("Restarts", "string")]
    elif rtype.is_core("Namespace"):
        cols += [_col("Status")]
    elif rtype.is_core("Service"):
        cols += [_col("Type"), _col("Cluster-IP"), _col("External-IP"), _col("Port(s)")]
    elif rtype.kind in ("ConfigMap", "Secret") and not rtype.group:
        if rtype.kind == "Secret":
            cols += [_col("Type")]
        cols += [_col("Data", "integer")]
    # A CRD's additionalPrinterColumns replace the default Age column (as the real table convertor).
    for pc in rtype.printer_columns:
        kind = str(pc.get("type", "string"))
        cols.append(
            _col(
                str(pc.get("name", "")),
                "string" if kind == "date" else kind,
                str(pc.get("format", "")),
                int(pc.get("priority", 0)),
                str(pc.get("description", "")),
            )
        )
    if not rtype.printer_columns:
        cols.append(_col("Age", fmt="", desc="CreationTimestamp"))
    return cols


def _event_cells(obj: dict[str, Any]) -> list[Any]:
    involved = obj.get("involvedObject") or {}
    kind, name = str(involved.get("kind") or "").lower(), involved.get("name")
    source = obj.get("source") or {}
    component = source.get("component") or obj.get("reportingController") or ""
    host = source.get("host") or obj.get("reportingInstance") or ""
    last = obj.get("lastTimestamp") or obj.get("eventTime")
    first = obj.get("firstTimestamp") or obj.get("eventTime")
    return [
        age(last),
        obj.get("type", ""),
        obj.get("reason", ""),
        f"{kind}/{name}" if name else kind,
        involved.get("fieldPath", ""),
        f"{component}, {host}" if component and host else component,
        str(obj.get("message") or "").strip(),
        age(first),
        int(obj.get("count") or 1),
        (obj.get("metadata") or {}).get("name", ""),
    ]


def row(rtype: ResourceType, obj: dict[str, Any], include: str) -> dict[str, Any]:
    m = obj.get("metadata") or {}
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    cells: list[Any] = [m.get("name", "")]
    if rtype.is_core("Event"):
        cells = _event_cells(obj)
    elif _is_crd(rtype):
        cells.append(m.get("creationTimestamp"))
    elif rtype.kind == "Deployment":
        cells += [
            f"{status.get('readyReplicas', 0)}/{spec.get('replicas', 1)}",
            status.get("updatedReplicas", 0),
            status.get("availableReplicas", 0),
        ]
    elif rtype.kind == "Job":
        done = status.get("succeeded", 0)
        want = spec.get("completions", 1)
        cells += ["Complete" if done >= want else "Running", f"{done}/{want}"]
    elif rtype.kind == "Pod":
        cells += ["0/" + str(len(spec.get("containers") or [])), status.get("phase", "Pending"), "0"]
    elif rtype.kind == "HorizontalPodAutoscaler" and rtype.group == "autoscaling":
        ref = spec.get("scaleTargetRef") or {}
        cells += [f"{ref.get('kind', '')}/{ref.get('name', '')}", _hpa_targets(spec, status),
                  spec.get("minReplicas", 1), spec.get("maxReplicas", 0), status.get("currentReplicas", 0)]
    elif rtype.is_core("Namespace"):
        cells += [status.get("phase", "Active")]
    elif rtype.is_core("Service"):
        ports = [_port_text(p) for p in spec.get("ports") or [] if isinstance(p, dict)]
        external = ",".join(spec.get("externalIPs") or []) or (
            "<pending>" if spec.get("type") == "LoadBalancer" else "<none>"
        )
        cells += [
            spec.get("type", "ClusterIP"),
            spec.get("clusterIP", "<none>"),
            external,
            ",".join(ports) or "<none>",
        ]
    elif rtype.kind in ("ConfigMap", "Secret") and not rtype.group:
        if rtype.kind == "Secret":
            cells += [obj.get("type", "Opaque")]
        cells += [len(obj.get("data") or {}) + len(obj.get("binaryData") or {})]
    for pc in rtype.printer_columns:
        value = _json_path(obj, str(pc.get("jsonPath", "")))
        cells.append(age(value) if pc.get("type") == "date" and value is not None else value)
    if not rtype.printer_columns and not rtype.is_core("Event") and not _is_crd(rtype):
        cells.append(age(m.get("creationTimestamp")))
    out: dict[str, Any] = {"cells": cells}
    if include == "Object":
        out["object"] = obj
    elif include != "None":
        out["object"] = {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": m}
    return out


def _hpa_targets(spec: dict[str, Any], status: dict[str, Any]) -> str:
    """The printer's TARGETS cell: `cpu: <unknown>/80%` per metric (v2 form; v1's single CPU target)."""
    if "targetCPUUtilizationPercentage" in spec:
        now = status.get("currentCPUUtilizationPercentage")
        return f"cpu: {'<unknown>' if now is None else f'{now}%'}/{spec['targetCPUUtilizationPercentage']}%"
    parts = []
    for m in spec.get("metrics") or []:
        res = (m or {}).get("resource") or {}
        target = res.get("target") or {}
        if "averageUtilization" in target:
            parts.append(f"{res.get('name')}: <unknown>/{target['averageUtilization']}%")
        elif "averageValue" in target:
            parts.append(f"{res.get('name')}: <unknown>/{target['averageValue']}")
        else:
            parts.append("<unknown>")
    return ", ".join(parts) or "<none>"


def as_table(rtype: ResourceType, reply: Reply, query: dict[str, str]) -> Reply:
    """A get or list answer as a meta.k8s.io Table (what `kubectl get` asks for)."""
    include = query.get("includeObject", "Metadata")
    obj = reply.json()
    if "items" in obj and isinstance(obj.get("items"), list) and obj.get("kind") == rtype.list_kind:
        return Reply(200, table(rtype, obj["items"], obj["metadata"], include))
    list_meta = {"resourceVersion": obj["metadata"].get("resourceVersion", "")}
    return Reply(200, table(rtype, [obj], list_meta, include))


def table(
    rtype: ResourceType, objs: list[dict[str, Any]], list_meta: dict[str, Any], include: str
) -> dict[str, Any]:
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_meta,
        "columnDefinitions": columns(rtype),
        "rows": [row(rtype, o, include) for o in objs],
    }


def age(created: Any) -> str:
    if not isinstance(created, str):
        return "<unknown>"
    try:  # a Time or a MicroTime (fractional seconds)
        when = dt.datetime.fromisoformat(created)
    except ValueError:
        return "<unknown>"
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    secs = max(0, int((dt.datetime.now(dt.UTC) - when).total_seconds()))
    if secs < 120:
        return f"{secs}s"
    if secs < 3600 * 3:
        return f"{secs // 60}m"
    if secs < 86400 * 2:
        return f"{secs // 3600}h"
    return f"{secs // 86400}d"


def _json_path(obj: Any, path: str) -> Any:
    """The `.a.b` subset of JSONPath that printer columns use."""
    cur = obj
    for part in [p for p in path.strip().lstrip("$").split(".") if p]:
        if isinstance(cur, dict):
            cur = cur.get(part)
        else:
            return None
    if isinstance(cur, dict | list):
        return str(cur)
    return cur


def _port_text(port: dict[str, Any]) -> str:
    node = f":{port['nodePort']}" if port.get("nodePort") else ""
    return f"{port.get('port')}{node}/{port.get('protocol', 'TCP')}"
