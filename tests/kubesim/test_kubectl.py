"""Real kubectl against kubesim: the issue's "Done when" scenarios, end to end over HTTPS."""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
import time
from pathlib import Path

import pytest
import yaml
from kubesim_fixtures import crd_manifest, kubectl, spec_schema

pytestmark = pytest.mark.slow


def _write(tmp_path: Path, name: str, doc: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(doc))
    return path


DEPLOY = """\
    apiVersion: apps/v1
    kind: Deployment
    metadata:
      name: {name}
      labels: {{app: {name}, tier: web}}
    spec:
      replicas: {replicas}
      selector: {{matchLabels: {{app: {name}}}}}
      template:
        metadata: {{labels: {{app: {name}}}}}
        spec:
          containers:
          - name: web
            image: nginx:1.25
            ports: [{{containerPort: 80}}]
    """


def test_apply_conflict_force_and_managed_fields(kubeconfig: Path, tmp_path: Path) -> None:
    first = _write(tmp_path, "d.yaml", DEPLOY.format(name="shop", replicas=2))
    out = kubectl(kubeconfig, "apply", "--server-side", "-f", str(first)).stdout
    assert "deployment.apps/shop serverside-applied" in out

    other = _write(tmp_path, "d2.yaml", DEPLOY.format(name="shop", replicas=5))
    proc = kubectl(
        kubeconfig, "apply", "--server-side", "--field-manager=autoscaler", "-f", str(other), check=False
    )
    assert proc.returncode != 0
    assert "conflict" in proc.stderr.lower()
    assert ".spec.replicas" in proc.stderr
    assert 'conflict with "kubectl"' in proc.stderr
    live = json.loads(kubectl(kubeconfig, "get", "deploy", "shop", "-o", "json").stdout)
    assert live["spec"]["replicas"] == 2

    kubectl(
        kubeconfig,
        "apply",
        "--server-side",
        "--field-manager=autoscaler",
        "--force-conflicts",
        "-f",
        str(other),
    )
    shown = yaml.safe_load(
        kubectl(kubeconfig, "get", "deploy", "shop", "-o", "yaml", "--show-managed-fields").stdout
    )
    assert shown["spec"]["replicas"] == 5
    owners = {m["manager"]: m for m in shown["metadata"]["managedFields"]}
    assert "f:replicas" in owners["autoscaler"]["fieldsV1"]["f:spec"]
    assert "f:replicas" not in owners["kubectl"]["fieldsV1"].get("f:spec", {})


def test_apply_that_drops_a_field_removes_it(kubeconfig: Path, tmp_path: Path) -> None:
    with_label = _write(tmp_path, "a.yaml", DEPLOY.format(name="prune", replicas=1))
    kubectl(kubeconfig, "apply", "--server-side", "-f", str(with_label))
    without = _write(tmp_path, "b.yaml", DEPLOY.format(name="prune", replicas=1).replace(", tier: web", ""))
    kubectl(kubeconfig, "apply", "--server-side", "-f", str(without))
    live = json.loads(kubectl(kubeconfig, "get", "deploy", "prune", "-o", "json").stdout)
    assert live["metadata"]["labels"] == {"app": "prune"}


def test_diff_server_side_shows_exactly_the_change(kubeconfig: Path, tmp_path: Path) -> None:
    base = _write(tmp_path, "a.yaml", DEPLOY.format(name="differ", replicas=1))
    kubectl(kubeconfig, "apply", "--server-side", "-f", str(base))
    same = kubectl(kubeconfig, "diff", "--server-side", "-f", str(base), check=False)
    assert same.returncode == 0, same.stdout + same.stderr
    assert same.stdout == ""
    changed = _write(tmp_path, "b.yaml", DEPLOY.format(name="differ", replicas=4))
    proc = kubectl(kubeconfig, "diff", "--server-side", "-f", str(changed), check=False)
    assert proc.returncode == 1, proc.stderr
    minus = [ln for ln in proc.stdout.splitlines() if ln.startswith("-") and not ln.startswith("---")]
    plus = [ln for ln in proc.stdout.splitlines() if ln.startswith("+") and not ln.startswith("+++")]
    assert sorted(minus) == ["-  generation: 1", "-  replicas: 1"]
    assert sorted(plus) == ["+  generation: 2", "+  replicas: 4"]
    live = json.loads(kubectl(kubeconfig, "get", "deploy", "differ", "-o", "json").stdout)
    assert live["spec"]["replicas"] == 1  # diff is a dry run: nothing stored


