"""Freezing a spindle node program (the containerd shim, the node installer) into one executable.

Nodes have neither Python 3.11 nor wasmtime, and containerd wants one file at a path. The program is
frozen with PyInstaller as a *one-dir* bundle, and that bundle is appended, zlib-compressed, to a
small C launcher (`launcher.c`, built here with the host's C compiler and a static zlib). On every
start the launcher execs the bundle's own executable from `.spindle-bundles/<name>-<hash>/` next to
itself, unpacking it there first (once per build, atomically) when it is not there yet. See
`launcher.c` for the cache rules.

Why not PyInstaller's one-file mode (measured on the 2-core machine, Python 3.11.7, PyInstaller
6.22.3, wasmtime-py 50.0.1, medians):

- a one-file program unpacks itself (about 75 MB) into a temp dir on every start:
  `containerd-shim-spin-v2 -v` took 0.56 s, against 0.11 s for this launcher + one-dir bundle and
  0.10 s for the pip-installed shim, and containerd runs the binary for `start`, the daemon, each
  task's workload and `delete`;
- worse, it does not work with the shim's re-executions: a one-file child that runs
  `sys.executable` again reuses its parent's unpacked dir (PyInstaller >= 6.9), so the daemon that
  `start` spawns loses its files when `start` exits and dies (`ctr: ttrpc: closed`).

The launcher costs one exec per start (about a millisecond); the first start after an install
unpacks the bundle (0.4 s, once). Under containerd (`bench/containerd.py`) `ctr run` → first HTTP
200 took 448 ms frozen, 464 ms pip-installed. `--runtime-tmpdir` only moves the per-start unpacking.
Nuitka was not tried: it compiles every module, the standard library included, to C, and its
one-file mode unpacks too. `--strip` takes the debug symbols out of libpython and the extension
modules: 19 MB instead of 30 MB.

Reproducibility: PyInstaller runs with `SOURCE_DATE_EPOCH` and `PYTHONHASHSEED=0`, the bundle is
archived in path order with fixed modes and no times, and the launcher has no debug info, so two
builds of the same tree on the same machine give the same bytes (`tests/node_release` checks it).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import os
import shutil
import stat
import struct
import subprocess
import sys
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from reconciler.node.errors import FreezeError, MissingTool

PYINSTALLER_PIN = "pyinstaller==6.22.3"
LAUNCHER_SOURCE = Path(__file__).with_name("launcher.c")
TRAILER = struct.Struct("<16sQQQ64s64s")
MAGIC = b"SPINDLE-BUNDLE-1"
ARCHIVE_MAGIC = b"SPXA1\n"
_ENTRY = struct.Struct("<cIIQ")
# Pulled in by optional imports (protobuf → numpy → yaml ...) or present in the build environment;
# none of them is used by a node program.
_NEVER = (
    "numpy", "yaml", "tkinter", "kubernetes", "rich", "jsonschema", "git", "cryptography", "urllib3",
    "setuptools", "pkg_resources", "pytest", "_pytest", "IPython", "grpc", "grpc_tools",
    "reconciler", "renderers", "kubesim", "oci",
)

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Program:
    """A console entry point to freeze."""

    name: str  # the executable's name
    module: str  # whose `main()` returns the exit code
    packages: tuple[str, ...]  # collected whole, so imports inside functions are in
    metadata: tuple[str, ...] = ()  # distributions whose importlib.metadata the program reads
    native: tuple[str, ...] = ()  # packages whose native libraries sit in platform sub-folders
    excludes: tuple[str, ...] = _NEVER


SHIM = Program(
    name="containerd-shim-spin-v2",
    module="shim.containerd.cli",
    packages=("shim",),
    metadata=("spindle-gitops", "wasmtime"),  # `-v` and the artifact cache key read them
    native=("wasmtime",),
    excludes=(*_NEVER, "click", "tomlkit", "node_installer"),
)
INSTALLER = Program(
    name="spindle-node-installer",
    module="node_installer.cli",
    packages=("node_installer",),
    metadata=("spindle-gitops",),
    # click and tomlkit stay (the CLI, the TOML); no TLS, so no OpenSSL: hashlib uses its own sha256
    excludes=(*_NEVER, "wasmtime", "google", "shim", "ssl", "_ssl", "_hashlib"),
)


@dataclass(frozen=True)
class Frozen:
    """A frozen program: the executable, the sha256 of its bundle (the cache key on nodes)."""

    program: Program
    path: Path
    size: int
    bundle_sha256: str
    unpacked_size: int


@dataclass
class Toolchain:
    """What freezing needs on the build machine; `check()` says what is missing and how to get it."""

    python: str = sys.executable
    cc: str = field(default_factory=lambda: os.environ.get("CC") or "cc")

    def check(self) -> None:
        if importlib.util.find_spec("PyInstaller") is None:
            raise MissingTool(f"PyInstaller is not installed: python3 -m pip install '{PYINSTALLER_PIN}'")
        if shutil.which(self.cc) is None:
            raise MissingTool(f"no C compiler {self.cc!r} for the launcher: "
                              "apt-get install -y gcc zlib1g-dev")
        if shutil.which("strip") is None:
            raise MissingTool("no `strip` (binutils): apt-get install -y binutils")


# -- where things are ------------------------------------------------------------------------------


def package_dir(name: str) -> Path:
    """The directory of an importable package, without importing it."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise FreezeError(f"package {name!r} is not importable from {sys.executable}")
    return Path(next(iter(spec.submodule_search_locations)))


