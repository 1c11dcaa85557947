"""`--format rootfs`: a plain container image holding `/spin.toml` and what it references, as tar layers.

This is the form containerd 1.6 pulls and unpacks and the node runtime (`containerd-shim-spin-v2`) loads
from the container's root (spinkube.md §4.3: "ordinary container image layout"). Layers, bottom first:

1. one layer per distinct component Wasm, at its path relative to the spin.toml (a `{ url, digest }`
   source is placed at `.spindle/sources/<hex>.wasm` and the spin.toml's `source` rewritten to it);
2. one layer with every file the components' `files` select, at its path relative to the spin.toml;
3. `spin.toml` itself (as committed, unless a URL source had to be rewritten).

Layers are built by `oci.layers` (sorted entries, fixed owners and modes, mtime = the commit epoch, gzip
level 6), so an unchanged Wasm keeps its layer digest when only the manifest changes. The config carries
`Cmd ["/"]` (what spin-operator's pods run) and the host's architecture (unless given).
"""

from __future__ import annotations

from collections.abc import Mapping

import tomlkit

from oci.layers import LayerEntry
from oci.layout import Image, ImageConfig, build_image
from reconciler.publish.content import ComponentFiles
from reconciler.publish.errors import PublishError

SOURCES_DIR = ".spindle/sources"


def _image_path(path: str, where: str) -> str:
    if path.startswith("../") or path == ".." or path.startswith("/"):
        raise PublishError(
            where, f"{path!r} lies outside the project directory; a rootfs image cannot hold it"
        )
    return path


def rootfs_image(
    manifest: bytes,
    contents: Mapping[str, ComponentFiles],
    rel: str,
    *,
    epoch: int,
    annotations: Mapping[str, str],
    architecture: str | None = None,
) -> Image:
    """The rootfs image of a project whose spin.toml bytes are `manifest` (see the module docstring)."""
    wasm_layers: dict[str, list[LayerEntry]] = {}
    rewrites: dict[str, str] = {}
    files: dict[str, bytes] = {}
    for cid, content in contents.items():
        where = f"{rel}: component {cid!r}"
        if content.wasm_path is None:
            from oci.descriptors import sha256_digest

            path = f"{SOURCES_DIR}/{sha256_digest(content.wasm)[7:]}.wasm"
            rewrites[cid] = path
        else:
            path = _image_path(content.wasm_path, where)
        wasm_layers.setdefault(path, [LayerEntry.file(path, content.wasm)])
        for shipped in content.files.values():
            files[_image_path(shipped.source, where)] = shipped.data
    layers = [wasm_layers[path] for path in sorted(wasm_layers)]
    if files:
        layers.append([LayerEntry.file(path, data) for path, data in files.items()])
    layers.append([LayerEntry.file("spin.toml", _rewrite(manifest, rewrites, rel))])
    return build_image(
        layers, ImageConfig(cmd=["/"], architecture=architecture), annotations=annotations, epoch=epoch
    )


def _rewrite(manifest: bytes, rewrites: Mapping[str, str], rel: str) -> bytes:
    """The spin.toml with each URL-sourced component's `source` pointing at its file in the image."""
    if not rewrites:
        return manifest
    doc = tomlkit.parse(manifest.decode("utf-8"))
    components = doc.get("component") or {}
    for cid, path in rewrites.items():
        table = components.get(cid)
        if table is None:
            raise PublishError(
                f"{rel}: component {cid!r}",
                "an inline component with a URL source cannot go in a rootfs image",
            )
        table["source"] = path
    return tomlkit.dumps(doc).encode("utf-8")
