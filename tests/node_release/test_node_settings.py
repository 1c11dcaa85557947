"""Pointing the rendered installer Jobs at a pushed node-installer image and a Shim at a served
release tarball: SPINDLE_NODE_INSTALLER_IMAGE / SPINDLE_DOWNLOADER_IMAGE reach every command that
renders, `--node-installer-image` overrides them for `render`, and the Shim's tarball location and
sha256 go into the downloader's env."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import yaml

from renderers.settings import RenderSettings, from_environment

PUSHED = "127.0.0.1:5000/spindle/node-installer@sha256:" + "ab" * 32
SHIM = """\
apiVersion: runtime.spinkube.dev/v1alpha1
kind: Shim
metadata:
  name: spin-v2
spec:
  fetchStrategy:
    anonHttp:
      location: "http://10.0.0.5:8080/containerd-shim-spin-v2-linux-x86_64.tar.gz"
  runtimeClass:
    name: wasmtime-spin-v2
    handler: spin-v2
  rolloutStrategy:
    type: recreate
"""
NODES = """\
apiVersion: v1
kind: List
items:
  - apiVersion: v1
    kind: Node
    metadata:
      name: node-a
    status:
      nodeInfo: {operatingSystem: linux, architecture: amd64}
"""


def test_environment_overrides_only_what_it_names() -> None:
    base = RenderSettings()
    assert from_environment({}) == base
    assert from_environment({"SPINDLE_NODE_INSTALLER_IMAGE": f" {PUSHED} "}).node_installer_image == PUSHED
    both = from_environment({"SPINDLE_NODE_INSTALLER_IMAGE": PUSHED, "SPINDLE_DOWNLOADER_IMAGE": "dl:1"})
    assert (both.node_installer_image, both.downloader_image) == (PUSHED, "dl:1")
    assert from_environment({"SPINDLE_NODE_INSTALLER_IMAGE": "  "}) == base


def _render(repo: Path, *extra: str, env: dict[str, str] | None = None) -> list[dict[str, Any]]:
    proc = subprocess.run(
        [sys.executable, "-m", "reconciler.cli", "render", str(repo), "--nodes", str(repo / "nodes.yaml"),
         *extra], capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    return [doc for doc in yaml.safe_load_all(proc.stdout) if doc]


def _job(objects: list[dict[str, Any]]) -> dict[str, Any]:
    (job,) = [o for o in objects if o["kind"] == "Job"]
    spec: dict[str, Any] = job["spec"]["template"]["spec"]
    return spec


def test_rendered_jobs_use_the_pushed_image_and_the_served_tarball(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "shim.yaml").write_text(SHIM)
    (repo / "nodes.yaml").write_text(textwrap.dedent(NODES))
    (repo / ".spindleignore").write_text("nodes.yaml\n")
    pod = _job(_render(repo, env={"SPINDLE_NODE_INSTALLER_IMAGE": PUSHED}))
    (provisioner,) = pod["containers"]
    assert provisioner["image"] == PUSHED
    assert provisioner["args"] == ["install", "-H", "/mnt/node-root", "-r", "spin-v2"]
    (downloader,) = pod["initContainers"]
    env = {e["name"]: e["value"] for e in downloader["env"]}
    assert env["SHIM_LOCATION"] == "http://10.0.0.5:8080/containerd-shim-spin-v2-linux-x86_64.tar.gz"
    flag = _job(_render(repo, "--node-installer-image", "example.com/ni:2",
                        env={"SPINDLE_NODE_INSTALLER_IMAGE": PUSHED}))
    assert flag["containers"][0]["image"] == "example.com/ni:2"
