"""The node-installer image: a reproducible digest, the frozen installer as the entrypoint, the shim
in /assets, the host files the programs link; `spindle node image` writes it as an OCI layout tar
and `spindle node push` pushes it to a real `docker-registry` (htpasswd basic auth, a CA-signed TLS
registry, credentials from --password-stdin or a Docker config; a second push uploads nothing)."""

from __future__ import annotations

import base64
import io
import json
import shutil
import tarfile
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner
from node_release_testlib import EPOCH, PASSWORD, USER
from oci_testlib import Registry, issue, make_ca, run_registry

from oci.layout import read_layout
from oci.registry import RegistryClient
from reconciler.cli import cli
from reconciler.node import image, release


def _files(layer_blob: bytes) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(layer_blob), mode="r:gz") as tar:
        return {m.name: m for m in tar.getmembers()}


def _read(layer_blob: bytes, name: str) -> bytes:
    with tarfile.open(fileobj=io.BytesIO(layer_blob), mode="r:gz") as tar:
        handle = tar.extractfile(name)
        assert handle is not None
        return handle.read()


def test_image_is_reproducible_and_laid_out_for_the_installer_job(build_dir: Path) -> None:
    installer, shim = build_dir / "spindle-node-installer", build_dir / "containerd-shim-spin-v2"
    first = image.build_node_image(installer, shim, epoch=EPOCH)
    second = image.build_node_image(installer, shim, epoch=EPOCH)
    assert first.image.digest == second.image.digest
    assert first.image.manifest == second.image.manifest
    system, installer_layer, shim_layer = (layer.blob for layer in first.image.layers)
    assert set(_files(installer_layer)) == {"usr", "usr/local", "usr/local/bin", image.INSTALLER_PATH}
    assert _read(installer_layer, image.INSTALLER_PATH) == installer.read_bytes()
    # the shim layer is the release tarball itself, byte for byte; /assets links to its file
    tarball = build_dir / release.tarball_name(release.host_arch())
    assert shim_layer == tarball.read_bytes()
    assert first.tarball_sha256 == (build_dir / (tarball.name + ".sha256")).read_text().split()[0]
    assert set(_files(shim_layer)) == {image.SHIM_PATH}
    assert _read(shim_layer, image.SHIM_PATH) == shim.read_bytes()
    files = _files(system)
    link = files[image.SHIM_ASSET]
    assert link.issym() and link.linkname == "../containerd-shim-spin-v2"
    assert {"usr/bin/nsenter", "bin/sh"} <= set(files)
    assert files["tmp"].mode == 0o1777
    assert {m.mtime for m in files.values()} == {EPOCH}
    libs = {Path(p).name for p in first.libraries}
    assert {"libc.so.6", "libz.so.1"} <= libs and any(n.startswith("ld-linux") for n in libs)
    assert "libpython3.11.so.1.0" not in libs  # the bundles carry their own
    config = json.loads(first.image.config)
    assert config["config"]["Entrypoint"] == ["/usr/local/bin/spindle-node-installer"]
    assert config["config"]["Labels"]["org.opencontainers.image.title"] == "spindle-node-installer"
    assert config["rootfs"]["diff_ids"] == [layer.diff_id for layer in first.image.layers]


