"""One installer at a time per node: an exclusive flock on `<rcm-path>/.installer.lock`.

RCM can start an install and an uninstall Job for the same node back to back (a Shim deleted right
after it was created, two Shims on one node); their edits of the same containerd config must not
interleave. The holder writes who it is into the lock file (pid, operation, runtime, start time);
a second installer polls for the lock up to `timeout` seconds, says once whom it is waiting for,
and gives up with a LockError naming the holder. The holder empties the file when it is done, so
an idle node's lock file is empty. flock locks die with their process: a killed installer never
leaves the node locked.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from node_installer.errors import LockError

POLL_SECONDS = 0.1


def _holder(handle_path: Path) -> str:
    try:
        raw = json.loads(handle_path.read_text() or "{}")
    except (OSError, ValueError):
        return "an unknown process"
    if not isinstance(raw, dict) or "pid" not in raw:
        return "an unknown process"
    what = f"{raw.get('operation', '?')} {raw.get('runtime', '?')}"
    return f"pid {raw['pid']} ({what}, since {raw.get('since', '?')})"


@contextlib.contextmanager
def node_lock(
    path: Path,
    *,
    node_path: str,
    operation: str,
    runtime: str,
    timeout: float,
    on_wait: Callable[[str], None] = lambda message: None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[None]:
    """Hold the node lock at `path` (a host path; `node_path` names it in messages)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = clock() + timeout
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = _holder(path)
                if not told:
                    on_wait(f"waiting up to {timeout:g}s for {node_path}: held by {holder}")
                    told = True
                if clock() >= deadline:
                    raise LockError(node_path, f"still held by {holder} after {timeout:g}s") from None
                sleep(POLL_SECONDS)
        info = {
            "pid": os.getpid(),
            "operation": operation,
            "runtime": runtime,
            "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
