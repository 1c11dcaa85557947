"""The host-root filesystem seam: every read and write the installer makes on a node.

Paths are node paths (`/etc/containerd/config.toml`); `OsHostFs(root)` maps them under the host
root (`/mnt/node-root` in RCM's Job). Symlinks are followed *inside* the root: an absolute link
target on the node (`/etc/containerd/config.toml -> /etc/containerd/real.toml`) resolves to
`<root>/etc/containerd/real.toml`, never to the installer container's own files, and a write
replaces the link's target, not the link.

Writes are atomic: a temp file in the same directory, fsync, rename over the old file, fsync of
the directory; a replaced file keeps its mode and owner. Replacing the shim by rename also means
a shim binary that is running keeps its old inode (no ETXTBSY, unlike truncating it in place).
`copy_verified` hashes what it wrote before renaming it into place, so a corrupted copy never
becomes the installed shim.

`unwritable(path)` tells, without writing anything, why a write would fail (a read-only mount,
chattr +i, permissions); the installer asks it for every path of a plan before the first write.
Tests swap in a subclass to fail or corrupt writes.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Protocol

from node_installer.errors import AssetError, FsError, IntegrityError, ReadOnlyError

_CHUNK = 1 << 20
_MAX_LINKS = 40


class HostFs(Protocol):
    """What the installer needs from the host root."""

    @property
    def root(self) -> Path: ...

    def host_path(self, path: PurePosixPath) -> Path: ...

    def read(self, path: PurePosixPath) -> bytes | None: ...

    def sha256(self, path: PurePosixPath) -> str | None: ...

    def write_atomic(self, path: PurePosixPath, data: bytes, mode: int = 0o644) -> None: ...

    def copy_verified(self, source: Path, dest: PurePosixPath, sha256: str, mode: int = 0o755) -> None: ...

    def remove(self, path: PurePosixPath) -> bool: ...

    def mkdirs(self, path: PurePosixPath) -> Path: ...

    def unwritable(self, path: PurePosixPath) -> str | None: ...


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def asset_sha256(path: Path) -> str:
    """sha256 of an asset in the installer's own filesystem (AssetError when it is unreadable)."""
    try:
        if not path.is_file():
            raise AssetError(str(path), "not a file" if path.exists() else "no such file")
        return file_sha256(path)
    except OSError as exc:
        raise AssetError(str(path), f"cannot read: {exc.strerror}") from exc


