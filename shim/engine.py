"""The wasmtime Engine and the on-disk cache of precompiled artifacts.

Artifacts are keyed by the wasm's digest and the engine settings. A new artifact is written to a
temporary name and hard-linked into place (a link fails rather than replace); an existing
artifact is never rewritten, because a live `deserialize_file` maps it and rewriting a mapped file
kills the process with SIGBUS. An artifact that does not deserialize is compiled again under the
next of a few fixed spare names.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import TypeVar

from wasmtime import Config, Engine, Module, WasmtimeError
from wasmtime.component import Component

log = logging.getLogger("shim.engine")

# part of every cache key: artifacts of another wasmtime or other settings never match
ENGINE_SETTINGS = f"wasmtime-py-{version('wasmtime')};epoch=1;cranelift-speed"
_SPARE_NAMES = 3


@dataclass(frozen=True)
class EngineBox:
    engine: Engine
    ticker: threading.Thread | None


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "spindle-shim" / "artifacts"


def new_engine(tick_seconds: float = 0.01) -> EngineBox:
    """An engine with epoch interruption; a daemon thread advances the epoch every tick."""
    cfg = Config()
    cfg.epoch_interruption = True
    cfg.cranelift_opt_level = "speed"
    engine = Engine(cfg)
    stop = threading.Event()

    def tick() -> None:
        while not stop.wait(tick_seconds):
            engine.increment_epoch()

    t = threading.Thread(target=tick, name="shim-epoch", daemon=True)
    t.start()
    return EngineBox(engine, t)


Compiled = TypeVar("Compiled", Component, Module)


class ArtifactCache:
    """Compiles each distinct wasm once per process, and once per machine through the disk cache."""

    def __init__(self, engine: Engine, directory: Path | None) -> None:
        self.engine = engine
        self.dir = directory
        self._loaded: dict[str, Component | Module] = {}  # kind:digest → compiled

    def load_component(self, wasm: bytes, variant: str = "",
                       source: Callable[[], bytes] | None = None) -> Component:
        """`wasm` compiled; with a `variant`, what `source()` makes of it (compiled on a miss
        only, so a cached variant costs no rewrite)."""
        return self._load(Component, "component", wasm, variant, source)

    def load_module(self, wasm: bytes) -> Module:
        return self._load(Module, "module", wasm)

    def _load(self, cls: type[Compiled], kind: str, wasm: bytes, variant: str = "",
              source: Callable[[], bytes] | None = None) -> Compiled:
        digest = hashlib.sha256(wasm).hexdigest()
        key = f"{kind}{'+' + variant if variant else ''}"
        known = self._loaded.get(f"{key}:{digest}")
        if isinstance(known, cls):
            return known
        compiled = self._deserialize_or_compile(cls, key, source or (lambda: wasm), digest)
        self._loaded[f"{key}:{digest}"] = compiled
        return compiled

    def _deserialize_or_compile(self, cls: type[Compiled], kind: str, source: Callable[[], bytes],
                                digest: str) -> Compiled:
        path = self._path(digest, kind)
        if path is None:
            return cls(self.engine, source())
        # an unusable artifact (corrupt, foreign) is never rewritten, since another process may map
        # it: the next name in a fixed sequence is used, so later starts find the good copy
        for candidate in _with_spares(path):
            if not candidate.exists():
                compiled = cls(self.engine, source())
                self._store(candidate, compiled.serialize())
                return compiled
            try:
                return cls.deserialize_file(self.engine, str(candidate))
            except WasmtimeError as exc:
                log.warning("ignoring unusable artifact %s: %s", candidate, exc)
        return cls(self.engine, source())

    def _path(self, digest: str, kind: str) -> Path | None:
        if self.dir is None:
            return None
        key = hashlib.sha256(f"{ENGINE_SETTINGS}|{kind}|{digest}".encode()).hexdigest()[:32]
        return self.dir / f"{digest[:16]}-{key}.{kind}.cwasm"

    @staticmethod
    def _store(path: Path, data: bytes | bytearray) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if path.exists():
                return
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            try:
                os.link(tmp, path)  # fails if another process won the race; never overwrites
            except FileExistsError:
                pass
            finally:
                os.unlink(tmp)
        except OSError as exc:
            log.warning("cannot write artifact cache %s: %s", path, exc)


def _with_spares(path: Path) -> list[Path]:
    return [path, *(path.with_name(f"{path.name}.{i}") for i in range(1, _SPARE_NAMES + 1))]
