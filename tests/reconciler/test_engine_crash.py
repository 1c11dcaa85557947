"""SIGKILL in the middle of an apply, then a restart: the cluster converges, the inventory is
intact, and nothing is orphaned (every object labelled for the source is in the inventory)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from spindle_synclib import Cluster, Repo, apply, apply_args, example_repo

pytestmark = pytest.mark.slow

APPS = tuple(f"app{i:03d}" for i in range(120))


def owned(cluster: Cluster) -> set[tuple[str, str]]:
    found = set()
    for api_version, kind in (
        ("apps/v1", "Deployment"),
        ("v1", "Service"),
        ("v1", "Secret"),
        ("core.spinkube.dev/v1alpha1", "SpinApp"),
    ):
        for obj in cluster.client.list(api_version, kind, label_selector="spindle.dev/source=repo"):
            found.add((kind, obj["metadata"]["name"]))
    return found


def inventory(cluster: Cluster) -> set[tuple[str, str]]:
    cm = cluster.get("v1", "ConfigMap", "spindle-inventory-repo", "spindle-system")
    assert cm is not None
    rows = json.loads(cm["data"]["inventory.json"])["entries"]
    return {(r["id"].split("_")[3], r["id"].split("_")[1]) for r in rows}


def kill_mid_apply(repo: Repo, cluster: Cluster) -> int:
    """Start `spindle apply` in a child process and SIGKILL it once some, not all, apps exist."""
    args = apply_args(repo, cluster, "--timeout", "0", "--concurrency", "1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "reconciler.cli", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=Path(__file__).resolve().parents[2],
        env={**os.environ, "SPINDLE_STATE_DIR": str(repo.root.parent / "state")},
    )
    deadline = time.monotonic() + 60
    created = 0
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            found = cluster.client.list("apps/v1", "Deployment", label_selector="spindle.dev/source=repo")
            created = len(found)
            if created >= 5:
                proc.send_signal(signal.SIGKILL)
                break
            time.sleep(0.01)
    finally:  # never leave the child running, whatever went wrong above
        if proc.poll() is None and created < 5:
            proc.kill()
            proc.wait(timeout=30)
            raise AssertionError(f"the apply created only {created} apps in 60 s; killed it")
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, "the apply finished before it could be killed"
    return created


def test_sigkill_during_apply_then_restart_converges(tmp_path: Path, cluster: Cluster) -> None:
    repo = example_repo(tmp_path / "repo", apps=APPS)
    created = kill_mid_apply(repo, cluster)
    partial = owned(cluster)
    assert 0 < created < len(APPS)
    assert partial <= inventory(cluster)  # widened before anything was created

    # Meanwhile Git drops the first ten apps, some of which the killed run already created.
    for name in APPS[:10]:
        repo.remove(f"apps/{name}.yaml")
    repo.commit("drop ten apps")
    run = apply(repo, cluster)
    assert run.exit_code == 0, run.stdout[-2000:]
    final = owned(cluster)
    assert {n for k, n in final if k == "Deployment"} == set(APPS[10:])
    assert final == {x for x in inventory(cluster) if x[0] in {"Deployment", "Service", "Secret", "SpinApp"}}
    again = apply(repo, cluster)
    assert set(again.actions().values()) == {"Unchanged"}
