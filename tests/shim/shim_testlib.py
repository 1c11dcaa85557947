"""Helpers for the shim tests: committed guests, manifests and app directories, a server on a free
port (in this process, or `spindle shim up` as a process), guests built at test time."""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from shim.app import LoadedApp, LoadOptions, load_app
from shim.engine import EngineBox, new_engine
from shim.server import SpinServer

GUESTS = Path(__file__).parent / "guests"


@pytest.fixture(scope="session")
def engine_box() -> EngineBox:
    return new_engine()


@pytest.fixture(scope="session")
def artifact_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("artifacts")


def make_app(root: Path, manifest: str, guests: tuple[str, ...] = ("handler.wasm",),
             files: Mapping[str, str] | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for g in guests:
        shutil.copy(GUESTS / g, root / g)
    for rel, text in (files or {}).items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    (root / "spin.toml").write_text(textwrap.dedent(manifest))
    return root


@dataclass
class Running:
    server: SpinServer
    app: LoadedApp
    thread: threading.Thread

    @property
    def port(self) -> int:
        return self.server.port

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: Mapping[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            conn.request(method, path, body=body, headers=dict(headers or {}))
            resp = conn.getresponse()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
        finally:
            conn.close()


    def duplex(self, method: str, path: str, body: bytes) -> tuple[int, dict[str, str], bytes]:
        """Send the body from a thread while reading the response, as a streaming client does
        (a one-thread client deadlocks against a server that streams its echo back)."""
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=60)
        head = (f"{method} {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-length: {len(body)}\r\n"
                "connection: close\r\n\r\n").encode()
        sender = threading.Thread(target=lambda: sock.sendall(head + body), daemon=True)
        sender.start()
        try:
            resp = http.client.HTTPResponse(sock)
            resp.begin()
            data = resp.read()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
        finally:
            sender.join(timeout=60)
            sock.close()


Serve = Callable[..., Running]


@pytest.fixture
def serve(engine_box: EngineBox, artifact_cache: Path, tmp_path: Path) -> Iterator[Serve]:
    """Load an app and serve it on 127.0.0.1:<free port> in this process."""
    running: list[Running] = []

    def start(root: Path, env: Mapping[str, str] | None = None, runtime_config: Path | None = None,
              cache_dir: Path | None = None, state_dir: Path | None = None) -> Running:
        app = load_app(root, engine_box.engine, LoadOptions(
            env=dict(env or {}), runtime_config=runtime_config, state_dir=state_dir or tmp_path / "state",
            cache_dir=cache_dir or artifact_cache))
        server = SpinServer(app, ("127.0.0.1", 0))
        t = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        t.start()
        r = Running(server, app, t)
        running.append(r)
        return r

    yield start
    for r in running:
        r.server.shutdown()
        r.server.server_close()
        r.app.close()


def spin_toml(*routes: tuple[str, str], name: str = "app", source: str = "handler.wasm",
              extra: str = "") -> str:
    """A manifest v2 with one HTTP trigger per (route, component id), every component running
    `source`; a route starting with '{' is written as a TOML table (`{ private = true }`)."""
    text = f"spin_manifest_version = 2\n[application]\nname = {json.dumps(name)}\n"
    for route, component in routes:
        value = route if route.startswith("{") else json.dumps(route)
        text += f"[[trigger.http]]\nroute = {value}\ncomponent = {json.dumps(component)}\n"
    for component in dict.fromkeys(c for _, c in routes):
        text += f"[component.{component}]\nsource = {json.dumps(source)}\n"
    return text + extra


WAT_APP = spin_toml(("/...", "wat"), name="wat-app")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class ShimProcess:
    proc: subprocess.Popen[str]
    port: int
    output: str = ""  # everything it logged; filled in when it has exited

    def get(self, path: str) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request("GET", path)
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

    def children(self) -> list[int]:
        """The worker processes, once it has started them (waits up to 30 s)."""
        path = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        deadline = time.monotonic() + 30
        while not path.read_text().split() and time.monotonic() < deadline:
            time.sleep(0.1)
        return [int(p) for p in path.read_text().split()]


@contextmanager
def shim_up(root: Path, tmp_path: Path, *extra: str, env: Mapping[str, str] | None = None,
            listen_from_env: bool = False) -> Iterator[ShimProcess]:
    """`spindle shim up ROOT` on a free port (given as --listen, or as SPIN_HTTP_LISTEN_ADDR),
    once it accepts connections. When the block ends normally and the process is still running,
    SIGTERM must stop it with exit code 0."""
    port = free_port()
    addr = f"127.0.0.1:{port}"
    env = {**os.environ, **(env or {}), **({"SPIN_HTTP_LISTEN_ADDR": addr} if listen_from_env else {})}
    proc = subprocess.Popen(
        [sys.executable, "-m", "reconciler.cli", "shim", "up", str(root),
         *(() if listen_from_env else ("--listen", addr)),
         "--cache-dir", str(tmp_path / "cache"), "--state-dir", str(tmp_path / "state"), *extra],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    up = ShimProcess(proc, port)
    try:
        _wait_listening(proc, port)
        yield up
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0, "shim up did not exit 0 after SIGTERM"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        up.output = proc.stdout.read() if proc.stdout else ""


def _wait_listening(proc: subprocess.Popen[str], port: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"shim exited early: {proc.stdout.read() if proc.stdout else ''}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("shim did not start listening")


# ---------------------------------------------------------------- guests built at test time

GUEST_CACHE = Path(os.environ.get("SPINDLE_SHIM_GUEST_CACHE")
                   or Path.home() / ".cache" / "spindle-shim" / "test-guests")
PY_TOOLCHAIN = ("componentize-py==0.17.2", "spin-sdk==3.4.1")
JS_TOOLCHAIN = ("@spinframework/build-tools@1.0.7", "@spinframework/wasi-http-proxy@1.0.1")


def _run(cmd: list[str], cwd: Path, what: str, timeout: int = 600, venv: Path | None = None,
         *, build: bool = False) -> None:
    """Run a toolchain step. Installing the toolchain may fail for want of network: skip, with the
    reason. Building our own guest with an installed toolchain must work: a failure there fails."""
    env = dict(os.environ)
    if venv is not None:  # componentize-py finds spin_sdk through the active environment
        env["VIRTUAL_ENV"] = str(venv)
        env["PATH"] = f"{venv / 'bin'}:{env.get('PATH', '')}"
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)
    if proc.returncode != 0:
        text = (proc.stderr or proc.stdout).split("Stack backtrace")[0].strip().splitlines()
        if build:
            pytest.fail(f"{what} failed: {' / '.join(text[-4:])}")
        pytest.skip(f"{what} unavailable here: {' / '.join(text[-4:])}")


def _key(*parts: bytes | str) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p.encode() if isinstance(p, str) else p)
    return h.hexdigest()[:16]


def build_python_app(guest: str = "pyapp", world: str = "spin-all") -> Path:
    """guests/<guest>/app.py built with spin-sdk 3.4.1 + componentize-py 0.17.2 (from PyPI) for
    `world` (a world of spin-sdk's WIT, or of a .wit file beside app.py added to it, with the
    packages under deps/ beside it), cached outside
    the repo by the source digest. Skips with the reason when the toolchain is unavailable."""
    src = GUESTS / guest / "app.py"
    extra = sorted((GUESTS / guest).glob("*.wit"))
    deps = sorted((GUESTS / guest).glob("deps/*/*.wit"))
    digest = _key(src.read_bytes(), *(w.read_bytes() for w in extra + deps), *PY_TOOLCHAIN, world)
    out = GUEST_CACHE / f"{guest}-{digest}.wasm"
    if out.exists():
        return out
    GUEST_CACHE.mkdir(parents=True, exist_ok=True)
    venv = GUEST_CACHE / "venv-py"
    py = venv / "bin" / "python"
    if not (venv / "bin" / "componentize-py").exists():
        _run([sys.executable, "-m", "venv", str(venv)], GUEST_CACHE, "python venv")
        _run([str(py), "-m", "pip", "install", "-q", *PY_TOOLCHAIN], GUEST_CACHE, "componentize-py/spin-sdk")
    wit = next((venv / "lib").glob("python3*/site-packages/spin_sdk/wit"))
    work = Path(tempfile.mkdtemp(prefix=f"{guest}-", dir=GUEST_CACHE))
    if extra:  # componentize-py takes the world from spin_sdk's own WIT: use a copy of spin_sdk
        shutil.copytree(wit.parent, work / "spin_sdk", ignore=shutil.ignore_patterns("__pycache__"))
        for w in extra:
            shutil.copy(w, work / "spin_sdk" / "wit" / w.name)
        for w in deps:  # WIT packages the world uses: guests/<guest>/deps/<package>/*.wit
            (work / "spin_sdk" / "wit" / "deps" / w.parent.name).mkdir(exist_ok=True)
            shutil.copy(w, work / "spin_sdk" / "wit" / "deps" / w.parent.name / w.name)
        wit = work / "spin_sdk" / "wit"
    shutil.copy(src, work / "app.py")
    _run([str(venv / "bin" / "componentize-py"), "-d", str(wit), "-w", world, "componentize", "app",
          "-o", str(work / "app.wasm")], work, "componentize-py build", venv=venv, build=True)
    os.replace(work / "app.wasm", out)
    shutil.rmtree(work, ignore_errors=True)
    return out


def build_js_app() -> Path:
    """guests/jsapp/index.js built with @spinframework/build-tools 1.0.7 (from npm), cached outside
    the repo. Skips with the reason when npm or the packages are unavailable."""
    src = GUESTS / "jsapp" / "index.js"
    out = GUEST_CACHE / f"jsapp-{_key(src.read_bytes(), *JS_TOOLCHAIN)}.wasm"
    if out.exists():
        return out
    if shutil.which("npm") is None:
        pytest.skip("npm is not installed here; the JS guest cannot be built")
    proj = GUEST_CACHE / "jsbuild"
    (proj / "src").mkdir(parents=True, exist_ok=True)
    if not (proj / "node_modules" / ".bin" / "j2w").exists():
        (proj / "package.json").write_text('{"name": "shim-js-guest", "version": "1.0.0", "private": true, '
                                           '"type": "module"}\n')
        _run(["npm", "install", "--no-audit", "--no-fund", "--save", *JS_TOOLCHAIN], proj,
             "npm install of @spinframework/build-tools", timeout=900)
    shutil.copy(src, proj / "src" / "index.js")
    (proj / "dist").mkdir(exist_ok=True)
    _run(["npx", "j2w", "-i", "src/index.js", "-o", "dist/app.wasm"], proj, "j2w (componentize-js) build",
         build=True)
    os.replace(proj / "dist" / "app.wasm", out)
    return out
