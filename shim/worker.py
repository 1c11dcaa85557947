"""Extra worker process: `python -m shim.worker FD OPTIONS_JSON` serves on an inherited socket."""

from __future__ import annotations

import os
import socket
import sys

from shim.errors import ShimError
from shim.runner import RunOptions, configure_logging, serve


def main(argv: list[str]) -> int:
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
