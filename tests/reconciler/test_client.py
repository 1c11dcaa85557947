"""The cluster client against a real kubesim and against tiny real HTTP servers that misbehave."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from spindle_loopfixtures import free_port
from spindle_synclib import Cluster

from reconciler.kube import errors
from reconciler.kube.client import KubeClient, RetryPolicy
from reconciler.kube.target import from_kubeconfig

CM = {
    "apiVersion": "v1",
    "kind": "ConfigMap",
    "metadata": {"name": "c", "namespace": "default"},
    "data": {"a": "1"},
}


def test_verbs_and_error_translation(cluster: Cluster) -> None:
    c = cluster.client
    assert c.get("v1", "ConfigMap", "c", "default") is None
    created, was_created = c.apply_status(CM)
    assert was_created and created["data"] == {"a": "1"}
    _, again = c.apply_status(CM)
    assert not again
    assert [o["metadata"]["name"] for o in c.list("v1", "ConfigMap", namespace="default")] == ["c"]
    assert c.list("v1", "ConfigMap", label_selector="nope=1") == []
    patched = c.patch_labels("v1", "Namespace", "default", {"team": "a"})
    assert patched["metadata"]["labels"]["team"] == "a"
    assert c.delete("v1", "ConfigMap", "c", "default") is True
    assert c.delete("v1", "ConfigMap", "c", "default") is False

    with pytest.raises(errors.UnknownKind, match=r"Widget \(example.com/v1\)"):
        c.get("example.com/v1", "Widget", "w")
    bad = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "d", "namespace": "default"},
        "spec": {"replicas": "many"},
    }
    with pytest.raises(errors.Invalid) as info:
        c.apply(bad, dry_run=True)
    assert str(info.value).startswith("Deployment/default/d: ")
    assert info.value.status == 422 and info.value.causes
    with pytest.raises(errors.NotFound, match="Secret/nowhere/s"):
        c.apply({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "nowhere"}})


def test_discovery_is_cached_per_group_version(cluster: Cluster) -> None:
    c = cluster.client
    c.get("v1", "ConfigMap", "a", "default")
    before = c.requests
    c.get("v1", "Secret", "a", "default")
    c.list("v1", "Service")
    assert c.requests - before == 2  # no discovery request the second time


def test_bad_token_is_forbidden(cluster: Cluster, tmp_path: Path) -> None:
    text = cluster.kubeconfig.read_text()
    token = text.split("token:")[1].split()[0]
    bad = tmp_path / "bad"
    bad.write_text(text.replace(token, "wrong-token"))
    tgt = from_kubeconfig(str(bad))
    try:
        with pytest.raises(errors.Forbidden):
            tgt.client.get("v1", "ConfigMap", "a", "default")
    finally:
        tgt.close()


class _Flaky(BaseHTTPRequestHandler):
    """Answers 429 (Retry-After: 1) or 503 `fail_times` times, then a discovery document."""

    def do_GET(self) -> None:
        server: Any = self.server
        server.hits += 1
        if server.hits <= server.fail_times:
            self.send_response(server.fail_status)
            self.send_header("Retry-After", "1")
            body = b'{"kind":"Status","status":"Failure","message":"slow down","reason":"TooManyRequests"}'
        else:
            self.send_response(200)
            body = json.dumps(
                {"resources": [{"name": "configmaps", "kind": "ConfigMap", "namespaced": True}]}
            ).encode()
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        pass


@pytest.fixture
def flaky() -> Iterator[Any]:
    httpd: Any = ThreadingHTTPServer(("127.0.0.1", 0), _Flaky)
    httpd.hits, httpd.fail_times, httpd.fail_status = 0, 2, 429
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def _client(url: str, sleeps: list[float]) -> KubeClient:
    from kubernetes import client as k8s

    cfg = k8s.Configuration()
    cfg.host = url
    return KubeClient(
        k8s.ApiClient(cfg), timeout=5, retry=RetryPolicy(attempts=3, backoff=0.01), sleep=sleeps.append
    )


def test_retries_honour_retry_after(flaky: Any) -> None:
    sleeps: list[float] = []
    c = _client(f"http://127.0.0.1:{flaky.server_address[1]}", sleeps)
    assert c.resource("v1", "ConfigMap").plural == "configmaps"
    assert flaky.hits == 3 and sleeps == [1.0, 1.0]


def test_retries_are_bounded(flaky: Any) -> None:
    flaky.fail_times, flaky.fail_status = 99, 503
    sleeps: list[float] = []
    c = _client(f"http://127.0.0.1:{flaky.server_address[1]}", sleeps)
    with pytest.raises(errors.Unavailable, match="apiVersion v1: slow down"):
        c.resource("v1", "ConfigMap")
    assert flaky.hits == 3 and len(sleeps) == 2


def test_unreachable_server_is_unavailable() -> None:
    port = free_port()
    sleeps: list[float] = []
    c = _client(f"http://127.0.0.1:{port}", sleeps)
    with pytest.raises(errors.Unavailable, match="GET /api/v1"):
        c.get("v1", "ConfigMap", "a", "default")
    assert sleeps == [0.01, 0.02]


class _NamespaceOnly(BaseHTTPRequestHandler):
    """An API server whose user may list Deployments only inside namespace `a` (RBAC)."""

    def do_GET(self) -> None:
        server: Any = self.server
        path = self.path.split("?")[0]
        server.paths.append(path)
        if path == "/apis/apps/v1":
            code, doc = (
                200,
                {"resources": [{"name": "deployments", "kind": "Deployment", "namespaced": True}]},
            )
        elif path == "/apis/apps/v1/namespaces/a/deployments":
            code, doc = 200, {"items": [server.live]}
        else:
            code, doc = (
                403,
                {
                    "kind": "Status",
                    "message": "deployments is forbidden at the cluster scope",
                    "reason": "Forbidden",
                },
            )
        body = json.dumps(doc).encode()
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        pass


def test_forbidden_cluster_wide_list_falls_back_to_namespaces() -> None:
    from reconciler.changeset import Action
    from reconciler.ssa import inventory, normalize, objects
    from reconciler.ssa.manager import Applier, ApplyOptions

    desired = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "d", "namespace": "a"},
        "spec": {"replicas": 1},
    }
    stamped = objects.with_owner_labels(normalize.desired(desired), "src")
    live = {**stamped, "metadata": {**stamped["metadata"], "resourceVersion": "7"}}
    ref = objects.ref_of(stamped)
    cache = inventory.Inventory("src", "", {ref: inventory.Entry(ref, objects.digest(stamped), "7")})
    httpd: Any = ThreadingHTTPServer(("127.0.0.1", 0), _NamespaceOnly)
    httpd.paths, httpd.live = [], live
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        client = _client(f"http://127.0.0.1:{httpd.server_address[1]}", [])
        out = Applier(client, ApplyOptions("src", wait_timeout=0)).run([desired], cache)
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert [o.action for o in out] == [Action.UNCHANGED]
    assert httpd.paths == [
        "/apis/apps/v1",
        "/apis/apps/v1/deployments",
        "/apis/apps/v1/namespaces/a/deployments",
    ]


def test_a_deleted_kind_is_forgotten_and_rediscovered(cluster: Cluster) -> None:
    import time

    c = cluster.client
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "scope": "Namespaced",
            "names": {"kind": "Widget", "plural": "widgets", "singular": "widget", "listKind": "WidgetList"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
                    },
                }
            ],
        },
    }
    c.apply(crd)
    assert c.list("example.com/v1", "Widget") == []
    c.delete("apiextensions.k8s.io/v1", "CustomResourceDefinition", "widgets.example.com")
    deadline = time.monotonic() + 10
    while c.get("apiextensions.k8s.io/v1", "CustomResourceDefinition", "widgets.example.com") is not None:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    with pytest.raises(errors.UnknownKind, match=r"Widget \(example.com/v1\)"):
        c.list("example.com/v1", "Widget")
    c.apply(crd)
    assert c.list("example.com/v1", "Widget") == []


def test_embedded_cluster_in_use_by_another_process_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two commands must not run two kubesims over one database (duplicate resourceVersions)."""
    import subprocess
    import sys

    from reconciler.kube import target
    from reconciler.kube.errors import KubeError

    db = tmp_path / "state" / "cluster" / "kubesim.db"
    db.parent.mkdir(parents=True)
    holder = subprocess.Popen(
        [sys.executable, "-c",
         f"from kubesim import storage; import time; s = storage.Store({str(db)!r});"
         " print('open', flush=True); time.sleep(30)"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        monkeypatch.setattr(target, "EMBEDDED_LOCK_WAIT", 0.3)
        with pytest.raises(KubeError) as info:
            target.embedded(tmp_path / "state")
        assert f"pid {holder.pid}" in str(info.value) and "spindle cluster serve" in str(info.value)
    finally:
        holder.kill()
        holder.wait()
    found = target.embedded(tmp_path / "state")  # free again
    found.close()


def test_a_daemons_embedded_cluster_is_shared_with_other_commands(tmp_path: Path) -> None:
    """`spindle reconcile` keeps its embedded cluster for hours: other spindle commands and
    kubectl reach it (like `spindle cluster serve`) instead of waiting for its database."""
    from reconciler.kube import target

    daemon = target.embedded(tmp_path / "state", share=True)
    try:
        assert "spindle cluster kubeconfig" in daemon.description
        other = target.embedded(tmp_path / "state")
        try:
            assert "served by" in other.description
            names = {n["metadata"]["name"] for n in other.client.list("v1", "Namespace")}
            assert "default" in names
        finally:
            other.close()
    finally:
        daemon.close()
    assert not (tmp_path / "state" / "cluster" / "serve.pid").exists()  # nothing points at it any more
    target.embedded(tmp_path / "state").close()  # and a new one starts
