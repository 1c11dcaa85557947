"""`spindle publish` against real Debian `docker-registry` instances on 127.0.0.1: anonymous, htpasswd basic
auth, token auth, TLS with a test CA; bad credentials, an unreachable registry, a registry that fails and
recovers, a registry that serves wrong bytes to `spindle shim up oci://`; reproducibility from two clones."""

from __future__ import annotations

import base64
import http.client
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from oci_testlib import (
    Issued,
    ProxyHandler,
    ProxyState,
    Registry,
    StaticHandler,
    TokenHandler,
    TokenIssuer,
    free_port,
    htpasswd_line,
    issue,
    make_ca,
    run_registry,
    serve,
    server_host,
)
from publishlib import commit_all, git, init_repo, write_project

from oci.registry import RegistryClient
from oci.transport import RetryPolicy
from reconciler.cli import cli
from reconciler.publish.errors import PushError
from reconciler.publish.publisher import PublishResult, Request, Settings, Target, publish_many
from shim.ociapp import ArtifactError, fetch_app

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("docker-registry") is None, reason="apt-get install -y docker-registry"),
]

USER, PASSWORD = "alice", "s3cret-pass"
FAST = RetryPolicy(attempts=4, initial_delay=0.01, max_delay=0.05)


def publish_cli(
    *args: str, stdin: str | None = None, env: dict[str, str] | None = None
) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["publish", *args], input=stdin, env=env, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = init_repo(tmp_path_factory.mktemp("repo") / "repo")
    write_project(root, "hello", "hello from the registry tests")
    commit_all(root, "hello")
    return root


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Issued]:
    directory = tmp_path_factory.mktemp("pki")
    ca = make_ca(directory)
    return {
        "ca": ca,
        "server": issue(ca, directory, "registry"),
        "signer": issue(ca, directory, "signer", server=False),
    }


def test_publish_then_unchanged_with_one_request_then_the_runtime_serves_it(
    repo: Path, registry: Registry, tmp_path: Path
) -> None:
    project = repo / "apps" / "hello"
    code, out, err = publish_cli(str(project), "--registry", registry.ref("team/hello"), "-o", "json")
    assert code == 0, err
    first = json.loads(out)
    assert first["pushed"] and first["blobs_uploaded"] == 4  # wasm, page.html, locked app, config
    assert first["reference"] == f"{registry.host}/team/hello@{first['digest']}"
    assert first["commit"] == git(repo, "rev-parse", "HEAD")

    state = ProxyState(upstream=registry.host)
    with serve(ProxyHandler, state=state) as proxy:
        code, out, err = publish_cli(str(project), "--registry", f"{server_host(proxy)}/team/hello")
    assert code == 0, err
    assert out.startswith("unchanged ") and first["digest"] in out
    calls = [(method, path) for method, path, _ in state.log if path != "/v2/"]
    assert calls == [("HEAD", f"/v2/team/hello/manifests/{first['digest']}")]

    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "reconciler.cli",
            "shim",
            "up",
            f"oci://{first['reference']}",
            "--listen",
            f"127.0.0.1:{port}",
            "--workers",
            "1",
            "--cache-dir",
            str(tmp_path / "cache"),
            "--state-dir",
            str(tmp_path / "state"),
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert _wait_http(port), (
            proc.stderr.read() if proc.poll() is not None and proc.stderr else "no answer"
        )
        assert _get(port, "/anything") == (200, b"hello from the registry tests\n")
        assert _get(port, "/healthz") == (200, b"ok\n")
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    assert (
        tmp_path / "cache" / "apps" / first["digest"][7:] / "files" / "hello" / "static" / "small.txt"
    ).read_text() == "hello\n"


