"""Reproducible image building and OCI layouts: byte-identical output, verified read-back, and a real
`ctr images import` + `ctr run` against a private containerd 1.6 (slow)."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import tarfile
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from oci.descriptors import (
    ANNOTATION_CONTAINERD_NAME,
    ANNOTATION_REF_NAME,
    CONFIG_V1,
    LAYER_TAR_GZIP,
    MANIFEST_V1,
    host_architecture,
)
from oci.errors import DigestMismatch, LayoutError
from oci.layers import LayerEntry, build_layer, entries_from_directory
from oci.layout import (
    ImageConfig,
    Layout,
    build_image,
    read_layout,
    tar_layout_dir,
    write_layout,
    write_layout_tar,
)


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _entries() -> list[LayerEntry]:
    # deliberately unsorted, with implicit parents
    return [
        LayerEntry.file("srv/app/spin.toml", 'spin_manifest_version = 2\n[application]\nname = "x"\n'),
        LayerEntry.file("bin/tool", b"#!/bin/sh\necho hi\n", mode=0o755),
        LayerEntry.file("/srv/app/app.wasm", b"\x00asm\x01\x00\x00\x00"),
        LayerEntry.symlink("srv/current", "app"),
        LayerEntry.directory("var/empty", mode=0o700),
    ]


def _config() -> ImageConfig:
    return ImageConfig(
        cmd=["/bin/tool"],
        entrypoint=["/bin/sh", "-c"],
        env=["PATH=/bin"],
        labels={"b": "2", "a": "1"},
        working_dir="/srv/app",
    )


def _tar_bytes() -> tuple[bytes, str]:
    image = build_image([_entries()], _config(), annotations={"org.opencontainers.image.title": "x"})
    out = io.BytesIO()
    write_layout_tar(image, out, "app:1")
    return out.getvalue(), image.digest


def _layer_members(blob: bytes) -> list[tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(blob))) as tar:
        return tar.getmembers()


def test_same_inputs_give_identical_bytes_and_digest() -> None:
    first, digest1 = _tar_bytes()
    second, digest2 = _tar_bytes()
    assert first == second
    assert digest1 == digest2


def test_wall_clock_and_disk_metadata_do_not_matter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = tmp_path / "src"
    (src / "static").mkdir(parents=True)
    (src / "static" / "index.html").write_text("<h1>hi</h1>\n")
    (src / "run.sh").write_text("#!/bin/sh\n")
    os.chmod(src / "run.sh", 0o750)
    os.chmod(src / "static" / "index.html", 0o600)

    def build() -> tuple[str, bytes]:
        image = build_image([entries_from_directory(src, prefix="app")], _config())
        out = io.BytesIO()
        write_layout_tar(image, out, "example.com/team/app:1")
        return image.digest, out.getvalue()

    digest1, tar1 = build()
    # other mtimes, other permission bits that normalize the same, another wall clock
    for path in (src / "run.sh", src / "static" / "index.html", src / "static", src):
        os.utime(path, (1_234_567_890, 1_234_567_890))
    os.chmod(src / "run.sh", 0o700)
    os.chmod(src / "static" / "index.html", 0o644)
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() + 86_400 * 400)
    digest2, tar2 = build()
    assert (digest1, tar1) == (digest2, tar2)

    image = build_image([entries_from_directory(src, prefix="app")], _config())
    modes = {m.name: (m.mode, m.type) for m in _layer_members(image.layers[0].blob)}
    assert modes == {
        "app": (0o755, tarfile.DIRTYPE),
        "app/run.sh": (0o755, tarfile.REGTYPE),
        "app/static": (0o755, tarfile.DIRTYPE),
        "app/static/index.html": (0o644, tarfile.REGTYPE),
    }


def test_source_date_epoch_is_honored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    at_zero = build_layer(_entries())
    assert {m.mtime for m in _layer_members(at_zero.blob)} == {0}

    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    from_env = build_layer(_entries())
    assert {m.mtime for m in _layer_members(from_env.blob)} == {1_700_000_000}
    assert from_env.diff_id != at_zero.diff_id
    assert build_layer(_entries()).blob == from_env.blob

    explicit = build_layer(_entries(), epoch=42)  # an explicit epoch wins over the environment
    assert {m.mtime for m in _layer_members(explicit.blob)} == {42}

    image = build_image([_entries()])
    out = io.BytesIO()
    write_layout_tar(image, out, "app:1")
    with tarfile.open(fileobj=io.BytesIO(out.getvalue())) as tar:
        assert {m.mtime for m in tar.getmembers()} == {1_700_000_000}

    monkeypatch.setenv("SOURCE_DATE_EPOCH", "yesterday")
    with pytest.raises(LayoutError, match="SOURCE_DATE_EPOCH"):
        build_layer(_entries())


def test_layer_listing_order_owners_modes_and_format() -> None:
    layer = build_layer(_entries())
    members = _layer_members(layer.blob)
    assert [(m.name, m.type, oct(m.mode)) for m in members] == [
        ("bin", tarfile.DIRTYPE, "0o755"),
        ("bin/tool", tarfile.REGTYPE, "0o755"),
        ("srv", tarfile.DIRTYPE, "0o755"),
        ("srv/app", tarfile.DIRTYPE, "0o755"),
        ("srv/app/app.wasm", tarfile.REGTYPE, "0o644"),
        ("srv/app/spin.toml", tarfile.REGTYPE, "0o644"),
        ("srv/current", tarfile.SYMTYPE, "0o777"),
        ("var", tarfile.DIRTYPE, "0o755"),
        ("var/empty", tarfile.DIRTYPE, "0o700"),
    ]
    for m in members:
        assert (m.uid, m.gid, m.uname, m.gname) == (0, 0, "", "")
    assert next(m for m in members if m.name == "srv/current").linkname == "app"
    raw = gzip.decompress(layer.blob)
    assert raw[257:265] == b"ustar\x0000"  # POSIX (ustar/PAX) headers, not GNU
    assert layer.diff_id == _sha(raw)
    # gzip header: no FNAME flag, mtime 0, XFL 0 (the default level 6)
    assert layer.blob[3] == 0 and layer.blob[4:8] == b"\0\0\0\0" and layer.blob[8] == 0


def test_bad_entries_are_rejected() -> None:
    with pytest.raises(LayoutError, match="twice"):
        build_layer([LayerEntry.file("a", "1"), LayerEntry.file("/a", "2")])
    with pytest.raises(LayoutError, match=r"'\.\.'"):
        build_layer([LayerEntry.file("a/../../etc/passwd", "x")])
    with pytest.raises(LayoutError, match="parent"):
        build_layer([LayerEntry.file("a", "1"), LayerEntry.file("a/b", "2")])


def test_every_digest_in_the_tar_matches_its_blob() -> None:
    data, digest = _tar_bytes()
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        names = tar.getnames()
        files = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}  # type: ignore[union-attr]
    assert names == sorted(names)
    assert json.loads(files["oci-layout"]) == {"imageLayoutVersion": "1.0.0"}
    for name, blob in files.items():
        if name.startswith("blobs/sha256/"):
            assert _sha(blob) == "sha256:" + name.rsplit("/", 1)[1]

    def blob(descriptor: dict[str, object]) -> bytes:
        content = files["blobs/sha256/" + str(descriptor["digest"]).split(":")[1]]
        assert len(content) == descriptor["size"]
        assert _sha(content) == descriptor["digest"]
        return content

    index = json.loads(files["index.json"])
    (entry,) = index["manifests"]
    assert entry["annotations"] == {
        ANNOTATION_CONTAINERD_NAME: "docker.io/library/app:1",
        ANNOTATION_REF_NAME: "1",
    }
    assert entry["mediaType"] == MANIFEST_V1 and entry["digest"] == digest
    assert entry["platform"] == {"architecture": host_architecture(), "os": "linux"}
    manifest_bytes = blob(entry)
    manifest = json.loads(manifest_bytes)
    assert manifest_bytes == json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
    assert manifest["annotations"] == {"org.opencontainers.image.title": "x"}
    assert manifest["config"]["mediaType"] == CONFIG_V1
    config = json.loads(blob(manifest["config"]))
    assert config["architecture"] == host_architecture() and config["os"] == "linux"
    assert "created" not in config
    assert config["config"] == {
        "Cmd": ["/bin/tool"],
        "Entrypoint": ["/bin/sh", "-c"],
        "Env": ["PATH=/bin"],
        "Labels": {"a": "1", "b": "2"},
        "WorkingDir": "/srv/app",
    }
    diff_ids = []
    for layer in manifest["layers"]:
        assert layer["mediaType"] == LAYER_TAR_GZIP
        diff_ids.append(_sha(gzip.decompress(blob(layer))))
    assert config["rootfs"] == {"type": "layers", "diff_ids": diff_ids}


def test_created_only_when_given() -> None:
    plain = build_image([_entries()])
    dated = build_image([_entries()], ImageConfig(created="2024-01-01T00:00:00Z", architecture="arm64"))
    assert "created" not in json.loads(plain.config)
    assert json.loads(dated.config)["created"] == "2024-01-01T00:00:00Z"
    assert dated.manifest_descriptor.platform is not None
    assert dated.manifest_descriptor.platform.architecture == "arm64"


def test_read_back_directory_and_tar(tmp_path: Path) -> None:
    image = build_image([_entries(), [LayerEntry.file("extra.txt", "second layer")]], _config())
    other = build_image([[LayerEntry.file("other", "x")]])
    write_layout(image, tmp_path / "dir", "example.com/app:1")
    write_layout(other, tmp_path / "dir", "example.com/app:2")
    write_layout_tar(image, tmp_path / "img.tar", "example.com/app:1")

    for path, ref in ((tmp_path / "dir", "example.com/app:1"), (tmp_path / "img.tar", None)):
        read = read_layout(path, ref)
        assert read.name == "example.com/app:1"
        assert read.root.descriptor.digest == image.digest
        assert read.root.config == image.config_descriptor
        assert read.root.layers == tuple(layer.descriptor for layer in image.layers)
    assert read_layout(tmp_path / "dir", "example.com/app:2").root.descriptor.digest == other.digest
    with pytest.raises(LayoutError, match="2 images"):
        read_layout(tmp_path / "dir")
    with pytest.raises(LayoutError, match=r"no image named 'example\.com/app:3'"):
        read_layout(tmp_path / "dir", "example.com/app:3")

    # re-tagging replaces the entry with the same name, keeps the others
    write_layout(other, tmp_path / "dir", "example.com/app:1")
    with Layout(tmp_path / "dir") as layout:
        assert [e.digest for e in layout.entries()] == [other.digest, other.digest]

    # a pulled-style directory tars reproducibly
    first, second = io.BytesIO(), io.BytesIO()
    tar_layout_dir(tmp_path / "dir", first)
    tar_layout_dir(tmp_path / "dir", second)
    assert first.getvalue() == second.getvalue()


def _flip_last_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))


def test_read_back_detects_corruption(tmp_path: Path) -> None:
    image = build_image([_entries()], _config())
    layer_digest = image.layers[0].descriptor.digest
    config_digest = image.config_descriptor.digest

    def fresh(name: str) -> Path:
        write_layout(image, tmp_path / name, "app:1")
        return tmp_path / name

    layout = fresh("flip")
    _flip_last_byte(layout / "blobs/sha256" / layer_digest.split(":")[1])
    with pytest.raises(DigestMismatch, match=f"blob {layer_digest} from .*flip.*: content hashes to sha256:"):
        read_layout(layout)

    layout = fresh("truncated")
    config_path = layout / "blobs/sha256" / config_digest.split(":")[1]
    config_path.write_bytes(config_path.read_bytes()[:-3])
    with pytest.raises(DigestMismatch, match=f"blob {config_digest} .*size is"):
        read_layout(layout)

    layout = fresh("missing")
    (layout / "blobs/sha256" / layer_digest.split(":")[1]).unlink()
    with pytest.raises(LayoutError, match="missing from the image layout"):
        read_layout(layout)

    # the same in a tar: corrupt the layer blob member in place
    tar_path = tmp_path / "img.tar"
    write_layout_tar(image, tar_path, "app:1")
    raw = bytearray(tar_path.read_bytes())
    with tarfile.open(tar_path) as tar:
        member = tar.getmember("blobs/sha256/" + layer_digest.split(":")[1])
        raw[member.offset_data + 20] ^= 0xFF
    tar_path.write_bytes(bytes(raw))
    with pytest.raises(DigestMismatch, match=layer_digest):
        read_layout(tar_path)


# --- a real containerd 1.6 --------------------------------------------------------------------------------


@dataclass
class Containerd:
    root: Path
    address: str
    namespace: str

    def ctr(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["ctr", "-a", self.address, "-n", self.namespace, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


def _unmount_under(root: Path) -> None:
    with open("/proc/self/mountinfo") as handle:
        points = [line.split()[4] for line in handle]
    for point in sorted((p for p in points if p.startswith(str(root))), key=len, reverse=True):
        subprocess.run(["umount", "-l", point], check=False, capture_output=True)


@pytest.fixture(scope="module")
def containerd() -> Iterator[Containerd]:
    if os.geteuid() != 0:
        pytest.skip("containerd needs root")
    for tool in ("containerd", "ctr", "runc"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (apt-get install containerd)")
    root = Path(tempfile.mkdtemp(prefix="ocictd-", dir="/tmp"))  # short: unix socket paths are limited
    for sub in ("root", "state", "run", "opt", "fifo"):
        (root / sub).mkdir()
    config = root / "config.toml"
    config.write_text(
        "version = 2\n"
        f'root = "{root}/root"\n'
        f'state = "{root}/state"\n'
        'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
        f'[grpc]\n  address = "{root}/run/c.sock"\n'
        f'[ttrpc]\n  address = "{root}/run/c.sock.ttrpc"\n'
        f'[plugins."io.containerd.internal.v1.opt"]\n  path = "{root}/opt"\n'
    )
    # runc-v2 shims put state under /run/containerd whatever the config says: remove what we add there
    run_dirs = [
        Path("/run/containerd/runc/oci-test"),
        Path("/run/containerd/runc"),
        Path("/run/containerd/s"),
    ]
    run_dirs.append(Path("/run/containerd"))
    made_by_us = [d for d in run_dirs if not d.exists()]
    log = open(root / "containerd.log", "wb")  # noqa: SIM115 - closed in the finally below
    proc = subprocess.Popen(
        ["containerd", "--config", str(config)], stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 15
        while not (root / "run" / "c.sock").exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail("containerd did not start:\n" + (root / "containerd.log").read_text()[-3000:])
            time.sleep(0.05)
        yield Containerd(root=root, address=str(root / "run" / "c.sock"), namespace="oci-test")
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        log.close()
        _unmount_under(root)
        shutil.rmtree(root, ignore_errors=True)
        for directory in made_by_us:
            with contextlib.suppress(OSError):
                directory.rmdir()  # only when empty


@pytest.mark.slow
def test_ctr_imports_and_runs_the_image(containerd: Containerd, tmp_path: Path) -> None:
    busybox = Path("/bin/busybox")
    if not busybox.is_file():
        pytest.skip("Debian busybox-static is not installed")
    name = f"docker.io/library/oci-busybox-{uuid.uuid4().hex[:8]}:1"
    message = "hello from a reproducible spindle image"
    image = build_image(
        [
            [
                LayerEntry.from_disk("bin/busybox", busybox, mode=0o755),
                LayerEntry.file("etc/msg", message + "\n"),
            ]
        ],
        ImageConfig(cmd=["/bin/busybox", "echo", message], env=["PATH=/bin"], working_dir="/"),
    )
    tar_path = tmp_path / "image.tar"
    write_layout_tar(image, tar_path, name)

    imported = containerd.ctr("images", "import", str(tar_path))
    assert imported.returncode == 0, imported.stderr
    listing = containerd.ctr("images", "ls")
    assert listing.returncode == 0, listing.stderr
    assert any(line.split()[:1] == [name] and image.digest in line for line in listing.stdout.splitlines()), (
        listing.stdout
    )
    content = containerd.ctr("content", "ls")
    assert image.layers[0].descriptor.digest in content.stdout
    assert image.config_descriptor.digest in content.stdout

    container_id = f"oci-{uuid.uuid4().hex[:8]}"
    try:
        run = containerd.ctr("run", "--rm", "--fifo-dir", str(containerd.root / "fifo"), name, container_id)
        assert run.returncode == 0, run.stderr
        assert run.stdout.strip() == message
        cat = containerd.ctr(
            "run",
            "--rm",
            "--fifo-dir",
            str(containerd.root / "fifo"),
            name,
            container_id,
            "/bin/busybox",
            "cat",
            "/etc/msg",
        )
        assert (cat.returncode, cat.stdout) == (0, message + "\n"), cat.stderr
    finally:
        with contextlib.suppress(subprocess.SubprocessError):
            containerd.ctr("task", "kill", "-s", "SIGKILL", container_id, timeout=10)
            containerd.ctr("task", "rm", "-f", container_id, timeout=10)
            containerd.ctr("containers", "rm", container_id, timeout=10)
        containerd.ctr("images", "rm", name)
