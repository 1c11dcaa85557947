"""End-to-end reconciles through the real CLI against a real kubesim, with real git and kubectl."""

from __future__ import annotations

from pathlib import Path

import pytest
from spindle_synclib import Cluster, apply, diff, example_repo, spinapp

from reconciler import engine

pytestmark = pytest.mark.slow


def rv(cluster: Cluster, kind: str, name: str, api_version: str = "apps/v1") -> str:
    obj = cluster.get(api_version, kind, name)
    assert obj is not None, f"{kind}/{name} missing"
    return str(obj["metadata"]["resourceVersion"])


def test_first_reconcile_creates_everything_then_nothing_changes(tmp_path: Path, cluster: Cluster) -> None:
    repo = example_repo(tmp_path / "repo")
    first = apply(repo, cluster)
    assert first.exit_code == 0, first.stdout + first.stderr
    actions = first.actions()
    for app in ("alpha", "beta", "gamma"):
        assert actions[f"Deployment/apps/{app}"] == "Created"
        assert actions[f"Service/apps/{app}"] == "Created"
        assert actions[f"SpinApp/apps/{app}"] == "Created"
    assert set(actions.values()) == {"Created"}
    doc = first.json()
    assert doc["revision"]["sha"] == repo.git.head.commit.hexsha
    deployment = cluster.get("apps/v1", "Deployment", "alpha")
    assert deployment is not None
    assert deployment["metadata"]["labels"]["spindle.dev/source"] == "repo"
    inventory = cluster.get("v1", "ConfigMap", "spindle-inventory-repo", "spindle-system")
    assert inventory is not None and "apps_alpha_apps_Deployment" in inventory["data"]["inventory.json"]

    before = {app: rv(cluster, "Deployment", app) for app in ("alpha", "beta", "gamma")}
    requests_before = cluster.client.requests
    second = apply(repo, cluster)
    assert second.exit_code == 0, second.stdout
    assert set(second.actions().values()) == {"Unchanged"}
    assert {app: rv(cluster, "Deployment", app) for app in ("alpha", "beta", "gamma")} == before
    assert diff(repo, cluster).exit_code == 0
    assert cluster.client.requests >= requests_before  # the CLI used its own client


def test_changing_one_app_configures_only_that_app(tmp_path: Path, cluster: Cluster) -> None:
    repo = example_repo(tmp_path / "repo")
    assert apply(repo, cluster).exit_code == 0
    untouched = {
        (k, a): rv(cluster, k, a, v)
        for a in ("alpha", "gamma")
        for k, v in (("Deployment", "apps/v1"), ("Service", "v1"))
    }
    repo.write("apps/beta.yaml", spinapp("beta", image="v2"))
    sha = repo.commit("beta v2")

    drift = diff(repo, cluster)
    assert drift.exit_code == 1
    assert "► Deployment/apps/beta drifted" in drift.stdout
    assert '"ghcr.io/example/beta:v1" → "ghcr.io/example/beta:v2"' in drift.stdout
    assert "alpha" not in drift.stdout and "gamma" not in drift.stdout

    run = apply(repo, cluster)
    assert run.exit_code == 0, run.stdout
    actions = run.actions()
    assert actions["Deployment/apps/beta"] == "Configured"
    assert actions["SpinApp/apps/beta"] == "Configured"
    changed = {s for s, a in actions.items() if a != "Unchanged"}
    assert all("beta" in s for s in changed), changed
    assert {
        (k, a): rv(cluster, k, a, v)
        for (k, a), v in zip(untouched, ["apps/v1", "v1", "apps/v1", "v1"], strict=True)
    } == untouched
    live = cluster.get("apps/v1", "Deployment", "beta")
    assert live is not None
    assert live["spec"]["template"]["spec"]["containers"][0]["image"] == "ghcr.io/example/beta:v2"
    assert run.json()["revision"]["sha"] == sha


def test_removing_an_app_prunes_it_but_never_what_spindle_does_not_own(
    tmp_path: Path, cluster: Cluster
) -> None:
    repo = example_repo(tmp_path / "repo")
    assert apply(repo, cluster).exit_code == 0
    hand_made = tmp_path / "hand-made.yaml"
    hand_made.write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: hand-made\n  namespace: apps\ndata:\n  a: b\n"
    )
    cluster.kubectl("apply", "--server-side", "--field-manager", "ops-team", "-f", str(hand_made))
    # An object in the inventory whose owner label someone removed is not ours any more.
    cluster.kubectl("label", "service/gamma", "-n", "apps", "spindle.dev/source-")
    cluster.kubectl("annotate", "deployment/gamma", "-n", "apps", "spindle.dev/prune=disabled")
    repo.remove("apps/beta.yaml")
    repo.remove("apps/gamma.yaml")
    repo.commit("drop beta and gamma")

    run = apply(repo, cluster)
    assert run.exit_code == 0, run.stdout
    actions = run.actions()
    assert actions["Deployment/apps/beta"] == "Pruned"
    assert actions["SpinApp/apps/beta"] == "Pruned"
    assert actions["Service/apps/gamma"] == "Skipped"
    assert actions["Deployment/apps/gamma"] == "Skipped"
    assert actions["SpinApp/apps/gamma"] == "Pruned"
    assert cluster.get("apps/v1", "Deployment", "gamma") is not None  # prune: disabled
    assert cluster.get("apps/v1", "Deployment", "beta") is None
    assert cluster.get("v1", "Service", "beta") is None
    assert cluster.get("v1", "Service", "gamma") is not None  # label removed: not ours
    assert cluster.get("v1", "ConfigMap", "hand-made") is not None
    assert cluster.get("apps/v1", "Deployment", "alpha") is not None
    assert cluster.get("v1", "Namespace", "apps", None) is not None


