"""Spin apps as container images for the containerd tests: `/spin.toml` and its wasm and files in
tar layers (the form containerd 1.6 can pull and unpack), built reproducibly by `oci` and written
as OCI layout tars for `ctr images import`.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from pathlib import Path

import wasmtime

from oci.layers import LayerEntry
from oci.layout import ImageConfig, build_image, write_layout_tar

GUESTS = Path(__file__).parent.parent / "shim" / "guests"

WAT_APP = """\
spin_manifest_version = 2
[application]
name = "wat-app"
[[trigger.http]]
route = "/..."
component = "wat"
[component.wat]
source = "handler.wasm"
"""

# A WAGI module that fills 200 MiB of linear memory, then answers "filled".
HUNGRY_WAT = r"""
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "Content-Type: text/plain\n\nfilled\n")
  (func (export "_start")
    (if (i32.eq (memory.grow (i32.const 3200)) (i32.const -1)) (then unreachable))
    (memory.fill (i32.const 65536) (i32.const 1) (i32.const 209715200))
    (i32.store (i32.const 40) (i32.const 0))
    (i32.store (i32.const 44) (i32.const 33))
    (drop (call $fd_write (i32.const 1) (i32.const 40) (i32.const 1) (i32.const 48)))))
"""

HUNGRY_APP = """\
spin_manifest_version = 2
[application]
name = "hungry"
[[trigger.http]]
route = "/..."
component = "hungry"
executor = { type = "wagi" }
[component.hungry]
source = "hungry.wasm"
"""


def spin_image_tar(
    out: Path, reference: str, manifest: str | None, files: Mapping[str, bytes | str] | None = None
) -> Path:
    """An image whose root holds `spin.toml` (unless `manifest` is None) and `files`."""
    entries = []
    if manifest is not None:
        entries.append(LayerEntry.file("spin.toml", textwrap.dedent(manifest).encode()))
    for path, data in (files or {}).items():
        entries.append(LayerEntry.file(path, data.encode() if isinstance(data, str) else data))
    # spin-operator's pods run with command ["/"]; images carry the same so `ctr run` needs no args
    image = build_image([entries], ImageConfig(cmd=["/"]))
    write_layout_tar(image, out, reference)
    return out


def wat_app_tar(out: Path, reference: str) -> Path:
    return spin_image_tar(out, reference, WAT_APP, {"handler.wasm": (GUESTS / "handler.wasm").read_bytes()})


def hungry_app_tar(out: Path, reference: str) -> Path:
    return spin_image_tar(out, reference, HUNGRY_APP, {"hungry.wasm": wasmtime.wat2wasm(HUNGRY_WAT)})
