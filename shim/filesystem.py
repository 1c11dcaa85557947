"""A read-only wasi:filesystem over one directory (the component's materialised `files`).

Only that directory is visible, preopened as "/"; paths cannot escape it; every write fails with
`read-only`. Functions not listed here return the interface's error (see `hostlink`).
"""

from __future__ import annotations

import errno
import os
import stat as stat_mod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shim import hostlink
from shim.codec import Err, Ok
from shim.wasi_http import MAX_READ, InStream, RequestState

T = "wasi:filesystem/types#"


@dataclass
class Descriptor:
    root: Path
    rel: str  # path relative to root, "" for the root itself

    @property
    def host(self) -> Path:
        return self.root / self.rel if self.rel else self.root


@dataclass
class DirStream:
    entries: list[tuple[str, str]]
    pos: int = 0


def setup_for(root: str) -> Callable[[RequestState], None]:
    base = Path(root)

    def setup(state: RequestState) -> None:
        state.extra["fs_root"] = base
        state.extra["preopens"] = lambda s: [(s.new("descriptor", Descriptor(base, "")), "/")]
    return setup


def _st() -> RequestState:
    s: RequestState = hostlink.current()
    return s


def _desc(rep: int) -> Descriptor:
    d: Descriptor = _st().get(rep)
    return d


def _join(d: Descriptor, path: str) -> str | None:
    parts: list[str] = [p for p in d.rel.split("/") if p]
    for p in path.split("/"):
        if p in ("", "."):
            continue
        if p == "..":
            if not parts:
                return None
            parts.pop()
        else:
            parts.append(p)
    return "/".join(parts)


def _kind(mode: int) -> str:
    if stat_mod.S_ISDIR(mode):
        return "directory"
    if stat_mod.S_ISREG(mode):
        return "regular-file"
    return "unknown"


def _errno(exc: OSError) -> str:
    return {errno.ENOENT: "no-entry", errno.ENOTDIR: "not-directory", errno.EISDIR: "is-directory",
            errno.EACCES: "access"}.get(exc.errno or 0, "io")


def _stat_record(p: Path) -> dict[str, Any]:
    s = p.stat()
    ts = {"seconds": int(s.st_mtime), "nanoseconds": s.st_mtime_ns % 1_000_000_000}
    return {"type": _kind(s.st_mode), "link-count": 1, "size": s.st_size,
            "data-access-timestamp": ts, "data-modification-timestamp": ts, "status-change-timestamp": ts}


def _open_at(rep: int, _path_flags: set[str], path: str, open_flags: set[str], flags: set[str]) -> Any:
    d = _desc(rep)
    if open_flags & {"create", "truncate", "exclusive"} or flags & {"write", "mutate-directory"}:
        return Err("read-only")
    rel = _join(d, path)
    if rel is None:
        return Err("not-permitted")
    target = d.root / rel if rel else d.root
    if os.path.islink(target) or not target.exists():
        return Err("no-entry")
    if "directory" in open_flags and not target.is_dir():
        return Err("not-directory")
    return Ok(_st().new("descriptor", Descriptor(d.root, rel)))


def _read(rep: int, length: int, offset: int) -> Any:
    d = _desc(rep)
    want = min(length, MAX_READ)  # a read may return less than asked; the guest asks again
    try:
        with open(d.host, "rb") as f:
            f.seek(offset)
            data = f.read(want)
    except OSError as exc:
        return Err(_errno(exc))
    return Ok((data, len(data) < want))  # end of file only when the file ran out


def _read_via_stream(rep: int, offset: int) -> Any:
    d = _desc(rep)
    try:
        f = open(d.host, "rb")  # noqa: SIM115 - closed at end of stream
    except OSError as exc:
        return Err(_errno(exc))
    f.seek(offset)

    def read(n: int) -> bytes:
        data = f.read(n)
        if not data:
            f.close()
        return data
    return Ok(_st().new("input-stream", InStream(read)))


def _stat(rep: int) -> Any:
    try:
        return Ok(_stat_record(_desc(rep).host))
    except OSError as exc:
        return Err(_errno(exc))


def _stat_at(rep: int, _flags: set[str], path: str) -> Any:
    d = _desc(rep)
    rel = _join(d, path)
    if rel is None:
        return Err("not-permitted")
    try:
        return Ok(_stat_record(d.root / rel if rel else d.root))
    except OSError as exc:
        return Err(_errno(exc))


def _get_type(rep: int) -> Any:
    try:
        return Ok(_kind(_desc(rep).host.stat().st_mode))
    except OSError as exc:
        return Err(_errno(exc))


def _read_directory(rep: int) -> Any:
    d = _desc(rep)
    try:
        entries = sorted((e.name, _kind(e.stat().st_mode)) for e in os.scandir(d.host))
    except OSError as exc:
        return Err(_errno(exc))
    return Ok(_st().new("directory-entry-stream", DirStream(entries)))


def _next_entry(rep: int) -> Any:
    ds: DirStream = _st().get(rep)
    if ds.pos >= len(ds.entries):
        return Ok(None)
    name, kind = ds.entries[ds.pos]
    ds.pos += 1
    return Ok({"type": kind, "name": name})


def _hash(p: Path) -> dict[str, int]:
    s = p.stat()
    return {"lower": s.st_ino, "upper": s.st_mtime_ns}


IMPLS: hostlink.Implementations = {
    T + "[method]descriptor.open-at": _open_at,
    T + "[method]descriptor.read": _read,
    T + "[method]descriptor.read-via-stream": _read_via_stream,
    T + "[method]descriptor.stat": _stat,
    T + "[method]descriptor.stat-at": _stat_at,
    T + "[method]descriptor.get-type": _get_type,
    T + "[method]descriptor.get-flags": lambda rep: Ok({"read"}),
    T + "[method]descriptor.read-directory": _read_directory,
    T + "[method]directory-entry-stream.read-directory-entry": _next_entry,
    T + "[method]descriptor.metadata-hash": lambda rep: Ok(_hash(_desc(rep).host)),
    T + "[method]descriptor.metadata-hash-at": lambda rep, _f, path: Ok(
        _hash(_desc(rep).root / (_join(_desc(rep), path) or ""))),
    T + "[method]descriptor.is-same-object": lambda a, b: _desc(a).host == _desc(b).host,
    T + "filesystem-error-code": lambda _err: None,
    T + "[method]descriptor.write": lambda *a: Err("read-only"),
    T + "[method]descriptor.write-via-stream": lambda *a: Err("read-only"),
    T + "[method]descriptor.append-via-stream": lambda *a: Err("read-only"),
    T + "[method]descriptor.create-directory-at": lambda *a: Err("read-only"),
    T + "[method]descriptor.unlink-file-at": lambda *a: Err("read-only"),
    T + "[method]descriptor.remove-directory-at": lambda *a: Err("read-only"),
    T + "[method]descriptor.rename-at": lambda *a: Err("read-only"),
    T + "[method]descriptor.set-size": lambda *a: Err("read-only"),
}
