"""The stream adapter (shim/bytestrings.py): which guests get it, that the wrapper is a valid
component serving the same bytes, and that anything it cannot read is run as it is."""

from __future__ import annotations

import io
import os
import shutil
from pathlib import Path

import pytest
from shim_testlib import GUESTS, build_js_app, build_python_app
from wasmtime import Engine
from wasmtime.component import Component

from shim import bytestrings
from shim.app import LoadOptions, load_app
from shim.engine import new_engine
from shim.executors import WasiHttpExecutor
from shim.wasi_http import InboundRequest

STREAMS = "wasi:io/streams@0.2.0"


@pytest.mark.parametrize(("guest", "functions"), [
    ("handler.wasm", {f"{STREAMS}#[method]input-stream.blocking-read-hex",
                      f"{STREAMS}#[method]output-stream.blocking-write-and-flush-hex",
                      f"{STREAMS}#[method]output-stream.write-hex"}),
    ("inbound.wasm", set()),   # no wasi:io/streams import: nothing to adapt
    ("p3.wasm", set()),        # WASI 0.3 (refused later, at load)
])
def test_plan_per_committed_guest(guest: str, functions: set[str]) -> None:
    plan = bytestrings.analyse((GUESTS / guest).read_bytes())
    assert set(plan.functions) == functions
    for added, original in plan.functions.items():
        assert added == original + bytestrings.HEX


def test_wrapper_is_a_component_with_the_guest_exports_and_the_hex_imports() -> None:
    wasm = (GUESTS / "handler.wasm").read_bytes()
    plan = bytestrings.analyse(wasm)
    engine = Engine()
    wrapped, original = Component(engine, plan.apply()), Component(engine, wasm)
    assert list(wrapped.type.exports(engine)) == list(original.type.exports(engine))
    assert list(wrapped.type.imports(engine)) == list(original.type.imports(engine))
    streams = wrapped.type.imports(engine)[STREAMS].ty.exports(engine)  # type: ignore[attr-defined]
    assert {"[method]input-stream.blocking-read-hex",
            "[method]output-stream.blocking-write-and-flush-hex"} <= set(streams)


@pytest.mark.parametrize("damage", [
    lambda w: w[:len(w) // 2],                     # truncated: the section walk runs out
    lambda w: w[:8] + b"\x7f\x01\x00" + w[8:],     # an unknown section id at the front
])
def test_what_it_cannot_read_is_left_alone(damage: object) -> None:
    wasm = damage((GUESTS / "handler.wasm").read_bytes())  # type: ignore[operator]
    plan = bytestrings.analyse(wasm)
    assert not plan.functions
    assert plan.apply() is wasm


class _Sink:
    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def start(self, status: int, headers: list[tuple[str, bytes]]) -> None:
        self.status = status

    def write(self, data: bytes) -> None:
        self.parts.append(data)

    def flush(self) -> None: ...
    def finish(self) -> None: ...


def _echo(tmp_path: Path, wasm: Path, body: bytes) -> tuple[bytes, WasiHttpExecutor]:
    root = tmp_path / "app"
    root.mkdir()
    shutil.copy(wasm, root / "app.wasm")
    (root / "spin.toml").write_text(
        'spin_manifest_version = 2\n[application]\nname = "echo"\n[[trigger.http]]\nroute = "/..."\n'
        'component = "g"\n[component.g]\nsource = "app.wasm"\n')
    box = new_engine()
    app = load_app(root, box.engine, LoadOptions(env={}, cache_dir=tmp_path / "cache",
                                                 state_dir=tmp_path / "state"))
    try:
        ex = app.executors["g"]
        assert isinstance(ex, WasiHttpExecutor)
        sink = _Sink()
        ex.serve(InboundRequest("POST", "/echo", "http", "127.0.0.1",
                                [("content-length", str(len(body)).encode())], io.BytesIO(body).read),
                 sink, app.limits)
        return b"".join(sink.parts), ex
    finally:
        app.close()


@pytest.mark.parametrize("guest", ["wat", "js", "py"])
def test_every_byte_value_survives_the_adapter_both_ways(tmp_path: Path, guest: str) -> None:
    wasm = {"wat": lambda: GUESTS / "handler.wasm", "js": build_js_app, "py": build_python_app}[guest]()
    body = bytes(range(256)) * 4096 + os.urandom(3 << 20) + b"\x00"  # every byte, odd length
    echoed, ex = _echo(tmp_path, wasm, body)
    assert echoed == body
    assert ex.adapted  # the bytes went through the adapter, not the per-byte path
    assert not any(k.endswith(bytestrings.HEX) for k in ex.report.stubbed)
