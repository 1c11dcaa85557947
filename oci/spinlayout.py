"""The OCI artifact `spin registry push` (Spin 3.x) makes, assembled in memory and reproducibly.

Matches spin `crates/oci/src/client.rs` (`push_locked_core`, `assemble_layers`, `push_file_layers`,
`push_archive_layer`, `content_ref_for_layer`, `all_annotations`) and `crates/oci/src/utils.rs` (`archive`)
of spinframework/spin v3.6.3 (commit 88d51cf1dafa23c4177f5fbf122b3beca46d1941; the stored client.rs at
021121605d7a09d65f9c4343c1e62b53034e9f21 has the same layout code), with the manifest serialized like the
fermyon/oci-distribution fork (rev 7b291a39f74d1a3c9499d934a56cae6580fc8e37) does through olpc-cjson 0.1.4.
Field by field (see /work/shared/reference/spin-oci-layout.md):

- layers, per component in locked-app order: its Wasm (`application/vnd.wasm.content.layer.v1+wasm`),
  then one `application/vnd.wasm.content.layer.v1+data` layer per file, except files of 128 bytes or less,
  which are only inlined in the locked app (Wasm that small is inlined *and* pushed); then duplicates
  (same bytes and media type) dropped, first kept; then the locked app
  (`application/vnd.fermyon.spin.application.v1+config`) last;
- archive mode (`archive=True`, Spin's `SPIN_OCI_ARCHIVE_LAYERS`, or automatically when the layers other
  than the locked app would be 500 or more): one `application/vnd.wasm.content.bundle.v1.tar+gzip` per
  component with files instead of its data layers; the locked app lists the same files and digests;
- the config blob `{"architecture":"wasm","os":"wasip1","config":{"Labels":{
  "com.fermyon.spin.lockedAppDigest":"<digest of the locked app layer>"}},"rootfs":{"type":"layers",
  "diff_ids":[]}}` (struct order, 209 bytes);
- the manifest without a `mediaType` key, PUT as `application/vnd.oci.image.manifest.v1+json`, with the
  annotations Spin infers (`org.opencontainers.image.authors` (", "-joined), `.title`, `.description`,
  `.version`, `.created`), in olpc canonical JSON (sorted keys, only `"` and `\\` escaped, NFC strings).

Where spindle differs from Spin on purpose, so that equal inputs give equal digests:
- `org.opencontainers.image.created` comes from the caller's epoch (the commit, `SOURCE_DATE_EPOCH`), never
  the clock; it is written as chrono's `to_rfc3339()` writes a whole second (`2026-05-01T12:00:00+00:00`);
- files are listed in byte order of their path (Spin's `WalkDir` order is whatever the OS returns);
- archive layers are reproducible tars (GNU format as tar-rs writes, root `./` first, sorted entries, mtime =
  the epoch, uid/gid 0, modes 0755/0644) gzipped at level 6 with header mtime 0 and OS 255; Spin's change on
  every push (push-time mtimes, the pusher's uid), so only their content and digests inside can match;
- Wasm bytes are pushed as they are (Spin 3.2+ runs `componentize_if_necessary` on core modules, which needs
  Spin's adapters; components pass through it unchanged).
"""

from __future__ import annotations

import datetime as dt
import gzip
import io
import json
import tarfile
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from oci.descriptors import CONFIG_V1, MANIFEST_V1, Descriptor, sha256_digest
from oci.errors import LayoutError
from oci.layers import GZIP_LEVEL, Layer
from oci.layout import Image
from oci.lockedapp import ContentPath, ContentRef, LockedApp

SPIN_APPLICATION_MEDIA_TYPE = "application/vnd.fermyon.spin.application.v1+config"
DATA_MEDIATYPE = "application/vnd.wasm.content.layer.v1+data"
ARCHIVE_MEDIATYPE = "application/vnd.wasm.content.bundle.v1.tar+gzip"
WASM_LAYER_MEDIA_TYPE = "application/vnd.wasm.content.layer.v1+wasm"
WASM_LAYER_MEDIA_TYPE_WKG = "application/wasm"
LOCKED_APP_DIGEST_LABEL = "com.fermyon.spin.lockedAppDigest"
INLINE_MAX_SIZE = 128  # DEFAULT_CONTENT_REF_INLINE_MAX_SIZE
MAX_LAYER_COUNT = 500

