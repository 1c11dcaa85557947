"""Starting workload processes (kept light: `cli` imports it before anything heavy).

A workload is this program run again with `_workload`, talking to the daemon over two pipes. The
daemon starts one *spare* app workload as the very first thing it does, so that Python's start,
wasmtime's import and the app runtime's import overlap the daemon's own start and containerd's
Create; the first app task then only loads its app from the artifact cache. Sandbox holders are
started fresh and never import wasmtime.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import IO

FDS_ENV = "SPINDLE_SHIM_WORKLOAD_FDS"
PRELOAD_ENV = "SPINDLE_SHIM_WORKLOAD_PRELOAD"


def self_command() -> list[str]:
    """How to run this program again: the frozen executable itself, or this interpreter."""
    if getattr(sys, "frozen", False):
        return [sys.executable]
    return [sys.executable, "-m", "shim.containerd"]


@dataclass
class Launched:
    proc: subprocess.Popen[bytes]
    control: IO[bytes]  # config, then "start"
    status: IO[bytes]  # ready / serving / error

    def alive(self) -> bool:
        return self.proc.poll() is None


def launch(*, preload: bool, log_fd: int | None = None, cwd: str | None = None) -> Launched:
    """Start a workload that waits for its config; `preload` imports the app runtime first."""
    control_r, control_w = os.pipe()
    status_r, status_w = os.pipe()
    env = {**os.environ, FDS_ENV: f"{control_r},{status_w}"}
    if preload:
        env[PRELOAD_ENV] = "1"
    try:
        # its own session: `kill -- -pid` (Kill with all=true, the delete action) reaches its workers
        proc = subprocess.Popen([*self_command(), "_workload"], cwd=cwd, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=log_fd or subprocess.DEVNULL,
                                pass_fds=(control_r, status_w), start_new_session=True, env=env)
    except BaseException:
        for fd in (control_w, status_r):
            os.close(fd)
        raise
    finally:
        os.close(control_r)
        os.close(status_w)
    return Launched(proc, os.fdopen(control_w, "wb", buffering=0), os.fdopen(status_r, "rb"))


def open_log_fifo(bundle: Path) -> int | None:
    try:
        # containerd holds the read end open (O_RDWR|O_NONBLOCK), so this does not block
        fd = os.open(bundle / "log", os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    os.set_blocking(fd, True)  # a full pipe waits for containerd rather than losing lines
    return fd
