"""Shared helpers for kubesim's tests: a running server, a raw HTTPS client, and kubectl."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kubesim import server as kserver


class Raw:
    """A keep-alive HTTPS client speaking raw requests, for status-code level assertions."""

    def __init__(self, running: kserver.RunningServer, token: str | None = "") -> None:
        self.running = running
        self.token = running.token if token == "" else token
        self._ctx = ssl.create_default_context(cadata=running.ca_pem.decode())
        self._conn: http.client.HTTPSConnection | None = None
        #: The Warning headers' texts of the last answer.
        self.warnings: list[str] = []

    def _connection(self) -> http.client.HTTPSConnection:
        if self._conn is None:
            self._conn = http.client.HTTPSConnection(
                "127.0.0.1", self.running.port, context=self._ctx, timeout=30
            )
        return self._conn

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        data: bytes | None
        if body is None:
            data = None
        elif isinstance(body, bytes):
            data = body
        elif isinstance(body, str):
            data = body.encode()
        else:
            data = json.dumps(body).encode()
        hdrs = {"Content-Type": content_type, **(headers or {})}
        if self.token is not None:
            hdrs["Authorization"] = f"Bearer {self.token}"
        for attempt in range(2):
            conn = self._connection()
            try:
                conn.request(method, path, body=data, headers=hdrs)
                resp = conn.getresponse()
                raw = resp.read()
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                conn.close()
                self._conn = None
                if attempt:
                    raise
        self.warnings = [_unquote(v.split(" ", 2)[2]) for k, v in resp.getheaders() if k.lower() == "warning"]
        if resp.getheader("Connection", "").lower() == "close":
            conn.close()
            self._conn = None
        try:
            return resp.status, json.loads(raw) if raw else None
        except ValueError:
            return resp.status, raw.decode(errors="replace")

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()


def _unquote(text: str) -> str:
    """A Warning header's quoted warn-text."""
    body = text.strip()[1:-1]
    out, i = [], 0
    while i < len(body):
        if body[i] == "\\" and i + 1 < len(body):
            i += 1
        out.append(body[i])
        i += 1
    return "".join(out)


@pytest.fixture(scope="module")
def running() -> Iterator[kserver.RunningServer]:
    srv = kserver.start(":memory:")
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture()
def raw(running: kserver.RunningServer) -> Iterator[Raw]:
    client = Raw(running)
    yield client
    client.close()


@pytest.fixture(scope="module")
def kubeconfig(running: kserver.RunningServer) -> Iterator[Path]:
    directory = Path(tempfile.mkdtemp(prefix="kubesim-kc-"))
    path = directory / "kubeconfig"
    running.kubeconfig(path)
    yield path
    shutil.rmtree(directory, ignore_errors=True)


def kubectl(
    kubeconfig: Path,
    *args: str,
    stdin: str | None = None,
    check: bool = True,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("kubectl")
    if exe is None:
        pytest.skip("kubectl is not installed (scripts/test installs Debian's kubernetes-client)")
    full_env = {**os.environ, "KUBECONFIG": str(kubeconfig), "HOME": str(kubeconfig.parent), **(env or {})}
    proc = subprocess.run([exe, *args], input=stdin, capture_output=True, text=True, env=full_env, timeout=60)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"kubectl {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
        )
    return proc


def deployment(
    name: str, replicas: int = 2, image: str = "nginx:1.25", **extra_labels: str
) -> dict[str, Any]:
    labels = {"app": name, **extra_labels}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "web", "image": image, "ports": [{"containerPort": 80}]}]},
            },
        },
    }


# A list of {name, port} items merged by name (`x-kubernetes-list-type: map`).
PORTS_BY_NAME: dict[str, Any] = {
    "type": "array",
    "x-kubernetes-list-type": "map",
    "x-kubernetes-list-map-keys": ["name"],
    "items": {
        "type": "object",
        "required": ["name"],
        "properties": {"name": {"type": "string"}, "port": {"type": "integer"}},
    },
}
PRESERVE_UNKNOWN: dict[str, Any] = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}


def spec_schema(properties: dict[str, Any]) -> dict[str, Any]:
    """An object schema whose `spec` has these properties."""
    return {"type": "object", "properties": {"spec": {"type": "object", "properties": properties}}}


def crd_manifest(
    group: str,
    kind: str,
    plural: str,
    schema: dict[str, Any] | None = None,
    *,
    scope: str = "Namespaced",
    version: str = "v1",
    **version_fields: Any,
) -> dict[str, Any]:
    """A CustomResourceDefinition serving one version with `schema` as its openAPIV3Schema (none
    when None); `version_fields` go into the version (e.g. subresources)."""
    served: dict[str, Any] = {"name": version, "served": True, "storage": True, **version_fields}
    if schema is not None:
        served["schema"] = {"openAPIV3Schema": schema}
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {
            "group": group,
            "scope": scope,
            "names": {"plural": plural, "kind": kind},
            "versions": [served],
        },
    }


def watch_lines(
    running: kserver.RunningServer, path: str, until: int, timeout: float = 5
) -> list[dict[str, Any]]:
    """Raw chunked watch: read JSON lines until `until` events arrived or the stream ends."""
    ctx = ssl.create_default_context(cadata=running.ca_pem.decode())
    sock = ctx.wrap_socket(
        socket.create_connection(("127.0.0.1", running.port), timeout=timeout), server_hostname="127.0.0.1"
    )
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {running.token}\r\n\r\n".encode())
    data = b""
    events: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    try:
        while len(events) < until and time.monotonic() < deadline:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
            events = [json.loads(ln) for ln in data.split(b"\r\n") if ln.startswith(b"{")]
    except TimeoutError:
        pass
    finally:
        sock.close()
    assert data.startswith(b"HTTP/1.1 200"), data[:200]
    return events
