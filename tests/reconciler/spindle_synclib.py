"""Shared pieces of the CLI and engine tests: a real kubesim (`kubesim_cluster`, behind the
`cluster` fixture in conftest.py), a real Git repo of Spin apps, the real `spindle` CLI run
in-process, real kubectl, and environments without any kubeconfig."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import git
from click.testing import CliRunner

from reconciler.cli import cli
from reconciler.kube import target
from reconciler.kube.client import KubeClient

EXECUTOR = """apiVersion: core.spinkube.dev/v1alpha1
kind: SpinAppExecutor
metadata:
  name: containerd-shim-spin
  namespace: apps
spec:
  createDeployment: true
  deploymentConfig:
    runtimeClassName: wasmtime-spin-v2
"""

NAMESPACE = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: apps\n"


def spinapp(name: str, image: str = "v1", replicas: int = 1) -> str:
    return (
        "apiVersion: core.spinkube.dev/v1alpha1\nkind: SpinApp\nmetadata:\n"
        f"  name: {name}\n  namespace: apps\nspec:\n  image: ghcr.io/example/{name}:{image}\n"
        f"  executor: containerd-shim-spin\n  replicas: {replicas}\n"
    )


@dataclass
class Cluster:
    kubeconfig: Path
    client: KubeClient
    url: str

    def kubectl(
        self, *args: str, editor: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "KUBECONFIG": str(self.kubeconfig)}
        if editor:
            env["KUBE_EDITOR"] = editor
        return subprocess.run(
            ["kubectl", *args], env=env, capture_output=True, text=True, check=check, timeout=60
        )

    def get(
        self, api_version: str, kind: str, name: str, namespace: str | None = "apps"
    ) -> dict[str, Any] | None:
        return self.client.get(api_version, kind, name, namespace)


@contextmanager
def kubesim_cluster(kubeconfig: Path, *, simulate_workloads: bool = True) -> Iterator[Cluster]:
    """A real kubesim (in memory, workloads simulated unless told otherwise) and a client of it;
    stopped on exit."""
    from kubesim import server

    running = server.start(":memory:", 0, simulate_workloads=simulate_workloads, simulate_delay=0.1)
    try:
        running.kubeconfig(kubeconfig)
        tgt = target.from_kubeconfig(str(kubeconfig))
        try:
            yield Cluster(kubeconfig, tgt.client, running.url)
        finally:
            tgt.close()
    finally:
        running.stop()


class Repo:
    """A real Git repository of Spin apps (one file per app)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.git = git.Repo.init(root, initial_branch="main")
        with self.git.config_writer() as cfg:
            cfg.set_value("user", "name", "Dev")
            cfg.set_value("user", "email", "dev@example.com")
            cfg.set_value("commit", "gpgsign", "false")

    def write(self, rel: str, text: str) -> None:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    def remove(self, rel: str) -> None:
        (self.root / rel).unlink()

    def commit(self, message: str) -> str:
        self.git.git.add("-A")
        self.git.index.commit(message)
        return self.git.head.commit.hexsha


def example_repo(root: Path, apps: tuple[str, ...] = ("alpha", "beta", "gamma")) -> Repo:
    repo = Repo(root)
    repo.write("namespace.yaml", NAMESPACE)
    repo.write("executor.yaml", EXECUTOR)
    for name in apps:
        repo.write(f"apps/{name}.yaml", spinapp(name))
    repo.commit("apps")
    return repo


def no_cluster_env(tmp_path: Path) -> dict[str, str | None]:
    """Overrides that leave spindle no kubeconfig and no in-cluster account, so it starts the
    embedded cluster under a fresh state directory (None removes a variable)."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    return {
        "HOME": str(home),
        "KUBECONFIG": None,
        "KUBERNETES_SERVICE_HOST": None,
        "SPINDLE_STATE_DIR": str(tmp_path / "state"),
        "XDG_STATE_HOME": None,
    }


def process_env(overrides: dict[str, str | None]) -> dict[str, str]:
    """This process's environment with `overrides` applied, for a child process."""
    merged = {**os.environ, **overrides}
    return {key: value for key, value in merged.items() if value is not None}


@dataclass
class Run:
    exit_code: int
    stdout: str
    stderr: str

    def json(self) -> dict[str, Any]:
        doc: dict[str, Any] = json.loads(self.stdout)
        return doc

    def actions(self) -> dict[str, str]:
        return {e["subject"]: e["action"] for e in self.json()["entries"]}


def spindle(*args: str, env: dict[str, str] | None = None) -> Run:
    result = CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)
    return Run(result.exit_code, result.stdout, result.stderr)


def apply_args(repo: Repo, cluster: Cluster, *extra: str, source: str | None = None) -> list[str]:
    """`spindle apply` of `repo` (or `source`) into `cluster`, not recorded in any history."""
    return [
        "apply", source or str(repo.root), "--kubeconfig", str(cluster.kubeconfig), "--no-history",
        "--timeout", "5", *extra,
    ]


def apply(
    repo: Repo, cluster: Cluster, *extra: str, source: str | None = None, env: dict[str, str] | None = None
) -> Run:
    return spindle(*apply_args(repo, cluster, "-o", "json", *extra, source=source), env=env)


def diff(repo: Repo, cluster: Cluster, *extra: str) -> Run:
    return spindle("diff", str(repo.root), "--kubeconfig", str(cluster.kubeconfig), *extra)
