"""End to end: Spin projects committed to a Git remote, `spindle apply` of the remote publishes them to a
real docker-registry and pins the SpinApps by digest in a real kubesim, checked with real kubectl; a second
apply pushes nothing, a commit elsewhere keeps the digest, a commit changing the Wasm rolls it, and a push
the registry refuses fails that app only and prunes nothing."""

from __future__ import annotations

import base64
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from oci_testlib import Registry, htpasswd_line, run_registry
from publishlib import commit_all, git, init_repo, wagi_wasm, write_project
from spindle_synclib import EXECUTOR, NAMESPACE, Cluster, Run, kubesim_cluster, spindle

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("docker-registry") is None, reason="apt-get install -y docker-registry"),
    pytest.mark.skipif(shutil.which("kubectl") is None, reason="apt-get install -y kubernetes-client"),
]

USER, PASSWORD = "bob", "builder-pass"


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    with kubesim_cluster(tmp_path / "kubeconfig") as running:
        yield running


@pytest.fixture(scope="module")
def locked_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    root = tmp_path_factory.mktemp("locked")
    (root / "htpasswd").write_text(htpasswd_line(USER, PASSWORD) + "\n")
    auth = f"auth:\n  htpasswd:\n    realm: spindle-e2e\n    path: {root / 'htpasswd'}\n"
    with run_registry(root, auth=auth) as running:
        yield running


class Remote:
    """A bare Git remote and the work clone that commits to it."""

    def __init__(self, root: Path) -> None:
        self.bare = root / "remote.git"
        self.bare.mkdir(parents=True)
        git(self.bare, "init", "--quiet", "--bare", "--initial-branch=main")
        self.work = init_repo(root / "work")
        git(self.work, "remote", "add", "origin", str(self.bare))

    @property
    def url(self) -> str:
        return self.bare.as_uri()

    def commit(self, message: str) -> str:
        sha = commit_all(self.work, message)
        git(self.work, "push", "--quiet", "origin", "main")
        return sha


def _apply(remote: Remote, cluster: Cluster, tmp_path: Path, *extra: str) -> Run:
    env = {"SPINDLE_STATE_DIR": str(tmp_path / "state"), "DOCKER_CONFIG": str(tmp_path / "docker")}
    args = [
        "apply",
        remote.url,
        "--kubeconfig",
        str(cluster.kubeconfig),
        "--no-history",
        "--timeout",
        "5",
        "-o",
        "json",
        *extra,
    ]
    return spindle(*args, env=env)


def _published(run: Run) -> dict[str, dict[str, Any]]:
    return {p["project"]: p for p in run.json()["published"]}


def _image(cluster: Cluster, kind: str, name: str) -> str:
    if kind == "SpinApp":
        out = cluster.kubectl("get", "spinapp", name, "-n", "apps", "-o", "jsonpath={.spec.image}")
        return out.stdout
    deployment = cluster.get("apps/v1", "Deployment", name)
    assert deployment is not None
    return str(deployment["spec"]["template"]["spec"]["containers"][0]["image"])


def test_apply_publishes_pins_pushes_nothing_twice_and_rolls_on_a_wasm_change(
    tmp_path: Path, cluster: Cluster, registry: Registry
) -> None:
    remote = Remote(tmp_path / "git")
    (remote.work / "namespace.yaml").write_text(NAMESPACE)
    (remote.work / "executor.yaml").write_text(EXECUTOR)
    write_project(remote.work, "hello", "hello v1", publish=registry.ref("e2e/hello"))
    first_sha = remote.commit("hello v1")

    first = _apply(remote, cluster, tmp_path)
    assert first.exit_code == 0, first.stdout + first.stderr
    pub = _published(first)["apps/hello/spin.toml"]
    assert pub["pushed"] and pub["commit"] == first_sha and not pub["error"]
    assert pub["reference"] == f"{registry.host}/e2e/hello@{pub['digest']}"
    assert _image(cluster, "SpinApp", "hello") == pub["reference"]  # what kubectl shows
    assert _image(cluster, "Deployment", "hello") == pub["reference"]
    assert first.actions()["Deployment/apps/hello"] == "Created"

    second = _apply(remote, cluster, tmp_path)
    assert second.exit_code == 0
    assert not _published(second)["apps/hello/spin.toml"]["pushed"]
    assert set(second.actions().values()) == {"Unchanged"}

    (remote.work / "README.md").write_text("docs only\n")
    remote.commit("docs")
    third = _apply(remote, cluster, tmp_path)
    assert _published(third)["apps/hello/spin.toml"]["digest"] == pub["digest"]
    assert _published(third)["apps/hello/spin.toml"]["commit"] == first_sha  # the commit that made it
    assert set(third.actions().values()) == {"Unchanged"}

    (remote.work / "apps" / "hello" / "hello.wasm").write_bytes(wagi_wasm("hello v2"))
    second_sha = remote.commit("hello v2")
    drift = spindle(
        "diff",
        remote.url,
        "--kubeconfig",
        str(cluster.kubeconfig),
        "-o",
        "json",
        env={"SPINDLE_STATE_DIR": str(tmp_path / "state")},
    )
    assert drift.exit_code == 1  # the diff computes the new digest without pushing it
    fourth = _apply(remote, cluster, tmp_path)
    assert fourth.exit_code == 0, fourth.stdout
    rolled = _published(fourth)["apps/hello/spin.toml"]
    assert rolled["digest"] != pub["digest"] and rolled["pushed"] and rolled["commit"] == second_sha
    assert fourth.actions()["Deployment/apps/hello"] == "Configured"
    assert _image(cluster, "Deployment", "hello") == rolled["reference"]
    assert rolled["digest"] in json.dumps(json.loads(drift.stdout)["published"])


def test_a_refused_push_fails_that_app_only_and_prunes_nothing(
    tmp_path: Path, cluster: Cluster, registry: Registry, locked_registry: Registry
) -> None:
    docker = tmp_path / "docker"
    docker.mkdir()
    encoded = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    (docker / "config.json").write_text(json.dumps({"auths": {locked_registry.host: {"auth": encoded}}}))
    remote = Remote(tmp_path / "git")
    (remote.work / "namespace.yaml").write_text(NAMESPACE)
    (remote.work / "executor.yaml").write_text(EXECUTOR)
    write_project(remote.work, "good", "good", publish=registry.ref("e2e/good"))
    write_project(remote.work, "locked", "locked v1", publish=locked_registry.ref("e2e/locked"))
    remote.commit("two apps")
    first = _apply(remote, cluster, tmp_path)
    assert first.exit_code == 0, first.stdout
    locked_image = _image(cluster, "Deployment", "locked")

    (docker / "config.json").write_text("{}")  # the credentials are gone
    (remote.work / "apps" / "locked" / "locked.wasm").write_bytes(wagi_wasm("locked v2"))
    (remote.work / "apps" / "good" / "good.wasm").write_bytes(wagi_wasm("good v2"))
    remote.commit("both change")
    run = _apply(remote, cluster, tmp_path)
    assert run.exit_code == 2
    doc = run.json()
    failed = _published(run)["apps/locked/spin.toml"]
    assert failed["error"] and not failed["reference"]
    assert any(
        "apps/locked/spin.toml" in e and locked_registry.host in e and "authentication required" in e
        for e in doc["errors"]
    ), doc["errors"]
    assert run.actions()["Deployment/apps/good"] == "Configured"  # the other app still rolls
    assert "Pruned" not in run.actions().values()
    assert _image(cluster, "Deployment", "locked") == locked_image  # keeps running what it ran
    assert cluster.get("v1", "Service", "locked") is not None
