"""The node runtime runs what was published: one project pushed in both formats to a real docker-registry;
the rootfs image pulled by `ctr` (containerd 1.6) and run by containerd-shim-spin-v2 serves the same
responses as `spindle shim up oci://` of the spin-format artifact.

containerd comes from tests/shim_containerd/containerd_env.py (its fixture there is visible only to that
directory, so this module starts its own with the same helper and the same skip rules)."""

from __future__ import annotations

import http.client
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from oci_testlib import Registry, free_port
from publishlib import GUESTS, commit_all, init_repo

from reconciler.publish.publisher import PublishResult, Request, Settings, Target, publish_many

pytestmark = pytest.mark.slow

EXAMPLE = Path(__file__).resolve().parent.parent.parent / "example-repo" / "apps" / "echo"
SPIN_TOML = """\
spin_manifest_version = 2
[application]
name = "both"
version = "0.1.0"
[[trigger.http]]
route = "/static/..."
component = "echo"
executor = { type = "wagi", entrypoint = "serve_page" }
[[trigger.http]]
route = "/echo/..."
component = "echo"
executor = { type = "wagi" }
[[trigger.http]]
route = "/healthz"
static_response = { status_code = 200, headers = { content-type = "text/plain" }, body = "ok\\n" }
[[trigger.http]]
route = "/..."
component = "handler"
[component.echo]
source = "echo.wasm"
files = [{ source = "static", destination = "/static" }]
[component.handler]
source = "handler.wasm"
"""
PATHS = ("/healthz", "/static/index.html", "/hello?x=1", "/deep/path")


@pytest.fixture(scope="module")
def containerd() -> Iterator[object]:
    if os.geteuid() != 0:
        pytest.skip("containerd tests need root")
    for tool in ("containerd", "ctr", "ip"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")
    from containerd_env import Containerd, find_shim_binary

    if find_shim_binary() is None:
        pytest.skip("containerd-shim-spin-v2 is not installed (pip install -e .)")
    env = Containerd.start()
    try:
        yield env
    finally:
        report = env.cleanup()
        if report.problems:
            pytest.fail("containerd teardown left things behind:\n" + "\n".join(report.problems))


def _request(port: int, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, body=body, headers={"Host": "app.test"})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def _wait(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            _request(port, "GET", "/healthz")
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _responses(port: int) -> list[tuple[int, bytes]]:
    """Status and body per request; the handler's `spin-client-addr` line (the client's port) is dropped."""
    out = [_request(port, "GET", path) for path in PATHS]
    out.append(_request(port, "POST", "/echo/x", b"echo me"))
    return [(status, re.sub(rb"spin-client-addr: [^\n]*\n", b"", body)) for status, body in out]


def test_rootfs_image_under_containerd_serves_what_the_spin_artifact_serves(
    containerd: object, registry: Registry, tmp_path: Path
) -> None:
    from containerd_env import Containerd

    assert isinstance(containerd, Containerd)
    repo = init_repo(tmp_path / "repo")
    project = repo / "both"
    shutil.copytree(EXAMPLE / "static", project / "static")
    shutil.copy(EXAMPLE / "echo.wasm", project / "echo.wasm")
    shutil.copy(GUESTS / "handler.wasm", project / "handler.wasm")
    (project / "spin.toml").write_text(SPIN_TOML)
    commit_all(repo, "both")
    requests = [
        Request(project / "spin.toml", Target.parse(registry.ref("node/both"), fmt="spin")),
        Request(project / "spin.toml", Target.parse(registry.ref("node/both-rootfs"), fmt="rootfs")),
    ]
    from oci.registry import RegistryClient

    with RegistryClient() as client:
        spin, rootfs = publish_many(repo, requests, Settings(), client)
    assert isinstance(spin, PublishResult) and isinstance(rootfs, PublishResult)

    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "reconciler.cli",
            "shim",
            "up",
            f"oci://{spin.reference}",
            "--listen",
            f"127.0.0.1:{port}",
            "--workers",
            "1",
            "--cache-dir",
            str(tmp_path / "cache"),
            "--state-dir",
            str(tmp_path / "state"),
        ],
        stderr=open(tmp_path / "shim.log", "wb"),  # noqa: SIM115 - the child owns it
    )
    try:
        try:
            _wait(port)
        except OSError:
            pytest.fail(f"spindle shim up did not answer:\n{(tmp_path / 'shim.log').read_text()[-3000:]}")
        expected = _responses(port)
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    assert expected[0] == (200, b"ok\n") and expected[1][1].startswith(b"<!doctype html>")
    assert expected[2][1].startswith(b"path=/hello?x=1") and expected[4] == (200, b"echo me")

    pull = containerd.ctr("images", "pull", "--plain-http", rootfs.reference, timeout=120)
    assert rootfs.digest in pull.stdout + pull.stderr or pull.returncode == 0
    cid, port = f"p{uuid.uuid4().hex[:10]}", free_port()
    containerd.ctr(
        "run",
        "-d",
        "--runtime",
        "io.containerd.spin.v2",
        "--net-host",
        "--env",
        f"SPIN_HTTP_LISTEN_ADDR=127.0.0.1:{port}",
        rootfs.reference,
        cid,
    )
    try:
        try:
            _wait(port)
        except OSError:
            tasks = containerd.ctr("task", "ls").stdout
            pytest.fail(
                f"the app did not answer; tasks:\n{tasks}\ncontainerd log:\n{containerd.log_tail(60)}"
            )
        assert _responses(port) == expected
    finally:
        containerd.ctr("task", "kill", "-s", "KILL", cid, check=False)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and cid in containerd.ctr("task", "ls").stdout:
            containerd.ctr("task", "rm", "-f", cid, check=False)
            time.sleep(0.1)
        containerd.ctr("containers", "rm", cid, check=False)
