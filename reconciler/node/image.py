"""The node-installer image, built without Docker: tar layers with a reproducible digest (`oci`).

    /usr/local/bin/spindle-node-installer    the frozen installer, the entrypoint
    /containerd-shim-spin-v2                 the frozen shim: this layer *is* the release tarball
    /assets/containerd-shim-spin-v2          a symlink to it (what a Job installs when no downloader
                                             init container fills /assets from a release tarball)
    /usr/bin/nsenter, /bin/sh                the installer's tools, from the build machine's Debian
                                             util-linux and dash packages: nsenter enters PID 1's
                                             namespaces to restart containerd (node_installer.restart),
                                             sh runs `--restart-command`
    /lib*/...                                the glibc files, libz (PyInstaller's bootloader links it)
                                             and libselinux/libpcre2 (nsenter) these programs link,
                                             copied from the build machine (Debian libc6, zlib1g,
                                             libselinux1, libpcre2-8-0); the bundles carry the rest
    /tmp                                     mode 1777

Layers, bottom first: the system files, the installer, the shim, so a rebuild that changes only the
shim re-pushes one layer. The shim layer's blob is byte for byte the release tarball
(`containerd-shim-spin-v2-linux-<arch>.tar.gz`), so the registry the image is pushed to also serves
the tarball, at `/v2/<repository>/blobs/sha256:<its sha256>`, kept alive by the image's manifest.
The libraries are found with `ldd` over every ELF file of both bundles, nsenter and sh; whatever a
bundle carries itself is left out. Equal executables and equal host
libraries give an equal digest; `SOURCE_DATE_EPOCH` (else 0) is every file's mtime.

Without a downloader the image is what containerd-shim-spin's legacy node-installer image is: a
shim in /assets and a program that installs it. With RCM's Job the downloader's emptyDir is mounted
on /assets and the release tarball's shim is installed instead.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from oci.layers import LayerEntry
from oci.layout import Image, ImageConfig, build_image
from oci.reference import Reference
from reconciler.node import freeze, release
from reconciler.node.errors import ImageError, MissingTool

INSTALLER_PATH = "usr/local/bin/spindle-node-installer"
SHIM_PATH = "containerd-shim-spin-v2"  # where the release tarball (the shim layer) puts it
SHIM_ASSET = "assets/containerd-shim-spin-v2"  # a symlink to it
TOOLS = {"usr/bin/nsenter": "nsenter", "bin/sh": "sh"}  # image path → host command
DEFAULT_REPOSITORY = "spindle-node-installer"
_LDD_LINE = re.compile(r"^\s*(?:(\S+)\s+=>\s+)?(/\S+)\s+\(0x[0-9a-f]+\)\s*$")
_LDD_MISSING = re.compile(r"^\s*(\S+)\s+=>\s+not found")
_ELF = b"\x7fELF"


@dataclass(frozen=True)
class NodeImage:
    image: Image
    libraries: tuple[str, ...]  # image paths of the host files copied in
    tarball_sha256: str  # the shim layer's digest: the release tarball's sha256

    def tarball_url(self, reference: Reference, *, plain_http: bool = False) -> str:
        """Where a registry holding this image serves the release tarball (a Shim's location)."""
        scheme = "http" if plain_http else "https"
        return f"{scheme}://{reference.api_host}/v2/{reference.repository}/blobs/sha256:{self.tarball_sha256}"


def _version() -> str:
    try:
        return metadata.version("spindle-gitops")
    except metadata.PackageNotFoundError:
        return "0.0.0"


def default_tag() -> str:
    return f"{DEFAULT_REPOSITORY}:{_version()}"


def _elf_files(root: Path) -> list[Path]:
    out = []
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink():
            with open(path, "rb") as handle:
                if handle.read(4) == _ELF:
                    out.append(path)
    return out


def _ldd(path: Path) -> list[tuple[str, Path | None]]:
    """(soname or loader path, host path; None when not found) of what `path` links, transitively."""
    proc = subprocess.run(["ldd", str(path)], capture_output=True, text=True, check=False)
    if proc.returncode != 0:  # a static binary or a data file with an ELF header
        return []
    out: list[tuple[str, Path | None]] = []
    for line in proc.stdout.splitlines():
        missing = _LDD_MISSING.match(line)
        if missing:
            out.append((missing.group(1), None))
            continue
        match = _LDD_LINE.match(line)
        if match:
            name, found = match.group(1), match.group(2)
            out.append((name or found, Path(found)))
    return out


def system_files(bundles: Iterable[Path], tools: Iterable[Path]) -> dict[str, Path]:
    """Image path → host file: every library the bundles' and tools' ELF files need that the
    bundles do not carry themselves, and the dynamic loader."""
    if shutil.which("ldd") is None:
        raise MissingTool("no `ldd` (Debian: libc-bin)")
    bundled: set[str] = set()
    elves: list[tuple[Path, bool]] = [(tool, False) for tool in tools]  # (file, may use the bundle's)
    for bundle in bundles:
        # the bundle's own executable (PyInstaller's bootloader) starts before anything points the
        # loader at _internal/: what it links (libz.so.1 too) must come from the system
        elves += [(elf, elf.parent != bundle) for elf in _elf_files(bundle)]
        bundled |= {p.name for p in bundle.rglob("*")}
    needed: dict[str, Path] = {}
    for elf, may_use_bundle in elves:
        for name, found in _ldd(elf):
            if may_use_bundle and not name.startswith("/") and name in bundled:
                continue  # the bundle carries it
            if found is None:
                raise ImageError(f"{elf.name} links {name}, which neither its bundle nor this machine has")
            needed[str(found).lstrip("/")] = found
    return needed


def _host_tool(command: str) -> Path:
    found = shutil.which(command)
    if found is None:
        package = {"nsenter": "util-linux", "sh": "dash"}.get(command, command)
        raise MissingTool(f"`{command}` is not on this machine (Debian: {package})")
    return Path(found).resolve()


def build_node_image(installer: Path, shim: Path, *, tarball: Path | None = None,
                     epoch: int | None = None) -> NodeImage:
    """The node-installer image from the two frozen executables and the shim's release tarball
    (made now, with the same epoch, when not given)."""
    tools = {path: _host_tool(command) for path, command in TOOLS.items()}
    with tempfile.TemporaryDirectory(prefix="spindle-node-image-") as tmp:
        bundles = [freeze.unpack(exe, Path(tmp) / exe.name) for exe in (installer, shim)]
        libraries = system_files(bundles, tools.values())
        # the launcher in front of the bundle needs the loader and libc too
        for _name, found in _ldd(installer):
            if found is not None:
                libraries.setdefault(str(found).lstrip("/"), found)
    system: list[LayerEntry] = [LayerEntry.directory("tmp", mode=0o1777),
                                LayerEntry.symlink(SHIM_ASSET, f"../{SHIM_PATH}")]
    system += [LayerEntry.from_disk(path, source, mode=0o755) for path, source in tools.items()]
    system += [LayerEntry.from_disk(path, source.resolve(), mode=0o755) for path, source in libraries.items()]
    shim_sha = hashlib.sha256(shim.read_bytes()).hexdigest()
    config = ImageConfig(
        entrypoint=[f"/{INSTALLER_PATH}"],
        env=["PATH=/usr/local/bin:/usr/bin:/bin"],
        labels={
            "org.opencontainers.image.title": "spindle-node-installer",
            "org.opencontainers.image.version": _version(),
            "dev.spindle.shim.sha256": shim_sha,
        },
    )
    tarball_bytes = tarball.read_bytes() if tarball else release.tarball_bytes(shim, epoch=epoch)
    shim_layer = release.as_layer(tarball_bytes, shim)
    image = build_image(
        [system, [LayerEntry.from_disk(INSTALLER_PATH, installer, mode=0o755)], shim_layer],
        config,
        epoch=epoch,
    )
    return NodeImage(image=image, libraries=tuple(sorted(libraries)),
                     tarball_sha256=shim_layer.descriptor.digest.removeprefix("sha256:"))
