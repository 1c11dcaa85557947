"""Real kubectl: `kubectl delete --cascade=foreground` (the foregroundDeletion finalizer, blocking
dependents first) and `kubectl autoscale` (autoscaling/v1 HorizontalPodAutoscalers, stored as v2)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from kubesim_fixtures import Raw, deployment, kubectl

pytestmark = pytest.mark.slow

CMS = "/api/v1/namespaces/default/configmaps"


def _cm(raw: Raw, name: str, **meta: Any) -> dict[str, Any]:
    code, obj = raw.request(
        "POST", CMS, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, **meta}}
    )
    assert code == 201, obj
    return dict(obj)


def _ref(owner: dict[str, Any], block: bool) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "blockOwnerDeletion": block,
    }


def test_delete_cascade_foreground_waits_for_blocking_dependents(kubeconfig: Path, raw: Raw) -> None:
    owner = _cm(raw, "fg-owner")
    _cm(raw, "fg-blocking", ownerReferences=[_ref(owner, True)], finalizers=["example.com/hold"])
    _cm(raw, "fg-free", ownerReferences=[_ref(owner, False)], finalizers=["example.com/hold"])
    proc = kubectl(
        kubeconfig, "delete", "cm", "fg-owner", "--cascade=foreground", "--timeout=2s", check=False
    )
    assert proc.returncode != 0 and "timed out" in proc.stderr
    code, live = raw.request("GET", f"{CMS}/fg-owner")
    assert code == 200 and live["metadata"]["finalizers"] == ["foregroundDeletion"]
    assert live["metadata"]["deletionTimestamp"]
    for name in ("fg-blocking", "fg-free"):  # both asked to go, both held by their own finalizer
        assert raw.request("GET", f"{CMS}/{name}")[1]["metadata"]["deletionTimestamp"]
    # a dependent without blockOwnerDeletion does not hold the owner back; the blocking one does
    raw.request("PATCH", f"{CMS}/fg-free", '{"metadata":{"finalizers":null}}', "application/merge-patch+json")
    time.sleep(1.5)
    assert raw.request("GET", f"{CMS}/fg-owner")[0] == 200
    raw.request(
        "PATCH", f"{CMS}/fg-blocking", '{"metadata":{"finalizers":null}}', "application/merge-patch+json"
    )
    kubectl(kubeconfig, "wait", "--for=delete", "cm/fg-owner", "--timeout=10s")
    assert raw.request("GET", f"{CMS}/fg-blocking")[0] == 404


def test_delete_cascade_foreground_removes_dependents_first(kubeconfig: Path, raw: Raw) -> None:
    owner = _cm(raw, "fg2-owner")
    middle = _cm(raw, "fg2-middle", ownerReferences=[_ref(owner, True)])
    _cm(raw, "fg2-leaf", ownerReferences=[_ref(middle, True)])
    _, listed = raw.request("GET", CMS)
    since = listed["metadata"]["resourceVersion"]
    out = kubectl(kubeconfig, "delete", "cm", "fg2-owner", "--cascade=foreground", "--timeout=20s").stdout
    assert 'configmap "fg2-owner" deleted' in out
    _, events = raw.request("GET", f"{CMS}?watch=1&resourceVersion={since}&timeoutSeconds=1")
    gone = [e["object"]["metadata"]["name"] for e in _events(events) if e["type"] == "DELETED"]
    assert gone == ["fg2-leaf", "fg2-middle", "fg2-owner"]


def _events(body: Any) -> list[dict[str, Any]]:
    text = body if isinstance(body, str) else json.dumps(body)
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_autoscale_creates_a_v1_hpa_stored_as_v2(kubeconfig: Path, raw: Raw) -> None:
    assert raw.request("POST", "/apis/apps/v1/namespaces/default/deployments", deployment("scaled"))[0] == 201
    out = kubectl(kubeconfig, "autoscale", "deployment", "scaled", "--min=2", "--max=5", "--cpu-percent=70")
    assert "horizontalpodautoscaler.autoscaling/scaled autoscaled" in out.stdout
    v2 = json.loads(kubectl(kubeconfig, "get", "hpa", "scaled", "-o", "json").stdout)
    assert v2["apiVersion"] == "autoscaling/v2"
    assert v2["spec"]["metrics"] == [
        {
            "type": "Resource",
            "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}},
        }
    ]
    assert (v2["spec"]["minReplicas"], v2["spec"]["maxReplicas"]) == (2, 5)
    v1 = json.loads(
        kubectl(kubeconfig, "get", "horizontalpodautoscalers.v1.autoscaling", "scaled", "-o", "json").stdout
    )
    assert v1["apiVersion"] == "autoscaling/v1"
    assert v1["spec"]["targetCPUUtilizationPercentage"] == 70 and "metrics" not in v1["spec"]
    table = kubectl(kubeconfig, "get", "hpa", "scaled").stdout
    assert "Deployment/scaled" in table and "cpu: <unknown>/70%" in table
    # a v2 change shows through v1; what v1 cannot say travels in its annotations
    kubectl(
        kubeconfig,
        "patch",
        "hpa",
        "scaled",
        "--type=merge",
        "-p",
        '{"spec":{"behavior":{"scaleDown":{"stabilizationWindowSeconds":60}}}}',
    )
    v1 = json.loads(
        kubectl(kubeconfig, "get", "horizontalpodautoscalers.v1.autoscaling", "scaled", "-o", "json").stdout
    )
    behavior = json.loads(v1["metadata"]["annotations"]["autoscaling.alpha.kubernetes.io/behavior"])
    assert behavior["scaleDown"]["stabilizationWindowSeconds"] == 60
    kubectl(kubeconfig, "delete", "hpa", "scaled")


def test_autoscale_without_cpu_target_gets_the_v2_default(kubeconfig: Path, raw: Raw) -> None:
    assert (
        raw.request("POST", "/apis/apps/v1/namespaces/default/deployments", deployment("scaled2"))[0] == 201
    )
    kubectl(kubeconfig, "autoscale", "deployment", "scaled2", "--max=3")
    v2 = json.loads(kubectl(kubeconfig, "get", "hpa", "scaled2", "-o", "json").stdout)
    assert v2["spec"]["metrics"][0]["resource"]["target"] == {"type": "Utilization", "averageUtilization": 80}
    assert v2["spec"]["minReplicas"] == 1
