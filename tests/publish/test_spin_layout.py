"""The Spin 3.x artifact layout, pinned: Spin's worked example byte for byte (spin-oci-layout.md §9),
table tests for the serializers, and goldens of both formats for a fixed project.

Goldens live in testdata/; `SPINDLE_UPDATE_GOLDENS=1 pytest tests/publish/test_spin_layout.py` rewrites
them (review the diff: they are the contract with Spin's layout)."""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import os
import tarfile
from pathlib import Path

import pytest
from publishlib import write_project

from oci.descriptors import sha256_digest
from oci.lockedapp import (
    ContentPath,
    ContentRef,
    LockedApp,
    LockedComponent,
    LockedTrigger,
    parse,
    ryu_float,
    serde_json,
)
from oci.spinlayout import (
    ARCHIVE_MEDIATYPE,
    DATA_MEDIATYPE,
    SPIN_APPLICATION_MEDIA_TYPE,
    WASM_LAYER_MEDIA_TYPE,
    ComponentContent,
    archive_layer,
    assemble,
    config_blob,
    content_ref,
    olpc_cjson,
    rfc3339,
    spin_annotations,
    unpack_archive,
)
from reconciler.publish.publisher import Target, load_project
from reconciler.publish.publisher import assemble as assemble_project
from reconciler.publish.rootfs import rootfs_image

TESTDATA = Path(__file__).parent / "testdata"
EPOCH = 1777636800  # 2026-05-01T12:00:00Z


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


# --- Spin's worked example (spin-oci-layout.md §9) ------------------------------------------------------


def _hello_app() -> LockedApp:
    return LockedApp(
        triggers=(LockedTrigger("hello-http-trigger", "http", {"route": "/...", "component": "hello"}),),
        components=(LockedComponent("hello", ContentRef()),),
        metadata={
            "name": "hello-app",
            "version": "0.1.0",
            "authors": ["Jane Doe <jane@example.com>"],
            "triggers": {},
            "trigger": {"type": "http"},
        },
    )


def test_worked_example_locked_app_config_and_manifest() -> None:
    wasm = b"\0asm\x0d\0\x01\0" + bytes(range(256))  # a component's header, more than 128 bytes
    page = b"a" * 200
    image = assemble(
        _hello_app(), {"hello": ComponentContent(wasm, {"static/a.txt": page})}, created_epoch=EPOCH
    )
    w, a = _digest(wasm), _digest(page)
    expected_locked = (
        '{"spin_lock_version":0,"metadata":{"authors":["Jane Doe <jane@example.com>"],"name":"hello-app",'
        '"trigger":{"type":"http"},"triggers":{},"version":"0.1.0"},"triggers":[{"id":"hello-http-trigger",'
        '"trigger_type":"http","trigger_config":{"component":"hello","route":"/..."}}],"components":[{"id":'
        f'"hello","source":{{"content_type":"application/wasm","digest":"{w}"}},"files":[{{"digest":"{a}",'
        '"path":"static/a.txt"}]}]}'
    )
    assert image.locked_app.decode() == expected_locked
    locked_digest = _digest(image.locked_app)
    config = image.image.config
    assert (
        config
        == (
            '{"architecture":"wasm","os":"wasip1","config":{"Labels":{"com.fermyon.spin.lockedAppDigest":'
            f'"{locked_digest}"}}}},"rootfs":{{"type":"layers","diff_ids":[]}}}}'
        ).encode()
    )
    assert len(config) == 209
    manifest = json.loads(image.image.manifest)
    assert list(manifest) == ["annotations", "config", "layers", "schemaVersion"]  # canonical, no mediaType
    assert manifest["annotations"] == {
        "org.opencontainers.image.authors": "Jane Doe <jane@example.com>",
        "org.opencontainers.image.created": "2026-05-01T12:00:00+00:00",
        "org.opencontainers.image.title": "hello-app",
        "org.opencontainers.image.version": "0.1.0",
    }
    assert manifest["config"] == {
        "digest": _digest(config),
        "mediaType": "application/vnd.oci.image.config.v1+json",
        "size": 209,
    }
    assert manifest["layers"] == [
        {"digest": w, "mediaType": WASM_LAYER_MEDIA_TYPE, "size": len(wasm)},
        {"digest": a, "mediaType": DATA_MEDIATYPE, "size": 200},
        {"digest": locked_digest, "mediaType": SPIN_APPLICATION_MEDIA_TYPE, "size": len(image.locked_app)},
    ]
    assert image.image.manifest == olpc_cjson(manifest)
    assert image.digest == _digest(image.image.manifest)


