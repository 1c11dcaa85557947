"""`spindle reconcile` end to end: real Git, real kubesim, real kubectl, the real CLI."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from spindle_gitfixtures import Remote, git
from spindle_loopfixtures import free_port, get, post, scrape, sign, wait_for
from spindle_synclib import EXECUTOR, NAMESPACE, Cluster, example_repo, process_env, spinapp, spindle

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


@dataclass
class Daemon:
    """A `spindle reconcile` process with its webhook/metrics endpoint."""

    proc: subprocess.Popen[bytes]
    url: str
    secret: str
    log: Path

    def ready(self) -> bool:
        try:
            return get(self.url + "/readyz")[0] == 200
        except OSError:
            return False

    def push(self, secret: str | None = None) -> int:
        """POST a GitHub push webhook signed with `secret` (default: the right one)."""
        body = b'{"ref": "refs/heads/main"}'
        signature = sign((secret or self.secret).encode(), body)
        return post(self.url + "/hook", body, {"X-Hub-Signature-256": signature, "X-GitHub-Event": "push"})

    def metric(self, name: str, source: str = "shop") -> float:
        return scrape(self.url).get((name, (("source", source),)), 0.0)

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=30)


@contextmanager
def daemon(tmp_path: Path, cluster: Cluster, source: str, *extra: str) -> Iterator[Daemon]:
    """`spindle reconcile SOURCE --name shop --interval 1h` with a webhook, ready after its first run."""
    port, secret, log = free_port(), "push-secret", tmp_path / "daemon.log"
    env = process_env({"SPINDLE_STATE_DIR": str(tmp_path / "state"), "SPINDLE_WEBHOOK_SECRET": secret})
    with log.open("wb") as out:  # a file, not a pipe nobody reads: a chatty daemon never blocks
        proc = subprocess.Popen(
            [sys.executable, "-m", "reconciler.cli", "reconcile", source, "--name", "shop",
             "--interval", "1h", "--webhook-addr", f"127.0.0.1:{port}", "--kubeconfig",
             str(cluster.kubeconfig), "--timeout", "5", "--history", str(tmp_path / "h.sqlite"), *extra],
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )
    running = Daemon(proc, f"http://127.0.0.1:{port}", secret, log)
    try:
        assert wait_for(running.ready, timeout=60), log.read_text()
        yield running
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_daemon_follows_a_push_webhook_and_stops_on_sigterm(tmp_path: Path, cluster: Cluster) -> None:
    repo = example_repo(tmp_path / "repo", apps=("alpha",))
    with daemon(tmp_path, cluster, repo.root.as_uri()) as running:
        assert cluster.get("apps/v1", "Deployment", "alpha") is not None
        repo.write("apps/beta.yaml", spinapp("beta"))
        repo.commit("add beta")
        assert running.push(secret="forged") == 401
        assert running.push() == 202
        assert wait_for(lambda: cluster.get("apps/v1", "Deployment", "beta") is not None, timeout=30)
        created = scrape(running.url)[("spindle_reconcile_objects_total", (("action", "Created"),
                                                                           ("source", "shop")))]
        assert created >= 6  # alpha's and beta's SpinApp, Deployment, Service at least
        assert running.stop() == 0
    assert "stopping" in running.log.read_text()


def test_daemon_follows_a_force_push_and_rides_out_an_unreachable_remote(
    tmp_path: Path, cluster: Cluster
) -> None:
    remote = Remote(tmp_path / "upstream")
    apps = {f"apps/{name}.yaml": spinapp(name) for name in ("alpha", "beta")}
    remote.commit({"namespace.yaml": NAMESPACE, "executor.yaml": EXECUTOR, **apps}, "alpha and beta")
    remote.push()
    errors, last_success = "spindle_reconcile_errors_total", "spindle_last_success_timestamp_seconds"

    def replicas(name: str) -> int | None:
        live = cluster.get("apps/v1", "Deployment", name)
        return None if live is None else int(live["spec"]["replicas"])

    def inventory_revision() -> str | None:
        inventory = cluster.get("v1", "ConfigMap", "spindle-inventory-shop", "spindle-system")
        return None if inventory is None else str(json.loads(inventory["data"]["inventory.json"])["revision"])

    with daemon(tmp_path, cluster, remote.url, "--retry-initial", "0.3", "--retry-max", "0.6") as running:
        assert replicas("alpha") == 1 and replicas("beta") == 1

        # History rewritten: the head commit is replaced by one without beta, and force-pushed.
        git(remote.work, "rm", "--quiet", "apps/beta.yaml")
        git(remote.work, "commit", "--quiet", "--amend", "-m", "alpha only (rewritten)")
        rewritten = remote.commit_of("HEAD")
        remote.push(force=True)
        assert running.push() == 202
        assert wait_for(lambda: replicas("beta") is None, timeout=30), running.log.read_text()
        # The inventory is written after prune and health, so the run may still be finishing.
        assert wait_for(lambda: inventory_revision() == rewritten, timeout=30), running.log.read_text()

        # The remote goes away while someone scales alpha by hand.
        shutil.move(remote.bare, tmp_path / "offline.git")
        cluster.kubectl("scale", "deployment/alpha", "-n", "apps", "--replicas=3")
        assert running.push() == 202
        # The last good revision is still reconciled, so the drift is reverted...
        assert wait_for(lambda: replicas("alpha") == 1, timeout=30), running.log.read_text()
        # ...and the failed fetch is retried on the 0.3s-0.6s backoff, not the 1h interval.
        assert wait_for(lambda: running.metric(errors) >= 3, timeout=15), running.log.read_text()
        assert running.ready()

        shutil.move(tmp_path / "offline.git", remote.bare)
        back = time.time()
        assert wait_for(lambda: running.metric(last_success) >= back, timeout=15)
        settled = running.metric(errors)
        time.sleep(1.5)
        assert running.metric(errors) == settled  # back on the interval: no more retries
        assert running.stop() == 0
    log = running.log.read_text()
    assert f"reconciled last good revision {rewritten[:12]}" in log
    assert "reconcile failed 3 time(s) in a row; retrying in 0.6s" in log


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
