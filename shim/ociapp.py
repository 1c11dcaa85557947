"""`spindle shim up oci://REG/REPO@sha256:…`: pull a Spin artifact into the artifact cache and lay it out.

    fetch_app("oci://127.0.0.1:5000/team/app@sha256:…", cache_dir) -> <cache>/apps/<hex>/spin.json

The manifest and every blob go through `oci.registry.RegistryClient.pull` into the cache's OCI layout
(`<cache>/oci`, content-addressed and shared by every app): each is streamed through its sha256 and dropped
on a mismatch (`oci.errors.DigestMismatch`). The app is then materialized once per manifest digest
(`<cache>/apps/<hex>`, see `shim.locked`), reading every blob it uses through its hash again, so a cache
file damaged later is caught too. Layers are read as Spin's own pull does (spin `crates/oci/src/client.rs`,
`pull`; v3.6.3): the `+config` layer is the locked app, `+wasm` and `application/wasm` Wasm, `+data` files,
`+tar+gzip` archives whose regular files are found by their sha256; files of 128 bytes or less come inline.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

from oci.descriptors import Descriptor, verify_bytes
from oci.errors import OciError
from oci.layout import LayoutDir, parse_manifest
from oci.lockedapp import LockedApp, parse
from oci.reference import Reference
from oci.registry import RegistryClient
from oci.spinlayout import ARCHIVE_MEDIATYPE, locked_app_layer, unpack_archive
from shim.errors import ShimError
from shim.locked import files_dir, wasm_name

SCHEME = "oci://"
MAX_BLOB = 1 << 30


class ArtifactError(ShimError):
    """The artifact could not be pulled, or is not a Spin application (names the reference)."""

    def __init__(self, reference: str, message: str) -> None:
        super().__init__(f"{reference}: {message}")
        self.reference = reference


def is_oci_target(text: str) -> bool:
    return text.startswith(SCHEME)


def _read_verified(layout: LayoutDir, descriptor: Descriptor, reference: str) -> bytes:
    path = layout.blob_path(descriptor.digest)
    if descriptor.size > MAX_BLOB:
        raise ArtifactError(reference, f"blob {descriptor.digest} is larger than {MAX_BLOB} bytes")
    data = path.read_bytes()
    verify_bytes(data, descriptor.digest, descriptor.size, f"the artifact cache ({path})")
    return data


def _materialize(
    locked: LockedApp, locked_bytes: bytes, blobs: dict[str, bytes], dest: Path, ref: str
) -> None:
    (dest / "wasm").mkdir(parents=True)
    (dest / "spin.json").write_bytes(locked_bytes)
    for component in locked.components:
        source = component.source
        if source.digest is None:
            raise ArtifactError(ref, f"component {component.id!r} has no source digest")
        wasm = source.inline if source.inline is not None else blobs.get(source.digest)
        if wasm is None:
            raise ArtifactError(
                ref, f"component {component.id!r}: its Wasm {source.digest} is not in the artifact"
            )
        verify_bytes(wasm, source.digest, None, f"component {component.id!r} of {ref}")
        (dest / wasm_name(source.digest)).write_bytes(wasm)
        root = dest / files_dir(component.id)
        for item in component.files:
            parts = Path(item.path).parts
            if not parts or Path(item.path).is_absolute() or ".." in parts:
                raise ArtifactError(ref, f"component {component.id!r}: unsafe file path {item.path!r}")
            digest = item.content.digest
            data = item.content.inline if item.content.inline is not None else blobs.get(digest or "")
            if data is None or digest is None:
                raise ArtifactError(
                    ref, f"component {component.id!r}: file {item.path!r} ({digest}) is not in it"
                )
            verify_bytes(data, digest, None, f"file {item.path!r} of component {component.id!r} of {ref}")
            target = root / item.path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)


def fetch_app(target: str, cache_dir: Path, client: RegistryClient | None = None) -> Path:
    """Pull `oci://REF` (by digest, or a tag resolved once) and return the materialized `spin.json`."""
    text = target.removeprefix(SCHEME)
    try:
        ref = Reference.parse(text)
    except OciError as exc:
        raise ArtifactError(target, str(exc)) from None
    layout_dir = cache_dir / "oci"
    own = client is None
    client = client or RegistryClient()
    try:
        pulled = client.pull(ref, layout_dir)
    except OciError as exc:
        raise ArtifactError(str(ref), str(exc)) from None
    finally:
        if own:
            client.close()
    apps = cache_dir / "apps"
    app_dir = apps / pulled.digest.split(":", 1)[1]
    if (app_dir / "spin.json").is_file():
        return app_dir / "spin.json"
    layout = LayoutDir(layout_dir)
    where = f"{ref} (manifest {pulled.digest})"
    try:
        manifest = layout.blob_path(pulled.digest).read_bytes()
        _, layers = parse_manifest(Descriptor("", pulled.digest, len(manifest)), manifest, where)
        locked_layer = locked_app_layer(layers)
        blobs: dict[str, bytes] = {}
        for layer in layers:
            data = _read_verified(layout, layer, str(ref))
            if layer.media_type == ARCHIVE_MEDIATYPE:
                blobs.update(unpack_archive(data, f"{where} layer {layer.digest}"))
            blobs.setdefault(layer.digest, data)
        locked_bytes = blobs[locked_layer.digest]
        locked = parse(locked_bytes, f"{where} locked app")
    except OciError as exc:
        raise ArtifactError(str(ref), str(exc)) from None
    apps.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=apps))
    try:
        try:
            _materialize(locked, locked_bytes, blobs, tmp / "app", str(ref))
        except OciError as exc:
            raise ArtifactError(str(ref), str(exc)) from None
        with contextlib.suppress(FileExistsError, OSError):
            os.replace(tmp / "app", app_dir)  # another process may have won: its copy is as good
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return app_dir / "spin.json"
