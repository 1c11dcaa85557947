"""Drift made with real kubectl (scale, edit, patch) is reported with its fields, values and
managers, left alone by --detect-only, and reverted by the next reconcile. Apply policies and
immutable-field recreation."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from spindle_synclib import Cluster, apply, diff, example_repo, spindle

pytestmark = pytest.mark.slow

EDIT = """import sys, yaml
path = sys.argv[1]
doc = yaml.safe_load(open(path))
doc["metadata"]["labels"]["team"] = "rogue"
doc["spec"]["template"]["spec"]["containers"][0]["image"] = "evil:1"
open(path, "w").write(yaml.safe_dump(doc))
"""


def _drift_by_hand(cluster: Cluster, tmp_path: Path) -> str:
    cluster.kubectl("scale", "deployment/alpha", "-n", "apps", "--replicas=5")
    editor = tmp_path / "edit.py"
    editor.write_text(EDIT)
    cluster.kubectl("edit", "deployment/beta", "-n", "apps", editor=f"{sys.executable} {editor}")
    secret = next(
        s["metadata"]["name"]
        for s in cluster.client.list("v1", "Secret", namespace="apps")
        if s["metadata"]["name"].startswith("gamma-")
    )
    cluster.kubectl(
        "patch", "secret", secret, "-n", "apps", "-p", '{"data":{"runtime-config.toml":"c2VjcmV0LXZhbHVl"}}'
    )
    return secret


def test_kubectl_drift_is_reported_kept_by_detect_only_and_reverted(tmp_path: Path, cluster: Cluster) -> None:
    repo = example_repo(tmp_path / "repo")
    assert apply(repo, cluster).exit_code == 0
    secret = _drift_by_hand(cluster, tmp_path)

    text = diff(repo, cluster)
    assert text.exit_code == 1, text.stdout + text.stderr
    out = text.stdout
    assert "► Deployment/apps/alpha drifted" in out
    assert ".spec.replicas: 5 → 1   owned by kubectl (Update (scale), 20" in out
    assert '.metadata.labels.team: "rogue" → null   owned by kubectl-edit (Update, 20' in out
    assert (
        '.spec.template.spec.containers[0].image: "evil:1" → "ghcr.io/example/beta:v1"   '
        "owned by kubectl-edit" in out
    )
    assert f"► Secret/apps/{secret} drifted" in out
    assert "c2VjcmV0LXZhbHVl" not in out and "*** (before)" in out and "*** (after)" in out
    assert "Deployment/apps/gamma" not in out

    as_json = diff(repo, cluster, "-o", "json")
    assert as_json.exit_code == 1
    doc = as_json.json()
    assert doc["drift"] is True
    alpha = next(e for e in doc["entries"] if e["subject"] == "Deployment/apps/alpha")
    assert alpha["action"] == "Configured"
    assert {"op": "replace", "path": "/spec/replicas", "value": 1} in alpha["patch"]
    field = next(f for f in alpha["fields"] if f["path"] == ".spec.replicas")
    assert (field["live"], field["desired"]) == (5, 1)
    assert field["owners"][0]["manager"] == "kubectl"
    assert "c2VjcmV0LXZhbHVl" not in as_json.stdout

    detect = apply(repo, cluster, "--detect-only")
    assert detect.exit_code == 1
    assert detect.json()["mode"] == "detect-only"
    live_alpha = cluster.get("apps/v1", "Deployment", "alpha")
    live_beta = cluster.get("apps/v1", "Deployment", "beta")
    assert live_alpha is not None and live_alpha["spec"]["replicas"] == 5
    assert live_beta is not None and live_beta["metadata"]["labels"]["team"] == "rogue"

    run = apply(repo, cluster)
    assert run.exit_code == 0, run.stdout
    actions = run.actions()
    assert actions["Deployment/apps/alpha"] == "Configured"
    assert actions["Deployment/apps/beta"] == "Configured"
    assert actions[f"Secret/apps/{secret}"] == "Configured"
    assert actions["Deployment/apps/gamma"] == "Unchanged"
    live_alpha = cluster.get("apps/v1", "Deployment", "alpha")
    live_beta = cluster.get("apps/v1", "Deployment", "beta")
    assert live_alpha is not None and live_alpha["spec"]["replicas"] == 1
    assert live_beta is not None and "team" not in live_beta["metadata"]["labels"]
    assert live_beta["spec"]["template"]["spec"]["containers"][0]["image"] == "ghcr.io/example/beta:v1"
    managers = {m["manager"] for m in live_beta["metadata"]["managedFields"]}
    assert "kubectl-edit" not in managers  # folded into spindle's ownership
    assert diff(repo, cluster).exit_code == 0


CONFIGMAP = """apiVersion: v1
kind: ConfigMap
metadata:
  name: {name}
  namespace: apps
  annotations: {annotations}
data:
  key: from-git
