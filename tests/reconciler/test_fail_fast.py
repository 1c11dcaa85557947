"""An API server that dies mid-apply stops the run at once with one error naming the server, and
the next run (against the restarted server, with its new token) finds the inventory and history
consistent; a 401 from a restarted server reloads the kubeconfig once. Real processes, real git,
`spindle cluster serve` killed with -9, and an in-process kubesim restarted on the same port."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from spindle_loopfixtures import free_port
from spindle_synclib import example_repo, no_cluster_env, process_env

from reconciler.kube import errors, target

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def cli(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "reconciler.cli", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def serve(env: dict[str, str], port: int, *extra: str) -> subprocess.Popen[str]:
    proc = cli(env, "cluster", "serve", "--port", str(port), *extra)
    assert proc.stdout is not None
    line = proc.stdout.readline()  # "kubesim serving at ..." once it accepts connections
    assert "kubesim serving at" in line, line + (proc.stderr.read() if proc.stderr else "")
    return proc


def wait_until(check: object, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(check) and check():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting until {what}")


def test_killing_the_served_cluster_mid_apply_stops_the_run_at_once(tmp_path: Path) -> None:
    env = process_env(no_cluster_env(tmp_path))
    repo = example_repo(tmp_path / "repo", apps=("alpha",))
    port = free_port()
    server = serve(env, port)  # no workload simulation: the apply waits in its health check
    kubeconfig = tmp_path / "state" / "cluster" / "kubeconfig"
    client = target.from_kubeconfig(str(kubeconfig)).client
    applying = cli(env, "apply", str(repo.root), "--timeout", "20")

    def deployed() -> bool:
        try:
            return client.get("apps/v1", "Deployment", "alpha", "apps") is not None
        except errors.KubeError:
            return False

    wait_until(deployed, "the apply created the Deployment")
    server.send_signal(signal.SIGKILL)
    server.communicate(timeout=10)
    killed = time.monotonic()
    out, err = applying.communicate(timeout=60)
    assert time.monotonic() - killed < 10, out + err  # not object by object up to --timeout
    assert applying.returncode == 2, out + err
    said = [line for line in out.splitlines() if line.startswith("error: ")]
    assert len(said) == 1, out
    assert f"API server https://127.0.0.1:{port}: unreachable:" in said[0]

    restarted = serve(env, port, "--simulate-workloads")  # a new bearer token
    try:
        report = cli(env, "report", "--last", "1", "-o", "json")
        records = json.loads(report.communicate(timeout=60)[0])
        record = records[0] if isinstance(records, list) else records["records"][0]
        assert record["ok"] is False and len(record["errors"]) == 1  # the history has the failed run
        again = cli(env, "apply", str(repo.root), "--timeout", "20", "-o", "json")
        out, err = again.communicate(timeout=120)
        assert again.returncode == 0, out + err
        actions = {e["subject"]: e["action"] for e in json.loads(out)["entries"]}
        assert actions["Deployment/apps/alpha"] in ("Unchanged", "Configured")  # adopted, not recreated
        fresh = target.from_kubeconfig(str(kubeconfig)).client
        inventory = fresh.get("v1", "ConfigMap", "spindle-inventory-repo", "spindle-system")
        assert inventory is not None and "alpha" in inventory["data"]["inventory.json"]
    finally:
        restarted.send_signal(signal.SIGTERM)
        restarted.communicate(timeout=30)


def test_a_401_from_a_restarted_cluster_reloads_the_kubeconfig_once(tmp_path: Path) -> None:
    env = process_env(no_cluster_env(tmp_path))
    repo = example_repo(tmp_path / "repo", apps=("alpha",))
    db, kubeconfig = tmp_path / "kubesim.db", tmp_path / "kubeconfig"
    port = free_port()
    state = ("--state", str(db), "--kubeconfig", str(kubeconfig))
    first = serve(env, port, *state)
    token = kubeconfig.read_text()
    applying = cli(env, "apply", str(repo.root), "--kubeconfig", str(kubeconfig), "--timeout", "30",
                   "--no-history")
    client = target.from_kubeconfig(str(kubeconfig)).client
    wait_until(lambda: client.get("apps/v1", "Deployment", "alpha", "apps") is not None,
               "the apply created the Deployment")
    first.send_signal(signal.SIGKILL)
    first.communicate(timeout=10)
    second = serve(env, port, *state, "--simulate-workloads")  # rewrites the kubeconfig: a new token
    try:
        assert kubeconfig.read_text() != token
        out, err = applying.communicate(timeout=120)
        assert applying.returncode == 0, out + err
        assert "Unauthorized" not in out + err and "Healthy" in out
    finally:
        second.send_signal(signal.SIGTERM)
        second.communicate(timeout=30)


def test_a_401_that_survives_the_reload_is_one_error(tmp_path: Path) -> None:
    from kubesim import server

    running = server.start(":memory:", 0)
    try:
        kubeconfig = tmp_path / "kubeconfig"
        running.kubeconfig(kubeconfig)
        kubeconfig.write_text(kubeconfig.read_text().replace(running.token, "wrong-token"))
        client = target.from_kubeconfig(str(kubeconfig)).client
        with pytest.raises(errors.Unauthorized):
            client.get("v1", "Namespace", "default")
        assert client.requests == 2  # the request, and once more after reloading the kubeconfig
    finally:
        running.stop()
