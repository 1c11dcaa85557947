"""The HTTP path for large bodies through a real socket: what sits between the socket and the
guest (accept loop, request body reads, response writes) must not cost more than the guest."""

from __future__ import annotations

import os
import time
from pathlib import Path

from shim_testlib import WAT_APP, make_app, shim_up


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def test_idle_server_does_not_spin(tmp_path: Path) -> None:
    """The accept loop waits for connections: a spinning loop holds the GIL against the request
    threads (it cost ~10 ms on a 1 MiB echo and most of the one-process request rate)."""
    root = make_app(tmp_path / "app", WAT_APP)
    with shim_up(root, tmp_path, "--workers", "1") as up:
        assert up.get("/warm")[0] == 200
        before, t0 = _cpu_seconds(up.proc.pid), time.monotonic()
        time.sleep(1.5)
        used, elapsed = _cpu_seconds(up.proc.pid) - before, time.monotonic() - t0
        # a waiting loop wakes 5 times a second (plus the epoch ticker); a spinning one uses a core
        assert used < 0.25 * elapsed, f"idle server used {used:.2f} s CPU in {elapsed:.2f} s"
        assert up.get("/after")[0] == 200
