"""The frozen containerd-shim-spin-v2 on its own: it runs with an empty environment from outside the
checkout (`-v`, and a start → ttrpc → delete round trip without containerd), its launcher unpacks
the bundle once per build (concurrent starts included) and refuses a damaged file, and the bundle
holds wasmtime's native library but none of the reconciler's dependencies. The containerd cases
run against it in tests/shim_containerd/test_shim_ctr.py (the `frozen` runtime)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from reconciler.node import freeze

pytestmark = pytest.mark.slow

CHECKOUT = Path(__file__).resolve().parents[2]
TASK = "containerd.task.v2.Task"


def _run(argv: list[str], cwd: Path, env: dict[str, str] | None = None,
         timeout: float = 60) -> subprocess.CompletedProcess[bytes]:
    """`env -i [VAR=value ...] argv` from `cwd`: no PATH, no HOME, no PYTHONPATH."""
    assignments = [f"{k}={v}" for k, v in (env or {}).items()]
    return subprocess.run(["env", "-i", *assignments, *argv], cwd=cwd, capture_output=True, timeout=timeout,
                          check=False)


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    assert not tmp_path.resolve().is_relative_to(CHECKOUT)
    return tmp_path


@pytest.fixture
def fresh_copy(shim_exe: Path, tmp_path: Path) -> Path:
    """A copy of the frozen shim in its own directory, so its bundle is not unpacked yet."""
    directory = tmp_path / "bin"
    directory.mkdir()
    return Path(shutil.copy2(shim_exe, directory / shim_exe.name))


def test_version_with_an_empty_environment_outside_the_checkout(fresh_copy: Path, outside: Path) -> None:
    _offset, _size, unpacked, digest, name = freeze.read_trailer(fresh_copy)
    assert name == "containerd-shim-spin-v2"
    proc = _run([str(fresh_copy), "-v"], outside)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.decode().startswith("containerd-shim-spin-v2 (spindle):\n  Version: ")
    assert "Version: unknown" not in proc.stdout.decode()  # the distribution's metadata is bundled
    assert proc.stderr == b""  # `start` output is parsed by containerd: the launcher says nothing
    bundle = fresh_copy.parent / ".spindle-bundles" / f"{name}-{digest[:16]}"
    assert (bundle / ".complete").read_text() == digest
    assert (bundle / "_internal/wasmtime/linux-x86_64/_libwasmtime.so").is_file()
    assert [p.name for p in bundle.parent.iterdir()] == [bundle.name]  # no temp dirs left
    size = sum(p.stat().st_size for p in bundle.rglob("*") if p.is_file() and not p.is_symlink())
    assert 0.9 * unpacked < size < unpacked  # the archive adds only headers and paths
    again = _run([str(fresh_copy), "-v"], outside)
    assert again.stdout == proc.stdout


def test_start_ttrpc_delete_round_trip_without_containerd(shim_exe: Path, outside: Path) -> None:
    """`start` binds the socket and spawns the daemon, which answers State and Shutdown over ttrpc;
    `delete` prints a DeleteResponse. No containerd: the publish binary is never needed."""
    from shim.containerd import ttrpc
    from shim.containerd.proto import shim_pb2

    sockets = Path(tempfile.mkdtemp(prefix="snr-", dir="/tmp"))  # unix socket paths stay short
    bundle = outside / "bundle"
    bundle.mkdir()
    (bundle / "config.json").write_text(json.dumps({"ociVersion": "1.0.2", "process": {"args": ["/"]},
                                                    "root": {"path": "rootfs"}}))
    env = {"SPINDLE_SHIM_SOCKET_DIR": str(sockets), "SPINDLE_SHIM_CACHE_DIR": str(outside / "cache")}
    flags = ["-namespace", "spindle-frozen", "-address", str(outside / "containerd.sock"),
             "-publish-binary", "/nonexistent/containerd", "-id", "frozen1"]
    started = _run([str(shim_exe), *flags, "start"], bundle, env)
    assert started.returncode == 0, started.stderr
    address = started.stdout.decode()
    assert address.startswith(f"unix://{sockets}/") and started.stderr == b""
    assert (bundle / "address").read_text() == address
    daemon = None
    try:
        deadline = time.monotonic() + 30
        while not (bundle / "shim.pid").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        daemon = int((bundle / "shim.pid").read_text())
        exe = os.readlink(f"/proc/{daemon}/exe")
        assert ".spindle-bundles/containerd-shim-spin-v2-" in exe  # the unpacked bundle runs, not a temp copy
        with ttrpc.Client.connect(address, timeout=10) as client:
            meta = {"containerd-namespace": "spindle-frozen"}
            with pytest.raises(ttrpc.TtrpcError, match="task frozen1: not found"):  # no Create yet
                client.call(TASK, "State", shim_pb2.StateRequest(id="frozen1").SerializeToString(),
                            timeout=10, metadata=meta)
            client.call(TASK, "Shutdown", shim_pb2.ShutdownRequest(id="frozen1").SerializeToString(),
                        timeout=10, metadata=meta)
        deadline = time.monotonic() + 15
        while Path(f"/proc/{daemon}").exists() and time.monotonic() < deadline:
            _reap(daemon)
            time.sleep(0.05)
        assert not Path(f"/proc/{daemon}").exists(), "Shutdown without tasks ends the daemon"
        daemon = None
    finally:
        if daemon is not None:
            os.kill(daemon, 9)
        shutil.rmtree(sockets, ignore_errors=True)
    deleted = _run([str(shim_exe), *flags, "-bundle", str(bundle), "delete"], outside, env)
    assert deleted.returncode == 0, deleted.stderr
    assert shim_pb2.DeleteResponse.FromString(deleted.stdout).exit_status == 137


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def test_concurrent_first_starts_unpack_one_bundle(fresh_copy: Path, outside: Path) -> None:
    base = outside / "bundles"
    with ThreadPoolExecutor(4) as pool:
        procs = list(pool.map(lambda _i: _run([str(fresh_copy), "-v"], outside,
                                               {"SPINDLE_BUNDLE_DIR": str(base)}), range(4)))
    assert all(p.returncode == 0 for p in procs), [p.stderr for p in procs]
    assert len({p.stdout for p in procs}) == 1
    digest = freeze.read_trailer(fresh_copy)[3]
    assert [p.name for p in base.iterdir()] == [f"containerd-shim-spin-v2-{digest[:16]}"]
    assert not (fresh_copy.parent / ".spindle-bundles").exists()  # SPINDLE_BUNDLE_DIR was used


def test_a_bundle_directory_without_its_marker_is_replaced(fresh_copy: Path, outside: Path) -> None:
    assert _run([str(fresh_copy), "-v"], outside).returncode == 0
    (bundle,) = (fresh_copy.parent / ".spindle-bundles").iterdir()
    (bundle / ".complete").unlink()
    (bundle / "containerd-shim-spin-v2").write_bytes(b"half-written")
    proc = _run([str(fresh_copy), "-v"], outside)
    assert proc.returncode == 0, proc.stderr
    assert (bundle / ".complete").is_file() and (bundle / "containerd-shim-spin-v2").stat().st_size > 1000
    assert [p.name for p in bundle.parent.iterdir()] == [bundle.name]


def test_a_read_only_directory_falls_back_to_the_home_cache(shim_exe: Path, outside: Path) -> None:
    """A binary on a read-only filesystem unpacks into $HOME/.cache/spindle/bundles instead."""
    if shutil.which("unshare") is None:
        pytest.skip("unshare (util-linux) is not installed")
    ro, home = outside / "ro", outside / "home"
    ro.mkdir()
    home.mkdir()
    script = ('mount -t tmpfs -o size=64m tmpfs "$1" && cp "$2" "$1/" && mount -o remount,ro "$1" && '
              'env -i HOME="$3" "$1/containerd-shim-spin-v2" -v')
    proc = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh",
                           str(ro), str(shim_exe), str(home)], capture_output=True, timeout=60, check=False)
    if proc.returncode != 0 and b"mount" in proc.stderr and b"containerd-shim" not in proc.stdout:
        pytest.skip(f"cannot mount a read-only tmpfs here: {proc.stderr.decode().strip()}")
    assert proc.returncode == 0, proc.stderr
    assert b"containerd-shim-spin-v2 (spindle)" in proc.stdout
    assert len(list((home / ".cache/spindle/bundles").iterdir())) == 1


def test_a_damaged_executable_fails_with_a_message_and_leaves_nothing(fresh_copy: Path,
                                                                     outside: Path) -> None:
    data = bytearray(fresh_copy.read_bytes())
    offset, size, *_ = freeze.read_trailer(fresh_copy)
    data[offset + size // 2] ^= 0xFF  # a flipped byte in the middle of the bundle
    fresh_copy.write_bytes(bytes(data))
    proc = _run([str(fresh_copy), "-v"], outside)
    assert proc.returncode == 127
    assert b"cannot unpack the bundle of" in proc.stderr and b"malformed bundle" in proc.stderr
    assert not list((fresh_copy.parent / ".spindle-bundles").iterdir())

    fresh_copy.write_bytes(bytes(data[:-10]))  # a truncated download
    proc = _run([str(fresh_copy), "-v"], outside)
    assert proc.returncode == 127 and b"cannot read the bundle of" in proc.stderr


def test_the_bundle_holds_what_the_shim_imports_and_not_the_reconciler(shim_exe: Path,
                                                                      tmp_path: Path) -> None:
    bundle = freeze.unpack(shim_exe, tmp_path / "bundle")
    internal = bundle / "_internal"
    assert (internal / "wasmtime/linux-x86_64/_libwasmtime.so").is_file()
    assert (internal / "libpython3.11.so.1.0").is_file()
    names = {p.name.split("-")[0].split(".")[0] for p in internal.iterdir()}
    left_out = {"numpy", "yaml", "kubernetes", "rich", "jsonschema", "cryptography", "click", "reconciler"}
    assert left_out.isdisjoint(names)
    from PyInstaller.archive.readers import CArchiveReader

    archive = CArchiveReader(str(bundle / "containerd-shim-spin-v2"))
    modules = set(archive.open_embedded_archive("PYZ.pyz").toc)
    assert {"shim.containerd.cli", "shim.containerd.workload", "shim.worker", "wasmtime",
            "google.protobuf"} <= modules
    assert not {m.split(".")[0] for m in modules} & left_out
    assert shim_exe.stat().st_size < 30_000_000, "the frozen shim stays small (about 19 MB)"
