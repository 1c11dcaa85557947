"""A real Spin Python app (spin-sdk 3.4.1, componentize-py 0.17.2) through the shim: variables,
key-value, files, outbound HTTP, stdout logging, exceptions. Built at test time and cached."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from shim_testlib import GUEST_CACHE, Serve, build_python_app, make_app

from shim.app import LoadOptions, load_app
from shim.engine import EngineBox
from shim.errors import VariableError


@pytest.fixture(scope="module")
def py_wasm() -> Path:
    return build_python_app()


class Upstream:
    def __init__(self) -> None:
        self.hits = 0
        outer = self

        class H(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.hits += 1
                body = f"upstream saw {self.path}".encode()
                self.send_response(200)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def upstreams() -> Iterator[tuple[Upstream, Upstream]]:
    a, b = Upstream(), Upstream()
    yield a, b
    for u in (a, b):
        u.server.shutdown()
        u.server.server_close()


def manifest(allowed_port: int) -> str:
    return f"""\
        spin_manifest_version = 2
        [application]
        name = "py"
        [variables]
        greeting = {{ default = "hi" }}
        who = {{ required = true }}
        [[trigger.http]]
        route = "/..."
        component = "py"
        [component.py]
        source = "app.wasm"
        key_value_stores = ["default"]
        allowed_outbound_hosts = ["http://127.0.0.1:{allowed_port}"]
        files = [{{ source = "data", destination = "/data" }}]
        [component.py.variables]
        greeting = "{{{{ greeting }}}} {{{{ who }}}}"
        plain = "{{{{ greeting }}}}"
    """


@pytest.fixture
def py_root(tmp_path: Path, py_wasm: Path, upstreams: tuple[Upstream, Upstream]) -> Path:
    root = make_app(tmp_path / "app", manifest(upstreams[0].port), guests=(),
                    files={"data/hello.txt": "file contents\n"})
    (root / "app.wasm").symlink_to(py_wasm)
    return root


ARTIFACTS = GUEST_CACHE / "artifacts"


def test_variables_default_env_and_undefined(serve: Serve, py_root: Path) -> None:
    srv = serve(py_root, env={"SPIN_VARIABLE_WHO": "world"}, cache_dir=ARTIFACTS)
    assert srv.request("GET", "/var/greeting")[2] == b"hi world"
    assert srv.request("GET", "/var/plain")[2] == b"hi"
    status, _, body = srv.request("GET", "/var/nope")
    assert status == 404 and b"Undefined" in body
    srv2 = serve(py_root, env={"SPIN_VARIABLE_WHO": "you", "SPIN_VARIABLE_GREETING": "hey"},
                 cache_dir=ARTIFACTS)
    assert srv2.request("GET", "/var/greeting")[2] == b"hey you"


def test_required_variable_missing(engine_box: EngineBox, py_root: Path) -> None:
    with pytest.raises(VariableError, match="'who': is required"):
        load_app(py_root, engine_box.engine, LoadOptions(env={}, cache_dir=ARTIFACTS))


def test_key_value_persists_across_requests_and_restarts(serve: Serve, py_root: Path, tmp_path: Path) -> None:
    state = tmp_path / "kvstate"
    env = {"SPIN_VARIABLE_WHO": "x"}
    srv = serve(py_root, env=env, cache_dir=ARTIFACTS, state_dir=state)
    assert srv.request("GET", "/kv/k1")[0] == 404
    assert srv.request("POST", "/kv/k1", body=b"value-1")[0] == 201
    assert srv.request("GET", "/kv/k1")[2] == b"value-1"
    again = serve(py_root, env=env, cache_dir=ARTIFACTS, state_dir=state)
    assert again.request("GET", "/kv/k1")[2] == b"value-1"
    assert (state / "kv-default.db").exists()


def test_files_are_visible_read_only(serve: Serve, py_root: Path) -> None:
    srv = serve(py_root, env={"SPIN_VARIABLE_WHO": "x"}, cache_dir=ARTIFACTS)
    status, _, body = srv.request("GET", "/file")
    assert (status, body) == (200, b"file contents\n")
    status, _, body = srv.request("GET", "/fs-probe")
    assert status == 200
    probes = dict(item.split("=", 1) for item in body.decode().split())
    assert all(v.startswith("denied") for v in probes.values()), probes
    assert not (py_root / "data" / "new.txt").exists()


def test_outbound_allowed_and_denied(serve: Serve, py_root: Path,
                                     upstreams: tuple[Upstream, Upstream]) -> None:
    allowed, other = upstreams
    srv = serve(py_root, env={"SPIN_VARIABLE_WHO": "x"}, cache_dir=ARTIFACTS)
    status, _, body = srv.request("GET", f"/out?url=http://127.0.0.1:{allowed.port}/up")
    assert (status, body) == (200, b"upstream 200: upstream saw /up")
    status, _, body = srv.request("GET", f"/out?url=http://127.0.0.1:{other.port}/nope")
    assert status == 502 and b"HttpRequestDenied" in body
    assert (allowed.hits, other.hits) == (1, 0)  # denied means no connection at all
    # allowed, but nobody listens any more: the error code wasmtime gives (p2 default_send_request_handler)
    allowed.server.shutdown()
    allowed.server.server_close()
    status, _, body = srv.request("GET", f"/out?url=http://127.0.0.1:{allowed.port}/gone")
    assert status == 502 and b"ConnectionRefused" in body, body


def test_stdout_logged_with_component_id_and_exception_is_500(serve: Serve, py_root: Path,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    srv = serve(py_root, env={"SPIN_VARIABLE_WHO": "x"}, cache_dir=ARTIFACTS)
    with caplog.at_level(logging.INFO, logger="shim.guest"):
        assert srv.request("GET", "/print")[0] == 200
        assert srv.request("GET", "/boom")[0] == 500
    messages = [r.getMessage() for r in caplog.records]
    assert "[py] stdout: hello from the python guest" in messages
    assert any(m.startswith("[py] stderr: RuntimeError: boom from python") for m in messages)
    status, headers, body = srv.request("POST", "/echo", body=b"x" * 300_000)
    assert (status, headers["x-app"], len(body)) == (200, "py", 300_000)


def test_unsupported_host_api_returns_its_error_value(serve: Serve, py_root: Path) -> None:
    srv = serve(py_root, env={"SPIN_VARIABLE_WHO": "x"}, cache_dir=ARTIFACTS)
    status, _, body = srv.request("GET", "/redis")
    assert status == 200
    assert body.startswith(b"redis error: ")  # an error value the SDK raised, not a trap
    assert srv.request("GET", "/hello")[0] == 200


def test_runtime_config_env_provider_and_kv_store_path(serve: Serve, py_root: Path, tmp_path: Path) -> None:
    rc = tmp_path / "runtime-config.toml"
    rc.write_text('[[variables_provider]]\ntype = "env"\nprefix = "MYAPP"\n'
                  '[key_value_store.default]\ntype = "spin"\npath = "custom-default.db"\n')
    state = tmp_path / "rcstate"
    srv = serve(py_root, env={"MYAPP_WHO": "from-runtime-config"}, runtime_config=rc, cache_dir=ARTIFACTS,
                state_dir=state)
    assert srv.request("GET", "/var/greeting")[2] == b"hi from-runtime-config"
    assert srv.request("POST", "/kv/a", body=b"1")[0] == 201
    assert (state / "custom-default.db").exists()
