"""Frozen node programs for the tests, built once per source tree and shared by every test module
(and session) that needs one: `tests/node_release`, the frozen runtime of
`tests/shim_containerd/test_shim_ctr.py` and `bench/containerd.py`.

    frozen(freeze.SHIM) -> Path    the executable, from <cache>/<name>-<fingerprint>/

The cache is `$SPINDLE_TEST_NODE_BUILD_CACHE`, else `<tmp>/spindle-node-build-cache`; the key is
`reconciler.node.freeze.fingerprint` (the program's sources, the freezing code and launcher, the
Python and every installed distribution), so an edit anywhere in `shim/` rebuilds. A lock
file serializes builders; the newest 3 entries per program are kept.
"""

from __future__ import annotations

import fcntl
import importlib.util
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from reconciler.node import freeze

KEEP = 3


def cache_root() -> Path:
    configured = os.environ.get("SPINDLE_TEST_NODE_BUILD_CACHE")
    return Path(configured) if configured else Path(tempfile.gettempdir()) / "spindle-node-build-cache"


def can_freeze() -> str | None:
    """Why this machine cannot freeze (a skip reason), or None."""
    try:
        freeze.Toolchain().check()
    except Exception as exc:  # MissingTool: the message says what to install
        return str(exc)
    return None


def installer_ready() -> bool:
    return importlib.util.find_spec("node_installer.cli") is not None


@contextmanager
def _locked(root: Path) -> Iterator[None]:
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def frozen(program: freeze.Program) -> Path:
    """The frozen executable of `program` for this source tree (built now if not cached); its
    bundle is unpacked already, so the first start a test measures is not the unpacking one."""
    root = cache_root()
    entry = root / f"{program.name}-{freeze.fingerprint((program,))[:16]}"
    executable = entry / program.name
    with _locked(root):
        if not (entry / ".done").exists():
            shutil.rmtree(entry, ignore_errors=True)
            work = Path(tempfile.mkdtemp(prefix="work-", dir=root))
            try:
                freeze.freeze(program, executable, work=work, epoch=0)
            finally:
                shutil.rmtree(work, ignore_errors=True)
            subprocess.run([str(executable), "--help" if program is not freeze.SHIM else "-v"],
                           capture_output=True, env={}, cwd="/", timeout=120, check=False)
            (entry / ".done").write_text("")
        os.utime(entry)
        _prune(root, program.name)
    return executable


def _prune(root: Path, name: str) -> None:
    entries = sorted((p for p in root.glob(f"{name}-*") if p.is_dir()), key=lambda p: p.stat().st_mtime)
    for stale in entries[:-KEEP]:
        shutil.rmtree(stale, ignore_errors=True)


def cached(program: freeze.Program) -> Path | None:
    """The cached executable of `program` for this source tree, without building it."""
    entry = cache_root() / f"{program.name}-{freeze.fingerprint((program,))[:16]}"
    return entry / program.name if (entry / ".done").exists() else None
