"""The wasi:http executor end to end over a real socket, with the hand-written WAT guest."""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import socket
from pathlib import Path

import pytest
from shim_testlib import WAT_APP, Serve, make_app, spin_toml


def routed(catchall: str = "/...") -> str:
    return spin_toml(
        (catchall, "catchall"), ("/api/...", "api"), ("/api/exact", "exact"),
        ("{ private = true }", "hidden"), name="routed",
        extra='[[trigger.http]]\nroute = "/static"\n'
              'static_response = { status_code = 202, headers = { x-static = "1" }, body = "hi" }\n')


ROUTED = routed()


def headers_of(body: bytes) -> dict[str, str]:
    lines = body.decode().splitlines()[1:]
    return dict(line.split(": ", 1) if ": " in line else (line.rstrip(":"), "") for line in lines)


@pytest.mark.parametrize(("path", "matched", "component_route", "path_info"), [
    ("/api/users/1?x=2", "/api/...", "/api", "/users/1"),
    ("/api", "/api/...", "/api", ""),
    ("/api/exact", "/api/exact", "/api/exact", ""),
    ("/other/thing", "/...", "", "/other/thing"),
])
def test_routing_and_spin_headers(serve: Serve, tmp_path: Path, path: str, matched: str,
                                  component_route: str, path_info: str) -> None:
    srv = serve(make_app(tmp_path / "app", ROUTED))
    status, _, body = srv.request("GET", path, headers={"x-custom": "abc"})
    assert status == 200
    assert body.decode().splitlines()[0] == f"path={path}"
    h = headers_of(body)
    assert h["x-custom"] == "abc"
    assert h["spin-matched-route"] == matched
    assert h["spin-raw-component-route"] == matched
    assert h["spin-component-route"] == component_route
    assert h["spin-path-info"] == path_info
    assert h["spin-full-url"] == f"http://127.0.0.1:{srv.port}{path}"
    assert h["spin-base-path"] == "/"
    assert h["spin-client-addr"].startswith("127.0.0.1:")


def test_static_response_and_404(serve: Serve, tmp_path: Path) -> None:
    srv = serve(make_app(tmp_path / "app", routed(catchall="/only")))
    status, headers, body = srv.request("GET", "/static")
    assert (status, headers["x-static"], body) == (202, "1", b"hi")
    assert srv.request("GET", "/nothing-here")[0] == 404
    assert srv.request("GET", "/only")[0] == 200


@pytest.mark.parametrize("size", [0, 1, 100_000, 8 << 20])
def test_echo_bodies(serve: Serve, tmp_path: Path, size: int) -> None:
    srv = serve(make_app(tmp_path / "app", WAT_APP))
    data = os.urandom(size)
    status, headers, body = srv.duplex("POST", "/echo", data)
    assert status == 200
    assert headers.get("transfer-encoding") == "chunked"  # streamed back as the guest writes
    assert hashlib.sha256(body).hexdigest() == hashlib.sha256(data).hexdigest()


def test_streamed_chunked_request_body(serve: Serve, tmp_path: Path) -> None:
    srv = serve(make_app(tmp_path / "app", WAT_APP))
    chunks = [os.urandom(n) for n in (1, 70_000, 3, 200_000)]
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)
    conn.request("POST", "/echo", body=iter(chunks), encode_chunked=True,
                 headers={"transfer-encoding": "chunked"})
    resp = conn.getresponse()
    assert resp.status == 200
    assert resp.read() == b"".join(chunks)
    # the connection stays usable after a chunked exchange
    conn.request("GET", "/after")
    assert conn.getresponse().read().startswith(b"path=/after")
    conn.close()


def test_response_streams_while_the_request_is_still_arriving(serve: Serve, tmp_path: Path) -> None:
    """A duplex echo: each piece comes back before the client sends the next one."""
    srv = serve(make_app(tmp_path / "app", WAT_APP))
    sock = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    try:
        sock.sendall(b"POST /echo HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n")
        received = b""
        for piece in (b"first", b"second", b"third"):
            sock.sendall(b"%x\r\n%b\r\n" % (len(piece), piece))
            while not received.endswith(b"%x\r\n%b\r\n" % (len(piece), piece)):
                data = sock.recv(65536)  # times out if the server holds the piece back
                assert data, received
                received += data
        sock.sendall(b"0\r\n\r\n")
        while not received.endswith(b"0\r\n\r\n"):
            received += sock.recv(65536)
        assert received.startswith(b"HTTP/1.1 200 ")
    finally:
        sock.close()


