"""Concurrent clients on the same objects: no 5xx, no lost update, no deadlock (bounded in time)."""

from __future__ import annotations

import random
import threading
from typing import Any

from kubesim_fixtures import Raw, deployment

from kubesim import server as kserver

DEPLOYS = "/apis/apps/v1/namespaces/default/deployments"
CMS = "/api/v1/namespaces/default/configmaps"
APPLY = "application/apply-patch+yaml"


def test_mixed_concurrent_load(running: kserver.RunningServer) -> None:
    errors: list[Any] = []
    counters = {"ok": 0}
    lock = threading.Lock()

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        client = Raw(running)
        for i in range(150):
            name = f"cc-{rng.randint(0, 5)}"
            op = rng.choice(["apply", "patch", "delete", "list", "get", "crd", "ns"])
            if op == "apply":
                status, doc = client.request(
                    "PATCH",
                    f"{DEPLOYS}/{name}?fieldManager=m{seed}&force=true",
                    deployment(name, replicas=rng.randint(1, 5)),
                    APPLY,
                )
            elif op == "patch":
                status, doc = client.request(
                    "PATCH",
                    f"{DEPLOYS}/{name}",
                    {"metadata": {"labels": {"w": str(i)}}},
                    "application/merge-patch+json",
                )
            elif op == "delete":
                status, doc = client.request(
                    "DELETE", f"{DEPLOYS}/{name}", {"propagationPolicy": "Foreground"}
                )
            elif op == "list":
                status, doc = client.request("GET", f"{DEPLOYS}?labelSelector=app")
            elif op == "crd":
                status, doc = client.request("GET", "/openapi/v3/apis/apps/v1")
            elif op == "ns":
                status, doc = client.request("GET", "/apis")
            else:
                status, doc = client.request("GET", f"{DEPLOYS}/{name}")
            with lock:
                if status >= 500 or status in (400, 415, 422):
                    errors.append((op, status, doc))
                else:
                    counters["ok"] += 1
        client.close()

    def counter_bumper(k: int) -> None:
        client = Raw(running)
        for _ in range(40):  # read-modify-write with optimistic concurrency: retries on 409
            while True:
                status, cm = client.request("GET", f"{CMS}/counter")
                cm["data"]["n"] = str(int(cm["data"]["n"]) + 1)
                status, doc = client.request("PUT", f"{CMS}/counter", cm)
                if status == 200:
                    break
                if status != 409:
                    with lock:
                        errors.append(("counter", status, doc))
                    return
        client.close()

    setup = Raw(running)
    assert (
        setup.request(
            "POST",
            CMS,
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "counter"}, "data": {"n": "0"}},
        )[0]
        == 201
    )
    threads = [threading.Thread(target=worker, args=(s,)) for s in range(4)]
    threads += [threading.Thread(target=counter_bumper, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a client hung: deadlock?"
    assert not errors, errors[:3]
    assert counters["ok"] == 600
    assert setup.request("GET", f"{CMS}/counter")[1]["data"]["n"] == "120"  # no lost update
    setup.close()
