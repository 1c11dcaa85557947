"""Benchmark: render 1,000 SpinApps and 1,000 Spin projects.

    python3 bench/render.py [--apps N] [--projects N] [--repeat R]

Generates a repo in a temp dir (one SpinApp YAML per app with variables, resources, probes and
a key-value store; one Spin project per project with a `[application.tool.spindle]` table),
then times, best of R:

* render only      the pure pipeline over an already discovered tree (SpinApps);
* discover+render  what `spindle render` does, for the SpinApps directory;
* full repo        SpinApps and Spin projects together;
* peer             yaml.safe_load (libyaml CSafeLoader) of the same SpinApp files, i.e. only
                   reading them, no validation or rendering.

Prints objects per second and the ratio to the peer. Goal: 1,000 SpinApps render in < 1 s.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from renderers.discovery import discover
from renderers.render import render
from renderers.settings import RenderSettings

EXECUTOR = """\
apiVersion: core.spinkube.dev/v1alpha1
kind: SpinAppExecutor
metadata: {name: containerd-shim-spin, namespace: bench}
spec:
  createDeployment: true
  deploymentConfig: {runtimeClassName: wasmtime-spin-v2, installDefaultCACerts: true}
"""

APP = """\
apiVersion: core.spinkube.dev/v1alpha1
kind: SpinApp
metadata:
  name: app-{i:04d}
  namespace: bench
spec:
  image: ghcr.io/example/app-{i:04d}:v1
  executor: containerd-shim-spin
  replicas: 2
  variables:
  - name: greeting
    value: hello {i}
  - name: token
    valueFrom:
      secretKeyRef: {{name: app-secrets, key: token}}
  resources:
    limits: {{cpu: 100m, memory: 128Mi}}
  checks:
    readiness:
      httpGet: {{path: /healthz}}
  podLabels: {{team: bench}}
  runtimeConfig:
    keyValueStores:
    - name: default
      type: redis
      options:
      - {{name: url, value: "redis://redis.bench:6379/{i}"}}
"""

SPIN_TOML = """\
spin_manifest_version = 2

[application]
name = "proj-{i:04d}"
version = "1.0.0"

[application.tool.spindle]
image = "ghcr.io/example/proj-{i:04d}:v1"
namespace = "bench-projects"
replicas = 2
variables = {{ greeting = "hi" }}

[variables]
greeting = {{ default = "hello" }}

[[trigger.http]]
route = "/..."
component = "web"

[component.web]
source = "web.wasm"
[component.web.variables]
greeting = "{{{{ greeting }}}}"
"""


def generate(root: Path, apps: int, projects: int) -> None:
    (root / "apps").mkdir()
    (root / "apps" / "executor.yaml").write_text(EXECUTOR)
    for i in range(apps):
        (root / "apps" / f"app-{i:04d}.yaml").write_text(APP.format(i=i))
    (root / "projects").mkdir()
    (root / "projects" / "executor.yaml").write_text(EXECUTOR.replace("bench", "bench-projects"))
    for i in range(projects):
        project = root / "projects" / f"proj-{i:04d}"
        project.mkdir()
        (project / "spin.toml").write_text(SPIN_TOML.format(i=i))
        (project / "web.wasm").write_bytes(b"\0asm\1\0\0\0")


def best_of(repeat: int, fn: Callable[[], Any]) -> tuple[float, Any]:
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--apps", type=int, default=1000)
    parser.add_argument("--projects", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    settings = RenderSettings(include_crds=False)

    with tempfile.TemporaryDirectory(prefix="spindle-bench-") as tmp:
        root = Path(tmp)
        generate(root, args.apps, args.projects)
        files = sorted((root / "apps").glob("*.yaml"))

        def peer() -> int:
            return sum(len(list(yaml.load_all(f.read_bytes(), Loader=yaml.CSafeLoader))) for f in files)

        tree = discover(root, "apps")
        render(tree, settings=settings)  # warm caches (compiled validators, CA bundle)
        t_render, res = best_of(args.repeat, lambda: render(tree, settings=settings))
        assert not res.errors, res.errors[:3]
        t_apps, res_apps = best_of(args.repeat, lambda: render(discover(root, "apps"), settings=settings))
        t_full, res_full = best_of(args.repeat, lambda: render(discover(root), settings=settings))
        assert not res_full.errors, res_full.errors[:3]
        t_peer, _ = best_of(args.repeat, peer)

    def line(label: str, seconds: float, objects: int) -> None:
        print(f"{label:<34} {seconds * 1000:8.1f} ms  {objects:6d} objects  "
              f"{objects / seconds:9.0f} obj/s  {seconds / t_peer:5.2f}x peer")

    print(f"{args.apps} SpinApps, {args.projects} Spin projects (best of {args.repeat})")
    line("peer: yaml.safe_load SpinApp files", t_peer, len(files))
    line("render only (SpinApps)", t_render, len(res.objects))
    line("discover+render (SpinApps)", t_apps, len(res_apps.objects))
    line("discover+render (apps + projects)", t_full, len(res_full.objects))
    verdict = "OK" if t_apps < 1.0 else "SLOW"
    print(f"goal: {args.apps} SpinApps discover+render < 1 s: {t_apps:.3f} s {verdict}")


if __name__ == "__main__":
    main()