def test_trap_is_500_logged_and_server_keeps_serving(serve: Serve, tmp_path: Path,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    srv = serve(make_app(tmp_path / "app", WAT_APP))
    with caplog.at_level(logging.ERROR, logger="shim.http"):
        assert srv.request("GET", "/trap")[0] == 500
    assert any("unreachable" in r.getMessage() and "'wat'" in r.getMessage() for r in caplog.records)
    assert srv.request("GET", "/fine")[0] == 200


def test_error_response_from_the_guest_is_500_and_logged(serve: Serve, tmp_path: Path,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    srv = serve(make_app(tmp_path / "app", WAT_APP))
    with caplog.at_level(logging.ERROR, logger="shim.guest"):
        status, _, body = srv.request("GET", "/fail")
    assert (status, body) == (500, b"Internal Server Error\n")
    assert any("[wat] guest set an error response" in r.getMessage() and "DNS-timeout" in r.getMessage()
               for r in caplog.records), [r.getMessage() for r in caplog.records]
    assert srv.request("GET", "/after")[0] == 200


def test_deadline_interrupts_runaway_guest(serve: Serve, tmp_path: Path,
                                           caplog: pytest.LogCaptureFixture) -> None:
    srv = serve(make_app(tmp_path / "app", WAT_APP), env={"SPINDLE_SHIM_REQUEST_TIMEOUT_MS": "300"})
    with caplog.at_level(logging.ERROR, logger="shim.http"):
        assert srv.request("GET", "/spin")[0] == 500
    assert any("timed out" in r.getMessage() for r in caplog.records)
    assert srv.request("GET", "/fine")[0] == 200


def test_memory_limit(serve: Serve, tmp_path: Path) -> None:
    root = make_app(tmp_path / "app", WAT_APP)
    limited = serve(root, env={"SPIN_MAX_INSTANCE_MEMORY": str(16 << 20)})
    assert limited.request("GET", "/grow")[0] == 500  # 100 MiB does not fit in 16 MiB
    unlimited = serve(root)
    assert unlimited.request("GET", "/grow")[0] == 200


def test_keep_alive_survives_errors(serve: Serve, tmp_path: Path) -> None:
    srv = serve(make_app(tmp_path / "app", WAT_APP))
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)
    for i in range(3):
        conn.request("GET", f"/k{i}")
        assert conn.getresponse().read().startswith(f"path=/k{i}".encode())
        conn.request("GET", "/trap")
        resp = conn.getresponse()
        assert (resp.status, resp.read()) == (500, b"Internal Server Error\n")
    conn.request("HEAD", "/k")
    resp = conn.getresponse()
    assert (resp.status, resp.read()) == (200, b"")
    conn.request("GET", "/after-head")
    assert conn.getresponse().read().startswith(b"path=/after-head")
    conn.close()


def test_bad_content_length_is_400(serve: Serve, tmp_path: Path) -> None:
    srv = serve(make_app(tmp_path / "app", WAT_APP))
    assert srv.request("POST", "/echo", headers={"content-length": "-3"})[0] == 400


def test_wasi_config_store_variables(serve: Serve, tmp_path: Path) -> None:
    manifest = WAT_APP + """\
    [variables]
    greeting = { default = "hello" }
    secret = { required = true }
    [component.wat.variables]
    message = "{{ greeting }}, world"
    token = "{{ secret }}"
"""
    srv = serve(make_app(tmp_path / "app", manifest), env={"SPIN_VARIABLE_SECRET": "s3"})
    assert srv.request("GET", "/cfg/message")[2] == b"hello, world"
    assert srv.request("GET", "/cfg/token")[2] == b"s3"
    assert srv.request("GET", "/cfg/greeting")[2] == b"none"  # app variables are not component ones
    srv2 = serve(make_app(tmp_path / "app2", manifest),
                 env={"SPIN_VARIABLE_SECRET": "x", "SPIN_VARIABLE_GREETING": "hi"})
    assert srv2.request("GET", "/cfg/message")[2] == b"hi, world"


def test_wasi_keyvalue_default_bucket_persists(serve: Serve, tmp_path: Path) -> None:
    manifest = WAT_APP + '    key_value_stores = ["default"]\n'
    root = make_app(tmp_path / "app", manifest)
    state = tmp_path / "kv"
    srv = serve(root, state_dir=state)
    assert srv.request("GET", "/kvs/color")[2] == b"none"
    assert srv.request("POST", "/kvs/color", body=b"blue")[2] == b"blue"
    assert srv.request("GET", "/kvs/color")[2] == b"blue"
    assert serve(root, state_dir=state).request("GET", "/kvs/color")[2] == b"blue"  # survives a restart
    # a component without the store gets the interface's error, not a trap
    denied = serve(make_app(tmp_path / "other", WAT_APP), state_dir=state)
    status, _, body = denied.request("GET", "/kvs/color")
    assert (status, body) == (200, b"error")


def test_components_to_retain(serve: Serve, tmp_path: Path) -> None:
    srv = serve(make_app(tmp_path / "app", ROUTED), env={"SPIN_COMPONENTS_TO_RETAIN": "api,exact"})
    assert sorted(srv.app.executors) == ["api", "exact"]
    assert srv.request("GET", "/api/x")[0] == 200
    assert srv.request("GET", "/api/exact")[0] == 200
    assert srv.request("GET", "/other")[0] == 404  # the catch-all component was not retained
    assert srv.request("GET", "/static")[0] == 202  # static responses need no component


def test_manifest_v1_app(serve: Serve, tmp_path: Path) -> None:
    srv = serve(make_app(tmp_path / "app", """\
        spin_manifest_version = "1"
        name = "legacy"
        trigger = { type = "http", base = "/base" }
        [[component]]
        id = "old"
        source = "handler.wasm"
        [component.trigger]
        route = "/hello/..."
    """))
    status, _, body = srv.request("GET", "/base/hello/x")
    assert status == 200
    h = headers_of(body)
    assert (h["spin-matched-route"], h["spin-raw-component-route"], h["spin-component-route"]) == (
        "/base/hello/...", "/hello/...", "/hello")
    assert (h["spin-base-path"], h["spin-path-info"]) == ("/base", "/x")
    assert srv.request("GET", "/hello/x")[0] == 404
