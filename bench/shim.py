"""Benchmark: the shim serving real guests over loopback HTTP, next to the bare in-process rate.

    python3 bench/shim.py [--requests N] [--concurrency C] [--workers W] [--only wat,wagi,js,py]

For each guest (hand-written WAT wasi:http component, WAGI WAT module, JS app built with
@spinframework/build-tools 1.0.7, Python app built with spin-sdk 3.4.1 / componentize-py 0.17.2;
the last two are built on first use and cached like the tests do):

* http      `spindle shim up --workers W` in a subprocess, N requests at concurrency C over
            keep-alive loopback connections: req/s, p50, p99;
* bare      the same executor in this process: new Store + instantiate + call, no HTTP, one
            thread (the peer); the ratio http/bare shows what the HTTP layer and the processes cost
            or gain;
* 1 MiB     POST 1 MiB to the echo route, body streamed back (median of 10), over HTTP and in
            this process ("bare 1MiB": the executor alone);
* start     warm artifact cache: time from launching the process to the port accepting, and the
            latency of the first request;
* cold      empty artifact cache: time from launching the process to the first response (a large
            guest is served from a baseline compile while the optimized one is built).

Goals on a 2-core machine: WAT >= 2,500 req/s with 2 workers, Python >= 200 req/s, 1 MiB echo
< 50 ms, first request after a warm start < 100 ms, first response of the JS app from an empty
cache <= 5 s. The machine is shared; compare ratios, not absolute numbers alone.
"""

from __future__ import annotations

import argparse
import http.client
import io
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "shim"))

from shim.app import LoadOptions, load_app  # noqa: E402
from shim.engine import new_engine  # noqa: E402
from shim.executors import WagiExecutor, WagiRequest, WasiHttpExecutor  # noqa: E402
from shim.loadgen import encode_request, run_load  # noqa: E402
from shim.wasi_http import InboundRequest  # noqa: E402

GUESTS = ROOT / "tests" / "shim" / "guests"
CACHE = Path(os.environ.get("SPINDLE_SHIM_GUEST_CACHE")
             or Path.home() / ".cache" / "spindle-shim" / "test-guests")


@dataclass
class Guest:
    name: str
    wasm: Callable[[], Path]
    manifest: str
    path: str  # benchmarked route
    echo: str | None  # echo route, if the guest has one
    status: int = 200


def _manifest(source: str, route: str = "/...", wagi: bool = False) -> str:
    ex = '\nexecutor = { type = "wagi" }' if wagi else ""
    return ('spin_manifest_version = 2\n[application]\nname = "bench"\n'
            f'[[trigger.http]]\nroute = "{route}"\ncomponent = "g"{ex}\n[component.g]\nsource = "{source}"\n'
            'key_value_stores = ["default"]\n')


def _built(kind: str) -> Callable[[], Path]:
    def build() -> Path:
        import shim_testlib  # type: ignore[import-not-found]  # tests/shim, put on sys.path above

        wasm: Path = shim_testlib.build_python_app() if kind == "py" else shim_testlib.build_js_app()
        return wasm
    return build


