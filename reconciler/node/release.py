"""The shim's release tarball, as runtime-class-manager's downloader expects it.

`containerd-shim-spin-v2-linux-<arch>.tar.gz` (arch in uname spelling, like containerd-shim-spin's
release assets: x86_64, aarch64) holds exactly one entry, the executable `containerd-shim-spin-v2`
at the top level (the downloader untars into /tmp and copies `/tmp/containerd-shim-<Shim name>`),
and `<tarball>.sha256` holds `<hex>  <tarball name>` (`sha256sum -c` reads it; a Shim's
`fetchStrategy.platforms[].sha256` takes the hex).

The bytes depend only on the executable and the epoch: a PAX tar with mode 0755, uid/gid 0, no
user or group names and mtime = `SOURCE_DATE_EPOCH` (else 0), gzip'd with a zero header time and
no file name (`oci.layers`). That is also a valid image layer: the node-installer image carries the
tarball itself as its shim layer (`as_layer`), so a registry that holds the image serves the
release tarball as the blob `sha256:<the .sha256 file's hex>`.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import platform
import tarfile
from dataclasses import dataclass
from pathlib import Path

from oci.descriptors import LAYER_TAR_GZIP, Descriptor
from oci.layers import Layer, LayerEntry, gzip_bytes, resolve_epoch, write_tar
from reconciler.node.errors import NodeBuildError

SHIM_NAME = "containerd-shim-spin-v2"
# Go and OCI names → the uname names release assets use; a Shim's platforms[] accepts both.
_UNAME = {"amd64": "x86_64", "x86_64": "x86_64", "arm64": "aarch64", "aarch64": "aarch64"}


def host_arch() -> str:
    """The build machine's architecture, uname-style."""
    machine = platform.machine().lower()
    return _UNAME.get(machine, machine)


def normalize_arch(arch: str | None) -> str:
    """uname spelling of `arch` (amd64 → x86_64); None → the host's. Raises ValueError when it is
    not the host's: PyInstaller freezes for the machine it runs on, it cannot cross-build."""
    host = host_arch()
    if arch is None:
        return host
    wanted = _UNAME.get(arch.lower())
    if wanted is None:
        raise ValueError(f"unknown architecture {arch!r} (amd64/x86_64 or arm64/aarch64)")
    if wanted != host:
        raise ValueError(f"cannot build for {wanted} on a {host} machine: PyInstaller freezes for the "
                         f"host; run `spindle node build` on a {wanted} machine")
    return wanted


def tarball_name(arch: str) -> str:
    return f"{SHIM_NAME}-linux-{arch}.tar.gz"


@dataclass(frozen=True)
class Release:
    tarball: Path
    sha256_file: Path
    sha256: str
    size: int


def tarball_bytes(executable: Path, *, epoch: int | None = None) -> bytes:
    """The gzip'd tar holding `executable` as `containerd-shim-spin-v2`, mode 0755."""
    raw = io.BytesIO()
    write_tar([LayerEntry.from_disk(SHIM_NAME, executable, mode=0o755)], raw, epoch=resolve_epoch(epoch))
    return gzip_bytes(raw.getvalue())


def write_release(executable: Path, out_dir: Path, arch: str, *, epoch: int | None = None) -> Release:
    """Write the tarball and its .sha256 into `out_dir`."""
    data = tarball_bytes(executable, epoch=epoch)
    digest = hashlib.sha256(data).hexdigest()
    out_dir.mkdir(parents=True, exist_ok=True)
    tarball = out_dir / tarball_name(arch)
    tarball.write_bytes(data)
    sha_file = tarball.with_name(tarball.name + ".sha256")
    sha_file.write_text(f"{digest}  {tarball.name}\n")
    return Release(tarball=tarball, sha256_file=sha_file, sha256=digest, size=len(data))


def as_layer(tarball: bytes, executable: Path | None = None) -> Layer:
    """The release tarball as an image layer (its bytes unchanged: the blob digest is the tarball's
    sha256). With `executable`, refuse a tarball that does not hold exactly that file."""
    raw = gzip.decompress(tarball)
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        members = tar.getmembers()
        if [m.name for m in members] != [SHIM_NAME] or not members[0].isfile():
            names = [m.name for m in members]
            raise NodeBuildError(f"the release tarball must hold only {SHIM_NAME}, not {names}")
        if executable is not None:
            inside = tar.extractfile(members[0])
            if inside is None or inside.read() != executable.read_bytes():
                raise NodeBuildError(f"the release tarball does not hold {executable}: rebuild them together")
    return Layer(blob=tarball, descriptor=Descriptor.for_bytes(LAYER_TAR_GZIP, tarball),
                 diff_id="sha256:" + hashlib.sha256(raw).hexdigest())
