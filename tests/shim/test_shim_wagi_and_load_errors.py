"""WAGI over a real socket, and the clear errors an app gets at load (never a hang)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import wasmtime
from shim_testlib import GUESTS, WAT_APP, Serve, make_app, spin_toml

from shim.app import LoadOptions, load_app
from shim.engine import EngineBox
from shim.errors import ComponentLoadError, ManifestError, ShimError, VariableError

WAGI_APP = """\
    spin_manifest_version = 2
    [application]
    name = "wagi-app"
    [[trigger.http]]
    route = "/cgi/..."
    component = "cgi"
    executor = { type = "wagi" }
    [component.cgi]
    source = "wagi.wasm"
    environment = { FROM_MANIFEST = "yes" }
"""


def test_wagi_cgi_environment_argv_body(serve: Serve, tmp_path: Path) -> None:
    srv = serve(make_app(tmp_path / "app", WAGI_APP, guests=("wagi.wasm",)))
    status, headers, body = srv.request("POST", "/cgi/run/x?a=1&b=2", body=b"hello body",
                                        headers={"x-thing": "v", "content-type": "text/plain"})
    assert status == 201
    assert headers["x-wagi"] == "yes"
    text = body.decode()
    echoed, _, rest = text.partition("\n--argv--\n")
    assert echoed == "hello body"
    argv, _, env_text = rest.partition("--env--\n")
    assert argv.split() == ["/cgi", "a=1", "b=2"]
    env = dict(line.split("=", 1) for line in env_text.splitlines() if "=" in line)
    assert env["REQUEST_METHOD"] == "POST"
    assert env["PATH_INFO"] == "/run/x"
    assert env["QUERY_STRING"] == "a=1&b=2"
    assert env["X_MATCHED_ROUTE"] == "/cgi/..."
    assert env["SCRIPT_NAME"] == "/cgi"
    assert env["HTTP_X_THING"] == "v"
    assert env["CONTENT_LENGTH"] == "10"
    assert env["CONTENT_TYPE"] == "text/plain"
    assert env["X_FULL_URL"] == f"http://127.0.0.1:{srv.port}/cgi/run/x?a=1&b=2"
    assert env["FROM_MANIFEST"] == "yes"
    assert env["X_COMPONENT_ROUTE"] == "/cgi"
    assert env["X_RAW_COMPONENT_ROUTE"] == "/cgi/..."
    assert env["X_CLIENT_ADDR"].startswith("127.0.0.1:")


def test_each_trigger_of_a_component_runs_with_its_own_executor_settings(
    serve: Serve, tmp_path: Path
) -> None:
    # Spin's executor is a trigger setting: one component behind two routes with different argv.
    two_routes = WAGI_APP + """\
    [[trigger.http]]
    route = "/alt/..."
    component = "cgi"
    executor = { type = "wagi", argv = "alt ${ARGS} last" }