ANNOTATION_AUTHORS = "org.opencontainers.image.authors"
ANNOTATION_TITLE = "org.opencontainers.image.title"
ANNOTATION_DESCRIPTION = "org.opencontainers.image.description"
ANNOTATION_VERSION = "org.opencontainers.image.version"
ANNOTATION_CREATED = "org.opencontainers.image.created"


@dataclass(frozen=True)
class ComponentContent:
    """What one component ships: its Wasm bytes and its files, keyed by guest path (relative, `/`)."""

    wasm: bytes
    files: Mapping[str, bytes]


@dataclass(frozen=True)
class SpinImage:
    """An assembled Spin artifact. `image` is what `oci.registry.RegistryClient.push_image` takes."""

    image: Image
    locked_app: bytes
    archive: bool  # archive layers were used

    @property
    def digest(self) -> str:
        return self.image.digest


def content_ref(data: bytes) -> ContentRef:
    """Spin's `content_ref_for_layer`: the digest, plus the bytes inline when 128 bytes or fewer."""
    return ContentRef(inline=data if len(data) <= INLINE_MAX_SIZE else None, digest=sha256_digest(data))


def rfc3339(epoch: int) -> str:
    """chrono's `DateTime<Utc>::to_rfc3339()` for a whole second: `2026-05-01T12:00:00+00:00`."""
    moment = dt.datetime.fromtimestamp(epoch, dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S+00:00")


def spin_annotations(
    metadata: Mapping[str, Any], created_epoch: int, explicit: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Spin's `all_annotations` with every predefined key inferred; an explicit key always wins."""
    out = dict(explicit or {})
    authors = metadata.get("authors") or []
    inferred: list[tuple[str, Any]] = [
        (ANNOTATION_AUTHORS, ", ".join(authors) if authors else None),
        (ANNOTATION_TITLE, metadata.get("name")),
        (ANNOTATION_DESCRIPTION, metadata.get("description")),
        (ANNOTATION_VERSION, metadata.get("version")),
        (ANNOTATION_CREATED, rfc3339(created_epoch)),
    ]
    for key, value in inferred:
        if isinstance(value, str) and key not in out:
            out[key] = value
    return out


def config_blob(locked_digest: str) -> bytes:
    """The image config Spin writes (ConfigFile fields in struct order, compact)."""
    return (
        '{"architecture":"wasm","os":"wasip1","config":{"Labels":{"'
        + LOCKED_APP_DIGEST_LABEL
        + '":"'
        + locked_digest
        + '"}},"rootfs":{"type":"layers","diff_ids":[]}}'
    ).encode("ascii")


def _cjson_string(text: str) -> str:
    normalized = unicodedata.normalize("NFC", text)
    return '"' + normalized.replace("\\", "\\\\").replace('"', '\\"') + '"'


def olpc_cjson(value: Any) -> bytes:
    """olpc-cjson's CanonicalFormatter: no whitespace, keys sorted by their encoded bytes, only `"` and `\\`
    escaped (control characters raw), NFC strings; floats are refused."""
    return _cjson(value).encode("utf-8")


def _cjson(value: Any) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return _cjson_string(value)
    if isinstance(value, Mapping):
        items = sorted((_cjson_string(str(k)), v) for k, v in value.items())
        return "{" + ",".join(f"{k}:{_cjson(v)}" for k, v in items) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(_cjson(v) for v in value) + "]"
    raise LayoutError("manifest", f"canonical JSON cannot hold a {type(value).__name__}")


# --- archive layers -------------------------------------------------------------------------------------


def _tar_info(name: str, size: int, mtime: int, *, directory: bool) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mtime = mtime
    if directory:
        info.type, info.mode = tarfile.DIRTYPE, 0o755
    else:
        info.size, info.mode = size, 0o644
    return info


def archive_layer(files: Mapping[str, bytes], epoch: int) -> bytes:
    """A component's files as `tar.gz`, laid out like Spin's `utils::archive` (`./` first, directories
    before their children) but sorted and with fixed metadata (see the module docstring)."""
    dirs = sorted({"/".join(p.split("/")[:i]) for p in files for i in range(1, p.count("/") + 1)})
    entries: list[tuple[str, bytes | None]] = [(d, None) for d in dirs] + list(files.items())
    entries.sort(key=lambda item: item[0].encode("utf-8"))
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
        tar.addfile(_tar_info("./", 0, epoch, directory=True))
        for name, data in entries:
            if data is None:
                tar.addfile(_tar_info(name, 0, epoch, directory=True))
            else:
                tar.addfile(_tar_info(name, len(data), epoch, directory=False), io.BytesIO(data))
    out = io.BytesIO()
    with gzip.GzipFile(filename="", fileobj=out, mode="wb", compresslevel=GZIP_LEVEL, mtime=0) as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


# --- assembly ---------------------------------------------------------------------------------------------


def _layers_for(
    locked: LockedApp, contents: Mapping[str, ComponentContent], archive: bool, epoch: int
) -> tuple[LockedApp, list[tuple[str, bytes]]]:
    layers: list[tuple[str, bytes]] = []
    components = []
    for component in locked.components:
        content = contents.get(component.id)
        if content is None:
            raise LayoutError(f"component {component.id!r}", "no Wasm content was given for it")
        layers.append((WASM_LAYER_MEDIA_TYPE, content.wasm))
        files = []
        for path in sorted(content.files, key=lambda p: p.encode("utf-8")):
            data = content.files[path]
            ref = content_ref(data)
            files.append(ContentPath(ref, path))
            if not archive and ref.inline is None:
                layers.append((DATA_MEDIATYPE, data))
        if archive and content.files:
            layers.append((ARCHIVE_MEDIATYPE, archive_layer(content.files, epoch)))
        components.append(replace(component, source=content_ref(content.wasm), files=tuple(files)))
    unique: dict[tuple[str, str], tuple[str, bytes]] = {}
    for media_type, data in layers:
        unique.setdefault((sha256_digest(data), media_type), (media_type, data))
    metadata = {k: v for k, v in locked.metadata.items() if k != "origin"}
    return replace(locked, components=tuple(components), metadata=metadata), list(unique.values())


def assemble(
    locked: LockedApp,
    contents: Mapping[str, ComponentContent],
    *,
    created_epoch: int,
    archive: bool = False,
    annotations: Mapping[str, str] | None = None,
) -> SpinImage:
    """The Spin artifact of `locked` (whose component sources and files are filled in from `contents`)."""
    app, layers = _layers_for(locked, contents, archive, created_epoch)
    if not archive and len(layers) > MAX_LAYER_COUNT - 1:
        app, layers = _layers_for(locked, contents, True, created_epoch)
        archive = True
    locked_bytes = app.dumps()
    layers.append((SPIN_APPLICATION_MEDIA_TYPE, locked_bytes))
    built = tuple(
        Layer(blob=data, descriptor=Descriptor.for_bytes(media_type, data), diff_id="")
        for media_type, data in layers
    )
    config = config_blob(sha256_digest(locked_bytes))
    config_descriptor = Descriptor.for_bytes(CONFIG_V1, config)
    manifest = {
        "schemaVersion": 2,
        "config": _descriptor_json(config_descriptor),
        "layers": [_descriptor_json(layer.descriptor) for layer in built],
        "annotations": spin_annotations(app.metadata, created_epoch, annotations),
    }
    manifest_bytes = olpc_cjson(manifest)
    image = Image(
        config, config_descriptor, built, manifest_bytes, Descriptor.for_bytes(MANIFEST_V1, manifest_bytes)
    )
    return SpinImage(image, locked_bytes, archive)


def _descriptor_json(descriptor: Descriptor) -> dict[str, Any]:
    return {"mediaType": descriptor.media_type, "digest": descriptor.digest, "size": descriptor.size}


# --- reading a pulled artifact ----------------------------------------------------------------------------


def locked_app_layer(layers: Sequence[Descriptor]) -> Descriptor:
    """The locked-app layer of a Spin artifact's manifest (LayoutError when there is none)."""
    for layer in layers:
        if layer.media_type == SPIN_APPLICATION_MEDIA_TYPE:
            return layer
    raise LayoutError("manifest", f"no {SPIN_APPLICATION_MEDIA_TYPE} layer: not a Spin application artifact")


def unpack_archive(data: bytes, where: str) -> dict[str, bytes]:
    """The regular files of an archive layer, by their sha256 digest (what Spin's pull caches)."""
    out: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            for member in tar.getmembers():
                if not member.isfile():
                    continue
                handle = tar.extractfile(member)
                if handle is None:
                    continue
                content = handle.read()
                out[sha256_digest(content)] = content
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise LayoutError(where, f"archive layer is not a valid tar.gz: {exc}") from exc
    return out


def manifest_annotations(raw_manifest: bytes) -> dict[str, str]:
    """The annotations of a manifest (empty when it has none)."""
    document = json.loads(raw_manifest)
    found = document.get("annotations") if isinstance(document, dict) else None
    return dict(found) if isinstance(found, dict) else {}
