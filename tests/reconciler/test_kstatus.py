"""Health of custom resources spindle knows nothing about, by the kstatus conventions: a table of
pure cases, and end to end through `spindle apply` against kubesim with a CRD whose status a
test plays the controller for."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from spindle_synclib import Cluster, Repo, apply

from reconciler.changeset import Health
from reconciler.ssa import health

CRD = """apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, listKind: WidgetList}
  versions:
    - name: v1
      served: true
      storage: true
      subresources: {status: {}}
      schema:
        openAPIV3Schema:
          type: object
          x-kubernetes-preserve-unknown-fields: true
"""
NAMESPACE = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: apps\n"


def widget(size: int) -> str:
    return (
        "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w1\n  namespace: apps\n"
        f"spec:\n  size: {size}\n"
    )


def cond(kind: str, status: str) -> dict[str, str]:
    return {"type": kind, "status": status}


def obj(generation: int = 1, observed: int | None = None, conditions: list[dict[str, str]] | None = None,
        deleting: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "w", "generation": generation}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    status: dict[str, Any] = {}
    if observed is not None:
        status["observedGeneration"] = observed
    if conditions is not None:
        status["conditions"] = conditions
    return {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": meta, "status": status}


@pytest.mark.parametrize(
    ("live", "expected"),
    [
        (obj(), Health.HEALTHY),  # no status: nothing to wait for
        (obj(2, 1), Health.PROGRESSING),  # the controller has not seen generation 2
        (obj(2, 2), Health.HEALTHY),
        (obj(1, 1, [cond("Ready", "True")]), Health.HEALTHY),
        (obj(1, 1, [cond("Ready", "False")]), Health.PROGRESSING),
        (obj(1, 1, [cond("Ready", "Unknown")]), Health.PROGRESSING),
        (obj(1, 1, [cond("Reconciling", "True"), cond("Ready", "False")]), Health.PROGRESSING),
        (obj(1, 1, [cond("Stalled", "True"), cond("Ready", "False")]), Health.DEGRADED),
        (obj(1, 1, [cond("Stalled", "False"), cond("Ready", "True")]), Health.HEALTHY),
        (obj(2, 1, [cond("Ready", "True")]), Health.PROGRESSING),  # Ready for the old generation
        (obj(1, 1, [cond("Ready", "True")], deleting=True), Health.PROGRESSING),
        (obj(1, 1, [cond("Synced", "False")]), Health.HEALTHY),  # no kstatus condition
    ],
)
def test_kstatus(live: dict[str, Any], expected: Health) -> None:
    assert health.of(live) is expected


@pytest.mark.parametrize(
    ("kind", "current", "waits"),
    [
        ("Widget", Health.PROGRESSING, True),
        ("Widget", Health.HEALTHY, False),
        ("Widget", Health.DEGRADED, False),
        ("Deployment", Health.UNKNOWN, True),
        ("ConfigMap", Health.NOT_CHECKED, False),
    ],
)
def test_waits_for(kind: str, current: Health, waits: bool) -> None:
    assert health.waits_for(kind, current) is waits


def set_status(cluster: Cluster, status: dict[str, Any]) -> None:
    res = cluster.client.resource("example.com/v1", "Widget")
    cluster.client.send(
        "PATCH", res.item("w1", "apps") + "/status", subject="Widget/apps/w1",
        body={"status": status}, content_type="application/merge-patch+json",
    )


@pytest.mark.slow
def test_a_custom_resource_is_judged_by_its_status(tmp_path: Path, cluster: Cluster) -> None:
    repo = Repo(tmp_path / "repo")
    repo.write("crd.yaml", CRD)
    repo.write("ns.yaml", NAMESPACE)
    repo.write("widget.yaml", widget(1))
    repo.commit("a widget")
    first = apply(repo, cluster, "--timeout", "1")
    assert first.exit_code == 0, first.stdout + first.stderr
    entries = {e["subject"]: e for e in first.json()["entries"]}
    assert entries["Widget/apps/w1"]["health"] == "Healthy"  # no status yet: nothing to wait for
    set_status(cluster, {"observedGeneration": 1, "conditions": [cond("Ready", "True")]})

    repo.write("widget.yaml", widget(2))
    repo.commit("size 2")
    changed = apply(repo, cluster, "--timeout", "1")
    entry = next(e for e in changed.json()["entries"] if e["subject"] == "Widget/apps/w1")
    assert entry["action"] == "Configured" and entry["health"] == "Progressing"
    assert "timed out waiting for health" in entry["message"]

    set_status(cluster, {"observedGeneration": 2, "conditions": [cond("Stalled", "True")]})
    stalled = apply(repo, cluster, "--timeout", "1")
    assert {e["subject"]: e["health"] for e in stalled.json()["entries"]}["Widget/apps/w1"] == "Degraded"

    recovered = [cond("Stalled", "False"), cond("Ready", "True")]
    set_status(cluster, {"observedGeneration": 2, "conditions": recovered})
    ready = apply(repo, cluster, "--timeout", "1")
    assert {e["subject"]: e["health"] for e in ready.json()["entries"]}["Widget/apps/w1"] == "Healthy"