"""
    srv = serve(make_app(tmp_path / "app", two_routes, guests=("wagi.wasm",)))
    for path, argv in [("/cgi/x?a=1", ["/cgi", "a=1"]), ("/alt/x?a=1", ["alt", "a=1", "last"]),
                       ("/cgi/y", ["/cgi"])]:
        status, _, body = srv.request("GET", path)
        assert status == 201
        printed = body.decode().partition("\n--argv--\n")[2].partition("--env--\n")[0]
        assert printed.split() == argv, path


def test_wagi_empty_body_and_repeat(serve: Serve, tmp_path: Path) -> None:
    srv = serve(make_app(tmp_path / "app", WAGI_APP, guests=("wagi.wasm",)))
    for _ in range(3):
        status, _, body = srv.request("GET", "/cgi")
        assert status == 201 and body.startswith(b"\n--argv--\n")


def test_wagi_body_over_the_buffer_limit_is_413(serve: Serve, tmp_path: Path) -> None:
    srv = serve(make_app(tmp_path / "app", WAGI_APP, guests=("wagi.wasm",)))
    srv.server.max_buffered_body = 16
    assert srv.request("POST", "/cgi", body=b"x" * 16)[0] == 201
    status, _, body = srv.request("POST", "/cgi", body=b"x" * 17)
    assert (status, body) == (413, b"Payload Too Large\n")


def test_wagi_entrypoint_and_argv_template(serve: Serve, engine_box: EngineBox, tmp_path: Path) -> None:
    wat = (GUESTS / "wagi.wat").read_text()
    assert '(func (export "_start")' in wat
    wasm = wasmtime.wat2wasm(wat.replace('(func (export "_start")', '(func (export "serve-cgi")'))
    manifest = WAGI_APP.replace('executor = { type = "wagi" }', 'executor = { type = "wagi", '
                                'entrypoint = "serve-cgi", argv = "${SCRIPT_NAME} --flag ${ARGS}" }')
    root = make_app(tmp_path / "app", manifest, guests=())
    (root / "wagi.wasm").write_bytes(wasm)
    srv = serve(root)
    status, _, body = srv.request("GET", "/cgi/x?a=1&b=2")
    assert status == 201
    argv = body.decode().partition("\n--argv--\n")[2].partition("--env--\n")[0]
    assert argv.split() == ["/cgi", "--flag", "a=1", "b=2"]
    # the default entrypoint `_start` is no longer exported: refused at load, naming it
    (root / "spin.toml").write_text(textwrap.dedent(WAGI_APP))
    with pytest.raises(ComponentLoadError, match=r"cgi.*'_start'"):
        _load(engine_box, root)


def _load(engine_box: EngineBox, root: Path, env: dict[str, str] | None = None) -> None:
    load_app(root, engine_box.engine, LoadOptions(env=env or {}, cache_dir=None, state_dir=root / ".st"))


@pytest.mark.parametrize(("guest", "content", "needle"), [
    ("handler.wasm", b"not wasm at all", "component 'wat': handler.wasm is not a valid component"),
    ("handler.wasm", b"\0asm\x0d\x00\x01\x00\x01\x02",
     "component 'wat': handler.wasm is not a valid component"),
    ("handler.wasm", (GUESTS / "wagi.wasm").read_bytes(), "is a core wasm module, not a component"),
    ("handler.wasm", (GUESTS / "p3.wasm").read_bytes(),
     "exports wasi:http/handler@0.3.0 (WASI 0.3), which this runtime cannot run; supported: "
     "wasi:http/incoming-handler@0.2.x"),
])
def test_bad_modules_fail_at_load_with_a_named_error(engine_box: EngineBox, tmp_path: Path, guest: str,
                                                      content: bytes, needle: str) -> None:
    root = make_app(tmp_path / "app", WAT_APP, guests=())
    (root / guest).write_bytes(content)
    with pytest.raises(ComponentLoadError) as err:
        _load(engine_box, root)
    assert needle in str(err.value)


def test_missing_source_and_manifest(engine_box: EngineBox, tmp_path: Path) -> None:
    root = make_app(tmp_path / "app", WAT_APP, guests=())
    with pytest.raises(ComponentLoadError, match=r"component 'wat': cannot read source .*handler.wasm"):
        _load(engine_box, root)
    with pytest.raises(ManifestError, match="nowhere: no such file"):
        _load(engine_box, tmp_path / "nowhere")


def test_component_for_wagi_and_required_variable(engine_box: EngineBox, tmp_path: Path) -> None:
    root = make_app(tmp_path / "a", WAGI_APP.replace("wagi.wasm", "handler.wasm"))
    with pytest.raises(ComponentLoadError, match="is a component; the wagi executor needs"):
        _load(engine_box, root)
    root = make_app(tmp_path / "b", WAT_APP + "[variables]\nsecret = { required = true }\n")
    with pytest.raises(VariableError, match="'secret': is required"):
        _load(engine_box, root)
    _load(engine_box, root, {"SPIN_VARIABLE_SECRET": "s"})  # and loads once it is set


def test_every_error_is_a_shim_error(engine_box: EngineBox, tmp_path: Path) -> None:
    root = make_app(tmp_path / "app", WAT_APP.replace('name = "wat-app"', 'name = "x"\nbad = 1'))
    with pytest.raises(ShimError):
        _load(engine_box, root)


INBOUND_APP = spin_toml(("/in/...", "legacy"), name="inbound", source="inbound.wasm")


@pytest.mark.parametrize(("method", "body", "expected", "method_index"), [
    ("GET", None, b"/in/x?y=1", "0"),
    ("POST", b"payload", b"payload", "1"),
    ("DELETE", None, b"/in/x?y=1", "3"),
])
def test_inbound_http_executor(serve: Serve, tmp_path: Path, method: str, body: bytes | None,
                               expected: bytes, method_index: str) -> None:
    srv = serve(make_app(tmp_path / "app", INBOUND_APP, guests=("inbound.wasm",)))
    status, headers, data = srv.request(method, "/in/x?y=1", body=body)
    assert (status, headers["content-type"], headers["x-method"], data) == (200, "text/plain",
                                                                            method_index, expected)


def test_wagi_files_visible_read_only(serve: Serve, tmp_path: Path) -> None:
    manifest = WAGI_APP.replace("wagi.wasm", "wagi_files.wasm").replace(
        'environment = { FROM_MANIFEST = "yes" }', 'files = [{ source = "assets", destination = "/data" }]')
    root = make_app(tmp_path / "app", manifest, guests=("wagi_files.wasm",),
                    files={"assets/hello.txt": "hello from a file\n"})
    srv = serve(root)
    status, _, body = srv.request("GET", "/cgi")
    assert status == 200
    assert body == b"hello from a file\nwrite=denied\n"
    assert not (root / "assets" / "new.txt").exists()
