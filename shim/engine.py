"""The wasmtime Engine and the on-disk cache of precompiled artifacts.

Artifacts are keyed by the wasm's digest and the engine settings (so one compile serves every
app and pod with the same wasm on a node). A new artifact is written to a temporary name and
hard-linked into place (a link fails rather than replace); an existing artifact is never
rewritten, because a live `deserialize_file` maps it and rewriting a mapped file kills the
process with SIGBUS. An artifact that does not deserialize is compiled again under the next of a
few fixed spare names.

Cold starts: Cranelift takes 10-17 s for a JS app (StarlingMonkey) and 5-7 s for a Python one on
two cores, which every node pays on the first pod of an app. A large wasm without an optimized
artifact is first compiled with Winch, wasmtime's baseline compiler (about 1.3 s for the JS app
and 3 s for the Python one), and served from that at once; `Artifact.upgrade` then compiles the
Cranelift artifact on one low-priority thread, stores it, and the app swaps to it (`app.py`).
Of several processes wanting the same upgrade, one compiles (a lock file next to the artifact)
and the others wait for its file.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Generic, TypeVar

from wasmtime import Config, Engine, Module, WasmtimeError
from wasmtime import _ffi as ffi
from wasmtime.component import Component

log = logging.getLogger("shim.engine")

# part of every cache key: artifacts of another wasmtime or other settings never match
ENGINE_SETTINGS = f"wasmtime-py-{version('wasmtime')};epoch=1;cranelift-speed"
BASELINE_SETTINGS = f"wasmtime-py-{version('wasmtime')};epoch=1;winch"
_SPARE_NAMES = 3
_WINCH = 2  # wasmtime_strategy_t WASMTIME_STRATEGY_WINCH: wasmtime-py's Config.strategy knows only 0 and 1
FAST_START_BYTES = 1 << 20  # a wasm this large starts on Winch when no optimized artifact exists
_UPGRADE_WAIT = 900.0  # seconds to wait for another process's optimizing compile


@dataclass(frozen=True)
class EngineBox:
    engine: Engine
    ticker: threading.Thread | None


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "spindle-shim" / "artifacts"


def new_engine(tick_seconds: float = 0.01, *, baseline: bool = False, parallel: bool = True) -> EngineBox:
    """An engine with epoch interruption; a daemon thread advances the epoch every tick.

    The epoch follows the clock, not the ticker's wake-ups: under load the ticker waits for the
    GIL and wakes late, and counting wake-ups stretched a 30 s deadline to about a minute. Each
    wake-up catches up on the ticks that have passed since the engine started."""
    engine = _engine(baseline, parallel)
    stop = threading.Event()

    def tick() -> None:
        start, done = time.monotonic(), 0
        while not stop.wait(tick_seconds):
            due = int((time.monotonic() - start) / tick_seconds)
            while done < due:
                engine.increment_epoch()
                done += 1

    t = threading.Thread(target=tick, name="shim-epoch", daemon=True)
    t.start()
    return EngineBox(engine, t)


def _engine(baseline: bool = False, parallel: bool = True) -> Engine:
    cfg = Config()
    cfg.epoch_interruption = True
    if baseline:
        ffi.wasmtime_config_strategy_set(cfg.ptr(), _WINCH)
    else:
        cfg.cranelift_opt_level = "speed"
    if not parallel:  # artifacts are the same; compiling takes one thread (the caller's)
        cfg.parallel_compilation = False
    return Engine(cfg)


Compiled = TypeVar("Compiled", Component, Module)


@dataclass
class Artifact(Generic[Compiled]):
    """A compiled wasm and the engine it belongs to (stores must come from that engine).
    `upgrade`, when set, is the baseline's way to the optimized artifact: it compiles (or waits
    for another process to), and returns it for the main engine. Call it off the request path."""

    compiled: Compiled
    engine: Engine
    upgrade: Callable[[], Compiled] | None = None


class ArtifactCache:
    """Compiles each distinct wasm once per process, and once per machine through the disk cache."""

    def __init__(self, engine: Engine, directory: Path | None,
                 fast_start_bytes: int | None = FAST_START_BYTES) -> None:
        self.engine = engine
        self.dir = directory
        self.fast_start_bytes = fast_start_bytes
        self.baseline: EngineBox | None = None  # made on the first fast start; lives as long as this
        self._loaded: dict[str, Artifact[Component] | Artifact[Module]] = {}  # kind:digest → artifact

    def load_component(self, wasm: bytes, variant: str = "",
                       source: Callable[[], bytes] | None = None) -> Artifact[Component]:
        """`wasm` compiled; with a `variant`, what `source()` makes of it (compiled on a miss
        only, so a cached variant costs no rewrite)."""
        return self._load(Component, "component", wasm, variant, source)

    def load_module(self, wasm: bytes) -> Artifact[Module]:
        return self._load(Module, "module", wasm)

    def _load(self, cls: type[Compiled], kind: str, wasm: bytes, variant: str = "",
              source: Callable[[], bytes] | None = None) -> Artifact[Compiled]:
        digest = hashlib.sha256(wasm).hexdigest()
        key = f"{kind}{'+' + variant if variant else ''}"
        known = self._loaded.get(f"{key}:{digest}")
        if known is not None and isinstance(known.compiled, cls) and known.upgrade is None:
            return known
        src = source or (lambda: wasm)
        path = self._path(digest, key, ENGINE_SETTINGS)
        art: Artifact[Compiled]
        if path is None:
            art = Artifact(cls(self.engine, src()), self.engine)
        elif (found := self._existing(cls, self.engine, path)) is not None:
            art = Artifact(found, self.engine)
        elif self.fast_start_bytes is None or len(wasm) < self.fast_start_bytes:
            art = Artifact(self._compile(cls, self.engine, src, path), self.engine)
        else:
            art = self._baseline(cls, key, src, digest, path)
        self._loaded[f"{key}:{digest}"] = art
        return art

    def _baseline(self, cls: type[Compiled], key: str, src: Callable[[], bytes], digest: str,
                  path: Path) -> Artifact[Compiled]:
        if self.baseline is None:
            self.baseline = new_engine(baseline=True)
        engine = self.baseline.engine
        bpath = self._path(digest, key, BASELINE_SETTINGS)
        assert bpath is not None
        t0 = time.monotonic()
        compiled = self._existing(cls, engine, bpath)
        if compiled is None:
            compiled = self._compile(cls, engine, src, bpath)
            log.info("compiled %s %s with the baseline compiler in %.1f s; optimizing in the background",
                     key.split("+")[0], digest[:12], time.monotonic() - t0)

        def upgrade() -> Compiled:
            return self._optimize(cls, src, path)

        return Artifact(compiled, engine, upgrade)

    def _optimize(self, cls: type[Compiled], src: Callable[[], bytes], path: Path) -> Compiled:
        """The optimized artifact at `path`: compiled here (one thread, low priority) unless
        another process is already at it, in which case its file is awaited."""
        lock = path.with_name(path.name + ".compiling")
        deadline = time.monotonic() + _UPGRADE_WAIT
        while True:
            found = self._existing(cls, self.engine, path)
            if found is not None:
                return found
            if _take_lock(lock):
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"{path.name}: another process's compile did not finish")
            time.sleep(0.5)
        try:
            with contextlib.suppress(OSError, AttributeError):  # below the threads serving requests
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
            t0 = time.monotonic()
            compiled = cls(_engine(parallel=False), src())
            data = compiled.serialize()
            self._store(path, data)
            log.info("optimized %s in %.1f s", path.name, time.monotonic() - t0)
        finally:
            _OWN_LOCKS.discard(lock)
            with contextlib.suppress(OSError):
                lock.unlink()
        found = self._existing(cls, self.engine, path)
        return found if found is not None else cls.deserialize(self.engine, data)

    def _existing(self, cls: type[Compiled], engine: Engine, path: Path) -> Compiled | None:
        """The first usable artifact of `path` and its spares."""
        for candidate in _with_spares(path):
            if not candidate.exists():
                return None
            try:
                return cls.deserialize_file(engine, str(candidate))
            except WasmtimeError as exc:
                log.warning("ignoring unusable artifact %s: %s", candidate, exc)
        return None

    def _compile(self, cls: type[Compiled], engine: Engine, src: Callable[[], bytes], path: Path) -> Compiled:
        compiled = cls(engine, src())
        # an unusable artifact (corrupt, foreign) is never rewritten, since another process may map
        # it: the next free name in a fixed sequence is used, so later starts find the good copy
        free = next((c for c in _with_spares(path) if not c.exists()), None)
        if free is not None:
            self._store(free, compiled.serialize())
        return compiled

    def _path(self, digest: str, kind: str, settings: str) -> Path | None:
        if self.dir is None:
            return None
        key = hashlib.sha256(f"{settings}|{kind}|{digest}".encode()).hexdigest()[:32]
        suffix = "" if settings == ENGINE_SETTINGS else ".baseline"
        return self.dir / f"{digest[:16]}-{key}.{kind}{suffix}.cwasm"

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


_OWN_LOCKS: set[Path] = set()


@atexit.register
def _drop_locks() -> None:  # a stop in the middle of a compile leaves no lock behind
    for lock in list(_OWN_LOCKS):
        with contextlib.suppress(OSError):
            lock.unlink()


def _take_lock(lock: Path) -> bool:
    """Create `lock` (holding our pid); a lock whose process is gone, or that is older than any
    compile takes, is taken over."""
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                if time.time() - lock.stat().st_mtime > _UPGRADE_WAIT:
                    raise ProcessLookupError
                pid = int(lock.read_text() or "0")
                os.kill(pid, 0)
                return False  # alive: it compiles
            except (ValueError, ProcessLookupError, FileNotFoundError):
                with contextlib.suppress(OSError):
                    lock.unlink()  # stale
                continue
            except PermissionError:
                return False
        except OSError:
            return True  # cannot lock (read-only cache?): compile without
        with os.fdopen(fd, "w") as f:
            f.write(str(os.getpid()))
        _OWN_LOCKS.add(lock)
        return True
    return False


def _with_spares(path: Path) -> list[Path]:
    return [path, *(path.with_name(f"{path.name}.{i}") for i in range(1, _SPARE_NAMES + 1))]
