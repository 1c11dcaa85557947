"""The opt-in workload simulator, state that survives a restart, and the embedding API."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from kubesim_fixtures import Raw, deployment, watch_lines

from kubesim import server as kserver

DEPLOYS = "/apis/apps/v1/namespaces/default/deployments"
JOBS = "/apis/batch/v1/namespaces/default/jobs"
APPLY = "application/apply-patch+yaml"
JOB = {
    "apiVersion": "batch/v1",
    "kind": "Job",
    "metadata": {"name": "once"},
    "spec": {
        "template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}
    },
}


def _until(fn: Callable[[], Any], timeout: float = 10) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = fn()
        if got:
            return got
        time.sleep(0.05)
    return fn()


def _conditions(obj: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in (obj.get("status") or {}).get("conditions") or []}


def test_simulator_marks_deployments_available_and_jobs_complete_as_simulated() -> None:
    with kserver.start(":memory:", simulate_workloads=True, simulate_delay=0.3) as srv:
        raw = Raw(srv)
        raw.request("PATCH", DEPLOYS + "/sim?fieldManager=t", deployment("sim", replicas=3), APPLY)
        raw.request("PATCH", JOBS + "/once?fieldManager=t", JOB, APPLY)

        def available() -> dict[str, Any] | None:
            d = raw.request("GET", DEPLOYS + "/sim")[1]
            return d if _conditions(d).get("Available", {}).get("status") == "True" else None

        d = _until(available)
        assert d is not None
        assert d["status"]["readyReplicas"] == 3 and d["status"]["availableReplicas"] == 3
        assert d["status"]["observedGeneration"] == d["metadata"]["generation"]
        cond = _conditions(d)
        assert cond["Available"]["reason"] == "MinimumReplicasAvailable"
        assert cond["Progressing"]["reason"] == "NewReplicaSetAvailable"
        assert all("(simulated by kubesim)" in c["message"] for c in cond.values())
        managers = {(m["manager"], m.get("subresource")) for m in d["metadata"]["managedFields"]}
        assert ("kubesim-simulator", "status") in managers

        # A spec change is observed again: not available at the new generation until the delay passed.
        changed = deployment("sim", replicas=5)
        d2 = raw.request("PATCH", DEPLOYS + "/sim?fieldManager=t", changed, APPLY)[1]
        assert d2["metadata"]["generation"] == 2
        d3 = _until(
            lambda: (lambda d: d if d["status"].get("availableReplicas") == 5 else None)(
                raw.request("GET", DEPLOYS + "/sim")[1]
            )
        )
        assert d3["status"]["observedGeneration"] == 2

        job = _until(
            lambda: (lambda j: j if _conditions(j).get("Complete", {}).get("status") == "True" else None)(
                raw.request("GET", JOBS + "/once")[1]
            )
        )
        assert job["status"]["succeeded"] == 1 and job["status"]["completionTime"]
        raw.close()


def test_simulator_is_off_by_default() -> None:
    with kserver.start(":memory:") as srv:
        raw = Raw(srv)
        raw.request("PATCH", DEPLOYS + "/quiet?fieldManager=t", deployment("quiet"), APPLY)
        time.sleep(1.0)
        d = raw.request("GET", DEPLOYS + "/quiet")[1]
        assert not d.get("status")
        raw.close()


def test_state_survives_restart_and_kubeconfig_is_private(tmp_path: Path) -> None:
    state = tmp_path / "state" / "kubesim.db"
    with kserver.start(state) as srv:
        raw = Raw(srv)
        before = raw.request("GET", DEPLOYS)[1]["metadata"]["resourceVersion"]
        made = raw.request("PATCH", DEPLOYS + "/keep?fieldManager=t", deployment("keep"), APPLY)[1]
        kc = tmp_path / "kc"
        text = srv.kubeconfig(kc)
        assert (kc.stat().st_mode & 0o777) == 0o600
        cfg = yaml.safe_load(text)
        assert cfg["clusters"][0]["cluster"]["server"] == srv.url and srv.url.startswith("https://127.0.0.1:")
        assert cfg["users"][0]["user"]["token"] == srv.token
        raw.close()
    with kserver.start(state) as again:
        raw = Raw(again)
        # The event log survived too: a watch resumes from a resourceVersion of the last run.
        events = watch_lines(again, f"{DEPLOYS}?watch=1&resourceVersion={before}&timeoutSeconds=1", 1)
        assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("ADDED", "keep")]
        status, live = raw.request("GET", DEPLOYS + "/keep")
        assert status == 200
        assert live["metadata"]["uid"] == made["metadata"]["uid"]
        assert live["metadata"]["managedFields"] == made["metadata"]["managedFields"]
        nxt = raw.request(
            "POST",
            "/api/v1/namespaces/default/configmaps",
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "n"}},
        )[1]
        assert int(nxt["metadata"]["resourceVersion"]) > int(made["metadata"]["resourceVersion"])
        raw.close()
    with sqlite3.connect(state) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_stop_ends_open_watches_and_is_idempotent() -> None:
    import threading

    srv = kserver.start(":memory:")
    got: list[Any] = []
    t = threading.Thread(target=lambda: got.append(watch_lines(srv, DEPLOYS + "?watch=1", 100, timeout=20)))
    t.start()
    time.sleep(0.3)
    srv.stop()
    srv.stop()
    t.join(timeout=10)  # the client alone would read on for 20 s: ended by now means stop() ended it
    assert not t.is_alive()


def test_restarted_simulator_keeps_an_available_deployment_available(tmp_path: Path) -> None:
    """Every short-lived `spindle diff` starts the embedded cluster afresh: a Deployment already
    available at its generation must stay available (no status write, same resourceVersion)."""
    state = tmp_path / "kubesim.db"
    with kserver.start(state, simulate_workloads=True, simulate_delay=0.3) as srv:
        raw = Raw(srv)
        raw.request("PATCH", DEPLOYS + "/steady?fieldManager=t", deployment("steady", replicas=2), APPLY)
        ready = _until(
            lambda: (lambda d: d if _conditions(d).get("Available", {}).get("status") == "True" else None)(
                raw.request("GET", DEPLOYS + "/steady")[1]
            )
        )
        assert ready is not None
        raw.close()
    with kserver.start(state, simulate_workloads=True, simulate_delay=5) as again:
        raw = Raw(again)
        time.sleep(1.0)  # several simulator ticks, well inside the new process's delay
        live = raw.request("GET", DEPLOYS + "/steady")[1]
        assert _conditions(live)["Available"]["status"] == "True"
        assert live["metadata"]["resourceVersion"] == ready["metadata"]["resourceVersion"]
        raw.close()