def test_small_files_are_inlined_and_not_pushed_small_wasm_is_both() -> None:
    wasm = b"\0asm\x01\0\0\0"  # 8 bytes: inlined and still a layer
    image = assemble(
        _hello_app(), {"hello": ComponentContent(wasm, {"static/a.txt": b"hello\n"})}, created_epoch=0
    )
    locked = json.loads(image.locked_app)
    assert locked["components"][0]["files"] == [
        {
            "inline": "aGVsbG8K",
            "digest": "sha256:5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03",
            "path": "static/a.txt",
        }
    ]
    assert locked["components"][0]["source"]["inline"] == base64.b64encode(wasm).decode().rstrip("=")
    media = [layer.descriptor.media_type for layer in image.image.layers]
    assert media == [WASM_LAYER_MEDIA_TYPE, SPIN_APPLICATION_MEDIA_TYPE]
    assert json.loads(image.image.manifest)["annotations"]["org.opencontainers.image.created"] == (
        "1970-01-01T00:00:00+00:00"
    )


def test_duplicate_layers_are_pushed_once_first_kept_and_order_is_per_component() -> None:
    wasm = b"\0asm" + b"w" * 200
    shared = b"s" * 300
    app = LockedApp(
        triggers=(),
        components=(LockedComponent("one", ContentRef()), LockedComponent("two", ContentRef())),
        metadata={"name": "dup"},
    )
    image = assemble(
        app,
        {
            "one": ComponentContent(wasm, {"b.txt": shared, "a.txt": b"a" * 200}),
            "two": ComponentContent(wasm, {"c.txt": shared}),
        },
        created_epoch=0,
    )
    layers = [(layer.descriptor.media_type, layer.blob) for layer in image.image.layers]
    assert layers[:3] == [
        (WASM_LAYER_MEDIA_TYPE, wasm),
        (DATA_MEDIATYPE, b"a" * 200),
        (DATA_MEDIATYPE, shared),
    ]
    assert len(layers) == 4 and layers[3][0] == SPIN_APPLICATION_MEDIA_TYPE
    paths = [f["path"] for f in json.loads(image.locked_app)["components"][0]["files"]]
    assert paths == ["a.txt", "b.txt"]  # byte order of the path


def test_archive_layers_beyond_the_layer_limit_and_when_asked() -> None:
    files = {f"f{i:03}.txt": f"{i:03}".encode() * 60 for i in range(499)}  # 499 data layers + wasm = 500
    wasm = b"\0asm" + b"x" * 200
    image = assemble(_hello_app(), {"hello": ComponentContent(wasm, files)}, created_epoch=EPOCH)
    assert image.archive
    media = [layer.descriptor.media_type for layer in image.image.layers]
    assert media == [WASM_LAYER_MEDIA_TYPE, ARCHIVE_MEDIATYPE, SPIN_APPLICATION_MEDIA_TYPE]
    archive = image.image.layers[1].blob
    by_digest = unpack_archive(archive, "test")
    listed = json.loads(image.locked_app)["components"][0]["files"]
    assert len(listed) == 499 and all(f["digest"] in by_digest for f in listed)
    assert gzip.decompress(archive)[:3] == b"./\0"  # the root entry first, named as tar-rs names it
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        assert tar.getmember("f000.txt").mtime == EPOCH and tar.getmember("f000.txt").uid == 0
    assert archive[:10] == bytes.fromhex("1f8b08000000000000ff")  # no name, mtime 0, XFL 0, OS 255 (flate2's)

    fewer = {k: v for k, v in list(files.items())[:497]}  # 498 layers: simple mode
    assert not assemble(_hello_app(), {"hello": ComponentContent(wasm, fewer)}, created_epoch=0).archive
    asked = assemble(
        _hello_app(), {"hello": ComponentContent(wasm, {"a": b"a" * 10})}, created_epoch=0, archive=True
    )
    assert [layer.descriptor.media_type for layer in asked.image.layers][1] == ARCHIVE_MEDIATYPE
    assert archive_layer({"a/b.txt": b"x"}, 5) == archive_layer({"a/b.txt": b"x"}, 5)  # reproducible


# --- serializers: table tests ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1.5, "1.5"),
        (0.0, "0.0"),
        (-0.0, "-0.0"),
        (100.0, "100.0"),
        (1e15, "1000000000000000.0"),
        (1e16, "1e16"),
        (1.25e17, "1.25e17"),
        (1e-5, "0.00001"),
        (1.5e-7, "1.5e-7"),
        (0.1, "0.1"),
        (-2.5e-10, "-2.5e-10"),
        (123456.789, "123456.789"),
        (float("nan"), "null"),
        (float("inf"), "null"),
    ],
)
def test_floats_are_laid_out_as_ryu_does(value: float, text: str) -> None:
    assert ryu_float(value) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ('a"b\\c', '"a\\"b\\\\c"'),
        ("tab\tnl\ncr\r\b\f", '"tab\\tnl\\ncr\\r\\b\\f"'),
        ("\x01\x1f", '"\\u0001\\u001f"'),
        ("/é✓", '"/é✓"'),
        ({"b": 1, "a": [True, None]}, '{"b":1,"a":[true,null]}'),  # order as given
    ],
)
def test_serde_json_escaping(value: object, text: str) -> None:
    assert serde_json(value) == text