def test_spindle_node_image_writes_a_layout_tar(build_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "node.tar"
    result = CliRunner().invoke(cli, ["node", "image", "--from", str(build_dir), "--out", str(out),
                                      "--tag", "example.com/spin/node-installer:1"],
                                env={"SOURCE_DATE_EPOCH": str(EPOCH)})
    assert result.exit_code == 0, result.output
    expected = image.build_node_image(build_dir / "spindle-node-installer",
                                      build_dir / "containerd-shim-spin-v2", epoch=EPOCH).image.digest
    assert f"example.com/spin/node-installer:1@{expected}" in result.output
    loaded = read_layout(out, "example.com/spin/node-installer:1")
    assert loaded.root.descriptor.digest == expected


def test_image_from_a_directory_without_a_build_says_what_to_run(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["node", "image", "--from", str(tmp_path), "--out", str(tmp_path / "x")])
    assert result.exit_code == 1
    assert "spindle node build --out" in result.output


# -- push ----------------------------------------------------------------------------------------------


pytest_registry = pytest.mark.skipif(shutil.which("docker-registry") is None,
                                     reason="apt-get install -y docker-registry")


def _push(reference: str, build_dir: Path, *extra: str, password: str | None = PASSWORD) -> tuple[int, str]:
    args = ["node", "push", reference, "--from", str(build_dir), *extra]
    if password is not None:
        args += ["--username", USER, "--password-stdin"]
    result = CliRunner().invoke(cli, args, input=f"{password}\n" if password is not None else None,
                                env={"SOURCE_DATE_EPOCH": str(EPOCH)})
    return result.exit_code, result.output


@pytest.mark.slow
@pytest_registry
def test_push_uploads_once_then_skips_every_blob(basic_registry: Registry, build_dir: Path,
                                                  tmp_path: Path) -> None:
    ref = basic_registry.ref("spindle/node-installer:test")
    code, output = _push(ref, build_dir, "--plain-http")
    assert code == 0, output
    assert "4 blob(s) uploaded" in output and "0 already there" in output  # 3 layers + the config
    code, again = _push(ref, build_dir, "--plain-http")
    assert code == 0, again
    assert "0 blob(s) uploaded (0.0 MB), 4 already there" in again
    digest = image.build_node_image(build_dir / "spindle-node-installer",
                                    build_dir / "containerd-shim-spin-v2", epoch=EPOCH).image.digest
    assert f"@{digest}" in output and f"SPINDLE_NODE_INSTALLER_IMAGE={basic_registry.host}" in output
    pulled = RegistryClient(username=USER, password=PASSWORD).pull(ref, tmp_path / "pulled")
    assert pulled.digest == digest
    # the registry serves the release tarball: a Shim's fetchStrategy location
    tarball = build_dir / release.tarball_name(release.host_arch())
    sha = (build_dir / (tarball.name + ".sha256")).read_text().split()[0]
    url = f"http://{basic_registry.host}/v2/spindle/node-installer/blobs/sha256:{sha}"
    assert f"(a Shim's location, sha256 {sha}): {url}" in output
    request = urllib.request.Request(url, headers={"Authorization": "Basic " + base64.b64encode(
        f"{USER}:{PASSWORD}".encode()).decode()})
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.read() == tarball.read_bytes()


@pytest.mark.slow
@pytest_registry
def test_push_with_credentials_from_a_docker_config(basic_registry: Registry, build_dir: Path,
                                                     tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    config.write_text(json.dumps({"auths": {basic_registry.host: {"auth": token}}}))
    code, output = _push(basic_registry.ref("spindle/from-config:1"), build_dir, "--docker-config",
                         str(config), password=None)
    assert code == 0, output
    assert "pushed " in output


@pytest.mark.slow
@pytest_registry
def test_push_with_a_wrong_password_fails_with_exit_2(basic_registry: Registry, build_dir: Path) -> None:
    code, output = _push(basic_registry.ref("spindle/denied:1"), build_dir, password="wrong")
    assert code == 2
    assert basic_registry.host in output and "credentials" in output.lower()


@pytest.mark.slow
@pytest_registry
def test_push_over_tls_trusting_a_ca_file(build_dir: Path, tmp_path: Path) -> None:
    ca = make_ca(tmp_path)
    server = issue(ca, tmp_path, "registry")
    with run_registry(tmp_path / "tls-registry", tls=server) as registry:
        ref = registry.ref("spindle/tls:1")
        refused = _push(ref, build_dir, password=None)
        assert refused[0] == 2 and "certificate" in refused[1].lower()
        code, output = _push(ref, build_dir, "--ca-file", str(ca.cert_path), password=None)
        assert code == 0, output


def test_push_usage_errors(build_dir: Path) -> None:
    result = CliRunner().invoke(cli, ["node", "push", "127.0.0.1:1/x:1", "--from", str(build_dir),
                                      "--password-stdin"])
    assert result.exit_code == 2 and "--password-stdin needs --username" in result.output
    result = CliRunner().invoke(cli, ["node", "push", "Not A Reference", "--from", str(build_dir)])
    assert result.exit_code == 2