def native_libraries(package: str) -> list[tuple[Path, str]]:
    """(file, destination folder) of the shared libraries under a package's platform sub-folders
    (wasmtime keeps `_libwasmtime.so` in `linux-x86_64/`, which PyInstaller's collection misses)."""
    root = package_dir(package)
    found = sorted(p for p in root.glob("*/*.so*") if p.is_file() and p.parent.name.startswith("linux-"))
    if not found:
        raise FreezeError(f"no native library under {root}/linux-*/")
    return [(p, f"{package}/{p.parent.name}") for p in found]


def _source_files(program: Program) -> Iterator[tuple[str, Path]]:
    for package in program.packages:
        root = package_dir(package)
        for path in sorted(root.rglob("*.py")):
            if "__pycache__" not in path.parts:
                yield f"{package}/{path.relative_to(root).as_posix()}", path


def fingerprint(programs: tuple[Program, ...]) -> str:
    """A hash of everything a build of `programs` depends on: their sources, this module, the
    launcher, and the versions of Python and the frozen distributions. Equal fingerprints, equal
    executables (on one machine image), so tests and CI can reuse a build."""
    h = hashlib.sha256()
    # every installed distribution, not only the frozen ones named here: a dependency upgraded by
    # `pip install` (urllib3, certifi, typing_extensions ...) changes the bundle's bytes too
    installed = sorted({f"{d.metadata['Name']}=={d.version}" for d in importlib.metadata.distributions()})
    h.update("\n".join([sys.version, *installed]).encode())
    # the checkout's path too: bytes built from another path differ (embedded source paths)
    h.update(str(Path(__file__).resolve().parents[2]).encode())
    for own in (Path(__file__), LAUNCHER_SOURCE):
        h.update(own.name.encode() + b"\0" + own.read_bytes())
    for program in programs:
        h.update(repr(program).encode())
        for rel, path in _source_files(program):
            h.update(rel.encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()


# -- the steps -------------------------------------------------------------------------------------


def pyinstaller_args(program: Program, work: Path) -> list[str]:
    """The PyInstaller command line for `program` (a one-dir build under `work`)."""
    entry = work / f"{program.name}.py"
    args = [
        "--noconfirm", "--onedir", "--strip", "--log-level", "WARN",
        "--name", program.name,
        "--distpath", str(work / "dist"), "--workpath", str(work / "build"), "--specpath", str(work),
    ]
    roots = sorted({str(package_dir(p).parent) for p in program.packages})
    for root in roots:
        args += ["--paths", root]
    for package in program.packages:
        args += ["--collect-submodules", package]
    for dist in program.metadata:
        args += ["--copy-metadata", dist]
    for package in program.native:
        for path, dest in native_libraries(package):
            args += ["--add-binary", f"{path}{os.pathsep}{dest}"]
    for name in program.excludes:
        args += ["--exclude-module", name]
    return [*args, str(entry)]


def entry_script(program: Program) -> str:
    return f"import sys\n\nfrom {program.module} import main\n\nsys.exit(main())\n"


def run_pyinstaller(program: Program, work: Path, toolchain: Toolchain, epoch: int) -> Path:
    """Freeze `program` one-dir into work/dist/<name>; returns that directory."""
    work.mkdir(parents=True, exist_ok=True)
    (work / f"{program.name}.py").write_text(entry_script(program))
    # PyInstaller's binary cache lives in the work dir: builds running at once never share (or
    # --clean) one another's cache
    env = {**os.environ, "SOURCE_DATE_EPOCH": str(epoch), "PYTHONHASHSEED": "0",
           "PYINSTALLER_CONFIG_DIR": str(work / "pyinstaller-cache")}
    log = work / "pyinstaller.log"
    with open(log, "wb") as out:
        proc = subprocess.run([toolchain.python, "-m", "PyInstaller", *pyinstaller_args(program, work)],
                              cwd=work, env=env, stdout=out, stderr=subprocess.STDOUT, check=False)
    if proc.returncode != 0:
        tail = log.read_text(errors="replace")[-3000:]
        raise FreezeError(f"PyInstaller failed for {program.name} (exit {proc.returncode}); "
                          f"log {log}:\n{tail}")
    bundle = work / "dist" / program.name
    if not (bundle / program.name).is_file():
        raise FreezeError(f"PyInstaller made no {bundle / program.name}")
    return bundle


def archive(bundle: Path) -> bytes:
    """The launcher's archive of a one-dir bundle (format in launcher.c): entries in path order,
    directories 0755, files 0755 or 0644 by their execute bits, symlinks kept if they stay inside."""
    parts = [ARCHIVE_MAGIC]
    paths = sorted((p for p in bundle.rglob("*")), key=lambda p: p.relative_to(bundle).as_posix().encode())
    for path in paths:
        rel = path.relative_to(bundle).as_posix().encode()
        st = path.lstat()
        if stat.S_ISLNK(st.st_mode):
            target = os.readlink(path)
            resolved = (path.parent / target).resolve()
            if os.path.isabs(target) or not resolved.is_relative_to(bundle.resolve()):
                raise FreezeError(f"{path} links outside the bundle ({target})")
            data, kind, mode = target.encode(), b"L", 0o777
        elif stat.S_ISDIR(st.st_mode):
            data, kind, mode = b"", b"D", 0o755
        elif stat.S_ISREG(st.st_mode):
            data, kind, mode = path.read_bytes(), b"F", 0o755 if st.st_mode & 0o111 else 0o644
        else:
            raise FreezeError(f"{path}: only files, directories and symlinks can be bundled")
        parts += [_ENTRY.pack(kind, mode, len(rel), len(data)), rel, data]
    parts.append(b"E")
    return b"".join(parts)


def build_launcher(work: Path, toolchain: Toolchain) -> bytes:
    """Compile launcher.c (no debug info, zlib static, glibc dynamic like the bundle itself)."""
    out = work / "launcher"
    cmd = [toolchain.cc, "-O2", "-s", "-std=gnu11", "-Wall", "-o", str(out), str(LAUNCHER_SOURCE),
           "-Wl,-Bstatic", "-lz", "-Wl,-Bdynamic", "-Wl,--build-id=none"]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        hint = " (apt-get install -y zlib1g-dev)" if "lz" in proc.stderr or "zlib.h" in proc.stderr else ""
        raise FreezeError(f"cannot build the launcher{hint}: {' '.join(cmd)}\n{proc.stderr.strip()}")
    return out.read_bytes()


def assemble(launcher: bytes, raw_archive: bytes, name: str) -> tuple[bytes, str]:
    """launcher + zlib(archive) + trailer; returns the bytes and the bundle's sha256."""
    bundle = zlib.compress(raw_archive, 6)
    digest = hashlib.sha256(bundle).hexdigest()
    encoded = name.encode()
    if len(encoded) > 64 or b"/" in encoded:
        raise FreezeError(f"program name {name!r} must be at most 64 bytes without '/'")
    trailer = TRAILER.pack(MAGIC, len(launcher), len(bundle), len(raw_archive), digest.encode(), encoded)
    return launcher + bundle + trailer, digest


def read_trailer(path: Path) -> tuple[int, int, int, str, str]:
    """(bundle offset, bundle size, archive size, sha256, name) of a frozen executable."""
    with open(path, "rb") as handle:
        handle.seek(0, os.SEEK_END)
        size = handle.tell()
        if size < TRAILER.size:
            raise FreezeError(f"{path} is not a frozen spindle program")
        handle.seek(size - TRAILER.size)
        magic, offset, length, unpacked, digest, name = TRAILER.unpack(handle.read(TRAILER.size))
    if magic != MAGIC or offset + length + TRAILER.size != size:
        raise FreezeError(f"{path} is not a frozen spindle program")
    return offset, length, unpacked, digest.decode(), name.rstrip(b"\0").decode()


def unpack(executable: Path, dest: Path) -> Path:
    """Unpack a frozen executable's bundle into `dest` the way the launcher does (for inspection and
    for finding the libraries it links); returns `dest`."""
    offset, length, unpacked, _digest, _name = read_trailer(executable)
    with open(executable, "rb") as handle:
        handle.seek(offset)
        try:
            raw = zlib.decompress(handle.read(length))
        except zlib.error as exc:
            raise FreezeError(f"{executable}: the bundle is damaged ({exc})") from None
    if len(raw) != unpacked or not raw.startswith(ARCHIVE_MAGIC):
        raise FreezeError(f"{executable}: the bundle is damaged")
    dest.mkdir(parents=True, exist_ok=True)
    pos = len(ARCHIVE_MAGIC)
    while raw[pos:pos + 1] != b"E":
        kind, mode, path_len, size = _ENTRY.unpack_from(raw, pos)
        pos += _ENTRY.size
        rel = raw[pos:pos + path_len].decode()
        data = raw[pos + path_len:pos + path_len + size]
        pos += path_len + size
        if rel.startswith("/") or ".." in rel.split("/"):
            raise FreezeError(f"{executable}: bundle path {rel!r} leaves the bundle")
        target = dest / rel
        if kind == b"D":
            target.mkdir(parents=True, exist_ok=True)
        elif kind == b"F":
            target.write_bytes(data)
            target.chmod(mode)
        elif kind == b"L":
            target.symlink_to(data.decode())
        else:
            raise FreezeError(f"{executable}: unknown bundle entry kind {kind!r}")
    return dest


def freeze(program: Program, out: Path, *, work: Path, epoch: int = 0, toolchain: Toolchain | None = None,
           progress: Progress = lambda _m: None) -> Frozen:
    """Freeze `program` into the single executable `out`, building under `work` (kept for logs)."""
    toolchain = toolchain or Toolchain()
    toolchain.check()
    progress(f"freezing {program.name} with PyInstaller (10-20 s)")
    bundle = run_pyinstaller(program, work / program.name, toolchain, epoch)
    progress(f"packing {program.name}")
    raw = archive(bundle)
    data, digest = assemble(build_launcher(work / program.name, toolchain), raw, program.name)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_bytes(data)
    tmp.chmod(0o755)
    tmp.replace(out)
    return Frozen(program=program, path=out, size=len(data), bundle_sha256=digest, unpacked_size=len(raw))
