"""Extra worker process: `python -m shim.worker FD OPTIONS_JSON` serves on an inherited socket."""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import sys

from shim.errors import ShimError
from shim.runner import RunOptions, configure_logging, serve


def _die_with_parent() -> None:
    """Linux: SIGTERM this worker when the serving parent dies, even by SIGKILL, so no orphan
    keeps the port."""
    parent = int(os.environ.get("SPINDLE_SHIM_PARENT") or os.getppid())
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


def main(argv: list[str]) -> int:
    _die_with_parent()
    configure_logging()
    fd, opts = int(argv[0]), RunOptions.from_json(argv[1])
    sock = socket.socket(fileno=fd)
    try:
        return serve(opts, dict(os.environ), sock=sock, spawn_workers=False)
    except ShimError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
