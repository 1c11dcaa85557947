"""Build reproducible OCI images and write/read them as OCI image layouts (a directory or a tar of one).

    build_image(layers, config)        -> Image           (all in memory; no clock, no host metadata)
    write_layout(image, dir, ref)      -> Descriptor      (adds/replaces the entry for `ref` in index.json)
    write_layout_tar(image, out, ref)  -> Descriptor      (the tar `ctr images import` takes)
    tar_layout_dir(dir, out)                              (a reproducible tar of an existing layout dir)
    Layout(path).image(ref)            -> LayoutImage     (index -> manifest -> config/layers, all verified)

Every JSON document is canonical (see `oci.descriptors.canonical_json`), the config carries no
`created` unless one is given, and layers are built by `oci.layers`, so equal inputs give equal bytes
and equal digests. Each index entry carries `io.containerd.image.name` (the full normalized name,
`docker.io/library/app:1`) and `org.opencontainers.image.ref.name` (the tag): containerd 1.6's
`ctr images import` silently imports nothing from an index entry without the former.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import tarfile
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO

from oci.descriptors import (
    ANNOTATION_CONTAINERD_NAME,
    ANNOTATION_REF_NAME,
    CONFIG_V1,
    INDEX_TYPES,
    INDEX_V1,
    MANIFEST_TYPES,
    MANIFEST_V1,
    Descriptor,
    Platform,
    Reader,
    canonical_json,
    check_digest,
    host_architecture,
    verify_bytes,
    verify_stream,
)
from oci.errors import InvalidReference, LayoutError
from oci.layers import FILE_MODE, Layer, LayerEntry, build_layer, resolve_epoch
from oci.reference import Reference

LAYOUT_VERSION = "1.0.0"
MAX_DOCUMENT_SIZE = 8 << 20  # manifests, indexes and configs are read into memory; refuse bigger ones
_COPY_CHUNK = 1 << 20


@dataclass(frozen=True)
class ImageConfig:
    """The runtime settings and platform written into the image config blob."""

    cmd: Sequence[str] | None = None
    entrypoint: Sequence[str] | None = None
    env: Sequence[str] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    working_dir: str | None = None
    user: str | None = None
    architecture: str | None = None  # None: the host's, as Go names it (amd64, arm64)
    os: str = "linux"
    created: str | None = None  # RFC 3339; left out unless given, so the digest does not move

    @property
    def platform(self) -> Platform:
        return Platform(architecture=self.architecture or host_architecture(), os=self.os)

    def to_json(self, diff_ids: Sequence[str]) -> dict[str, Any]:
        runtime: dict[str, Any] = {}
        if self.cmd is not None:
            runtime["Cmd"] = list(self.cmd)
        if self.entrypoint is not None:
            runtime["Entrypoint"] = list(self.entrypoint)
        if self.env:
            runtime["Env"] = list(self.env)
        if self.labels:
            runtime["Labels"] = dict(self.labels)
        if self.working_dir:
            runtime["WorkingDir"] = self.working_dir
        if self.user:
            runtime["User"] = self.user
        out: dict[str, Any] = {
            "architecture": self.platform.architecture,
            "os": self.os,
            "config": runtime,
            "rootfs": {"type": "layers", "diff_ids": list(diff_ids)},
        }
        if self.created is not None:
            out["created"] = self.created
        return out


@dataclass(frozen=True)
class Image:
    """A built image held in memory: config, layers and the manifest that ties them together."""

    config: bytes
    config_descriptor: Descriptor
    layers: tuple[Layer, ...]
    manifest: bytes
    manifest_descriptor: Descriptor  # carries the platform, for index entries

    @property
    def digest(self) -> str:
        """The manifest digest: what `name@digest` pins."""
        return self.manifest_descriptor.digest

    def blobs(self) -> list[tuple[Descriptor, bytes]]:
        """Config and layer blobs, then the manifest itself."""
        out = [(self.config_descriptor, self.config)]
        out += [(layer.descriptor, layer.blob) for layer in self.layers]
        out.append((self.manifest_descriptor, self.manifest))
        return out


def build_image(
    layers: Sequence[Iterable[LayerEntry] | Layer],
    config: ImageConfig | None = None,
    *,
    annotations: Mapping[str, str] | None = None,
    epoch: int | None = None,
) -> Image:
    """Build an image from layers (each a list of entries, or an already built `Layer`), bottom first.

    `epoch` (else `$SOURCE_DATE_EPOCH`, else 0) is the mtime of every tar entry; `annotations` go on
    the manifest.
    """
    config = config or ImageConfig()
    built = tuple(item if isinstance(item, Layer) else build_layer(item, epoch=epoch) for item in layers)
    config_bytes = canonical_json(config.to_json([layer.diff_id for layer in built]))
    config_descriptor = Descriptor.for_bytes(CONFIG_V1, config_bytes)
    manifest: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": MANIFEST_V1,
        "config": config_descriptor.to_json(),
        "layers": [layer.descriptor.to_json() for layer in built],
    }
    if annotations:
        manifest["annotations"] = dict(annotations)
    manifest_bytes = canonical_json(manifest)
    descriptor = Descriptor.for_bytes(MANIFEST_V1, manifest_bytes)
    descriptor = Descriptor(descriptor.media_type, descriptor.digest, descriptor.size, {}, config.platform)
    return Image(config_bytes, config_descriptor, built, manifest_bytes, descriptor)


def _parse_reference(reference: str | Reference) -> Reference:
    return reference if isinstance(reference, Reference) else Reference.parse(reference)


def index_entry(descriptor: Descriptor, reference: str | Reference) -> Descriptor:
    """`descriptor` annotated with the names containerd and OCI tools look for."""
    ref = _parse_reference(reference)
    annotations = {ANNOTATION_CONTAINERD_NAME: str(ref)}
    if ref.tag:
        annotations[ANNOTATION_REF_NAME] = ref.tag
    return Descriptor(
        descriptor.media_type, descriptor.digest, descriptor.size, annotations, descriptor.platform
    )


def index_bytes(entries: Iterable[Descriptor]) -> bytes:
    return canonical_json(
        {"schemaVersion": 2, "mediaType": INDEX_V1, "manifests": [entry.to_json() for entry in entries]}
    )


def _oci_layout_bytes() -> bytes:
    return canonical_json({"imageLayoutVersion": LAYOUT_VERSION})


def _blob_name(digest: str) -> str:
    algorithm, hexpart = digest.split(":", 1)
    return f"blobs/{algorithm}/{hexpart}"


# --- writing -------------------------------------------------------------------------------------------


class LayoutDir:
    """A writable OCI image layout directory (created if missing). Blobs are written atomically."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        try:
            (self.path / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
            marker = self.path / "oci-layout"
            if not marker.exists():
                _atomic_write(marker, _oci_layout_bytes())
        except OSError as exc:
            raise LayoutError(str(self.path), f"cannot create image layout: {exc}") from exc

    def blob_path(self, digest: str) -> Path:
        return self.path / _blob_name(check_digest(digest, str(self.path)))

    def has_blob(self, descriptor: Descriptor) -> bool:
        path = self.blob_path(descriptor.digest)
        return path.is_file() and path.stat().st_size == descriptor.size

    def write_blob(self, descriptor: Descriptor, data: bytes) -> None:
        """Store `data` as `descriptor`'s blob after checking it matches."""
        verify_bytes(data, descriptor.digest, descriptor.size, "the data given for the layout")
        if not self.has_blob(descriptor):
            self._write(descriptor, lambda handle: handle.write(data))

    def write_blob_stream(self, descriptor: Descriptor, stream: Reader, source: str) -> int:
        """Copy `stream` into the layout in chunks, verifying size and digest; nothing is kept on mismatch."""

        def fill(handle: BinaryIO) -> None:
            verify_stream(_Tee(stream, handle), descriptor.digest, descriptor.size, source)

        self._write(descriptor, fill)
        return descriptor.size

    def _write(self, descriptor: Descriptor, fill: Callable[[BinaryIO], object]) -> None:
        target = self.blob_path(descriptor.digest)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as handle:
                fill(handle)
            os.chmod(tmp, FILE_MODE)
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def entries(self) -> list[Descriptor]:
        path = self.path / "index.json"
        if not path.exists():
            return []
        return _parse_index(path.read_bytes(), str(path))

    def set_entry(self, descriptor: Descriptor, reference: str | Reference) -> Descriptor:
        """Point `reference` at `descriptor` in index.json, replacing an entry with the same name."""
        entry = index_entry(descriptor, reference)
        name = entry.annotations[ANNOTATION_CONTAINERD_NAME]
        kept = [e for e in self.entries() if e.annotations.get(ANNOTATION_CONTAINERD_NAME) != name]
        _atomic_write(self.path / "index.json", index_bytes([*kept, entry]))
        return entry


class _Tee:
    """A reader that writes everything it reads to `sink` (hash and copy in one pass)."""

    def __init__(self, stream: Reader, sink: BinaryIO) -> None:
        self.stream, self.sink = stream, sink

    def read(self, size: int = -1, /) -> bytes:
        chunk = self.stream.read(size)
        if chunk:
            self.sink.write(chunk)
        return chunk


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_layout(image: Image, directory: Path, reference: str | Reference) -> Descriptor:
    """Write `image` into the layout at `directory` (created or added to) under `reference`.

    Returns the index entry written. An entry with the same full name is replaced; others stay.
    """
    layout = LayoutDir(directory)
    for descriptor, data in image.blobs():
        layout.write_blob(descriptor, data)
    return layout.set_entry(image.manifest_descriptor, reference)


def _tar_member(name: str, size: int, mtime: int, directory: bool = False) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mtime = mtime
    if directory:
        info.type, info.mode = tarfile.DIRTYPE, 0o755
    else:
        info.size, info.mode = size, FILE_MODE
    return info


def _write_tar(files: Mapping[str, bytes | Path], out: Path | BinaryIO, epoch: int | None) -> None:
    mtime = resolve_epoch(epoch)
    dirs = sorted({"/".join(name.split("/")[:i]) for name in files for i in range(1, name.count("/") + 1)})
    members: list[tuple[str, bytes | Path | None]] = [(d, None) for d in dirs]
    members += list(files.items())
    members.sort(key=lambda item: item[0].encode("utf-8"))
    with contextlib.ExitStack() as stack:
        handle: BinaryIO = stack.enter_context(open(out, "wb")) if isinstance(out, Path) else out
        tar = stack.enter_context(tarfile.open(fileobj=handle, mode="w", format=tarfile.PAX_FORMAT))
        for name, content in members:
            if content is None:
                tar.addfile(_tar_member(name, 0, mtime, directory=True))
            elif isinstance(content, Path):
                with open(content, "rb") as blob:
                    tar.addfile(_tar_member(name, os.fstat(blob.fileno()).st_size, mtime), blob)
            else:
                tar.addfile(_tar_member(name, len(content), mtime), io.BytesIO(content))


def write_layout_tar(
    image: Image, out: Path | BinaryIO, reference: str | Reference, *, epoch: int | None = None
) -> Descriptor:
    """Write a one-image layout as a reproducible tar (what `ctr images import` takes).

    Returns the index entry. Member mtimes follow `epoch` / `$SOURCE_DATE_EPOCH` / 0 like the layers.
    """
    entry = index_entry(image.manifest_descriptor, reference)
    files: dict[str, bytes | Path] = {"oci-layout": _oci_layout_bytes(), "index.json": index_bytes([entry])}
    for descriptor, data in image.blobs():
        files[_blob_name(descriptor.digest)] = data
    _write_tar(files, out, epoch)
    return entry


def tar_layout_dir(directory: Path, out: Path | BinaryIO, *, epoch: int | None = None) -> None:
    """A reproducible tar of an existing layout directory (e.g. one `pull` wrote), for `ctr images import`."""
    directory = Path(directory)
    if not (directory / "oci-layout").is_file() or not (directory / "index.json").is_file():
        raise LayoutError(str(directory), "not an OCI image layout (no oci-layout or index.json)")
    files: dict[str, bytes | Path] = {}
    for path in sorted(directory.rglob("*")):
        if path.is_file() and not path.name.startswith(".tmp-"):
            files[path.relative_to(directory).as_posix()] = path
    _write_tar(files, out, epoch)


# --- reading -------------------------------------------------------------------------------------------


def _parse_json(data: bytes, where: str) -> dict[str, Any]:
    try:
        document = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LayoutError(where, f"not valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise LayoutError(where, "not a JSON object")
    return document


def _parse_index(data: bytes, where: str) -> list[Descriptor]:
    document = _parse_json(data, where)
    manifests = document.get("manifests")
    if not isinstance(manifests, list):
        raise LayoutError(where, "has no 'manifests' list")
    return [Descriptor.from_json(raw, where) for raw in manifests]


@dataclass(frozen=True)
class ManifestNode:
    """A manifest or index read from a layout or registry, with what it points to.

    For an image manifest `config` and `layers` are set and `children` is empty; for an index
    `children` holds the manifests it lists (bottom-up push order: children before the index).
    """

    descriptor: Descriptor
    raw: bytes
    config: Descriptor | None = None
    layers: tuple[Descriptor, ...] = ()
    children: tuple[ManifestNode, ...] = ()

    @property
    def is_index(self) -> bool:
        return self.config is None

    def blobs(self) -> list[Descriptor]:
        """Every config and layer blob below this node, each once, in a stable order."""
        seen: dict[str, Descriptor] = {}
        for node in self.walk():
            for blob in ([node.config] if node.config else []) + list(node.layers):
                seen.setdefault(blob.digest, blob)
        return list(seen.values())

    def walk(self) -> Iterator[ManifestNode]:
        """Children first, then this node: the order a registry accepts them in."""
        for child in self.children:
            yield from child.walk()
        yield self


def parse_manifest(
    descriptor: Descriptor, raw: bytes, where: str
) -> tuple[Descriptor, tuple[Descriptor, ...]]:
    """Config and layer descriptors of an image manifest (OCI or Docker schema 2)."""
    document = _parse_json(raw, where)
    if document.get("schemaVersion") != 2:
        raise LayoutError(where, f"manifest {descriptor.digest} is not schemaVersion 2")
    layers = document.get("layers")
    if not isinstance(layers, list):
        raise LayoutError(where, f"manifest {descriptor.digest} has no 'layers' list")
    config = Descriptor.from_json(document.get("config"), f"{where}: manifest {descriptor.digest} config")
    return config, tuple(Descriptor.from_json(raw_layer, where) for raw_layer in layers)


def select_platform(entries: Sequence[Descriptor], platform: Platform | None) -> Descriptor | None:
    """The entry for `platform` (default: linux on the host architecture), or None."""
    wanted = platform or Platform.host()
    for entry in entries:
        plat = entry.platform
        if (
            plat
            and (plat.os, plat.architecture) == (wanted.os, wanted.architecture)
            and wanted.variant in (None, plat.variant)
        ):
            return entry
    return None


@dataclass(frozen=True)
class LayoutImage:
    """One index entry of a layout, fully resolved and verified."""

    name: str | None  # io.containerd.image.name, else org.opencontainers.image.ref.name
    root: ManifestNode

    def manifest_for(self, platform: Platform | None = None) -> ManifestNode:
        """The image manifest: the root itself, or the index child for `platform` (default: host)."""
        if not self.root.is_index:
            return self.root
        chosen = select_platform([c.descriptor for c in self.root.children], platform)
        for child in self.root.children:
            if chosen is not None and child.descriptor.digest == chosen.digest and not child.is_index:
                return child
        raise LayoutError(
            str(self.name), f"no manifest for platform {(platform or Platform.host()).to_json()}"
        )


class Layout:
    """An OCI image layout to read: a directory, or a tar of one (read in place, not extracted).

    Use as a context manager (or call `close()`) when it is a tar.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._tar: tarfile.TarFile | None = None
        self._members: dict[str, tarfile.TarInfo] = {}
        if self.path.is_dir():
            pass
        elif self.path.is_file():
            try:
                self._tar = tarfile.open(self.path, mode="r:*")  # noqa: SIM115 - closed by close()
                for member in self._tar.getmembers():
                    if member.isfile():
                        self._members[member.name.removeprefix("./")] = member
            except (tarfile.TarError, OSError) as exc:
                raise LayoutError(str(self.path), f"cannot read image layout tar: {exc}") from exc
        else:
            raise LayoutError(str(self.path), "no such image layout (directory or tar)")
        layout_marker = self._read_small("oci-layout")
        version = _parse_json(layout_marker, f"{self.path}: oci-layout").get("imageLayoutVersion")
        if not isinstance(version, str) or not version.startswith("1."):
            raise LayoutError(f"{self.path}: oci-layout", f"unsupported imageLayoutVersion {version!r}")

    def close(self) -> None:
        if self._tar is not None:
            self._tar.close()
            self._tar = None

    def __enter__(self) -> Layout:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _where(self, name: str) -> str:
        return f"{self.path}: {name}"

    @contextlib.contextmanager
    def _open(self, name: str) -> Iterator[BinaryIO]:
        if self._tar is not None:
            member = self._members.get(name)
            stream = self._tar.extractfile(member) if member is not None else None
            if stream is None:
                raise LayoutError(self._where(name), "missing from the image layout")
            with stream:
                yield stream  # type: ignore[misc]
            return
        try:
            handle = open(self.path / name, "rb")  # noqa: SIM115 - closed by the with below
        except FileNotFoundError:
            raise LayoutError(self._where(name), "missing from the image layout") from None
        except OSError as exc:
            raise LayoutError(self._where(name), f"cannot read: {exc}") from exc
        with handle:
            yield handle

    def _read_small(self, name: str, limit: int = MAX_DOCUMENT_SIZE) -> bytes:
        with self._open(name) as handle:
            data = handle.read(limit + 1)
        if len(data) > limit:
            raise LayoutError(self._where(name), f"larger than {limit} bytes")
        return data

    def entries(self) -> list[Descriptor]:
        """The descriptors listed in index.json."""
        return _parse_index(self._read_small("index.json"), self._where("index.json"))

    def blob_size(self, descriptor: Descriptor) -> int:
        name = _blob_name(descriptor.digest)
        if self._tar is not None:
            member = self._members.get(name)
            if member is None:
                raise LayoutError(self._where(name), "missing from the image layout")
            return member.size
        try:
            return (self.path / name).stat().st_size
        except FileNotFoundError:
            raise LayoutError(self._where(name), "missing from the image layout") from None

    @contextlib.contextmanager
    def open_blob(self, descriptor: Descriptor) -> Iterator[BinaryIO]:
        """A binary stream of the blob (not re-verified; `image()` verified it)."""
        with self._open(_blob_name(descriptor.digest)) as handle:
            yield handle

    def read_blob(self, descriptor: Descriptor) -> bytes:
        """A small blob (manifest, index, config), verified against its descriptor."""
        if descriptor.size > MAX_DOCUMENT_SIZE:
            raise LayoutError(
                self._where(_blob_name(descriptor.digest)), f"larger than {MAX_DOCUMENT_SIZE} bytes"
            )
        data = self._read_small(_blob_name(descriptor.digest))
        verify_bytes(data, descriptor.digest, descriptor.size, self._where(_blob_name(descriptor.digest)))
        return data

    def verify_blob(self, descriptor: Descriptor) -> None:
        """Stream the blob through its hash; raises DigestMismatch or LayoutError."""
        name = _blob_name(descriptor.digest)
        with self._open(name) as handle:
            verify_stream(handle, descriptor.digest, descriptor.size, self._where(name))

    def _node(self, descriptor: Descriptor, verify_layers: bool, depth: int = 0) -> ManifestNode:
        if depth > 4:
            raise LayoutError(self._where(_blob_name(descriptor.digest)), "indexes nested too deeply")
        raw = self.read_blob(descriptor)
        where = self._where(_blob_name(descriptor.digest))
        media_type = _parse_json(raw, where).get("mediaType") or descriptor.media_type
        if media_type in INDEX_TYPES:
            children = tuple(
                self._node(child, verify_layers, depth + 1) for child in _parse_index(raw, where)
            )
            return ManifestNode(descriptor, raw, children=children)
        if media_type not in MANIFEST_TYPES:
            raise LayoutError(where, f"unsupported manifest media type {media_type!r}")
        config, layers = parse_manifest(descriptor, raw, where)
        self.read_blob(config)
        if verify_layers:
            for layer in layers:
                self.verify_blob(layer)
        return ManifestNode(descriptor, raw, config, layers)

    def image(self, reference: str | Reference | None = None, *, verify_layers: bool = True) -> LayoutImage:
        """Resolve the index entry for `reference` (the only entry when None) and verify its blobs.

        An entry matches when its `io.containerd.image.name` is the normalized reference, or its
        `org.opencontainers.image.ref.name` equals the text given or the reference's tag.
        """
        entries = self.entries()
        if not entries:
            raise LayoutError(self._where("index.json"), "lists no images")
        if reference is None:
            if len(entries) != 1:
                names = sorted(_entry_name(e) or e.digest for e in entries)
                raise LayoutError(
                    self._where("index.json"), f"lists {len(entries)} images, name one of {names}"
                )
            chosen = entries[0]
        else:
            chosen = self._match(entries, reference)
        return LayoutImage(name=_entry_name(chosen), root=self._node(chosen, verify_layers))

    def _match(self, entries: Sequence[Descriptor], reference: str | Reference) -> Descriptor:
        text = str(reference)
        parsed: Reference | None
        try:
            parsed = _parse_reference(reference)
        except InvalidReference:
            parsed = None
        for entry in entries:
            full = entry.annotations.get(ANNOTATION_CONTAINERD_NAME)
            ref_name = entry.annotations.get(ANNOTATION_REF_NAME)
            if parsed is not None and full is not None and full == str(parsed):
                return entry
            if ref_name is not None and ref_name == text:
                return entry
        if parsed is not None and parsed.tag:
            for entry in entries:
                if entry.annotations.get(ANNOTATION_CONTAINERD_NAME) is None and (
                    entry.annotations.get(ANNOTATION_REF_NAME) == parsed.tag
                ):
                    return entry
        names = sorted(_entry_name(e) or e.digest for e in entries)
        raise LayoutError(self._where("index.json"), f"has no image named {text!r} (it has {names})")


def _entry_name(entry: Descriptor) -> str | None:
    return entry.annotations.get(ANNOTATION_CONTAINERD_NAME) or entry.annotations.get(ANNOTATION_REF_NAME)


def read_layout(path: Path, reference: str | Reference | None = None) -> LayoutImage:
    """Read and verify one image of the layout at `path` (directory or tar). Blobs stay on disk."""
    with Layout(path) as layout:
        return layout.image(reference)
