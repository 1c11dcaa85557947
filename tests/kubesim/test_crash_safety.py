"""Crash safety: SIGKILL kubesim in the middle of a write load, restart it on the same state, and
find every acknowledged write there and the database intact."""

from __future__ import annotations

import base64
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml
from kubesim_fixtures import Raw

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
CMS = "/api/v1/namespaces/default/configmaps"


class _Proc:
    """Just enough of RunningServer for the Raw client: port, token, CA."""

    def __init__(self, state: Path, tmp: Path) -> None:
        self.kubeconfig = tmp / f"kc-{time.monotonic_ns()}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "kubesim", "--state", str(state), "--kubeconfig", str(self.kubeconfig)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        try:  # a server that never got ready is killed, not left behind
            assert self.proc.stdout is not None
            line = self.proc.stdout.readline()
            assert line.startswith("ready "), line
            self.port = int(line.strip().rsplit(":", 1)[1])
            cfg = yaml.safe_load(self.kubeconfig.read_text())
            self.token = cfg["users"][0]["user"]["token"]
            self.ca_pem = base64.b64decode(cfg["clusters"][0]["cluster"]["certificate-authority-data"])
        except BaseException:
            self.proc.kill()
            self.proc.wait()
            raise


def test_sigkill_during_writes_loses_no_acknowledged_write(tmp_path: Path) -> None:
    state = tmp_path / "state.db"
    first = _Proc(state, tmp_path)
    acked: dict[str, str] = {}
    lock = threading.Lock()
    stop = threading.Event()

    def writer(k: int) -> None:
        client = Raw(first)  # type: ignore[arg-type]
        i = 0
        while not stop.is_set() and i < 2000:
            name = f"w{k}-{i}"
            try:
                status, doc = client.request(
                    "POST",
                    CMS,
                    {
                        "apiVersion": "v1",
                        "kind": "ConfigMap",
                        "metadata": {"name": name},
                        "data": {"i": str(i)},
                    },
                )
            except OSError:
                return  # the server died mid-request: this write was never acknowledged
            if status == 201:
                with lock:
                    acked[name] = doc["metadata"]["resourceVersion"]
            i += 1

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 20
    while len(acked) < 300 and time.monotonic() < deadline:
        time.sleep(0.02)
    first.proc.send_signal(signal.SIGKILL)
    first.proc.wait(timeout=10)
    stop.set()
    for t in threads:
        t.join(timeout=10)
    assert len(acked) >= 300

    second = _Proc(state, tmp_path)
    try:
        client = Raw(second)  # type: ignore[arg-type]
        status, listed = client.request("GET", CMS)
        assert status == 200
        stored = {i["metadata"]["name"]: i for i in listed["items"]}
        missing = sorted(set(acked) - set(stored))
        assert not missing, f"{len(missing)} acknowledged writes lost, e.g. {missing[:5]}"
        for name, rv in acked.items():
            assert stored[name]["metadata"]["resourceVersion"] == rv
        newest = max(int(rv) for rv in acked.values())
        status, made = client.request(
            "POST", CMS, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "after-restart"}}
        )
        assert status == 201 and int(made["metadata"]["resourceVersion"]) > newest
        client.close()
    finally:
        second.proc.terminate()
        second.proc.wait(timeout=10)
    with sqlite3.connect(state) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
