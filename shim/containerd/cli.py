"""`containerd-shim-spin-v2`: the entry point containerd executes.

    containerd-shim-spin-v2 -namespace NS -address SOCK -publish-binary BIN -id ID [-debug] start
    containerd-shim-spin-v2 -namespace NS -address SOCK -publish-binary BIN -id ID -bundle DIR delete
    containerd-shim-spin-v2 -namespace NS -address SOCK -publish-binary BIN -id ID      (the daemon)
    containerd-shim-spin-v2 _workload                                                    (a task's process)
    containerd-shim-spin-v2 _worker FD OPTIONS                                           (its extra workers)
    containerd-shim-spin-v2 -v                                                           (version)

Flags use Go's syntax (`-flag value`, `--flag=value`); unknown ones are ignored, since newer
containerd versions add some.
"""

from __future__ import annotations

import argparse
import os
import sys
from importlib import metadata
from pathlib import Path

from shim.containerd import bootstrap, launch


def _version() -> str:
    try:
        return metadata.version("spindle-gitops")
    except metadata.PackageNotFoundError:
        return "unknown"


def parse(argv: list[str]) -> tuple[bootstrap.Flags, str, bool]:
    parser = argparse.ArgumentParser(prog="containerd-shim-spin-v2", add_help=False, allow_abbrev=False)
    for name in ("namespace", "address", "publish-binary", "id", "bundle", "socket"):
        parser.add_argument(f"-{name}", f"--{name}", default="")
    parser.add_argument("-debug", "--debug", action="store_true")
    parser.add_argument("-v", "--v", "-version", action="store_true", dest="version")
    parser.add_argument("action", nargs="?", default="")
    known, _unknown = parser.parse_known_args(argv)
    flags = bootstrap.Flags(namespace=known.namespace, address=known.address,
                         publish_binary=known.publish_binary, id=known.id, bundle=known.bundle,
                         debug=known.debug)
    return flags, known.action, known.version


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["_workload"]:
        from shim.containerd import workload

        return workload.main()
    if args[:1] == ["_worker"]:  # an app's extra serving process, in a frozen build
        from shim import worker

        return worker.main(args[1:])
    flags, action, version = parse(args)
    if version:
        print(f"containerd-shim-spin-v2 (spindle):\n  Version: {_version()}\n  Runtime: wasmtime (Python)")
        return 0
    if not flags.namespace:
        print("shim namespace cannot be empty", file=sys.stderr)
        return 1
    if action == "start":
        return bootstrap.start(flags)
    if action == "delete":
        return bootstrap.delete(flags)
    if action == "":
        # the spare app workload first, so its imports overlap ours (launch.py)
        log_fd = launch.open_log_fifo(Path.cwd())
        spare = launch.launch(preload=True, log_fd=log_fd, cwd=os.getcwd())
        from shim.containerd import daemon

        return daemon.serve(flags, log_fd, spare)
    print(f"unknown action {action!r} (start, delete)", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
