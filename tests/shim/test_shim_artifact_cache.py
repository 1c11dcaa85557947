"""The precompiled artifact cache: reused when warm, never rewritten in place; cold starts on the
baseline compiler while the optimized artifact is built."""

from __future__ import annotations

import io
import os
from pathlib import Path

from shim_testlib import GUESTS, WAT_APP, make_app

from shim import engine
from shim.app import LoadOptions, load_app
from shim.engine import ArtifactCache, EngineBox
from shim.executors import Limits, WasiHttpExecutor
from shim.manifest import ExecutorKind, WagiSettings
from shim.wasi_http import InboundRequest


def test_warm_cache_is_reused_and_never_overwritten(engine_box: EngineBox, tmp_path: Path) -> None:
    wasm = (GUESTS / "handler.wasm").read_bytes()
    cache = ArtifactCache(engine_box.engine, tmp_path)
    cache.load_component(wasm)
    (artifact,) = tmp_path.glob("*.cwasm")
    stamp = artifact.stat().st_mtime_ns, artifact.stat().st_ino
    ArtifactCache(engine_box.engine, tmp_path).load_component(wasm)  # warm: deserialised, not rewritten
    assert list(tmp_path.glob("*.cwasm")) == [artifact]
    assert (artifact.stat().st_mtime_ns, artifact.stat().st_ino) == stamp
    # a different module gets its own artifact
    cache.load_module((GUESTS / "wagi.wasm").read_bytes())
    assert len(list(tmp_path.glob("*.cwasm"))) == 2


def test_unusable_artifact_is_left_alone_and_a_new_one_written(engine_box: EngineBox, tmp_path: Path) -> None:
    wasm = (GUESTS / "handler.wasm").read_bytes()
    cache = ArtifactCache(engine_box.engine, tmp_path)
    cache.load_component(wasm)
    (artifact,) = tmp_path.glob("*.cwasm")
    artifact.write_bytes(b"garbage")  # e.g. written by another engine version
    comp = ArtifactCache(engine_box.engine, tmp_path).load_component(wasm)
    assert comp is not None
    assert artifact.read_bytes() == b"garbage"  # a mapped file is never rewritten
    (spare,) = set(tmp_path.glob("*.cwasm*")) - {artifact}
    stamp = spare.stat().st_mtime_ns
    # later starts find the spare instead of compiling again: it is what gets mapped
    again = ArtifactCache(engine_box.engine, tmp_path).load_component(wasm)
    assert str(spare) in Path("/proc/self/maps").read_text()
    del again
    assert set(tmp_path.glob("*.cwasm*")) == {artifact, spare}
    assert spare.stat().st_mtime_ns == stamp


def test_same_wasm_compiled_once_per_process(engine_box: EngineBox) -> None:
    cache = ArtifactCache(engine_box.engine, None)
    wasm = (GUESTS / "handler.wasm").read_bytes()
    assert cache.load_component(wasm) is cache.load_component(wasm)


def test_cold_start_serves_baseline_code_then_swaps_to_optimized(engine_box: EngineBox,
                                                                  tmp_path: Path) -> None:
    """Without an optimized artifact a large wasm (here: any, `fast_start_bytes=0`) is served
    from a Winch compile at once; the Cranelift one is built in the background and swapped in."""
    root = make_app(tmp_path / "app", WAT_APP)
    opts = LoadOptions(env={}, cache_dir=tmp_path / "cache", fast_start_bytes=0)
    app = load_app(root, engine_box.engine, opts)
    first = app.executors["wat"]
    assert first.engine is not engine_box.engine  # the baseline engine
    assert _get(first, "/cold") == b"path=/cold\n"
    assert app.upgraded.wait(60)
    optimized = app.executors["wat"]
    assert optimized.engine is engine_box.engine and app.variants[("wat", *_spin_key())] is optimized
    assert _get(optimized, "/warm") == b"path=/warm\n"
    names = sorted(p.name for p in (tmp_path / "cache").iterdir())
    assert len(names) == 2 and names[0].endswith(".baseline.cwasm") != names[1].endswith(".baseline.cwasm")
    # a later start finds the optimized artifact and needs no upgrade
    again = load_app(root, engine_box.engine, opts)
    assert again.upgraded.is_set() and again.executors["wat"].engine is engine_box.engine


def test_a_dead_compilers_lock_is_taken_over(tmp_path: Path) -> None:
    lock = tmp_path / "x.cwasm.compiling"
    lock.write_text("999999999")  # no such process
    assert engine._take_lock(lock)
    assert lock.read_text() == str(os.getpid())
    assert not engine._take_lock(lock)  # ours, alive: somebody compiles


def _spin_key() -> tuple[ExecutorKind, WagiSettings]:
    return ExecutorKind.SPIN, WagiSettings()


def _get(executor: object, path: str) -> bytes:
    assert isinstance(executor, WasiHttpExecutor)
    out: list[bytes] = []

    class Sink:
        def start(self, status: int, headers: list[tuple[str, bytes]]) -> None: ...
        def write(self, data: bytes) -> None:
            out.append(data)
        def flush(self) -> None: ...
        def finish(self) -> None: ...

    executor.serve(InboundRequest("GET", path, "http", "x", [], io.BytesIO().read), Sink(), Limits())
    return b"".join(out)