def _get(port: int, path: str) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def _wait_http(port: int, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            _get(port, "/healthz")
            return True
        except OSError:
            time.sleep(0.05)
    return False


def test_the_same_tree_gives_the_same_digest_from_two_clones(
    repo: Path, registry: Registry, tmp_path: Path
) -> None:
    digests = []
    for name in ("one", "two"):
        clone = tmp_path / name
        git(tmp_path, "clone", "--quiet", str(repo), str(clone))
        os.utime(clone / "apps" / "hello" / "hello.wasm", (1, 1))  # on-disk metadata never matters
        code, out, err = publish_cli(
            str(clone / "apps" / "hello"), "--registry", registry.ref("team/clones"), "-o", "json"
        )
        assert code == 0, err
        digests.append((json.loads(out)["digest"], json.loads(out)["pushed"]))
    assert digests[0][0] == digests[1][0]
    assert [pushed for _, pushed in digests] == [True, False]
    # The created time comes from SOURCE_DATE_EPOCH when set, never from the clock.
    code, out, _ = publish_cli(
        str(tmp_path / "one" / "apps" / "hello"),
        "--registry",
        registry.ref("team/clones"),
        "--dry-run",
        "-o",
        "json",
        env={"SOURCE_DATE_EPOCH": "86400"},
    )
    assert code == 0 and json.loads(out)["created"] == 86400 and json.loads(out)["digest"] != digests[0][0]


@pytest.fixture(scope="module")
def basic(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    root = tmp_path_factory.mktemp("basic")
    (root / "htpasswd").write_text(htpasswd_line(USER, PASSWORD) + "\n")
    auth = f"auth:\n  htpasswd:\n    realm: spindle-test\n    path: {root / 'htpasswd'}\n"
    with run_registry(root, auth=auth) as running:
        yield running


def test_basic_auth_with_a_password_on_stdin_and_bad_credentials(repo: Path, basic: Registry) -> None:
    project = str(repo / "apps" / "hello")
    ref = basic.ref("team/basic")
    code, out, err = publish_cli(
        project, "--registry", ref, "--username", USER, "--password-stdin", stdin=PASSWORD + "\n"
    )
    assert code == 0, err
    assert out.startswith("pushed ")
    code, _, err = publish_cli(
        project, "--registry", ref, "--username", USER, "--password-stdin", stdin="wrong\n"
    )
    assert code == 2
    assert f"registry {basic.host}" in err and "rejected" in err and "apps/hello/spin.toml" in err
    code, _, err = publish_cli(project, "--registry", ref, env={"DOCKER_CONFIG": "/nonexistent"})
    assert code == 2 and "no credentials" in err


def test_token_auth_with_docker_config_credentials(
    repo: Path, pki: dict[str, Issued], tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    issuer = TokenIssuer(pki["signer"], "spindle-test-issuer", "spindle-test-registry", {USER: PASSWORD})
    with serve(TokenHandler, issuer=issuer) as server:
        auth = (
            f"auth:\n  token:\n    realm: http://{server_host(server)}/token\n    service: {issuer.service}\n"
            f"    issuer: {issuer.issuer}\n    rootcertbundle: {pki['ca'].cert_path}\n"
        )
        with run_registry(tmp_path_factory.mktemp("token"), auth=auth) as reg:
            config = tmp_path / "config.json"
            encoded = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
            config.write_text(json.dumps({"auths": {reg.host: {"auth": encoded}}}))
            code, _, err = publish_cli(
                str(repo / "apps" / "hello"),
                "--registry",
                reg.ref("team/token"),
                "--docker-config",
                str(config),
            )
            assert code == 0, err
            assert any(r["user"] == USER and r["ok"] for r in issuer.requests)


def test_tls_registry_with_the_test_ca(repo: Path, pki: dict[str, Issued], tmp_path: Path) -> None:
    with run_registry(tmp_path / "tls", tls=pki["server"]) as reg:
        project = str(repo / "apps" / "hello")
        code, _, err = publish_cli(
            project, "--registry", reg.ref("team/tls"), "--ca-file", str(pki["ca"].cert_path)
        )
        assert code == 0, err
        code, _, err = publish_cli(project, "--registry", reg.ref("team/tls"))
        assert code == 2 and "TLS" in err


def _publish(repo: Path, host: str, client: RegistryClient) -> PublishResult:
    target = Target.parse(f"{host}/team/flaky")
    (result,) = publish_many(
        repo, [Request(repo / "apps" / "hello" / "spin.toml", target)], Settings(), client
    )
    assert isinstance(result, PublishResult), result
    return result


def test_a_registry_that_fails_then_recovers_and_one_that_is_unreachable(
    repo: Path, registry: Registry
) -> None:
    state = ProxyState(upstream=registry.host, fail_next=2, fail_status=503)
    sleeps: list[float] = []
    with serve(ProxyHandler, state=state) as proxy, RegistryClient(retry=FAST, sleep=sleeps.append) as client:
        result = _publish(repo, server_host(proxy), client)
    assert result.pushed and len(sleeps) == 2

    nobody = f"127.0.0.1:{free_port()}"
    with RegistryClient(retry=FAST, sleep=sleeps.append) as client:
        target = Target.parse(f"{nobody}/team/app")
        (failed,) = publish_many(
            repo, [Request(repo / "apps" / "hello" / "spin.toml", target)], Settings(), client
        )
    assert isinstance(failed, PushError)
    assert f"registry {nobody}" in str(failed) and "apps/hello/spin.toml" in str(failed)


def test_digest_mismatch_on_pull_is_refused_by_the_runtime(
    repo: Path, registry: Registry, tmp_path: Path
) -> None:
    with RegistryClient() as client:
        result = _publish(repo, registry.host, client)
        pulled = client.pull(result.reference, tmp_path / "layout")
    layout = tmp_path / "layout"
    manifest = (layout / "blobs" / "sha256" / result.digest[7:]).read_bytes()
    doc = json.loads(manifest)
    routes: dict[str, tuple[int, dict[str, str], bytes]] = {
        "/v2/": (200, {}, b"{}"),
        f"/v2/team/lies/manifests/{pulled.digest}": (
            200,
            {
                "Content-Type": "application/vnd.oci.image.manifest.v1+json",
                "Docker-Content-Digest": pulled.digest,
            },
            manifest,
        ),
    }
    for blob in [doc["config"], *doc["layers"]]:
        data = (layout / "blobs" / "sha256" / blob["digest"][7:]).read_bytes()
        if blob["mediaType"].endswith("+wasm"):
            data = data[:-1] + bytes([data[-1] ^ 1])  # same size, other bytes
        routes[f"/v2/team/lies/blobs/{blob['digest']}"] = (200, {}, data)
    with serve(StaticHandler, routes=routes) as liar:
        with pytest.raises(ArtifactError) as caught, RegistryClient(retry=FAST) as client:
            fetch_app(f"oci://{server_host(liar)}/team/lies@{pulled.digest}", tmp_path / "cache", client)
        wasm_digest = next(b["digest"] for b in doc["layers"] if b["mediaType"].endswith("+wasm"))
        assert wasm_digest in str(caught.value) and "hashes to" in str(caught.value)
        assert not (tmp_path / "cache" / "apps").exists()


def test_rootfs_format_holds_spin_toml_and_its_files(repo: Path, registry: Registry, tmp_path: Path) -> None:
    code, out, err = publish_cli(
        str(repo / "apps" / "hello"),
        "--registry",
        registry.ref("team/rootfs"),
        "--format",
        "rootfs",
        "--tag",
        "v1",
        "-o",
        "json",
    )
    assert code == 0, err
    doc = json.loads(out)
    with RegistryClient() as client:
        assert client.manifest_digest(registry.ref("team/rootfs:v1")) == doc["digest"]
        client.pull(doc["reference"], tmp_path / "layout")
    import tarfile

    names = []
    manifest = json.loads((tmp_path / "layout" / "blobs" / "sha256" / doc["digest"][7:]).read_bytes())
    for layer in manifest["layers"]:
        with tarfile.open(tmp_path / "layout" / "blobs" / "sha256" / layer["digest"][7:]) as tar:
            names += tar.getnames()
    assert {"spin.toml", "hello.wasm", "static/page.html", "static/small.txt"} <= set(names)
