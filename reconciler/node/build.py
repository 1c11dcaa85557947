"""`spindle node build`: both frozen programs and the shim's release tarball in one directory.

    DIR/containerd-shim-spin-v2                        the frozen shim (`bench/containerd.py --shim`)
    DIR/spindle-node-installer                         the frozen installer (the image's entrypoint)
    DIR/containerd-shim-spin-v2-linux-<arch>.tar.gz    the release tarball (the shim alone)
    DIR/containerd-shim-spin-v2-linux-<arch>.tar.gz.sha256

`spindle node image --from DIR` and `spindle node push --from DIR` reuse such a directory.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from oci.layers import resolve_epoch
from reconciler.node import freeze, release
from reconciler.node.errors import NodeBuildError


@dataclass(frozen=True)
class NodeBuild:
    directory: Path
    shim: Path
    installer: Path | None
    release: release.Release | None


def build(out: Path, *, arch: str | None = None, epoch: int | None = None, installer: bool = True,
          progress: freeze.Progress = lambda _m: None) -> NodeBuild:
    """Freeze the shim (and the installer) into `out` and write the release tarball next to them.

    The PyInstaller work directory is removed on success and kept (its path is in the error) on
    failure."""
    arch = release.normalize_arch(arch)
    epoch = resolve_epoch(epoch)
    toolchain = freeze.Toolchain()
    toolchain.check()
    work = Path(tempfile.mkdtemp(prefix="spindle-node-build-"))
    try:
        shim = freeze.freeze(freeze.SHIM, out / freeze.SHIM.name, work=work, epoch=epoch,
                             toolchain=toolchain, progress=progress)
        frozen_installer = None
        if installer:
            frozen_installer = freeze.freeze(freeze.INSTALLER, out / freeze.INSTALLER.name, work=work,
                                             epoch=epoch, toolchain=toolchain, progress=progress)
        progress(f"writing {release.tarball_name(arch)}")
        rel = release.write_release(shim.path, out, arch, epoch=epoch)
    except NodeBuildError as exc:
        raise type(exc)(f"{exc}\n(work directory kept: {work})") from None
    shutil.rmtree(work, ignore_errors=True)
    return NodeBuild(out, shim.path, frozen_installer.path if frozen_installer else None, rel)


def existing(directory: Path) -> NodeBuild:
    """A directory a previous `spindle node build` wrote; NodeBuildError names what is missing."""
    shim, installer = directory / freeze.SHIM.name, directory / freeze.INSTALLER.name
    tarball = directory / release.tarball_name(release.host_arch())
    for path in (shim, installer, tarball):
        if not path.is_file():
            raise NodeBuildError(f"{path} does not exist: run `spindle node build --out {directory}` first")
    for path in (shim, installer):
        freeze.read_trailer(path)
    data = tarball.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    rel = release.Release(tarball, tarball.with_name(tarball.name + ".sha256"), digest, len(data))
    return NodeBuild(directory, shim, installer, rel)
