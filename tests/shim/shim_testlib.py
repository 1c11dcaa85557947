"""Helpers for the shim tests: committed guests, app directories, a real server on a free port."""

from __future__ import annotations

import http.client
import shutil
import socket
import textwrap
import threading
from collections.abc import Callable, Iterator, Mapping
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

    def start(root: Path, env: Mapping[str, str] | None = None,
              runtime_config: Path | None = None) -> Running:
        app = load_app(root, engine_box.engine, LoadOptions(
            env=dict(env or {}), runtime_config=runtime_config, state_dir=tmp_path / "state",
            cache_dir=artifact_cache))
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
