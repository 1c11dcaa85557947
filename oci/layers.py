"""Reproducible tar layers: the same entries always give the same tar and gzip bytes.

What is fixed, whatever the machine, the wall clock or the files' metadata on disk:

- entries are sorted by the UTF-8 bytes of their path, and every missing parent directory is added
  (mode 0755) before its children;
- owner uid/gid 0 with empty uname/gname; mtime = the build epoch (`epoch` argument, else
  `$SOURCE_DATE_EPOCH`, else 0); modes are explicit (files 0644, or 0755 when a file on disk has any
  execute bit; directories 0755; symlinks 0777) and never the umask;
- POSIX.1-2001 (PAX) tar format, UTF-8 names; no access/change times, no xattrs;
- gzip with header mtime 0, no file name, and compression level 6.

The gzip bytes depend on the zlib the interpreter links, so the *compressed* digest is reproducible
on one machine image; the tar digest (the config's `diff_id`) is reproducible everywhere.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import stat
import tarfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Literal

from oci.descriptors import LAYER_TAR_GZIP, Descriptor
from oci.errors import LayoutError

GZIP_LEVEL = 6
FILE_MODE = 0o644
EXEC_MODE = 0o755
DIR_MODE = 0o755
SYMLINK_MODE = 0o777
_COPY_CHUNK = 1 << 20

EntryKind = Literal["file", "dir", "symlink"]


@dataclass(frozen=True)
class LayerEntry:
    """One path in a layer. File content is either `data` (in memory) or `source` (read from disk)."""

    path: str
    kind: EntryKind = "file"
    data: bytes = b""
    source: Path | None = None
    mode: int | None = None
    target: str = ""

    @classmethod
    def file(cls, path: str, data: bytes | str, mode: int = FILE_MODE) -> LayerEntry:
        raw = data.encode("utf-8") if isinstance(data, str) else data
        return cls(path=path, kind="file", data=raw, mode=mode)

    @classmethod
    def from_disk(cls, path: str, source: Path, mode: int | None = None) -> LayerEntry:
        """A file read from `source` at build time; mode 0755/0644 from its execute bits unless given."""
        return cls(path=path, kind="file", source=Path(source), mode=mode)

    @classmethod
    def directory(cls, path: str, mode: int = DIR_MODE) -> LayerEntry:
        return cls(path=path, kind="dir", mode=mode)

    @classmethod
    def symlink(cls, path: str, target: str) -> LayerEntry:
        return cls(path=path, kind="symlink", target=target, mode=SYMLINK_MODE)


def entries_from_mapping(files: Mapping[str, bytes | str], mode: int = FILE_MODE) -> list[LayerEntry]:
    """In-memory files, `{"path/in/layer": content}`."""
    return [LayerEntry.file(path, data, mode) for path, data in files.items()]


def entries_from_directory(root: Path, prefix: str = "") -> list[LayerEntry]:
    """Every file, directory and symlink under `root`, placed under `prefix` in the layer.

    Modes are normalized (0755 for directories and files with an execute bit, else 0644), so only the
    content and the execute bits on disk matter. Anything else (sockets, devices) raises LayoutError.
    """
    root = Path(root)
    if not root.is_dir():
        raise LayoutError(str(root), "not a directory")
    out: list[LayerEntry] = []
    base = PurePosixPath(prefix.strip("/")) if prefix.strip("/") else None
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        for name in sorted([*dirnames, *filenames]):
            full = Path(dirpath) / name
            rel = full.relative_to(root).as_posix()
            inside = str(base / rel) if base else rel
            st = full.lstat()
            if stat.S_ISLNK(st.st_mode):
                out.append(LayerEntry.symlink(inside, os.readlink(full)))
            elif stat.S_ISDIR(st.st_mode):
                out.append(LayerEntry.directory(inside))
            elif stat.S_ISREG(st.st_mode):
                out.append(LayerEntry.from_disk(inside, full))
            else:
                raise LayoutError(str(full), "only regular files, directories and symlinks can go in a layer")
    return out


def resolve_epoch(epoch: int | None) -> int:
    """The mtime for every entry: `epoch` if given, else `$SOURCE_DATE_EPOCH`, else 0."""
    if epoch is not None:
        if epoch < 0:
            raise LayoutError("epoch", f"must be >= 0, got {epoch}")
        return epoch
    raw = os.environ.get("SOURCE_DATE_EPOCH")
    if raw is None or raw == "":
        return 0
    try:
        value = int(raw)
    except ValueError:
        raise LayoutError("SOURCE_DATE_EPOCH", f"not an integer number of seconds: {raw!r}") from None
    if value < 0:
        raise LayoutError("SOURCE_DATE_EPOCH", f"must be >= 0, got {value}")
    return value


def _normalize_path(path: str) -> str:
    stripped = path.replace("\\", "/").strip("/")
    parts = [p for p in stripped.split("/") if p not in ("", ".")]
    if not parts:
        raise LayoutError(repr(path), "a layer entry needs a non-empty path")
    if ".." in parts:
        raise LayoutError(repr(path), "'..' is not allowed in a layer path")
    return "/".join(parts)


def _file_mode(entry: LayerEntry) -> int:
    if entry.mode is not None:
        return entry.mode & 0o7777
    if entry.kind == "dir":
        return DIR_MODE
    if entry.kind == "symlink":
        return SYMLINK_MODE
    if entry.source is not None and os.stat(entry.source).st_mode & 0o111:
        return EXEC_MODE
    return FILE_MODE


def _complete(entries: Iterable[LayerEntry]) -> list[tuple[str, LayerEntry]]:
    """Normalize paths, reject duplicates, add missing parent directories, sort by path bytes."""
    by_path: dict[str, LayerEntry] = {}
    for entry in entries:
        path = _normalize_path(entry.path)
        if path in by_path:
            previous = by_path[path]
            if previous.kind == "dir" and entry.kind == "dir":
                continue
            raise LayoutError(path, "appears twice in one layer")
        by_path[path] = entry
    for path in list(by_path):
        parent = PurePosixPath(path).parent
        while str(parent) != ".":
            existing = by_path.get(str(parent))
            if existing is None:
                by_path[str(parent)] = LayerEntry.directory(str(parent))
            elif existing.kind != "dir":
                raise LayoutError(path, f"its parent {str(parent)!r} is a {existing.kind}, not a directory")
            parent = parent.parent
    return sorted(by_path.items(), key=lambda item: item[0].encode("utf-8"))


def _tarinfo(path: str, entry: LayerEntry, size: int, mtime: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(path)
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mtime = mtime
    info.mode = _file_mode(entry)
    if entry.kind == "dir":
        info.type = tarfile.DIRTYPE
    elif entry.kind == "symlink":
        info.type = tarfile.SYMTYPE
        info.linkname = entry.target
    else:
        info.type = tarfile.REGTYPE
        info.size = size
    return info


def write_tar(entries: Iterable[LayerEntry], out: BinaryIO, *, epoch: int | None = None) -> None:
    """Write the reproducible tar of `entries` to `out` (see the module docstring for what is fixed)."""
    mtime = resolve_epoch(epoch)
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT, encoding="utf-8") as tar:
        for path, entry in _complete(entries):
            if entry.kind != "file":
                tar.addfile(_tarinfo(path, entry, 0, mtime))
            elif entry.source is not None:
                try:
                    with open(entry.source, "rb") as handle:
                        size = os.fstat(handle.fileno()).st_size
                        tar.addfile(_tarinfo(path, entry, size, mtime), handle)
                except OSError as exc:
                    raise LayoutError(
                        str(entry.source), f"cannot read file for layer path {path!r}: {exc}"
                    ) from exc
            else:
                tar.addfile(_tarinfo(path, entry, len(entry.data), mtime), io.BytesIO(entry.data))


def gzip_bytes(data: bytes) -> bytes:
    """gzip with a fixed header (mtime 0, no name) and level, so equal input gives equal output."""
    buffer = io.BytesIO()
    with gzip.GzipFile(filename="", fileobj=buffer, mode="wb", compresslevel=GZIP_LEVEL, mtime=0) as gz:
        gz.write(data)
    return buffer.getvalue()


@dataclass(frozen=True)
class Layer:
    """A built layer: the compressed blob, its descriptor and the uncompressed tar's digest (diff_id)."""

    blob: bytes
    descriptor: Descriptor
    diff_id: str


def build_layer(entries: Iterable[LayerEntry], *, epoch: int | None = None) -> Layer:
    """Tar and gzip `entries` reproducibly; the result is held in memory."""
    raw = io.BytesIO()
    write_tar(entries, raw, epoch=epoch)
    tar_bytes = raw.getvalue()
    blob = gzip_bytes(tar_bytes)
    diff_id = "sha256:" + hashlib.sha256(tar_bytes).hexdigest()
    return Layer(blob=blob, descriptor=Descriptor.for_bytes(LAYER_TAR_GZIP, blob), diff_id=diff_id)
