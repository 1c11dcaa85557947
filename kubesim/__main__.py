"""`python -m kubesim`: serve in the foreground (for benchmarks, crash tests and debugging).

Prints one line `ready <url>` once it accepts connections; stops on SIGTERM/SIGINT. The spindle
CLI's `spindle cluster serve` is the user-facing way to run it.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from kubesim import server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kubesim", description=__doc__)
    parser.add_argument("--state", default=":memory:", help="SQLite file or :memory:")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--address", default="127.0.0.1")
    parser.add_argument("--token", default=None, help="the admin's bearer token (default: random)")
    parser.add_argument(
        "--token-auth-file", default=None, help='more users: CSV lines token,user,uid,"group1,group2"'
    )
    parser.add_argument("--kubeconfig", default=None, help="write a kubeconfig here")
    parser.add_argument("--simulate-workloads", action="store_true")
    args = parser.parse_args(argv)
    running = server.start(
        args.state,
        args.port,
        args.token,
        address=args.address,
        simulate_workloads=args.simulate_workloads,
        token_file=args.token_auth_file,
    )
    if args.kubeconfig:
        running.kubeconfig(args.kubeconfig)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print(f"ready {running.url}", flush=True)
    while not stop.wait(0.5):
        pass
    running.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