class OsHostFs:
    """The real host root (see the module docstring)."""

    def __init__(self, root: Path) -> None:
        self._root = root

    @property
    def root(self) -> Path:
        return self._root

    # -- paths --------------------------------------------------------------------------------------

    def host_path(self, path: PurePosixPath) -> Path:
        """`path` under the root, symlinks resolved within the root (missing tails kept as given)."""
        if not path.is_absolute():
            raise FsError(str(path), "not an absolute node path")
        current = PurePosixPath("/")
        pending = list(path.parts[1:])
        hops = 0
        while pending:
            part = pending.pop(0)
            if part in ("", "."):
                continue
            if part == "..":
                current = current.parent
                continue
            candidate = current / part
            real = self._under_root(candidate)
            if real.is_symlink():
                hops += 1
                if hops > _MAX_LINKS:
                    raise FsError(str(path), "too many levels of symbolic links")
                target = PurePosixPath(os.readlink(real))
                if target.is_absolute():
                    current = PurePosixPath("/")
                    pending = list(target.parts[1:]) + pending
                else:
                    pending = list(target.parts) + pending
                continue
            current = candidate
        return self._under_root(current)

    def _under_root(self, node_path: PurePosixPath) -> Path:
        relative = str(node_path).lstrip("/")
        return self._root / relative if relative else self._root

    # -- reads --------------------------------------------------------------------------------------

    def read(self, path: PurePosixPath) -> bytes | None:
        real = self.host_path(path)
        try:
            return real.read_bytes()
        except FileNotFoundError:
            return None
        except IsADirectoryError as exc:
            raise FsError(str(path), "is a directory, not a file") from exc
        except OSError as exc:
            raise FsError(str(path), f"cannot read: {exc.strerror}") from exc

    def sha256(self, path: PurePosixPath) -> str | None:
        real = self.host_path(path)
        try:
            return file_sha256(real)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise FsError(str(path), f"cannot read: {exc.strerror}") from exc

    # -- checks -------------------------------------------------------------------------------------

    def unwritable(self, path: PurePosixPath) -> str | None:
        """Why writing (creating, replacing or removing) `path` would fail; None when it would not."""
        real = self.host_path(path)
        if real.exists() and not os.access(real, os.W_OK):
            return _reason(real, "the file is not writable (chattr +i, or permissions)")
        folder = real.parent
        while not folder.exists():
            if folder == folder.parent:
                return "no existing parent directory"
            folder = folder.parent
        if not folder.is_dir():
            return f"{folder} is not a directory"
        if not os.access(folder, os.W_OK | os.X_OK):
            return _reason(
                folder, f"directory {self._node(folder)} is not writable (chattr +i, or permissions)"
            )
        return None

    def _node(self, real: Path) -> str:
        try:
            return "/" + str(real.relative_to(self._root)).removeprefix(".")
        except ValueError:
            return str(real)

    # -- writes -------------------------------------------------------------------------------------

    def write_atomic(self, path: PurePosixPath, data: bytes, mode: int = 0o644) -> None:
        real = self.host_path(path)
        with _fs_errors(path):
            real.parent.mkdir(parents=True, exist_ok=True)
            owner = _owner(real)
            tmp = real.parent / f".{real.name}.spindle-tmp-{os.getpid()}"
            try:
                self._write_file(tmp, data)
                _apply_owner(tmp, owner, mode)
                os.replace(tmp, real)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    tmp.unlink()
            _fsync_dir(real.parent)

    def copy_verified(self, source: Path, dest: PurePosixPath, sha256: str, mode: int = 0o755) -> None:
        """Copy `source` to `dest` atomically if what was written hashes to `sha256`."""
        real = self.host_path(dest)
        with _fs_errors(dest):
            real.parent.mkdir(parents=True, exist_ok=True)
            tmp = real.parent / f".{real.name}.spindle-tmp-{os.getpid()}"
            try:
                try:
                    data_source = open(source, "rb")  # noqa: SIM115 - closed right below
                except OSError as exc:
                    raise AssetError(str(source), f"cannot read: {exc.strerror}") from exc
                with data_source, open(tmp, "wb") as out:
                    while chunk := data_source.read(_CHUNK):
                        self._write_chunk(out, chunk)
                    out.flush()
                    os.fsync(out.fileno())
                written = file_sha256(tmp)
                if written != sha256:
                    raise IntegrityError(
                        str(dest), f"the copy's sha256 is {written}, the asset's is {sha256}; not installed"
                    )
                os.chmod(tmp, mode)
                os.replace(tmp, real)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    tmp.unlink()
            _fsync_dir(real.parent)

    def remove(self, path: PurePosixPath) -> bool:
        real = self.host_path(path)
        with _fs_errors(path):
            try:
                real.unlink()
            except FileNotFoundError:
                return False
            _fsync_dir(real.parent)
            return True

    def mkdirs(self, path: PurePosixPath) -> Path:
        real = self.host_path(path)
        with _fs_errors(path):
            real.mkdir(parents=True, exist_ok=True)
        return real

    # -- overridable in tests -----------------------------------------------------------------------

    def _write_file(self, tmp: Path, data: bytes) -> None:
        with open(tmp, "wb") as out:
            self._write_chunk(out, data)
            out.flush()
            os.fsync(out.fileno())

    def _write_chunk(self, out: BinaryIO, chunk: bytes) -> None:
        out.write(chunk)


@contextlib.contextmanager
def _fs_errors(path: PurePosixPath) -> Iterator[None]:
    try:
        yield
    except OSError as exc:
        if exc.errno == errno.EROFS:
            raise ReadOnlyError(str(path), "read-only file system") from exc
        if exc.errno in (errno.EPERM, errno.EACCES):
            raise ReadOnlyError(str(path), f"not writable: {exc.strerror}") from exc
        raise FsError(str(path), exc.strerror or str(exc)) from exc


def _reason(real: Path, otherwise: str) -> str:
    try:
        if os.statvfs(real).f_flag & os.ST_RDONLY:
            return "read-only file system"
    except OSError:
        pass
    return otherwise


def _owner(real: Path) -> tuple[int, int, int] | None:
    try:
        st = real.stat()
    except FileNotFoundError:
        return None
    return st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)


def _apply_owner(tmp: Path, owner: tuple[int, int, int] | None, mode: int) -> None:
    if owner is None:
        os.chmod(tmp, mode)
        return
    uid, gid, old_mode = owner
    os.chmod(tmp, old_mode)
    with contextlib.suppress(PermissionError):
        os.chown(tmp, uid, gid)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
