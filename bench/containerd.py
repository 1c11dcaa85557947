"""containerd-shim-spin-v2 next to runc under one real containerd, in one run.

For each runtime, N times: `ctr run -d` → first HTTP 200 (the Spin app with a warm artifact cache;
busybox httpd under runc as the peer), then the memory of the running app with every process of
its shim counted (PSS, so shared pages are split fairly). Prints medians and the ratios to runc.

    python3 bench/containerd.py [--rounds 7] [--shim PATH | --frozen]

Goals (issue 9): first response ≤ 500 ms, memory ≤ 80 MiB PSS per app. The frozen shim (issue 10)
gets its own row: `--shim PATH` measures another build (a file, or a `spindle node build --out`
directory), `--frozen` freezes this tree first (or reuses the tests' cached build of it), and
without either the tests' cached frozen build of this tree is measured when there is one.
Needs root, containerd, runc and busybox-static (the test suite's `scripts/test` installs them).
"""

from __future__ import annotations

import argparse
import http.client
import os
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "shim_containerd"), str(ROOT / "tests" / "node_release")]

from containerd_env import Containerd, busybox_image_tar  # noqa: E402
from spin_images import wat_app_tar  # noqa: E402

SPIN_IMAGE = "docker.io/library/bench-spin:1"
HTTPD_IMAGE = "docker.io/library/bench-httpd:1"


@dataclass
class Sample:
    first_200_ms: float
    pss_mib: float


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def first_200(port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/")
            if conn.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.002)
        finally:
            conn.close()
    raise TimeoutError(f"no HTTP 200 on port {port} within {timeout}s")


def pss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    out, todo = {pid}, [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            if c not in out:
                out.add(c)
                todo.append(c)
    return out


def ppid(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def measure(c: Containerd, cid: str, flags_and_image: list[str], args: list[str], port: int) -> Sample:
    """`ctr run -d` → first 200, then the PSS of the shim and everything under it (the task's
    parent is its shim in both runtimes: runc's shim is a subreaper, the spin shim spawns it)."""
    t0 = time.perf_counter()
    c.ctr("run", "-d", "--net-host", *flags_and_image, cid, *args)
    first_200(port)
    elapsed = (time.perf_counter() - t0) * 1000
    time.sleep(0.3)  # let the app settle before reading memory
    task_pid = int(c.ctr("task", "ls").stdout.split(cid, 1)[1].split()[0])
    pss = sum(pss_kib(p) for p in descendants(ppid(task_pid))) / 1024
    c.ctr("task", "kill", "-s", "KILL", cid)
    for _ in range(200):
        if "RUNNING" not in c.ctr("task", "ls").stdout.split(cid, 1)[-1].split("\n", 1)[0]:
            break
        time.sleep(0.02)
    c.ctr("task", "rm", "-f", cid, check=False)
    c.ctr("containers", "rm", cid, check=False)
    return Sample(elapsed, pss)


def run_rows(c: Containerd, rows: dict[str, Callable[[str], Sample]], rounds: int) -> dict[str, list[Sample]]:
    results: dict[str, list[Sample]] = {name: [] for name in rows}
    for r in range(rounds):
        for name, fn in rows.items():  # interleaved, so drift hits every row alike
            results[name].append(fn(f"b{r}{abs(hash(name)) % 10_000}"))
    return results


def other_shim(shim: Path | None, build_frozen: bool) -> tuple[str, Path] | None:
    """(row name, executable) of the second spin row, if any."""
    from reconciler.node import freeze

    if shim is not None:
        path = shim / freeze.SHIM.name if shim.is_dir() else shim
        try:
            freeze.read_trailer(path)
            return "spin shim (frozen)", path.resolve()
        except (freeze.FreezeError, OSError):
            return "spin shim (--shim)", path.resolve()
    import node_build

    if build_frozen:
        return "spin shim (frozen)", node_build.frozen(freeze.SHIM)
    cached = node_build.cached(freeze.SHIM)
    if cached is None:
        print("no frozen shim of this tree cached: --frozen builds one (about 20 s)", file=sys.stderr)
        return None
    return "spin shim (frozen)", cached


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--shim", type=Path, help="another containerd-shim-spin-v2 build to measure too "
                    "(an executable or a `spindle node build --out` directory)")
    ap.add_argument("--frozen", action="store_true", help="freeze this tree's shim and measure it too")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("bench/containerd.py needs root (containerd)", file=sys.stderr)
        return 2
    other = other_shim(args.shim, args.frozen)
    cache = Path(tempfile.mkdtemp(prefix="spin-cache-"))
    os.environ["SPINDLE_SHIM_CACHE_DIR"] = str(cache)
    c = Containerd.start()
    try:
        images = c.root / "images"
        images.mkdir()
        c.import_image(wat_app_tar(images / "spin.tar", SPIN_IMAGE))
        c.import_image(busybox_image_tar(images / "httpd.tar", HTTPD_IMAGE, cmd=["/bin/busybox", "httpd"],
                                         files={"www/index.html": "hello\n"}))

        def spin(runtime: str) -> Callable[[str], Sample]:
            def run(cid: str) -> Sample:
                port = free_port()
                env = f"SPIN_HTTP_LISTEN_ADDR=127.0.0.1:{port}"
                return measure(c, cid, ["--runtime", runtime, "--env", env, SPIN_IMAGE], [], port)
            return run

        def runc(cid: str) -> Sample:
            port = free_port()
            return measure(c, cid, ["--runtime", "io.containerd.runc.v2", HTTPD_IMAGE],
                           ["/bin/busybox", "httpd", "-f", "-p", f"127.0.0.1:{port}", "-h", "/www"], port)

        rows: dict[str, Callable[[str], Sample]] = {"runc + busybox httpd (peer)": runc,
                                                     "spin shim (installed)": spin("io.containerd.spin.v2")}
        if other is not None:
            rows[other[0]] = spin(str(other[1]))
        # warm the artifact cache and the page cache once per row
        for name, fn in rows.items():
            fn(f"warm{abs(hash(name)) % 10_000}")
        results = run_rows(c, rows, args.rounds)
    finally:
        c.cleanup()
    peer = results["runc + busybox httpd (peer)"]
    peer_ms = statistics.median(s.first_200_ms for s in peer)
    peer_mib = statistics.median(s.pss_mib for s in peer)
    print(f"containerd {args.rounds} rounds, warm artifact cache; medians (ratio to runc)")
    print(f"{'runtime':32} {'ctr run → 200':>16} {'memory (PSS)':>18}")
    for name, samples in results.items():
        ms = statistics.median(s.first_200_ms for s in samples)
        mib = statistics.median(s.pss_mib for s in samples)
        print(f"{name:32} {ms:9.0f} ms {ms / peer_ms:4.1f}x {mib:9.1f} MiB {mib / peer_mib:5.1f}x")
    spin_rows = [k for k in results if k.startswith("spin")]
    worst_ms = max(statistics.median(s.first_200_ms for s in results[k]) for k in spin_rows)
    worst_mib = max(statistics.median(s.pss_mib for s in results[k]) for k in spin_rows)
    print(f"goals: first response ≤ 500 ms: {'met' if worst_ms <= 500 else 'NOT met'} ({worst_ms:.0f} ms); "
          f"memory ≤ 80 MiB: {'met' if worst_mib <= 80 else 'NOT met'} ({worst_mib:.1f} MiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