def test_broken_render_prunes_nothing_and_reports_the_error(tmp_path: Path, cluster: Cluster) -> None:
    repo = example_repo(tmp_path / "repo")
    assert apply(repo, cluster).exit_code == 0
    repo.remove("apps/gamma.yaml")
    repo.write("apps/beta.yaml", spinapp("beta").replace("replicas: 1", "replicas: lots"))
    repo.write("apps/delta.yaml", spinapp("delta"))
    repo.commit("break beta, drop gamma, add delta")

    run = apply(repo, cluster)
    assert run.exit_code == 2
    doc = run.json()
    assert any("apps/beta.yaml" in e and "replicas" in e for e in doc["errors"]), doc["errors"]
    assert cluster.get("apps/v1", "Deployment", "gamma") is not None  # not pruned
    assert cluster.get("apps/v1", "Deployment", "beta") is not None
    assert cluster.get("apps/v1", "Deployment", "delta") is not None  # the good app still lands
    assert "Pruned" not in doc["entries"].__repr__()


def test_an_unreadable_checkout_is_an_error_that_changes_nothing(tmp_path: Path, cluster: Cluster) -> None:
    """What the loop sees when a sub-path vanished from the checkout: a recorded error, no crash."""
    repo = example_repo(tmp_path / "repo", apps=("alpha",))
    assert apply(repo, cluster).exit_code == 0
    options = engine.Options(path="gone", timeout=0)
    result = engine.run(repo.root, source_name="repo", revision=None, options=options, client=cluster.client)
    assert not result.record.ok and result.outcomes == []
    assert any("gone" in e and "not a directory" in e for e in result.record.errors), result.record.errors
    assert cluster.get("apps/v1", "Deployment", "alpha") is not None  # nothing pruned


def test_empty_desired_set_is_refused_unless_allowed(tmp_path: Path, cluster: Cluster) -> None:
    repo = example_repo(tmp_path / "repo", apps=("alpha",))
    assert apply(repo, cluster).exit_code == 0
    for rel in ("apps/alpha.yaml", "executor.yaml", "namespace.yaml"):
        repo.remove(rel)
    (repo.root / "README.md").write_text("nothing here\n")
    repo.commit("empty")
    refused = apply(repo, cluster)
    assert refused.exit_code == 2
    assert any("empty desired set" in e for e in refused.json()["errors"])
    assert cluster.get("apps/v1", "Deployment", "alpha") is not None


def test_dry_run_changes_nothing(tmp_path: Path, cluster: Cluster) -> None:
    repo = example_repo(tmp_path / "repo", apps=("alpha",))
    run = apply(repo, cluster, "--dry-run")
    assert run.exit_code == 0, run.stdout
    assert run.json()["mode"] == "dry-run"
    assert run.actions()["Deployment/apps/alpha"] == "Created"
    assert cluster.get("apps/v1", "Deployment", "alpha") is None
    assert cluster.get("v1", "ConfigMap", "spindle-inventory-repo", "spindle-system") is None
    assert diff(repo, cluster).exit_code == 1


def test_unknown_field_fails_only_its_object_and_names_the_field(tmp_path: Path, cluster: Cluster) -> None:
    repo = example_repo(tmp_path / "repo", apps=("alpha",))
    repo.write(
        "config.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: typo\n  namespace: apps\ndta:\n  key: value\n",
    )
    repo.commit("a typo")
    run = apply(repo, cluster)
    assert run.exit_code == 2
    entry = next(e for e in run.json()["entries"] if e["subject"] == "ConfigMap/apps/typo")
    assert entry["action"] == "Failed" and "dta" in entry["message"], entry
    assert run.actions()["Deployment/apps/alpha"] == "Created"


def test_corrupt_inventory_prunes_nothing_and_is_rewritten(tmp_path: Path, cluster: Cluster) -> None:
    repo = example_repo(tmp_path / "repo")
    assert apply(repo, cluster).exit_code == 0
    cluster.kubectl(
        "patch",
        "configmap",
        "spindle-inventory-repo",
        "-n",
        "spindle-system",
        "--type=merge",
        "-p",
        '{"data":{"inventory.json":"{not json"}}',
    )
    repo.remove("apps/gamma.yaml")
    repo.commit("drop gamma")
    run = apply(repo, cluster)
    assert run.exit_code == 2
    assert any("ConfigMap/spindle-system/spindle-inventory-repo" in e for e in run.json()["errors"])
    assert cluster.get("apps/v1", "Deployment", "gamma") is not None  # not pruned blindly
    healed = apply(repo, cluster)
    assert healed.exit_code == 0, healed.stdout[-2000:]
    assert cluster.get("apps/v1", "Deployment", "gamma") is not None  # forgotten, never deleted


def test_noop_reconcile_lists_each_kind_once_and_dry_runs_nothing(tmp_path: Path, cluster: Cluster) -> None:
    from reconciler import engine

    repo = example_repo(tmp_path / "repo")
    options = engine.Options(timeout=5)
    first = engine.run(repo.root, source_name="repo", revision=None, options=options, client=cluster.client)
    assert first.record.ok, first.record.errors
    kinds = {(o.ref.api_version, o.ref.kind) for o in first.outcomes}
    before = cluster.client.requests
    second = engine.run(repo.root, source_name="repo", revision=None, options=options, client=cluster.client)
    assert {o.action.value for o in second.outcomes} == {"Unchanged"}
    # One list per kind, plus the Nodes and the inventory: no GET or dry-run per object.
    assert cluster.client.requests - before == len(kinds) + 2