"""


def test_apply_policies(tmp_path: Path, cluster: Cluster) -> None:
    repo = example_repo(tmp_path / "repo", apps=("alpha",))
    policies = {
        "override": "{}",
        "merge": "{spindle.dev/ssa: Merge}",
        "once": "{spindle.dev/ssa: IfNotPresent}",
        "ignored": "{spindle.dev/ssa: Ignore}",
    }
    for name, marks in policies.items():
        repo.write(f"config/{name}.yaml", CONFIGMAP.format(name=name, annotations=marks))
    repo.commit("config maps")
    first = apply(repo, cluster)
    assert first.exit_code == 0, first.stdout
    assert first.actions()["ConfigMap/apps/ignored"] == "Skipped"
    assert cluster.get("v1", "ConfigMap", "ignored") is None
    for name in ("override", "merge", "once"):
        cluster.kubectl(
            "patch", "configmap", name, "-n", "apps", "-p", '{"data":{"key":"by-hand","extra":"x"}}'
        )

    run = apply(repo, cluster)
    assert run.exit_code == 0, run.stdout
    actions = run.actions()
    assert actions["ConfigMap/apps/override"] == "Configured"
    assert actions["ConfigMap/apps/merge"] == "Configured"
    assert actions["ConfigMap/apps/once"] == "Skipped"

    def data(name: str) -> dict[str, str]:
        obj = cluster.get("v1", "ConfigMap", name)
        assert obj is not None
        return dict(obj["data"])

    assert data("override") == {"key": "from-git"}  # kubectl-patch's extra key removed
    assert data("merge") == {"key": "from-git", "extra": "x"}  # others' fields kept
    assert data("once") == {"key": "by-hand", "extra": "x"}  # never updated


CRD = """apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
  annotations: {annotations}
spec:
  group: example.com
  names: {{kind: Widget, plural: widgets, singular: widget, listKind: WidgetList}}
  scope: {scope}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema: {{type: object, x-kubernetes-preserve-unknown-fields: true}}
"""


def test_immutable_field_fails_clearly_unless_forced(tmp_path: Path, cluster: Cluster) -> None:
    repo = example_repo(tmp_path / "repo", apps=("alpha",))
    repo.write("crd.yaml", CRD.format(annotations="{}", scope="Namespaced"))
    repo.commit("crd")
    assert apply(repo, cluster).exit_code == 0
    repo.write("crd.yaml", CRD.format(annotations="{}", scope="Cluster"))
    repo.commit("cluster-scoped widgets")

    failed = apply(repo, cluster)
    assert failed.exit_code == 2
    entry = next(
        e for e in failed.json()["entries"] if e["subject"] == "CustomResourceDefinition/widgets.example.com"
    )
    assert entry["action"] == "Failed"
    assert "immutable" in entry["message"] and "spindle.dev/force: enabled" in entry["message"]
    assert failed.actions()["Deployment/apps/alpha"] == "Unchanged"  # one failure stops nothing else

    forced = apply(repo, cluster, "--force")
    assert forced.exit_code == 0, forced.stdout
    assert forced.actions()["CustomResourceDefinition/widgets.example.com"] == "Created"
    live = cluster.get("apiextensions.k8s.io/v1", "CustomResourceDefinition", "widgets.example.com", None)
    assert live is not None and live["spec"]["scope"] == "Cluster"

    repo.write("crd.yaml", CRD.format(annotations="{spindle.dev/force: enabled}", scope="Namespaced"))
    repo.commit("back to namespaced, annotated")
    annotated = apply(repo, cluster)
    assert annotated.exit_code == 0, annotated.stdout
    live = cluster.get("apiextensions.k8s.io/v1", "CustomResourceDefinition", "widgets.example.com", None)
    assert live is not None and live["spec"]["scope"] == "Namespaced"


def test_report_names_the_kubectl_manager_in_text_summary(tmp_path: Path, cluster: Cluster) -> None:
    repo = example_repo(tmp_path / "repo", apps=("alpha",))
    assert apply(repo, cluster).exit_code == 0
    cluster.kubectl("scale", "deployment/alpha", "-n", "apps", "--replicas=3")
    run = spindle(
        "apply", str(repo.root), "--kubeconfig", str(cluster.kubeconfig), "--no-history", "--detect-only"
    )
    assert run.exit_code == 1
    assert "Deployment/apps/alpha" in run.stdout and "Configured" in run.stdout
    assert ".spec.replicas: 3 → 1   owned by kubectl (Update (scale)" in run.stdout


def test_kubectl_client_side_apply_is_folded_and_reverted(tmp_path: Path, cluster: Cluster) -> None:
    repo = example_repo(tmp_path / "repo", apps=("alpha",))
    repo.write("config/settings.yaml", CONFIGMAP.format(name="settings", annotations="{}"))
    repo.commit("settings")
    assert apply(repo, cluster).exit_code == 0
    edited = tmp_path / "settings.yaml"
    edited.write_text(CONFIGMAP.format(name="settings", annotations="{}") + "  extra: by-hand\n")
    cluster.kubectl("apply", "-f", str(edited))  # client-side apply

    drift = diff(repo, cluster)
    assert drift.exit_code == 1
    assert '.data.extra: "by-hand" → null   owned by kubectl-client-side-apply (Update' in drift.stdout
    assert apply(repo, cluster).exit_code == 0
    live = cluster.get("v1", "ConfigMap", "settings")
    assert live is not None and live["data"] == {"key": "from-git"}
    assert diff(repo, cluster).exit_code == 0
