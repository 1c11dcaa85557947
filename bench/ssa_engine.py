"""Micro benchmark of the pure SSA engine (kubesim.ssa) on a typical Deployment.

Prints operations per second for: a first apply (create), a no-op re-apply (the steady state of a
reconciler: nothing changed, so no defaulting and no new managedFields), a changing re-apply
(image bump), an Update (PUT) — and, as the peer measured in the same process, a plain
deep copy + JSON round-trip of the same object.  Run: python3 bench/ssa_engine.py [seconds]
"""

from __future__ import annotations

import copy
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# Run as a script, bench/ is first on sys.path and bench/kubesim.py would shadow the package.
sys.path[0] = str(Path(__file__).resolve().parents[1])

from kubesim import ssa  # noqa: E402
from kubesim.schema import schema_for  # noqa: E402

SCHEMA = schema_for("apps/v1", "Deployment")
assert SCHEMA is not None


def deployment(image: str) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "web",
            "namespace": "default",
            "labels": {"app": "web", "tier": "frontend"},
            "annotations": {"spindle.dev/source": "git@example/repo#main"},
        },
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web", "tier": "frontend"}},
                "spec": {
                    "runtimeClassName": "wasmtime-spin-v2",
                    "containers": [
                        {
                            "name": "web",
                            "image": image,
                            "command": ["/"],
                            "ports": [{"containerPort": 80, "name": "http"}],
                            "env": [
                                {"name": "A", "value": "1"},
                                {"name": "B", "value": "2"},
                                {
                                    "name": "POD",
                                    "valueFrom": {
                                        "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}
                                    },
                                },
                            ],
                            "resources": {"limits": {"cpu": "100m", "memory": "128Mi"}},
                            "readinessProbe": {"httpGet": {"path": "/healthz", "port": 80}},
                            "volumeMounts": [{"name": "cfg", "mountPath": "/cfg"}],
                        }
                    ],
                    "volumes": [{"name": "cfg", "configMap": {"name": "web-cfg"}}],
                },
            },
        },
    }


def rate(fn: Callable[[], Any], seconds: float) -> float:
    n = 0
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        for _ in range(20):
            fn()
        n += 20
        now = time.perf_counter()
        if now >= deadline:
            return n / (now - start)


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0
    cfg_a, cfg_b = deployment("ghcr.io/x/web:1.0"), deployment("ghcr.io/x/web:1.1")
    t = "2026-01-01T00:00:00Z"
    live = ssa.apply(
        None, cfg_a, manager="spindle", api_version="apps/v1", force=True, schema=SCHEMA, now=t
    ).object
    live = ssa.update(
        live,
        {**live, "status": {"replicas": 3}},
        manager="kube-controller-manager",
        api_version="apps/v1",
        schema=SCHEMA,
        now=t,
        subresource="status",
    ).object
    cases: dict[str, Callable[[], Any]] = {
        "peer: deepcopy + json round-trip": lambda: json.loads(json.dumps(copy.deepcopy(live))),
        "apply create": lambda: ssa.apply(
            None, cfg_a, manager="spindle", api_version="apps/v1", force=True, schema=SCHEMA, now=t
        ),
        "apply no-op": lambda: ssa.apply(
            live, cfg_a, manager="spindle", api_version="apps/v1", force=True, schema=SCHEMA, now=t
        ),
        "apply change image": lambda: ssa.apply(
            live, cfg_b, manager="spindle", api_version="apps/v1", force=True, schema=SCHEMA, now=t
        ),
        "update (PUT) replicas": lambda: ssa.update(
            live,
            {**live, "spec": {**live["spec"], "replicas": 5}},
            manager="kubectl",
            api_version="apps/v1",
            schema=SCHEMA,
            now=t,
        ),
    }
    peer = 0.0
    print(f"{'case':36} {'ops/s':>10} {'ms/op':>8} {'vs peer':>8}")
    for name, fn in cases.items():
        r = rate(fn, seconds)
        if name.startswith("peer"):
            peer = r
        print(f"{name:36} {r:10.0f} {1000 / r:8.3f} {peer / r:7.2f}x")


if __name__ == "__main__":
    main()