GUEST_LIST = [
    Guest("wat", lambda: GUESTS / "handler.wasm", _manifest("app.wasm"), "/hello", "/echo"),
    Guest("wagi", lambda: GUESTS / "wagi.wasm", _manifest("app.wasm", wagi=True), "/hello", None, 201),
    Guest("js", _built("js"), _manifest("app.wasm"), "/hello", "/echo"),
    Guest("py", _built("py"), _manifest("app.wasm"), "/hello", "/echo"),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


Server = tuple[subprocess.Popen[bytes], int, float, IO[bytes]]


def start_server(root: Path, cache: Path, workers: int) -> Server:
    """`shim up` in a subprocess, once its port accepts; its log goes to a temporary file (returned),
    shown if it exits early."""
    log = tempfile.TemporaryFile()  # noqa: SIM115  # lives as long as the server; unlinked already
    port = free_port()
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "reconciler.cli", "shim", "up", str(root), "--listen",
                             f"127.0.0.1:{port}", "--workers", str(workers), "--cache-dir", str(cache),
                             "--state-dir", str(root / ".state")],
                            stdout=subprocess.DEVNULL, stderr=log, cwd=ROOT)
    while True:
        if proc.poll() is not None:
            log.seek(0)
            tail = log.read().decode(errors="replace")[-2000:]
            raise RuntimeError(f"server exited with {proc.returncode}:\n{tail}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.1):
                return proc, port, time.perf_counter() - t0, log
        except OSError:
            time.sleep(0.005)


def wait_optimized(log: IO[bytes], timeout: float = 300) -> None:
    """Until a server that started on baseline code says it serves optimized code."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        log.seek(0)
        text = log.read().decode(errors="replace")
        if "optimizing in the background" not in text or "now serving optimized code" in text:
            return
        time.sleep(0.5)
    raise RuntimeError("the optimized artifact was not built in time")


def cold_first_response_ms(root: Path, path: str, workers: int) -> float:
    """Launch → first response with an empty artifact cache."""
    with tempfile.TemporaryDirectory(prefix="shim-bench-cold-") as empty:
        t0 = time.perf_counter()
        proc, port, _, _ = start_server(root, Path(empty), workers)
        try:
            first_request_ms(port, path)
            return (time.perf_counter() - t0) * 1e3
        finally:
            proc.terminate()
            proc.wait()


def first_request_ms(port: int, path: str) -> float:
    t0 = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request("GET", path)
    conn.getresponse().read()
    conn.close()
    return (time.perf_counter() - t0) * 1e3


class _Response:
    """An HTTP/1.1 response arriving in one buffer: finds where it ends as bytes come (reading
    only the head and the chunk-size lines, skipping the data), then gives the body."""

    def __init__(self, buf: bytearray) -> None:
        self.buf = buf
        self.body_at = -1  # offset of the body, once the head is in
        self.length = -1  # content-length, or -1 for chunked
        self.chunks: list[tuple[int, int]] = []  # (offset, size) of each chunk's data
        self.next = 0  # chunked: offset of the next chunk-size line
        self.end = -1

    def complete(self, got: int) -> bool:
        buf = self.buf
        if self.body_at < 0:
            head_end = buf.find(b"\r\n\r\n", 0, got)
            if head_end < 0:
                return False
            head = bytes(buf[:head_end]).decode("latin-1").lower()
            if not head.startswith("http/1.1 200 "):
                raise RuntimeError(f"echo answered {head.splitlines()[0]!r}")
            fields = dict(line.split(": ", 1) for line in head.split("\r\n")[1:])
            self.body_at = self.next = head_end + 4
            self.length = int(fields["content-length"]) if "content-length" in fields else -1
        if self.length >= 0:
            self.end = self.body_at + self.length
            return got >= self.end
        while (eol := buf.find(b"\r\n", self.next, got)) >= 0:
            size = int(bytes(buf[self.next:eol]).split(b";")[0], 16)
            if size == 0:
                self.end = eol + 4  # the empty trailer section
                return got >= self.end
            if eol + 2 + size + 2 > got:
                return False
            self.chunks.append((eol + 2, size))
            self.next = eol + 2 + size + 2
        return False

    def body(self) -> bytes:
        view = memoryview(self.buf)
        if self.length >= 0:
            return bytes(view[self.body_at:self.end])
        return b"".join(view[at:at + size] for at, size in self.chunks)


def echo_ms(port: int, path: str, size: int, repeat: int = 10) -> float:
    """Median milliseconds from sending a `size`-byte POST to the response's last byte. The client
    stays out of the way: one thread sends while this one reads with recv_into into one buffer
    made in advance; the body is checked after the clock stops."""
    body = os.urandom(size)
    payload = (f"POST {path} HTTP/1.1\r\nhost: x\r\ncontent-length: {size}\r\n"
               "connection: close\r\n\r\n").encode() + body
    buf = bytearray(size + (1 << 20))  # body, chunk framing and head
    view = memoryview(buf)
    times = []
    for _ in range(repeat):
        sock = socket.create_connection(("127.0.0.1", port), timeout=60)
        resp, got = _Response(buf), 0
        t0 = time.perf_counter()
        sender = threading.Thread(target=sock.sendall, args=(payload,))
        sender.start()
        while not resp.complete(got):
            n = sock.recv_into(view[got:])
            if not n or got + n == len(buf):
                raise RuntimeError(f"echo response ended early or is too large ({got + n} bytes)")
            got += n
        times.append(time.perf_counter() - t0)
        sender.join()
        sock.close()
        if resp.body() != body:
            raise RuntimeError("echo mismatch")
    return statistics.median(times) * 1e3


class _Sink:
    """Collects a response in memory (the in-process runs have no socket)."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def start(self, status: int, headers: list[tuple[str, bytes]]) -> None: ...
    def write(self, data: bytes) -> None:
        self.parts.append(data)
    def flush(self) -> None: ...
    def finish(self) -> None: ...


def bare(root: Path, cache: Path, path: str, echo: str | None, n: int) -> tuple[float, float]:
    """In this process, one thread: requests per second on `path`, and the median 1 MiB echo (ms)."""
    box = new_engine()
    app = load_app(root, box.engine, LoadOptions(env={}, cache_dir=cache, state_dir=root / ".state"))
    ex = app.executors["g"]

    def once() -> None:
        if isinstance(ex, WasiHttpExecutor):
            req = InboundRequest("GET", path, "http", "127.0.0.1", [("host", b"127.0.0.1")],
                                 io.BytesIO().read)
            ex.serve(req, _Sink(), app.limits)
        elif isinstance(ex, WagiExecutor):
            ex.serve(WagiRequest("GET", path, "", [], b"", {"REQUEST_METHOD": "GET"}), app.limits)
        else:
            raise TypeError(type(ex).__name__)

    def echo_once(body: bytes) -> float:
        assert isinstance(ex, WasiHttpExecutor)
        sink = _Sink()
        t0 = time.perf_counter()
        ex.serve(InboundRequest("POST", echo or "/", "http", "127.0.0.1",
                                [("content-length", str(len(body)).encode())], io.BytesIO(body).read),
                 sink, app.limits)
        elapsed = time.perf_counter() - t0
        if b"".join(sink.parts) != body:
            raise RuntimeError("in-process echo mismatch")
        return elapsed

    for _ in range(min(50, n)):
        once()
    t0 = time.perf_counter()
    for _ in range(n):
        once()
    rate = n / (time.perf_counter() - t0)
    body = os.urandom(1 << 20)
    echo_ms = statistics.median(echo_once(body) for _ in range(10)) * 1e3 if echo else float("nan")
    app.close()
    return rate, echo_ms


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=5000)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--only", default="wat,wagi,js,py")
    args = ap.parse_args()
    wanted = set(args.only.split(","))
    cache = CACHE / "artifacts"
    print(f"shim bench: {args.requests} requests, concurrency {args.concurrency}, {args.workers} worker "
          f"processes, loadavg {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"{'guest':8} {'http req/s':>10} {'p50 ms':>7} {'p99 ms':>7} {'bare req/s':>10} {'ratio':>6} "
          f"{'1MiB ms':>8} {'bare 1MiB':>9} {'start ms':>8} {'1st req ms':>10} {'cold 1st ms':>11}")
    with tempfile.TemporaryDirectory(prefix="shim-bench-") as tmp:
        for g in GUEST_LIST:
            if g.name not in wanted:
                continue
            try:
                wasm = g.wasm()
            except BaseException as exc:  # pytest.skip from the builders: toolchain unavailable
                print(f"{g.name:6} skipped: {exc}")
                continue
            root = Path(tmp) / g.name
            root.mkdir()
            (root / "app.wasm").symlink_to(wasm)
            (root / "spin.toml").write_text(g.manifest)
            cold = cold_first_response_ms(root, g.path, args.workers)
            # warm the artifact cache (with the optimized artifact), then measure starts against it
            proc, port, _, log = start_server(root, cache, 1)
            try:
                first_request_ms(port, g.path)
                wait_optimized(log)
            finally:
                proc.terminate()
                proc.wait()
            n = args.requests if g.name in ("wat", "wagi") else max(500, args.requests // 5)
            bare_rate, bare_echo = bare(root, cache, g.path, g.echo, max(200, n // 5))
            # the WAT guest also runs on one process, to show what the second process buys
            sweep = sorted({1, args.workers}) if g.name == "wat" else [args.workers]
            for workers in sweep:
                label = f"{g.name}/{workers}p"
                proc, port, start_s, _ = start_server(root, cache, workers)
                try:
                    first = first_request_ms(port, g.path)
                    time.sleep(1.0 if workers > 1 else 0.0)  # other workers load from the warm cache
                    req = encode_request("GET", g.path)
                    c = args.concurrency
                    run_load("127.0.0.1", port, req, min(500, n), c, expect_status=g.status)
                    res = run_load("127.0.0.1", port, req, n, c, expect_status=g.status)
                    echo = echo_ms(port, g.echo, 1 << 20) if g.echo else float("nan")
                finally:
                    proc.terminate()
                    proc.wait()
                err = f"  ERRORS {res.errors} {res.statuses}" if res.errors else ""
                print(f"{label:8} {res.rps:10.0f} {res.p50 * 1e3:7.2f} {res.percentile(99) * 1e3:7.2f} "
                      f"{bare_rate:10.0f} {res.rps / bare_rate:6.2f} {echo:8.1f} {bare_echo:9.1f} "
                      f"{start_s * 1e3:8.0f} {first:10.1f} {cold:11.0f}{err}", flush=True)

if __name__ == "__main__":
    main()
