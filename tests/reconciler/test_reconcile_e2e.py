"""`spindle reconcile` end to end: real Git, real kubesim, real kubectl, the real CLI."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from spindle_loopfixtures import free_port, get, post, sign, wait_for
from spindle_synclib import Cluster, example_repo, spinapp, spindle

pytestmark = pytest.mark.slow


def test_reconcile_once_records_history_and_reverts_kubectl_drift(tmp_path: Path, cluster: Cluster) -> None:
    repo = example_repo(tmp_path / "repo", apps=("alpha", "beta"))
    history = tmp_path / "history.sqlite"
    env = {"SPINDLE_STATE_DIR": str(tmp_path / "state")}
    args = ["reconcile", repo.root.as_uri(), "--name", "shop", "--once", "--kubeconfig",
            str(cluster.kubeconfig), "--history", str(history), "--timeout", "5"]

    first = spindle(*args, env=env)
    assert first.exit_code == 0, first.stdout + first.stderr
    assert "Deployment/apps/alpha" in first.stdout and "Created" in first.stdout
    sha = repo.git.head.commit.hexsha
    assert sha[:12] in first.stdout
    assert cluster.get("apps/v1", "Deployment", "alpha") is not None

    cluster.kubectl("scale", "deployment/alpha", "-n", "apps", "--replicas=4")
    second = spindle(*args, env=env)
    assert second.exit_code == 0, second.stdout + second.stderr
    live = cluster.get("apps/v1", "Deployment", "alpha")
    assert live is not None and live["spec"]["replicas"] == 1  # reverted to Git

    report = spindle("report", "--history", str(history), "--last", "5", "-o", "json")
    assert report.exit_code == 0, report.stderr
    records = json.loads(report.stdout)
    assert len(records) == 2 and all(r["revision"]["sha"] == sha for r in records)
    assert all(r["source"] == "shop" for r in records)
    alpha = next(e for e in records[0]["entries"] if e["subject"] == "Deployment/apps/alpha")
    assert alpha["action"] == "Configured"
    replicas = next(f for f in alpha["fields"] if f["path"].endswith("replicas"))
    assert (replicas["live"], replicas["desired"]) == (4, 1)
    assert any(o["manager"].startswith("kubectl") for o in replicas["owners"])

    html = spindle("report", "--history", str(history), "--revision", sha[:8], "-o", "html")
    assert html.exit_code == 0 and "Deployment/apps/alpha" in html.stdout and "kubectl" in html.stdout

    cluster.kubectl("scale", "deployment/alpha", "-n", "apps", "--replicas=3")
    detect = spindle(*args, "--detect-only", env=env)
    assert detect.exit_code == 1, detect.stdout + detect.stderr  # drift found, nothing changed
    assert "drift detected" in detect.stdout and ".spec.replicas: 3 -> 1" in detect.stdout
    live = cluster.get("apps/v1", "Deployment", "alpha")
    assert live is not None and live["spec"]["replicas"] == 3


def test_reconcile_once_with_unreachable_source_exits_2(tmp_path: Path, cluster: Cluster) -> None:
    run = spindle("reconcile", (tmp_path / "nowhere.git").as_uri(), "--once", "--kubeconfig",
                  str(cluster.kubeconfig), "--history", str(tmp_path / "h.sqlite"),
                  env={"SPINDLE_STATE_DIR": str(tmp_path / "state")})
    assert run.exit_code == 2
    assert "nowhere.git" in run.stdout


def test_webhook_without_secret_is_a_usage_error(tmp_path: Path) -> None:
    run = spindle("reconcile", str(tmp_path), "--webhook-addr", "127.0.0.1:0",
                  env={"SPINDLE_WEBHOOK_SECRET": "", "SPINDLE_STATE_DIR": str(tmp_path / "s")})
    assert run.exit_code == 2 and "needs a secret" in run.stderr


def test_daemon_follows_a_push_webhook_and_stops_on_sigterm(tmp_path: Path, cluster: Cluster) -> None:
    repo = example_repo(tmp_path / "repo", apps=("alpha",))
    port = free_port()
    secret = "push-secret"
    env = {**os.environ, "SPINDLE_STATE_DIR": str(tmp_path / "state"), "SPINDLE_WEBHOOK_SECRET": secret}
    proc = subprocess.Popen(
        [sys.executable, "-m", "reconciler.cli", "reconcile", repo.root.as_uri(), "--name", "shop",
         "--interval", "1h", "--webhook-addr", f"127.0.0.1:{port}", "--kubeconfig", str(cluster.kubeconfig),
         "--timeout", "5"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        try:
            return get(url + "/readyz")[0] == 200
        except OSError:
            return False

    try:
        assert wait_for(ready, timeout=60), "never became ready"
        assert cluster.get("apps/v1", "Deployment", "alpha") is not None
        repo.write("apps/beta.yaml", spinapp("beta"))
        repo.commit("add beta")
        body = b'{"ref": "refs/heads/main"}'
        forged = {"X-Hub-Signature-256": sign(b"nope", body), "X-GitHub-Event": "push"}
        bad = post(url + "/hook", body, forged)
        assert bad == 401
        good = post(url + "/hook", body, {"X-Hub-Signature-256": sign(secret.encode(), body),
                                          "X-GitHub-Event": "push"})
        assert good == 202
        assert wait_for(lambda: cluster.get("apps/v1", "Deployment", "beta") is not None, timeout=30)
        metrics = get(url + "/metrics")[1]
        assert 'spindle_reconcile_objects_total{action="Created",source="shop"}' in metrics
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    err = proc.stderr.read() if proc.stderr else ""
    assert "stopping" in err


def test_busy_webhook_port_is_a_clear_error(tmp_path: Path, cluster: Cluster) -> None:
    repo = example_repo(tmp_path / "repo", apps=("alpha",))
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        run = spindle("reconcile", repo.root.as_uri(), "--webhook-addr", f"127.0.0.1:{port}",
                      "--kubeconfig", str(cluster.kubeconfig), "--history", str(tmp_path / "h.sqlite"),
                      env={"SPINDLE_WEBHOOK_SECRET": "s", "SPINDLE_STATE_DIR": str(tmp_path / "state")})
    assert run.exit_code == 2
    assert f"cannot listen on 127.0.0.1:{port}" in run.stderr


def test_local_directory_and_semver_ref(tmp_path: Path, cluster: Cluster) -> None:
    repo = example_repo(tmp_path / "repo", apps=("alpha",))
    repo.git.create_tag("v1.0.0")
    repo.write("apps/beta.yaml", spinapp("beta"))
    repo.commit("beta, not released yet")
    env = {"SPINDLE_STATE_DIR": str(tmp_path / "state")}
    common = ["--once", "--kubeconfig", str(cluster.kubeconfig), "--history", str(tmp_path / "h.sqlite"),
              "--timeout", "5"]

    released = spindle("reconcile", str(repo.root), "--name", "rel", "--ref", "semver:^1", *common, env=env)
    assert released.exit_code == 0, released.stdout + released.stderr
    assert repo.git.tags["v1.0.0"].commit.hexsha[:12] in released.stdout
    assert "Deployment/apps/alpha" in released.stdout and "Deployment/apps/beta" not in released.stdout

    as_is = spindle("reconcile", str(repo.root), "--name", "rel", *common, env=env)
    assert as_is.exit_code == 0, as_is.stdout + as_is.stderr
    assert repo.git.head.commit.hexsha[:12] in as_is.stdout
    assert cluster.get("apps/v1", "Deployment", "beta") is not None
