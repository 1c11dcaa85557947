"""Spin's edges, each pinned to the Spin or wasmtime source that defines it; and the memory bound.

- reserved routes: spin `crates/trigger-http/src/server.rs`, `HttpServer::handle`: paths under
  `/.well-known/spin/` never reach the app; `health` answers 200 `OK`, `info` the app's
  `AppInfo` (`crates/http/src/app_info.rs`: name, version) as pretty JSON, anything else 404.
- output streams: wasmtime-wasi `p2/host/io.rs` (`blocking-write-and-flush` and
  `blocking-write-zeroes-and-flush` trap past 4,096 bytes: "Buffer too large for ...
  (expected at most 4096)"), wasmtime-wasi-http `p2/body.rs` (`BodyWriteStream`: `check-write`
  permits the chunk size, 1 MiB by default, and a larger `write` traps: "write exceeded budget").
- the request deadline (epoch interruption) fires on time under load.
- a client that goes away is logged as such, not as a guest trap.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from shim_testlib import WAT_APP, Serve, make_app, shim_up, spin_toml

from shim.app import DEFAULT_MAX_INSTANCE_MEMORY
from shim.loadgen import encode_request, run_load


def test_reserved_well_known_routes_are_the_runtimes(serve: Serve, tmp_path: Path) -> None:
    manifest = spin_toml(("/...", "wat"), name="edges").replace(
        "[application]\n", '[application]\nversion = "1.2.3"\n')
    srv = serve(make_app(tmp_path / "app", manifest))
    status, headers, body = srv.request("GET", "/.well-known/spin/health")
    assert (status, body) == (200, b"OK")
    status, headers, body = srv.request("GET", "/.well-known/spin/info")
    assert (status, headers["content-type"]) == (200, "application/json")
    assert body == b'{\n  "name": "edges",\n  "version": "1.2.3"\n}'  # serde_json::to_vec_pretty
    for path in ("/.well-known/spin/other", "/.well-known/spin/health/", "/.well-known/spin/"):
        assert srv.request("GET", path)[0] == 404, path
    # the catch-all route still has everything else, /.well-known/spin without the slash included
    assert srv.request("GET", "/.well-known/spin")[2].startswith(b"path=/.well-known/spin")
    assert srv.request("GET", "/.well-known/other")[2].startswith(b"path=/.well-known/other")


def test_info_without_a_version(serve: Serve, tmp_path: Path) -> None:
    srv = serve(make_app(tmp_path / "app", WAT_APP))
    assert json.loads(srv.request("GET", "/.well-known/spin/info")[2]) == {"name": "wat-app"}


@pytest.mark.parametrize(("path", "status", "trap"), [
    ("/bwf/4096", 200, None),
    ("/bwf/4097", 500, "Buffer too large for blocking-write-and-flush (expected at most 4096)"),
    ("/zro/4096", 200, None),
    ("/zro/4097", 500, "Buffer too large for blocking-write-zeroes-and-flush (expected at most 4096)"),
    ("/wrt/65536", 200, None),
    ("/wrt/1048576", 200, None),  # what check-write permits: one 1 MiB write
    ("/wrt/1048577", 500, "write exceeded budget"),
])
def test_output_stream_limits_are_wasmtimes(serve: Serve, tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                            path: str, status: int, trap: str | None) -> None:
    srv = serve(make_app(tmp_path / "app", WAT_APP))
    with caplog.at_level(logging.ERROR, logger="shim.http"):
        got, _, body = srv.request("GET", path)
    assert got == status
    n = int(path.rsplit("/", 1)[1])
    if trap is None:
        assert body == (b"\0" if path.startswith("/zro") else b"x") * n
        assert not caplog.records
    else:
        assert any(trap in r.getMessage() for r in caplog.records), caplog.text


def test_deadline_fires_on_time_under_load(tmp_path: Path) -> None:
    """A 1 s deadline ends a runaway guest within 20 % while 12 clients keep the server busy (the
    epoch follows the clock; counting late ticker wake-ups stretched it to about 2x)."""
    root = make_app(tmp_path / "app", WAT_APP)
    with shim_up(root, tmp_path, "--workers", "1", "--request-timeout", "1") as up:
        stop = threading.Event()

        def load() -> None:
            req = encode_request("GET", "/busy")
            while not stop.is_set():
                run_load("127.0.0.1", up.port, req, 200, 12)

        loader = threading.Thread(target=load, daemon=True)
        loader.start()
        time.sleep(0.5)
        try:
            with ThreadPoolExecutor(3) as pool:
                def timed(_: int) -> tuple[int, float]:
                    t0 = time.monotonic()
                    status = up.get("/spin")[0]
                    return status, time.monotonic() - t0
                results = list(pool.map(timed, range(3)))
        finally:
            stop.set()
            loader.join(30)
    for status, elapsed in results:
        assert status == 500
        assert 0.95 <= elapsed <= 1.2, results


def test_client_disconnect_is_logged_as_such(serve: Serve, tmp_path: Path,
                                             caplog: pytest.LogCaptureFixture) -> None:
    srv = serve(make_app(tmp_path / "app", WAT_APP))
    with caplog.at_level(logging.INFO):
        # gone while the guest reads the body
        sock = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n" + b"a" * 1000)
        time.sleep(0.2)
        sock.close()
        # gone while the guest writes a response larger than the socket buffers
        sock = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 8000000\r\n\r\n")
        sock.sendall(b"b" * 8_000_000)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        sock.close()  # a reset, not a polite close
        deadline = time.monotonic() + 10
        while srv.server.pool.active and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.2)
    disconnects = [r for r in caplog.records if "disconnected" in r.getMessage()]
    assert len(disconnects) == 2, caplog.text
    assert all(r.levelno == logging.INFO for r in disconnects)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
    assert srv.request("GET", "/after")[0] == 200


def test_hungry_requests_fail_alone_and_the_budget_bounds_them(serve: Serve, tmp_path: Path) -> None:
    """Each /grow asks for 100 MiB more than its 32 MiB cap: a 500 each. With a 64 MiB budget
    no more than two instances run at once, whatever the number of clients."""
    srv = serve(make_app(tmp_path / "app", WAT_APP),
                env={"SPIN_MAX_INSTANCE_MEMORY": str(32 << 20), "SPINDLE_SHIM_MEMORY_BUDGET": str(64 << 20)})
    assert srv.app.limits.concurrency == 2
    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda _: srv.request("GET", "/grow")[0], range(16)))
    assert statuses == [500] * 16
    assert srv.server.pool.peak <= 2
    assert srv.request("GET", "/fine")[0] == 200


def test_shim_up_caps_instances_by_default(serve: Serve, tmp_path: Path) -> None:
    srv = serve(make_app(tmp_path / "app", WAT_APP))
    assert srv.app.limits.max_memory == DEFAULT_MAX_INSTANCE_MEMORY == 256 << 20
    assert srv.app.limits.concurrency == 16  # 4 GiB of budget per process
