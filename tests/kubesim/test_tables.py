"""Server-side Table rows that `kubectl get` prints (pure)."""

from __future__ import annotations

from typing import Any

import pytest

from kubesim import tables
from kubesim.resources import BUILTINS, ResourceType


def _type(kind: str) -> ResourceType:
    return next(t for t in BUILTINS if t.kind == kind)


CREATED = "2020-01-01T00:00:00Z"


@pytest.mark.parametrize(
    ("kind", "obj", "cells"),
    [
        (
            "Deployment",
            {
                "spec": {"replicas": 3},
                "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2},
            },
            ["2/3", 3, 2],
        ),
        (
            "Service",
            {
                "spec": {
                    "type": "NodePort",
                    "clusterIP": "10.96.0.9",
                    "ports": [
                        {"port": 80, "nodePort": 30001, "protocol": "TCP"},
                        {"port": 53, "protocol": "UDP"},
                    ],
                }
            },
            ["NodePort", "10.96.0.9", "<none>", "80:30001/TCP,53/UDP"],
        ),
        (
            "Service",
            {"spec": {"type": "LoadBalancer", "clusterIP": "10.96.0.8", "ports": []}},
            ["LoadBalancer", "10.96.0.8", "<pending>", "<none>"],
        ),
        (
            "Secret",
            {"type": "kubernetes.io/tls", "data": {"tls.crt": "", "tls.key": ""}},
            ["kubernetes.io/tls", 2],
        ),
        ("Namespace", {"status": {"phase": "Terminating"}}, ["Terminating"]),
        ("Job", {"spec": {"completions": 2}, "status": {"succeeded": 2}}, ["Complete", "2/2"]),
    ],
)
def test_builtin_rows(kind: str, obj: dict[str, Any], cells: list[Any]) -> None:
    rtype = _type(kind)
    full = {"metadata": {"name": "x", "creationTimestamp": CREATED}, **obj}
    row = tables.row(rtype, full, "None")
    assert row["cells"][0] == "x" and row["cells"][1:-1] == cells and row["cells"][-1].endswith("d")
    assert len(tables.columns(rtype)) == len(row["cells"])
    assert "object" not in row


def test_crd_printer_columns_replace_age_and_format_dates() -> None:
    rtype = ResourceType(
        "demo.example",
        "v1",
        "App",
        "apps",
        "app",
        True,
        crd=True,
        printer_columns=(
            {"name": "Desired", "type": "integer", "jsonPath": ".spec.replicas"},
            {"name": "Started", "type": "date", "jsonPath": ".status.started"},
        ),
    )
    obj = {
        "metadata": {"name": "a", "creationTimestamp": CREATED},
        "spec": {"replicas": 2},
        "status": {"started": CREATED},
    }
    assert [c["name"] for c in tables.columns(rtype)] == ["Name", "Desired", "Started"]
    row = tables.row(rtype, obj, "Object")
    assert row["cells"][:2] == ["a", 2] and row["cells"][2].endswith("d") and row["object"] is obj


@pytest.mark.parametrize(
    "accept",
    [
        "application/json;as=Table;v=v1;g=meta.k8s.io,application/json",
        "application/json; as=Table; v=v1; g=meta.k8s.io",
    ],
)
def test_table_is_negotiated(accept: str) -> None:
    assert tables.wants_table(accept)
    assert not tables.wants_table("application/json")


def test_event_rows_are_what_kubectl_get_events_prints() -> None:
    """The real server's event columns (LAST SEEN, TYPE, REASON, OBJECT, MESSAGE; the rest -o wide)."""
    rtype = _type("Event")
    cols = tables.columns(rtype)
    default = [c["name"] for c in cols if c["priority"] == 0]
    assert default == ["Last Seen", "Type", "Reason", "Object", "Message"]
    event = {
        "metadata": {"name": "hello.17a", "creationTimestamp": CREATED},
        "involvedObject": {"kind": "Deployment", "name": "hello", "namespace": "apps"},
        "reason": "Configured",
        "message": "Deployment/apps/hello configured ",
        "type": "Normal",
        "source": {"component": "spindle"},
        "firstTimestamp": CREATED,
        "lastTimestamp": CREATED,
        "count": 3,
    }
    cells = tables.row(rtype, event, "None")["cells"]
    assert len(cells) == len(cols)
    by_name = dict(zip([c["name"] for c in cols], cells, strict=True))
    assert by_name["Last Seen"].endswith("d") and by_name["First Seen"].endswith("d")
    assert (by_name["Type"], by_name["Reason"]) == ("Normal", "Configured")
    assert by_name["Object"] == "deployment/hello"
    assert by_name["Message"] == "Deployment/apps/hello configured"
    assert (by_name["Source"], by_name["Count"], by_name["Name"]) == ("spindle", 3, "hello.17a")
    # An events.k8s.io-style event with only a (micro) eventTime still shows how long ago it was.
    micro = {**event, "firstTimestamp": None, "lastTimestamp": None}
    micro["eventTime"] = "2020-01-01T00:00:00.123456Z"
    assert tables.row(rtype, micro, "None")["cells"][0].endswith("d")


def test_crd_rows_show_created_at_like_the_real_server() -> None:
    rtype = _type("CustomResourceDefinition")
    assert [c["name"] for c in tables.columns(rtype)] == ["Name", "Created At"]
    crd = {"metadata": {"name": "spinapps.core.spinkube.dev", "creationTimestamp": CREATED}}
    row = tables.row(rtype, crd, "None")
    assert row["cells"] == ["spinapps.core.spinkube.dev", CREATED]
