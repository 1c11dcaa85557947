"""`spindle cluster serve | kubeconfig | reset` through the real CLI, with real kubectl."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from kubesim_fixtures import kubectl

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def _spindle(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reconciler.cli", "cluster", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=60,
    )


def test_serve_kubeconfig_reset(tmp_path: Path) -> None:
    env = {**os.environ, "SPINDLE_STATE_DIR": str(tmp_path / "state"), "PYTHONPATH": str(ROOT)}
    assert _spindle(env, "kubeconfig").returncode == 2  # nothing served yet
    serve = subprocess.Popen(
        [sys.executable, "-m", "reconciler.cli", "cluster", "serve"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )
    try:
        assert serve.stdout is not None
        first = serve.stdout.readline()
        assert first.startswith("kubesim serving at https://127.0.0.1:"), first + (
            serve.stderr.read() if serve.poll() else ""
        )
        kc_line = serve.stdout.readline()
        kubeconfig = Path(kc_line.split(": ", 1)[1].strip())
        assert kubeconfig == tmp_path / "state" / "cluster" / "kubeconfig"
        assert (kubeconfig.stat().st_mode & 0o777) == 0o600
        client_dir = tmp_path / "client"  # kubectl's HOME (its discovery cache) stays out of the state dir
        client_dir.mkdir()
        (client_dir / "kubeconfig").write_text(kubeconfig.read_text())
        out = kubectl(client_dir / "kubeconfig", "get", "namespaces", "-o", "name").stdout.split()
        assert {
            "namespace/default",
            "namespace/kube-system",
            "namespace/kube-public",
            "namespace/kube-node-lease",
        } <= set(out)
        printed = _spindle(env, "kubeconfig")
        assert printed.returncode == 0 and printed.stdout == kubeconfig.read_text()
        refused = _spindle(env, "reset", "--yes")
        assert refused.returncode == 2 and "stop it before resetting" in refused.stderr
    finally:
        out = _stop(serve)
    assert serve.returncode == 0 and "kubesim stopped" in out
    state_files = sorted(p.name for p in (tmp_path / "state" / "cluster").iterdir())
    assert "kubesim.db" in state_files and "serve.pid" not in state_files
    done = _spindle(env, "reset", "--yes")
    assert done.returncode == 0
    assert sorted(p.name for p in (tmp_path / "state" / "cluster").iterdir()) == []
    assert _spindle(env, "kubeconfig").returncode == 2


def test_serve_with_its_own_kubeconfig_is_still_found_by_spindle(tmp_path: Path) -> None:
    """`serve --kubeconfig F` must still leave spindle's own kubeconfig in the state dir: spindle
    commands find the running server through it, and otherwise started a second kubesim on the
    same database."""
    import yaml

    from reconciler.kube import target

    env = {**os.environ, "SPINDLE_STATE_DIR": str(tmp_path / "state"), "PYTHONPATH": str(ROOT)}
    mine = tmp_path / "mine.kubeconfig"
    serve = subprocess.Popen(
        [sys.executable, "-m", "reconciler.cli", "cluster", "serve", "--kubeconfig", str(mine)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT,
    )
    try:
        assert serve.stdout is not None
        first = serve.stdout.readline()
        assert first.startswith("kubesim serving at"), first + (serve.stderr.read() if serve.poll() else "")
        serve.stdout.readline()
        printed = _spindle(env, "kubeconfig")
        assert printed.returncode == 0, printed.stderr
        server = yaml.safe_load(printed.stdout)["clusters"][0]["cluster"]["server"]
        assert server == yaml.safe_load(mine.read_text())["clusters"][0]["cluster"]["server"]
        found = target.embedded(tmp_path / "state")
        try:
            assert "served by `spindle cluster serve`" in found.description
        finally:
            found.close()
    finally:
        _stop(serve)


def _stop(serve: subprocess.Popen[str]) -> str:
    """SIGTERM the server and return its stdout; kill it if it does not stop, so no test leaves
    a kubesim running behind it."""
    serve.send_signal(signal.SIGTERM)
    try:
        out, _ = serve.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        serve.kill()
        serve.communicate()
        raise
    return out
