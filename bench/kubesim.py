"""Benchmark: kubesim's server-side apply, dry-run apply and list throughput, over real HTTPS.

kubesim runs as its own process (`python -m kubesim`, SQLite file in a temp dir, WAL with synchronous=NORMAL)
so the clients do not share its interpreter. Each client is a process with one keep-alive
connection. Measured, with 1 client and with 4:

  * 3,000 SSA applies that create Deployments (PATCH application/apply-patch+yaml, 201)
  * 3,000 SSA applies that change each of them (200, a new resourceVersion)
  * 3,000 dry-run applies (dryRun=All)
  * lists of the 3,000 Deployments (each client count works in its own namespace)
  * the peer: GET /version (the server's floor cost per request)

Prints requests per second and the ratio to the peer. Goals: >= 1,000 SSA creates/s with one
client and >= 1,500 with four (each printed next to its GET /version peer).

    python bench/kubesim.py [--objects 3000] [--lists 20]
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import multiprocessing as mp
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "bench-token"


def deployments_path(namespace: str) -> str:
    return f"/apis/apps/v1/namespaces/{namespace}/deployments"


def deployment(name: str, replicas: int) -> bytes:
    return json.dumps(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "labels": {"app": name, "bench": "yes"}},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"app": name}},
                "template": {
                    "metadata": {"labels": {"app": name}},
                    "spec": {
                        "containers": [
                            {
                                "name": "web",
                                "image": "ghcr.io/example/app:1.0",
                                "ports": [{"containerPort": 80}],
                                "env": [{"name": "MODE", "value": "bench"}],
                            }
                        ]
                    },
                },
            },
        }
    ).encode()


class Client:
    def __init__(self, port: int, ca: str) -> None:
        ctx = ssl.create_default_context(cadata=ca)
        self.conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=60)

    def call(
        self, method: str, path: str, body: bytes | None = None, ctype: str = "application/json"
    ) -> tuple[int, bytes]:
        self.conn.request(
            method, path, body=body, headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": ctype}
        )
        resp = self.conn.getresponse()
        return resp.status, resp.read()


def worker(args: tuple[int, str, str, str, list[int], int]) -> tuple[float, int]:
    port, ca, namespace, op, indexes, repeat = args
    deploys = deployments_path(namespace)
    client = Client(port, ca)
    client.call("GET", "/version")  # connect and handshake outside the timed loop
    bad = 0
    start = time.perf_counter()
    for i in indexes:
        for _ in range(repeat):
            if op == "version":
                status, _ = client.call("GET", "/version")
            elif op == "list":
                status, _ = client.call("GET", deploys)
            else:
                replicas = 2 if op == "create" else 3
                query = "?fieldManager=bench" + ("&dryRun=All&force=true" if op == "dryrun" else "")
                status, _ = client.call(
                    "PATCH",
                    f"{deploys}/app-{i}{query}",
                    deployment(f"app-{i}", replicas),
                    "application/apply-patch+yaml",
                )
            bad += status >= 300
    return time.perf_counter() - start, bad


def run(port: int, ca: str, namespace: str, op: str, count: int, clients: int, repeat: int = 1) -> float:
    """Requests per second of `count` requests split over `clients` processes."""
    chunks = [list(range(k, count, clients)) for k in range(clients)]
    with mp.get_context("spawn").Pool(clients) as pool:
        start = time.perf_counter()
        results = pool.map(worker, [(port, ca, namespace, op, chunk, repeat) for chunk in chunks])
        wall = time.perf_counter() - start
    failures = sum(b for _, b in results)
    if failures:
        raise SystemExit(f"{op}: {failures} requests failed")
    # Wall time from the first request to the last answer (pool start-up excluded per worker).
    busy = max(t for t, _ in results)
    return count * repeat / min(busy, wall)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--objects", type=int, default=3000)
    parser.add_argument("--lists", type=int, default=20)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="kubesim-bench-"))
    kubeconfig = tmp / "kubeconfig"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kubesim",
            "--state",
            str(tmp / "state.db"),
            "--token",
            TOKEN,
            "--kubeconfig",
            str(kubeconfig),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.startswith("ready "):
            raise SystemExit(f"kubesim did not start: {line!r}")
        port = int(line.split(":")[-1])
        cfg: dict[str, Any] = yaml.safe_load(kubeconfig.read_text())
        ca = base64.b64decode(cfg["clusters"][0]["cluster"]["certificate-authority-data"]).decode()
        n = args.objects
        rows: list[tuple[str, float, float]] = []
        for clients in (1, 4):
            ns = f"bench-{clients}"
            namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}
            status, _ = Client(port, ca).call("POST", "/api/v1/namespaces", json.dumps(namespace).encode())
            if status != 201:
                raise SystemExit(f"could not create namespace {ns}: {status}")
            peer = run(port, ca, ns, "version", 2000, clients)
            create = run(port, ca, ns, "create", n, clients)
            change = run(port, ca, ns, "change", n, clients)
            dry = run(port, ca, ns, "dryrun", n, clients)
            listed = run(port, ca, ns, "list", clients, clients, repeat=max(1, args.lists // clients))
            rows += [
                (f"GET /version (peer), {clients} client(s)", peer, 1.0),
                (f"SSA apply, create, {clients} client(s)", create, create / peer),
                (f"SSA apply, change, {clients} client(s)", change, change / peer),
                (f"SSA dry-run apply, {clients} client(s)", dry, dry / peer),
                (f"list of {n} objects, {clients} client(s)", listed, listed / peer),
            ]
        print(f"{'operation':<44} {'req/s':>10} {'vs peer':>9}")
        for name, rps, ratio in rows:
            print(f"{name:<44} {rps:>10.1f} {ratio:>9.3f}")
        for clients, goal in ((1, 1000), (4, 1500)):
            got = next(r for n_, r, _ in rows if n_ == f"SSA apply, create, {clients} client(s)")
            peer = next(r for n_, r, _ in rows if n_ == f"GET /version (peer), {clients} client(s)")
            verdict = "met" if got >= goal else "NOT met"
            print(
                f"goal: >= {goal:,} SSA creates/s with {clients} client(s): {verdict} "
                f"({got:,.0f}/s; GET /version peer {peer:,.0f}/s)"
            )
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
