"""Mounting a task's root filesystem (the snapshot containerd passes in Create) at
`<bundle>/rootfs`, binding the spec's mounts into it inside the task's own mount namespace, and
unmounting. Option strings are split into mount(2) flags and filesystem data the way runc and
containerd's `mount.Mount` do.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from shim.containerd import linux
from shim.containerd.spec import SpecMount

# option → (flags to set, flags to clear); everything else is filesystem data
_FLAGS: dict[str, tuple[int, int]] = {
    "ro": (linux.MS_RDONLY, 0), "rw": (0, linux.MS_RDONLY),
    "nosuid": (linux.MS_NOSUID, 0), "suid": (0, linux.MS_NOSUID),
    "nodev": (linux.MS_NODEV, 0), "dev": (0, linux.MS_NODEV),
    "noexec": (linux.MS_NOEXEC, 0), "exec": (0, linux.MS_NOEXEC),
    "sync": (linux.MS_SYNCHRONOUS, 0), "async": (0, linux.MS_SYNCHRONOUS),
    "dirsync": (linux.MS_DIRSYNC, 0), "mand": (linux.MS_MANDLOCK, 0), "nomand": (0, linux.MS_MANDLOCK),
    "noatime": (linux.MS_NOATIME, 0), "atime": (0, linux.MS_NOATIME),
    "nodiratime": (linux.MS_NODIRATIME, 0), "diratime": (0, linux.MS_NODIRATIME),
    "relatime": (linux.MS_RELATIME, 0), "norelatime": (0, linux.MS_RELATIME),
    "strictatime": (linux.MS_STRICTATIME, 0), "nostrictatime": (0, linux.MS_STRICTATIME),
    "bind": (linux.MS_BIND, 0), "rbind": (linux.MS_BIND | linux.MS_REC, 0),
    "remount": (linux.MS_REMOUNT, 0), "defaults": (0, 0),
}
_PROPAGATION = {"private": linux.MS_PRIVATE, "rprivate": linux.MS_PRIVATE | linux.MS_REC,
                "shared": linux.MS_SHARED, "rshared": linux.MS_SHARED | linux.MS_REC,
                "slave": linux.MS_SLAVE, "rslave": linux.MS_SLAVE | linux.MS_REC,
                "unbindable": linux.MS_UNBINDABLE, "runbindable": linux.MS_UNBINDABLE | linux.MS_REC}

# Kernel filesystems runc sets up for a native Linux process; a wasm app never sees them.
SYSTEM_TYPES = frozenset({"proc", "sysfs", "devpts", "mqueue", "cgroup", "cgroup2", "tmpfs", "shm"})


@dataclass(frozen=True)
class MountOptions:
    flags: int
    data: str
    propagation: int


def parse_options(options: Iterable[str]) -> MountOptions:
    flags, propagation, data = 0, 0, []
    for opt in options:
        if opt in _FLAGS:
            on, off = _FLAGS[opt]
            flags = (flags | on) & ~off
        elif opt in _PROPAGATION:
            propagation |= _PROPAGATION[opt]
        else:
            data.append(opt)
    return MountOptions(flags, ",".join(data), propagation)


@dataclass(frozen=True)
class RootfsMount:
    """One entry of CreateTaskRequest.rootfs."""

    type: str
    source: str
    options: tuple[str, ...]


def mount_rootfs(mounts: list[RootfsMount], target: Path) -> bool:
    """Mount the snapshot at `target`; False when containerd sent none (the rootfs is already
    in place, as with `ctr run --rootfs`)."""
    if not mounts:
        return False
    target.mkdir(parents=True, exist_ok=True)
    done: list[Path] = []
    try:
        for m in mounts:
            opts = parse_options(m.options)
            fstype = None if opts.flags & linux.MS_BIND else m.type
            linux.mount(m.source, str(target), fstype, opts.flags, opts.data)
            done.append(target)
            if opts.flags & linux.MS_BIND and opts.flags & linux.MS_RDONLY:
                # a bind mount ignores MS_RDONLY until it is remounted
                linux.mount("", str(target), None, opts.flags | linux.MS_REMOUNT)
    except OSError:
        for t in reversed(done):
            with contextlib.suppress(OSError):
                linux.umount(str(t), linux.MNT_DETACH)
        raise
    return True


def unmount_all(target: Path) -> None:
    """Unmount `target` and everything below it (deepest first); no error when nothing is."""
    prefix = str(target)
    points = [p for p in linux.mounted_paths() if p == prefix or p.startswith(prefix + "/")]
    for p in sorted(points, key=len, reverse=True):
        for _ in range(16):  # stacked mounts on one point come off one at a time
            try:
                linux.umount(p)
            except OSError:
                try:
                    linux.umount(p, linux.MNT_DETACH)
                except OSError:
                    break


def bind_spec_mounts(mounts: Iterable[SpecMount], rootfs: Path) -> list[str]:
    """Inside the task's private mount namespace: bind each bind mount of the spec (a Secret's
    runtime config, a CA bundle, a volume) at its destination under the rootfs, read-only when
    asked. Kernel filesystems are skipped. Returns what was bound, for the log."""
    bound = []
    for m in mounts:
        opts = parse_options(m.options)
        if m.type in SYSTEM_TYPES or not (opts.flags & linux.MS_BIND or m.type == "bind"):
            continue
        source = Path(m.source)
        dest = rootfs / m.destination.lstrip("/")
        if dest.resolve() != rootfs and rootfs.resolve() not in dest.resolve().parents:
            raise OSError(f"mount destination {m.destination!r} leaves the root filesystem")
        if source.is_dir():
            dest.mkdir(parents=True, exist_ok=True)
        else:
            dest.parent.mkdir(parents=True, exist_ok=True)
            if not dest.exists():
                dest.touch()
        flags = linux.MS_BIND | (opts.flags & linux.MS_REC)
        linux.mount(str(source), str(dest), None, flags)
        if opts.flags & linux.MS_RDONLY:
            linux.mount("", str(dest), None, flags | linux.MS_REMOUNT | linux.MS_RDONLY)
        bound.append(f"{m.source} -> {m.destination}")
    return bound


def make_private(path: str = "/") -> None:
    """Stop mounts made in this namespace from propagating to the host's."""
    linux.mount("", path, None, linux.MS_REC | linux.MS_PRIVATE)
