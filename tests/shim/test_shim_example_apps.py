"""`spindle shim up` on the example repo's Spin projects: each serves what its spin.toml promises."""

from __future__ import annotations

import http.client
from pathlib import Path

from shim_testlib import shim_up

APPS = Path(__file__).resolve().parents[2] / "example-repo" / "apps"


def _call(port: int, method: str, path: str, body: bytes | None = None) -> tuple[int, str, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(method, path, body=body)
        resp = conn.getresponse()
        return resp.status, resp.getheader("content-type") or "", resp.read()
    finally:
        conn.close()


def test_hello_says_hello_on_its_wildcard_route(tmp_path: Path) -> None:
    with shim_up(APPS / "hello", tmp_path, "--workers", "1") as up:
        for path in ("/hello", "/hello/", "/hello/anyone?x=1"):
            status, ctype, body = _call(up.port, "GET", path)
            assert (status, ctype) == (200, "text/plain")
            assert body == b"Hello from a WAGI module written in WAT, deployed by spindle!\n"
        assert _call(up.port, "GET", "/")[0] == 404


def test_echo_echoes_serves_its_static_page_and_health_check(tmp_path: Path) -> None:
    page = (APPS / "echo" / "static" / "index.html").read_bytes()
    with shim_up(APPS / "echo", tmp_path, "--workers", "1") as up:
        body = b"ping " * 3000  # more than one 4 KiB read of stdin
        assert _call(up.port, "POST", "/echo/", body) == (200, "text/plain", body)
        assert _call(up.port, "GET", "/healthz") == (200, "text/plain", b"ok\n")
        # files = [{ source = "static", destination = "/static" }] behind the /static/... route
        for path in ("/static", "/static/", "/static/index.html"):
            assert _call(up.port, "GET", path) == (200, "text/html; charset=utf-8", page), path
        assert _call(up.port, "GET", "/elsewhere")[0] == 404