@pytest.mark.parametrize(
    ("value", "raw"),
    [
        ({"b": "x", "a": 1}, b'{"a":1,"b":"x"}'),
        ({"k": "line\nbreak"}, b'{"k":"line\nbreak"}'),  # control characters stay raw
        ({"k": 'q"\\'}, b'{"k":"q\\"\\\\"}'),
        ({"k": "e\u0301"}, '{"k":"\u00e9"}'.encode()),  # NFC
    ],
)
def test_olpc_canonical_json(value: object, raw: bytes) -> None:
    assert olpc_cjson(value) == raw


@pytest.mark.parametrize(("size", "inline"), [(0, True), (1, True), (128, True), (129, False), (4096, False)])
def test_inline_threshold_is_128_bytes(size: int, inline: bool) -> None:
    ref = content_ref(b"z" * size)
    assert (ref.inline is not None) is inline
    assert ref.digest == sha256_digest(b"z" * size)


@pytest.mark.parametrize(
    ("epoch", "text"), [(0, "1970-01-01T00:00:00+00:00"), (EPOCH, "2026-05-01T12:00:00+00:00")]
)
def test_created_is_rfc3339_with_offset(epoch: int, text: str) -> None:
    assert rfc3339(epoch) == text


def test_annotations_explicit_wins_and_empty_ones_are_left_out() -> None:
    got = spin_annotations(
        {"name": "n", "authors": ["a", "b"]}, 0, {"org.opencontainers.image.title": "mine"}
    )
    assert got == {
        "org.opencontainers.image.title": "mine",
        "org.opencontainers.image.authors": "a, b",
        "org.opencontainers.image.created": "1970-01-01T00:00:00+00:00",
    }


def test_config_blob_is_209_bytes() -> None:
    assert len(config_blob("sha256:" + "0" * 64)) == 209


def test_lock_version_1_with_host_requirements_and_round_trip() -> None:
    app = LockedApp(
        triggers=(),
        components=(
            LockedComponent(
                "c",
                ContentRef(inline=b"ab", digest="sha256:" + "1" * 64),
                host_requirements={"local_service_chaining": "required"},
                files=(ContentPath(ContentRef(digest="sha256:" + "2" * 64), "x/y"),),
            ),
        ),
        must_understand=("component_host_requirements",),
    )
    raw = app.dumps()
    assert raw.startswith(b'{"spin_lock_version":1,"must_understand":["component_host_requirements"],')
    assert parse(raw).dumps() == raw


# --- goldens of a fixed project, both formats -----------------------------------------------------------


def _golden(name: str, data: bytes) -> None:
    path = TESTDATA / name
    if os.environ.get("SPINDLE_UPDATE_GOLDENS"):
        path.write_bytes(data)
    assert path.exists(), f"{path} missing: run with SPINDLE_UPDATE_GOLDENS=1"
    assert data == path.read_bytes(), f"{name} differs from the golden"


def _fixed_project(tmp_path: Path) -> Path:
    project = write_project(
        tmp_path, "golden", "hello from the golden", publish="registry.example.com/team/golden"
    )
    return project / "spin.toml"


def test_golden_spin_format(tmp_path: Path) -> None:
    loaded = load_project(_fixed_project(tmp_path), tmp_path)
    image = assemble_project(loaded, Target.parse("registry.example.com/team/golden"), EPOCH)
    layers = {layer.descriptor.digest: layer.blob for layer in image.layers}
    locked = next(b for d, b in layers.items() if d == image.layers[-1].descriptor.digest)
    _golden("spin-locked-app.json", locked)
    _golden("spin-config.json", image.config)
    _golden("spin-manifest.json", image.manifest)
    _golden("spin-digest.txt", image.digest.encode() + b"\n")


def test_golden_rootfs_format(tmp_path: Path) -> None:
    loaded = load_project(_fixed_project(tmp_path), tmp_path)
    image = rootfs_image(
        loaded.manifest,
        loaded.contents,
        loaded.rel,
        epoch=EPOCH,
        annotations={"a": "b"},
        architecture="amd64",
    )
    _golden("rootfs-config.json", image.config)
    _golden("rootfs-manifest.json", image.manifest)
    paths = []
    for layer in image.layers:
        with tarfile.open(fileobj=io.BytesIO(layer.blob)) as tar:
            paths.append([m.name for m in tar.getmembers()])
    assert paths == [
        ["golden.wasm"],
        ["static", "static/page.html", "static/small.txt"],
        ["spin.toml"],
    ]
