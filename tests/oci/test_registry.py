"""The registry client against real Debian `docker-registry` instances (anonymous, htpasswd basic auth,
JWT token auth, TLS with a test CA) plus small local servers for failures: a proxy that fails the first
requests, a server that serves wrong bytes, and a port nobody listens on."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
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

from oci.descriptors import INDEX_V1, MANIFEST_V1, Platform, canonical_json, host_architecture
from oci.errors import (
    AuthError,
    CredentialsError,
    DigestMismatch,
    NotFound,
    RegistryProtocolError,
    Unreachable,
)
from oci.layers import LayerEntry
from oci.layout import Image, ImageConfig, Layout, build_image, read_layout, write_layout, write_layout_tar
from oci.reference import Reference
from oci.registry import RegistryClient, pull, push_layout
from oci.transport import RetryPolicy

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("docker-registry") is None, reason="apt-get install -y docker-registry"),
]

FAST = RetryPolicy(attempts=4, initial_delay=0.01, max_delay=0.05)
USER, PASSWORD = "alice", "s3cret-pass"


def _image(seed: str, size: int = 2048) -> Image:
    payload = hashlib.sha256(seed.encode()).digest() * (size // 32 + 1)
    return build_image(
        [[LayerEntry.file("app/data.bin", payload[:size]), LayerEntry.file("app/seed", seed)]],
        ImageConfig(cmd=["/app/seed"], labels={"seed": seed}),
    )


def _layout(tmp_path: Path, image: Image, name: str = "app:1") -> Path:
    path = tmp_path / f"layout-{image.digest[7:19]}"
    write_layout(image, path, name)
    return path


# --- fixtures: real registries ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Issued]:
    directory = tmp_path_factory.mktemp("pki")
    ca = make_ca(directory)
    return {
        "ca": ca,
        "server": issue(ca, directory, "registry"),
        "signer": issue(ca, directory, "token-signer", server=False),
    }


@pytest.fixture(scope="module")
def anon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    with run_registry(tmp_path_factory.mktemp("anon")) as registry:
        yield registry


@pytest.fixture(scope="module")
def basic(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    root = tmp_path_factory.mktemp("basic")
    (root / "htpasswd").write_text(htpasswd_line(USER, PASSWORD) + "\n")
    auth = f"auth:\n  htpasswd:\n    realm: spindle-test\n    path: {root / 'htpasswd'}\n"
    with run_registry(root, auth=auth) as registry:
        yield registry


@pytest.fixture(scope="module")
def token(
    tmp_path_factory: pytest.TempPathFactory, pki: dict[str, Issued]
) -> Iterator[tuple[Registry, TokenIssuer]]:
    issuer = TokenIssuer(pki["signer"], "spindle-test-issuer", "spindle-test-registry", {USER: PASSWORD})
    with serve(TokenHandler, issuer=issuer) as server:
        auth = (
            "auth:\n  token:\n"
            f"    realm: http://{server_host(server)}/token\n"
            f"    service: {issuer.service}\n"
            f"    issuer: {issuer.issuer}\n"
            f"    rootcertbundle: {pki['ca'].cert_path}\n"
        )
        with run_registry(tmp_path_factory.mktemp("token"), auth=auth) as registry:
            yield registry, issuer


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory, pki: dict[str, Issued]) -> Iterator[Registry]:
    with run_registry(tmp_path_factory.mktemp("tls"), tls=pki["server"]) as registry:
        yield registry


@pytest.fixture
def proxy(anon: Registry) -> Iterator[tuple[str, ProxyState]]:
    state = ProxyState(upstream=anon.host)
    with serve(ProxyHandler, state=state) as server:
        yield server_host(server), state


@pytest.fixture(autouse=True)
def _no_docker_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "no-docker-config"))


# --- anonymous ----------------------------------------------------------------------------------------


def test_push_second_push_and_pull_roundtrip(anon: Registry, tmp_path: Path) -> None:
    image = _image("roundtrip", 50_000)
    layout = _layout(tmp_path, image)
    blob_bytes = image.config_descriptor.size + sum(layer.descriptor.size for layer in image.layers)
    with RegistryClient(retry=FAST) as client:
        first = client.push_layout(layout, anon.ref("team/roundtrip:1"))
        assert first.digest == image.digest
        assert (first.bytes_uploaded, first.blobs_uploaded, first.manifests_pushed) == (blob_bytes, 2, 1)
        assert first.reference == f"{anon.host}/team/roundtrip:1"

    with RegistryClient(retry=FAST) as client:  # a new client: nothing remembered
        second = client.push_layout(layout, anon.ref("team/roundtrip:1"))
        assert (second.bytes_uploaded, second.blobs_uploaded, second.manifests_pushed) == (0, 0, 0)
        assert (second.bytes_skipped, second.blobs_skipped) == (blob_bytes, 2)
        assert client.manifest_digest(anon.ref("team/roundtrip:1")) == image.digest

        pulled = client.pull(anon.ref("team/roundtrip:1"), tmp_path / "pulled")
        assert (pulled.digest, pulled.bytes_downloaded, pulled.blobs_downloaded) == (
            image.digest,
            blob_bytes,
            2,
        )
        again = client.pull(anon.ref("team/roundtrip:1"), tmp_path / "pulled")
        assert (again.bytes_downloaded, again.blobs_skipped) == (0, 2)

    read = read_layout(tmp_path / "pulled")
    assert read.name == f"{anon.host}/team/roundtrip:1"
    assert read.root.descriptor.digest == image.digest
    assert read.root.descriptor.platform == Platform(host_architecture(), "linux")
    assert (tmp_path / "pulled" / "blobs/sha256" / image.layers[0].descriptor.digest[7:]).read_bytes() == (
        image.layers[0].blob
    )

    # pull by digest through the module-level helpers, then push that layout elsewhere
    by_digest = pull(f"{anon.host}/team/roundtrip@{image.digest}", tmp_path / "by-digest", retry=FAST)
    assert by_digest.digest == image.digest
    pushed = push_layout(tmp_path / "by-digest", anon.ref("team/copy:v2"), retry=FAST)
    assert pushed.digest == image.digest
    write_layout_tar(image, tmp_path / "image.tar", "app:1")  # a layout tar is read in place
    from_tar = push_layout(tmp_path / "image.tar", anon.ref("team/copy:v2"), retry=FAST)
    assert (from_tar.digest, from_tar.bytes_uploaded, from_tar.manifests_pushed) == (image.digest, 0, 0)

    with pytest.raises(NotFound, match=rf"registry {anon.host}: manifest {anon.host}/team/roundtrip:nope"):
        RegistryClient(retry=FAST).pull(anon.ref("team/roundtrip:nope"), tmp_path / "x")


def test_monolithic_and_chunked_uploads(proxy: tuple[str, ProxyState], tmp_path: Path) -> None:
    host, state = proxy
    big = build_image([[LayerEntry.file("big.bin", os.urandom(200_000))]])
    layer = big.layers[0].descriptor
    with RegistryClient(retry=FAST, chunk_threshold=64 * 1024, chunk_size=48 * 1024) as client:
        result = client.push_image(big, f"{host}/team/chunked:1")
    assert result.blobs_uploaded == 2
    patches = [headers for method, _, headers in state.log if method == "PATCH"]
    ranges = [h["Content-Range"] for h in patches]
    expected, offset = [], 0
    while offset < layer.size:
        end = min(offset + 48 * 1024, layer.size) - 1
        expected.append(f"{offset}-{end}")
        offset = end + 1
    assert ranges == expected
    puts = [path for method, path, _ in state.log if method == "PUT" and "/blobs/uploads/" in path]
    assert len(puts) == 2 and all("digest=sha256" in path for path in puts)  # config: one PUT, no PATCH

    pulled = RegistryClient(retry=FAST).pull(f"{host}/team/chunked:1", tmp_path / "pulled")
    assert pulled.digest == big.digest
    assert read_layout(tmp_path / "pulled").root.layers == (layer,)


def test_cross_repository_mount(proxy: tuple[str, ProxyState], tmp_path: Path) -> None:
    host, state = proxy
    image = _image("mount")
    layout = _layout(tmp_path, image)
    with RegistryClient(retry=FAST) as client:
        client.push_layout(layout, f"{host}/team/source:1")
        state.log.clear()
        moved = client.push_layout(layout, f"{host}/team/target:1")  # remembered: mounts
    assert (moved.bytes_uploaded, moved.blobs_mounted, moved.blobs_uploaded) == (0, 2, 0)
    mounts = [path for method, path, _ in state.log if method == "POST"]
    assert len(mounts) == 2 and all("mount=sha256" in p and "from=team%2Fsource" in p for p in mounts)
    assert not [m for m, p, _ in state.log if m in ("PATCH",) or (m == "PUT" and "/blobs/" in p)]

    with RegistryClient(retry=FAST) as fresh:  # told where to mount from
        third = fresh.push_layout(layout, f"{host}/team/third:1", mount_from=["team/source"])
    assert (third.bytes_uploaded, third.blobs_mounted) == (0, 2)
    assert read_layout(layout).root.descriptor.digest == third.digest


def test_push_by_digest_and_pull_an_index(anon: Registry, tmp_path: Path) -> None:
    other_arch = "arm64" if host_architecture() != "arm64" else "amd64"
    native = _image("native")
    foreign = build_image([[LayerEntry.file("x", "foreign")]], ImageConfig(architecture=other_arch))
    repo = "team/multi"
    with RegistryClient(retry=FAST) as client:
        for image in (native, foreign):
            client.push_image(image, f"{anon.host}/{repo}@{image.digest}")
        index = canonical_json(
            {
                "schemaVersion": 2,
                "mediaType": INDEX_V1,
                "manifests": [native.manifest_descriptor.to_json(), foreign.manifest_descriptor.to_json()],
            }
        )
        index_digest = client.push_manifest(f"{anon.host}/{repo}:all", index, INDEX_V1)
        assert index_digest == "sha256:" + hashlib.sha256(index).hexdigest()

        host_pull = client.pull(f"{anon.host}/{repo}:all", tmp_path / "host")
        assert host_pull.digest == native.digest
        other_pull = client.pull(f"{anon.host}/{repo}:all", tmp_path / "other", platform=Platform(other_arch))
        assert other_pull.digest == foreign.digest
        entry = read_layout(tmp_path / "other").root.descriptor
        assert entry.platform == Platform(other_arch, "linux")
        assert entry.media_type == MANIFEST_V1

        with pytest.raises(DigestMismatch, match="the manifest pushed as"):
            client.push_image(native, f"{anon.host}/{repo}@{foreign.digest}")


# --- auth ---------------------------------------------------------------------------------------------


def test_basic_auth(basic: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    image = _image("basic")
    layout = _layout(tmp_path, image)
    with RegistryClient(username=USER, password=PASSWORD, retry=FAST) as client:
        assert client.push_layout(layout, basic.ref("team/basic:1")).digest == image.digest

    config_dir = tmp_path / "docker"
    config_dir.mkdir()
    encoded = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    (config_dir / "config.json").write_text(
        json.dumps({"auths": {f"https://{basic.host}": {"auth": encoded}}})
    )
    monkeypatch.setenv("DOCKER_CONFIG", str(config_dir))
    with RegistryClient(retry=FAST) as client:
        assert client.pull(basic.ref("team/basic:1"), tmp_path / "pulled").digest == image.digest

    with pytest.raises(
        AuthError, match=rf"registry {basic.host}: .*user 'alice' \(explicit credentials\) were rejected"
    ):
        RegistryClient(username=USER, password="wrong", retry=FAST).pull(
            basic.ref("team/basic:1"), tmp_path / "x"
        )

    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "none"))
    with pytest.raises(AuthError, match=rf"registry {basic.host}: .*no credentials were given"):
        RegistryClient(retry=FAST).pull(basic.ref("team/basic:1"), tmp_path / "x")

    (config_dir / "config.json").write_text(json.dumps({"credHelpers": {basic.host: "pass"}}))
    monkeypatch.setenv("DOCKER_CONFIG", str(config_dir))
    with pytest.raises(CredentialsError, match=r"docker-credential-pass.*not supported"):
        RegistryClient(retry=FAST).pull(basic.ref("team/basic:1"), tmp_path / "x")


def test_token_auth(token: tuple[Registry, TokenIssuer], tmp_path: Path) -> None:
    registry, issuer = token
    image = _image("token")
    layout = _layout(tmp_path, image)
    issuer.requests.clear()
    with RegistryClient(username=USER, password=PASSWORD, retry=FAST) as client:
        pushed = client.push_layout(layout, registry.ref("team/tok:1"))
        assert pushed.digest == image.digest
        fetched_for_push = len(issuer.requests)
        # one token per scope set, reused for every request with that scope (HEADs, uploads, manifest)
        assert fetched_for_push <= 3, issuer.requests
        mounted = client.push_layout(layout, registry.ref("team/tok-copy:1"))
        assert (mounted.blobs_mounted, mounted.bytes_uploaded) == (2, 0)
        assert any(
            "repository:team/tok:pull" in r["scopes"] and "repository:team/tok-copy:pull,push" in r["scopes"]
            for r in issuer.requests
        ), issuer.requests
        pulled = client.pull(registry.ref("team/tok-copy:1"), tmp_path / "pulled")
        assert pulled.digest == image.digest
    assert all(r["user"] == USER and r["ok"] for r in issuer.requests)

    with pytest.raises(
        AuthError, match=rf"registry {registry.host}: the token server http://.*/token refused user"
    ):
        RegistryClient(username=USER, password="nope", retry=FAST).pull(
            registry.ref("team/tok:1"), tmp_path / "x"
        )
    with pytest.raises(AuthError, match=rf"registry {registry.host}: manifest .*authentication required"):
        RegistryClient(retry=FAST).pull(registry.ref("team/tok:1"), tmp_path / "y")


def test_tls_with_custom_ca(tls: Registry, pki: dict[str, Issued], tmp_path: Path) -> None:
    image = _image("tls")
    with RegistryClient(ca_file=pki["ca"].cert_path, retry=FAST) as client:
        assert client.push_image(image, tls.ref("team/tls:1")).digest == image.digest
        assert client.transport(Reference.parse(tls.ref("x/y"))).base_url == f"https://{tls.host}"
        assert client.pull(tls.ref("team/tls:1"), tmp_path / "pulled").digest == image.digest
    with pytest.raises(
        Unreachable, match=rf"registry {tls.host}: .*TLS handshake .*(certificate|CERTIFICATE)"
    ):
        RegistryClient(retry=FAST).pull(tls.ref("team/tls:1"), tmp_path / "x")


# --- failures -----------------------------------------------------------------------------------------


def test_unreachable_registry(tmp_path: Path) -> None:
    host = f"127.0.0.1:{free_port()}"
    sleeps: list[float] = []
    with pytest.raises(
        Unreachable,
        match=rf"registry {host}: ping: GET https://{host}/v2/ failed after 4 tries: .*Connection refused",
    ):
        RegistryClient(
            retry=RetryPolicy(attempts=4, initial_delay=0.5, max_delay=1.0), sleep=sleeps.append
        ).pull(f"{host}/team/app:1", tmp_path / "x")
    assert sleeps == [0.5, 1.0, 1.0]


def test_500_then_recovers_and_retry_after(proxy: tuple[str, ProxyState], tmp_path: Path) -> None:
    host, state = proxy
    image = _image("flaky")
    sleeps: list[float] = []
    state.fail_next = 3
    with RegistryClient(sleep=sleeps.append) as client:  # the default policy, with a fake clock
        assert client.push_image(image, f"{host}/team/flaky:1").digest == image.digest
        assert sleeps == [0.5, 1.0, 2.0]
        sleeps.clear()
        state.fail_next, state.fail_status, state.retry_after = 1, 429, "3"
        assert client.pull(f"{host}/team/flaky:1", tmp_path / "pulled").digest == image.digest
        assert sleeps == [3.0]
        state.fail_next, state.fail_status, state.retry_after = 100, 503, None
        with pytest.raises(
            RegistryProtocolError, match=rf"registry {host}: manifest .*HTTP 503 \(UNAVAILABLE"
        ):
            client.pull(f"{host}/team/flaky:1", tmp_path / "again")
    state.fail_next = 0


def test_digest_mismatch_on_pull(tmp_path: Path) -> None:
    image = _image("liar")
    layer = image.layers[0]
    tampered = bytearray(layer.blob)
    tampered[-5] ^= 0xFF
    manifest_headers = {"Content-Type": MANIFEST_V1, "Docker-Content-Digest": image.digest}
    routes = {
        "/v2/": (200, {"Content-Type": "application/json"}, b"{}"),
        "/v2/bad/app/manifests/1": (200, manifest_headers, image.manifest),
        f"/v2/bad/app/blobs/{image.config_descriptor.digest}": (200, {}, image.config),
        f"/v2/bad/app/blobs/{layer.descriptor.digest}": (200, {}, bytes(tampered)),
        f"/v2/bad/app/manifests/{layer.descriptor.digest}": (
            200,
            {"Content-Type": MANIFEST_V1},
            image.manifest,
        ),
        "/v2/bad/lying/manifests/1": (
            200,
            {**manifest_headers, "Docker-Content-Digest": layer.descriptor.digest},
            image.manifest,
        ),
    }
    with serve(StaticHandler, routes=routes) as server:
        host = server_host(server)
        client = RegistryClient(retry=FAST)
        dest = tmp_path / "pulled"
        with pytest.raises(DigestMismatch, match=rf"blob {layer.descriptor.digest} from registry {host}"):
            client.pull(f"{host}/bad/app:1", dest)
        blobs = sorted(p.name for p in (dest / "blobs" / "sha256").iterdir())
        assert blobs == [image.config_descriptor.digest[7:]]  # the bad layer and no temp file left behind
        with pytest.raises(
            DigestMismatch, match=rf"blob {layer.descriptor.digest} from registry {host} \(manifest"
        ):
            client.pull(f"{host}/bad/lying:1", tmp_path / "lying")
        with pytest.raises(DigestMismatch, match="content hashes to"):
            client.pull(f"{host}/bad/app@{layer.descriptor.digest}", tmp_path / "pinned")


def test_push_refuses_a_corrupted_layout(anon: Registry, tmp_path: Path) -> None:
    image = _image("corrupt")
    layout = _layout(tmp_path, image)
    blob = layout / "blobs" / "sha256" / image.layers[0].descriptor.digest[7:]
    data = bytearray(blob.read_bytes())
    data[0] ^= 0xFF
    blob.write_bytes(bytes(data))
    with pytest.raises(DigestMismatch, match=image.layers[0].descriptor.digest):
        RegistryClient(retry=FAST).push_layout(layout, anon.ref("team/corrupt:1"))
    with Layout(layout) as opened:
        assert [e.digest for e in opened.entries()] == [image.digest]
