"""Fixtures for the node artifact tests: the frozen programs (built once per source tree, see
node_build.py) and a `spindle node build` directory assembled from them. The helpers of
tests/shim_containerd (containerd_env, spin_images), tests/oci (oci_testlib: a real registry) and
tests/node_installer (the end-to-end installer test's containerd supervisor) are importable here."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent.parent
for helper_dir in ("shim_containerd", "oci", "node_installer"):
    if str(TESTS / helper_dir) not in sys.path:
        sys.path.insert(0, str(TESTS / helper_dir))

from node_build import can_freeze, frozen, installer_ready  # noqa: E402
from node_release_testlib import EPOCH, PASSWORD, USER  # noqa: E402
from oci_testlib import Registry, htpasswd_line, run_registry  # noqa: E402

from reconciler.node import freeze, release  # noqa: E402


@pytest.fixture(scope="session")
def shim_exe() -> Path:
    """The frozen containerd-shim-spin-v2 of this tree."""
    if (reason := can_freeze()) is not None:
        pytest.skip(f"cannot freeze on this machine: {reason}")
    return frozen(freeze.SHIM)


@pytest.fixture(scope="session")
def installer_exe() -> Path:
    """The frozen spindle-node-installer of this tree."""
    if not installer_ready():
        pytest.skip("node_installer.cli is not there yet")
    if (reason := can_freeze()) is not None:
        pytest.skip(f"cannot freeze on this machine: {reason}")
    return frozen(freeze.INSTALLER)


@pytest.fixture(scope="session")
def build_dir(shim_exe: Path, installer_exe: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What `spindle node build --out DIR` writes, from the cached executables."""
    out = tmp_path_factory.mktemp("node-build")
    shutil.copy2(shim_exe, out / freeze.SHIM.name)
    shutil.copy2(installer_exe, out / freeze.INSTALLER.name)
    release.write_release(out / freeze.SHIM.name, out, release.host_arch(), epoch=EPOCH)
    return out


@pytest.fixture(scope="session")
def basic_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """Debian's docker-registry on 127.0.0.1 with htpasswd (bcrypt) basic auth for USER/PASSWORD."""
    if shutil.which("docker-registry") is None:
        pytest.skip("docker-registry is not installed (apt-get install -y docker-registry)")
    root = tmp_path_factory.mktemp("registry")
    (root / "htpasswd").write_text(htpasswd_line(USER, PASSWORD) + "\n")
    auth = f"auth:\n  htpasswd:\n    realm: spindle-node\n    path: {root / 'htpasswd'}\n"
    with run_registry(root, auth=auth) as registry:
        yield registry