def test_delete_cascades_to_owned_objects(kubeconfig: Path, tmp_path: Path) -> None:
    owner = _write(tmp_path, "o.yaml", DEPLOY.format(name="owner", replicas=1))
    kubectl(kubeconfig, "apply", "--server-side", "-f", str(owner))
    uid = kubectl(kubeconfig, "get", "deploy", "owner", "-o", "jsonpath={.metadata.uid}").stdout
    dependent = _write(
        tmp_path,
        "cm.yaml",
        f"""\
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: owned
          ownerReferences:
          - {{apiVersion: apps/v1, kind: Deployment, name: owner, uid: {uid}}}
        data: {{k: v}}
        """,
    )
    kubectl(kubeconfig, "apply", "--server-side", "-f", str(dependent))
    kubectl(kubeconfig, "delete", "deploy", "owner")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if kubectl(kubeconfig, "get", "cm", "owned", check=False).returncode != 0:
            break
        time.sleep(0.1)
    gone = kubectl(kubeconfig, "get", "cm", "owned", check=False)
    assert gone.returncode != 0 and "NotFound" in gone.stderr


def test_get_watch_sees_the_events(kubeconfig: Path, tmp_path: Path) -> None:
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "HOME": str(kubeconfig.parent)}
    watcher = subprocess.Popen(
        [
            "kubectl",
            "get",
            "configmaps",
            "-l",
            "watched=yes",
            "--watch",
            "--output-watch-events",
            "--request-timeout=20s",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        time.sleep(1.0)
        cm = _write(
            tmp_path,
            "cm.yaml",
            """\
            apiVersion: v1
            kind: ConfigMap
            metadata: {name: seen, labels: {watched: "yes"}}
            data: {a: "1"}
            """,
        )
        kubectl(kubeconfig, "apply", "--server-side", "-f", str(cm))
        kubectl(kubeconfig, "patch", "configmap", "seen", "--type=merge", "-p", '{"data":{"a":"2"}}')
        kubectl(kubeconfig, "delete", "configmap", "seen")
        time.sleep(1.0)
    finally:
        watcher.terminate()
        out, _ = watcher.communicate(timeout=10)
    events = [ln.split()[0] for ln in out.splitlines() if ln.strip() and not ln.startswith("EVENT")]
    assert events == ["ADDED", "MODIFIED", "DELETED"], out


CRD = """\
    apiVersion: apiextensions.k8s.io/v1
    kind: CustomResourceDefinition
    metadata: {name: widgets.example.com}
    spec:
      group: example.com
      scope: Namespaced
      names: {plural: widgets, singular: widget, kind: Widget, shortNames: [wd]}
      versions:
      - name: v1
        served: true
        storage: true
        subresources: {status: {}}
        schema:
          openAPIV3Schema:
            type: object
            properties:
              spec:
                type: object
                required: [size]
                properties:
                  size: {type: integer, minimum: 1}
                  color: {type: string, enum: [red, blue]}
              status:
                type: object
                properties:
                  ready: {type: boolean}
    """


def test_crd_then_object_apply_and_validate(kubeconfig: Path, tmp_path: Path) -> None:
    kubectl(kubeconfig, "apply", "--server-side", "-f", str(_write(tmp_path, "crd.yaml", CRD)))
    kubectl(kubeconfig, "wait", "--for=condition=Established", "crd/widgets.example.com", "--timeout=10s")
    good = _write(
        tmp_path,
        "w.yaml",
        """\
        apiVersion: example.com/v1
        kind: Widget
        metadata: {name: w1}
        spec: {size: 3, color: red}
        """,
    )
    assert (
        "widget.example.com/w1 serverside-applied"
        in kubectl(kubeconfig, "apply", "--server-side", "-f", str(good)).stdout
    )
    assert "w1" in kubectl(kubeconfig, "get", "wd").stdout
    bad = _write(
        tmp_path,
        "bad.yaml",
        """\
        apiVersion: example.com/v1
        kind: Widget
        metadata: {name: w2}
        spec: {size: 0, color: green}
        """,
    )
    proc = kubectl(kubeconfig, "apply", "--server-side", "-f", str(bad), check=False)
    assert proc.returncode != 0
    assert "spec.size" in proc.stderr and "spec.color" in proc.stderr
    assert "is invalid" in proc.stderr
    explained = kubectl(kubeconfig, "explain", "widgets.spec").stdout
    assert "size" in explained and "color" in explained
    assert "Standard object's metadata" in kubectl(kubeconfig, "explain", "widgets").stdout


def test_scale_and_edit(kubeconfig: Path, tmp_path: Path) -> None:
    kubectl(
        kubeconfig,
        "apply",
        "--server-side",
        "-f",
        str(_write(tmp_path, "d.yaml", DEPLOY.format(name="scaled", replicas=1))),
    )
    kubectl(kubeconfig, "scale", "deployment", "scaled", "--replicas=3")
    assert kubectl(kubeconfig, "get", "deploy", "scaled", "-o", "jsonpath={.spec.replicas}").stdout == "3"
    editor = tmp_path / "editor.sh"
    editor.write_text('#!/bin/sh\nsed -i "s/image: nginx:1.25/image: nginx:1.27/" "$1"\n')
    editor.chmod(0o755)
    kubectl(
        kubeconfig, "edit", "deployment", "scaled", env={"EDITOR": str(editor), "KUBE_EDITOR": str(editor)}
    )
    image = kubectl(
        kubeconfig, "get", "deploy", "scaled", "-o", "jsonpath={.spec.template.spec.containers[0].image}"
    )
    assert image.stdout == "nginx:1.27"
    managers = json.loads(
        kubectl(kubeconfig, "get", "deploy", "scaled", "-o", "json", "--show-managed-fields").stdout
    )["metadata"]["managedFields"]
    assert {"kubectl-edit", "kubectl"} <= {m["manager"] for m in managers}


def test_get_prints_a_crds_printer_columns(kubeconfig: Path) -> None:
    columns = [
        {"jsonPath": ".spec.replicas", "name": "Desired", "type": "integer"},
        {"jsonPath": ".spec.executor", "name": "Executor", "type": "string"},
        {"jsonPath": ".metadata.creationTimestamp", "name": "Age", "type": "date"},
    ]
    properties = {"replicas": {"type": "integer", "default": 1}, "executor": {"type": "string"}}
    crd = crd_manifest(
        "demo.example", "App", "apps", spec_schema(properties), additionalPrinterColumns=columns
    )
    kubectl(kubeconfig, "apply", "--server-side", "-f", "-", stdin=json.dumps(crd))
    kubectl(
        kubeconfig,
        "apply",
        "--server-side",
        "-f",
        "-",
        stdin=("apiVersion: demo.example/v1\nkind: App\nmetadata: {name: hello}\nspec: {executor: shim}\n"),
    )
    lines = kubectl(kubeconfig, "get", "apps.demo.example").stdout.splitlines()
    assert lines[0].split() == ["NAME", "DESIRED", "EXECUTOR", "AGE"]
    name, desired, executor, age = lines[1].split()
    assert (name, desired, executor) == ("hello", "1", "shim")  # the schema default filled replicas
    assert age.endswith("s")


def test_explain_builtin_fields(kubeconfig: Path) -> None:
    out = kubectl(kubeconfig, "explain", "deployment.spec.replicas").stdout
    assert "FIELD: replicas <integer>" in out and "Number of desired pods" in out
    ports = kubectl(kubeconfig, "explain", "pods.spec.containers.ports").stdout
    assert "<[]ContainerPort>" in ports


def test_kubectl_scale_on_a_crd_with_a_scale_subresource(kubeconfig: Path) -> None:
    paths = {
        "specReplicasPath": ".spec.count",
        "statusReplicasPath": ".status.ready",
        "labelSelectorPath": ".status.selector",
    }
    schema = {
        "type": "object",
        "properties": {
            "spec": {"type": "object", "properties": {"count": {"type": "integer"}}},
            "status": {
                "type": "object",
                "properties": {"ready": {"type": "integer"}, "selector": {"type": "string"}},
            },
        },
    }
    crd = crd_manifest(
        "demo.example",
        "Spinner",
        "spinners",
        schema,
        subresources={"status": {}, "scale": paths},
    )
    kubectl(kubeconfig, "apply", "--server-side", "-f", "-", stdin=json.dumps(crd))
    kubectl(
        kubeconfig,
        "apply",
        "--server-side",
        "-f",
        "-",
        stdin=("apiVersion: demo.example/v1\nkind: Spinner\nmetadata: {name: s1}\nspec: {count: 1}\n"),
    )
    kubectl(kubeconfig, "scale", "spinner", "s1", "--replicas=4")
    assert kubectl(kubeconfig, "get", "spinner", "s1", "-o", "jsonpath={.spec.count}").stdout == "4"
    scale = json.loads(
        kubectl(
            kubeconfig, "get", "--raw", "/apis/demo.example/v1/namespaces/default/spinners/s1/scale"
        ).stdout
    )
    assert scale["spec"]["replicas"] == 4 and scale["status"]["replicas"] == 0
