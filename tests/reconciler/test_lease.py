"""One writer per source: `spindle apply` and `spindle reconcile` runs on one source take turns
through a Lease; a holder killed with -9 loses it when it expires; `diff` and `--detect-only`
take none. Real processes, real git, a real kubesim whose workloads never become ready (so a run
holds the Lease for as long as its health wait)."""

from __future__ import annotations

import datetime as dt
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from spindle_synclib import Cluster, Repo, example_repo, kubesim_cluster, no_cluster_env, process_env

from reconciler import lease

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
RENEWED = "2026-01-01T00:00:00.000000Z"
LEASE = ("coordination.k8s.io/v1", "Lease", "spindle-repo", "spindle-system")


@pytest.fixture
def slow_cluster(tmp_path: Path) -> Iterator[Cluster]:
    """kubesim without workload simulation: Deployments stay Progressing."""
    with kubesim_cluster(tmp_path / "kubeconfig", simulate_workloads=False) as running:
        yield running


def start(
    tmp_path: Path, cluster: Cluster, *args: str, env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    full = process_env({**no_cluster_env(tmp_path), **(env or {})})
    return subprocess.Popen(
        [sys.executable, "-m", "reconciler.cli", *args, "--kubeconfig", str(cluster.kubeconfig)],
        cwd=ROOT, env=full, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def finish(proc: subprocess.Popen[str]) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=120)
    return proc.returncode, out, err


def holder(cluster: Cluster) -> str:
    obj = cluster.client.get(*LEASE)
    return str(((obj or {}).get("spec") or {}).get("holderIdentity") or "")


def wait_for_holder(cluster: Cluster, proc: subprocess.Popen[str]) -> str:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        who = holder(cluster)
        if f"pid {proc.pid} " in who:
            return who
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    raise AssertionError("the first run never took the Lease")


def repo_of(tmp_path: Path) -> Repo:
    return example_repo(tmp_path / "repo", apps=("alpha",))


def test_two_concurrent_applies_take_turns(tmp_path: Path, slow_cluster: Cluster) -> None:
    repo = repo_of(tmp_path)
    first = start(tmp_path, slow_cluster, "apply", str(repo.root), "--no-history", "--timeout", "3")
    who = wait_for_holder(slow_cluster, first)
    assert who.endswith("(spindle apply)")

    refused = start(tmp_path, slow_cluster, "apply", str(repo.root), "--no-history", "--no-wait")
    code, _, err = finish(refused)
    assert code == 2
    assert f"Lease spindle-system/spindle-repo is held by {who} since 20" in err and "--no-wait" in err

    second = start(tmp_path, slow_cluster, "apply", str(repo.root), "--no-history", "--timeout", "1",
                   "--lock-timeout", "60")
    code1, out1, err1 = finish(first)
    code2, out2, err2 = finish(second)
    assert code1 == 0 and "Created" in out1, out1 + err1
    assert f"waiting for Lease spindle-system/spindle-repo: held by {who}" in err2
    # after the first, not over it
    assert code2 == 0 and out2.splitlines()[-1].endswith("unchanged"), out2 + err2
    assert holder(slow_cluster) == ""  # released


def test_a_holder_killed_with_9_loses_the_lease_when_it_expires(
    tmp_path: Path, slow_cluster: Cluster
) -> None:
    repo = repo_of(tmp_path)
    short = {lease.DURATION_ENV: "2"}
    victim = start(tmp_path, slow_cluster, "apply", str(repo.root), "--no-history", "--timeout", "600",
                   env=short)
    wait_for_holder(slow_cluster, victim)
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=10)
    assert f"pid {victim.pid} " in holder(slow_cluster)  # nobody released it

    t0 = time.monotonic()
    after = start(tmp_path, slow_cluster, "apply", str(repo.root), "--no-history", "--timeout", "1",
                  "--lock-timeout", "30")
    code, out, err = finish(after)
    assert code == 0, out + err
    assert time.monotonic() - t0 < 25
    spec = (slow_cluster.client.get(*LEASE) or {})["spec"]
    assert spec["leaseTransitions"] >= 1 and not spec.get("holderIdentity")


def test_diff_and_detect_only_take_no_lease(tmp_path: Path, slow_cluster: Cluster) -> None:
    repo = repo_of(tmp_path)
    holding = start(tmp_path, slow_cluster, "apply", str(repo.root), "--no-history", "--timeout", "600")
    try:
        wait_for_holder(slow_cluster, holding)
        code, out, err = finish(start(tmp_path, slow_cluster, "diff", str(repo.root)))
        assert code in (0, 1), out + err
        code, out, err = finish(start(tmp_path, slow_cluster, "apply", str(repo.root), "--no-history",
                                      "--detect-only", "--no-wait"))
        assert code in (0, 1), out + err
        assert "Lease" not in err
    finally:
        holding.kill()
        holding.wait(timeout=10)


def test_the_daemon_and_a_ci_apply_take_turns(tmp_path: Path, slow_cluster: Cluster) -> None:
    repo = repo_of(tmp_path)
    daemon = start(tmp_path, slow_cluster, "reconcile", str(repo.root), "--interval", "1h",
                   "--timeout", "3", "--history", str(tmp_path / "daemon.db"))
    try:
        who = wait_for_holder(slow_cluster, daemon)
        assert who.endswith("(spindle reconcile)")
        started = dt.datetime.now(dt.UTC)
        ci = start(tmp_path, slow_cluster, "apply", str(repo.root), "--no-history", "--timeout", "1")
        code, out, err = finish(ci)
        assert code == 0, out + err
        assert f"waiting for Lease spindle-system/spindle-repo: held by {who}" in err
        assert (dt.datetime.now(dt.UTC) - started).total_seconds() >= 1  # it waited for the daemon's run
        assert daemon.poll() is None  # the daemon goes on
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.communicate(timeout=30)


@pytest.mark.parametrize(
    ("spec", "expired"),
    [
        ({"holderIdentity": "a", "renewTime": RENEWED, "leaseDurationSeconds": 15}, False),
        ({"holderIdentity": "a", "renewTime": RENEWED, "leaseDurationSeconds": 5}, True),
        ({"holderIdentity": "a", "leaseDurationSeconds": 15}, True),  # never renewed
    ],
)
def test_expiry(spec: dict[str, object], expired: bool) -> None:
    held = lease.holder_of({"spec": spec})
    assert held is not None
    assert held.expired(dt.datetime(2026, 1, 1, 0, 0, 10, tzinfo=dt.UTC)) is expired


def test_a_released_lease_has_no_holder() -> None:
    assert lease.holder_of({"spec": {"holderIdentity": None}}) is None
    assert lease.holder_of(None) is None
