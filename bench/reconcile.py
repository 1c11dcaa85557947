"""Benchmark: spindle's reconcile against `kubectl apply --server-side`, on one kubesim.

    python3 bench/reconcile.py [--apps 1000] [--concurrency 8]

One in-process kubesim (SQLite in a temp dir), one repo of N SpinApps (about 3 objects each once
rendered). In one run, on the same machine:

  (a) first apply: `kubectl apply --server-side -f` of the rendered manifests (namespace
      bench-kubectl) versus spindle's first reconcile of the same repo (namespace
      bench-spindle): the ratio kubectl / spindle (goal ≥ 3);
  (b) no-op reconcile: wall time and API requests (goal < 1 s, about one request per kind);
  (c) one app changed out of N: wall time, requests, and which objects were configured.

The CRDs are installed before (a) so neither side pays for them. Prints the numbers and ratios.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import yaml

from reconciler import engine
from reconciler.kube import target

EXECUTOR = """apiVersion: core.spinkube.dev/v1alpha1
kind: SpinAppExecutor
metadata:
  name: containerd-shim-spin
spec:
  createDeployment: true
  deploymentConfig:
    runtimeClassName: wasmtime-spin-v2
"""


# Start kubesim over a SQLite file, write its kubeconfig, say "ready", serve until stdin closes.
SERVE = """
import sys
from kubesim import server
running = server.start(sys.argv[1], 0)
running.kubeconfig(sys.argv[2])
print("ready", flush=True)
sys.stdin.read()
running.stop()
"""


def write_repo(
    root: Path, namespace: str, apps: int, image_tag: str = "v1", changed: int | None = None
) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / "namespace.yaml").write_text(f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {namespace}\n")
    (root / "executor.yaml").write_text(
        EXECUTOR.replace("metadata:\n", f"metadata:\n  namespace: {namespace}\n", 1)
    )
    docs = []
    for i in range(apps):
        tag = "v2" if changed == i else image_tag
        docs.append(
            "apiVersion: core.spinkube.dev/v1alpha1\nkind: SpinApp\nmetadata:\n"
            f"  name: app-{i:04d}\n  namespace: {namespace}\nspec:\n"
            f"  image: ghcr.io/example/app-{i:04d}:{tag}\n  executor: containerd-shim-spin\n  replicas: 1\n"
        )
    (root / "apps.yaml").write_text("---\n".join(docs))


def rendered(root: Path) -> list[dict]:  # type: ignore[type-arg]
    out = engine.default_renderer(root, engine.RenderRequest(None, engine.Mode.RENDER, []))
    if out.errors:
        raise SystemExit(f"render errors: {out.errors[:3]}")
    return [o for o, _ in out.objects]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--apps", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="spindle-bench-"))
    kubeconfig = tmp / "kubeconfig"
    # kubesim runs in its own process, as an API server does: neither client shares its GIL.
    served = subprocess.Popen(
        [sys.executable, "-c", SERVE, str(tmp / "kubesim.db"), str(kubeconfig)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert served.stdout is not None
    if served.stdout.readline().strip() != "ready":
        raise SystemExit("kubesim did not start")
    env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
    try:
        kubectl_repo, spindle_repo = tmp / "kubectl-repo", tmp / "spindle-repo"
        write_repo(kubectl_repo, "bench-kubectl", args.apps)
        write_repo(spindle_repo, "bench-spindle", args.apps)
        objs = rendered(kubectl_repo)
        crds = [o for o in objs if o["kind"] == "CustomResourceDefinition"]
        rest = [o for o in objs if o["kind"] != "CustomResourceDefinition"]
        (tmp / "crds.yaml").write_text(yaml.safe_dump_all(crds))
        (tmp / "manifests.yaml").write_text(yaml.safe_dump_all(rest))
        subprocess.run(
            ["kubectl", "apply", "--server-side", "-f", str(tmp / "crds.yaml")],
            env=env,
            check=True,
            capture_output=True,
        )
        kinds = Counter(o["kind"] for o in rest)
        print(f"{args.apps} SpinApps → {len(rest)} objects per side ({dict(kinds)})")

        t0 = time.perf_counter()
        subprocess.run(
            ["kubectl", "apply", "--server-side", "-f", str(tmp / "manifests.yaml")],
            env=env,
            check=True,
            capture_output=True,
        )
        kubectl_s = time.perf_counter() - t0

        tgt = target.from_kubeconfig(str(kubeconfig))
        client = tgt.client
        opts = engine.Options(timeout=0, concurrency=args.concurrency, events=True)

        def reconcile(label: str) -> tuple[float, int, engine.Result]:
            before = client.requests
            start = time.perf_counter()
            result = engine.run(spindle_repo, source_name="bench", revision=None, options=opts, client=client)
            elapsed = time.perf_counter() - start
            counts = Counter(o.action.value for o in result.outcomes)
            print(f"  spindle {label}: {elapsed:.2f} s, {client.requests - before} requests, {dict(counts)}")
            if result.record.errors:
                print(f"    errors: {result.record.errors[:3]}")
            return elapsed, client.requests - before, result

        first_s, _, _ = reconcile("first apply")
        kinds_n = len({(o["apiVersion"], o["kind"]) for o in objs})
        noop_s, noop_req, _ = reconcile("no-op")
        write_repo(spindle_repo, "bench-spindle", args.apps, changed=args.apps // 2)
        one_s, one_req, one = reconcile("one app changed")
        configured = [o.subject for o in one.outcomes if o.action.value == "Configured"]

        print()
        print(
            f"(a) first apply: kubectl --server-side {kubectl_s:.2f} s, spindle {first_s:.2f} s "
            f"→ spindle is {kubectl_s / first_s:.2f}x faster (goal ≥ 3x)"
        )
        print(
            f"(b) no-op reconcile: {noop_s:.3f} s (goal < 1 s), {noop_req} requests for {kinds_n} kinds "
            f"→ {noop_req / kinds_n:.2f} requests per kind; vs first apply {first_s / noop_s:.1f}x faster"
        )
        print(
            f"(c) one app changed of {args.apps}: {one_s:.3f} s, {one_req} requests, "
            f"configured {configured}; "
            f"vs first apply {first_s / one_s:.1f}x faster"
        )
        tgt.close()
    finally:
        assert served.stdin is not None
        served.stdin.close()
        served.wait(timeout=30)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
