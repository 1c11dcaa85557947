"""The precompiled artifact cache: reused when warm, never rewritten in place."""

from __future__ import annotations

from pathlib import Path

from shim_testlib import GUESTS

from shim.engine import ArtifactCache, EngineBox


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
