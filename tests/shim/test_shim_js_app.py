"""A real Spin JS app (@spinframework/build-tools 1.0.7, StarlingMonkey) through the shim."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from shim_testlib import GUEST_CACHE, Serve, build_js_app, make_app, spin_toml


@pytest.fixture(scope="module")
def js_wasm() -> Path:
    return build_js_app()


def test_js_app_routes_headers_and_echo(serve: Serve, tmp_path: Path, js_wasm: Path) -> None:
    root = make_app(tmp_path / "app", spin_toml(("/js/...", "js"), name="js", source="app.wasm"), guests=())
    (root / "app.wasm").symlink_to(js_wasm)
    srv = serve(root, cache_dir=GUEST_CACHE / "artifacts")
    status, headers, body = srv.request("GET", "/js/hello?x=1")
    assert (status, headers["x-app"]) == (200, "js")
    assert body == b"hello from JS GET /js/hello route=/js/..."
    data = os.urandom(300_000)
    status, _, body = srv.duplex("POST", "/js/echo", data)
    assert status == 200 and body == data
    assert srv.request("GET", "/elsewhere")[0] == 404
