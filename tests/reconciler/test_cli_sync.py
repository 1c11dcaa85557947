"""`spindle apply` / `spindle diff` through the CLI: the embedded cluster when no kubeconfig is
found, the history, events, operator mode, and exit codes for bad input."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from spindle_loopfixtures import free_port
from spindle_synclib import (
    EXECUTOR,
    NAMESPACE,
    Cluster,
    Repo,
    apply,
    apply_args,
    diff,
    example_repo,
    no_cluster_env,
    spinapp,
    spindle,
)

pytestmark = pytest.mark.slow


def test_embedded_cluster_is_used_with_a_notice_and_keeps_state(tmp_path: Path) -> None:
    repo = example_repo(tmp_path / "repo", apps=("alpha",))
    env = no_cluster_env(tmp_path)
    first = spindle("apply", str(repo.root), "--timeout", "5", env=env)  # type: ignore[arg-type]
    assert first.exit_code == 0, first.stdout + first.stderr
    assert "No kubeconfig found: using the embedded kubesim cluster" in first.stderr
    assert "Deployment/apps/alpha" in first.stdout and "Created" in first.stdout
    assert (tmp_path / "state" / "cluster" / "kubesim.db").is_file()

    second = spindle("apply", str(repo.root), "-o", "json", env=env)  # type: ignore[arg-type]
    assert second.exit_code == 0
    assert set(second.actions().values()) == {"Unchanged"}  # the cluster's state persisted

    report = spindle("report", "--last", "2", "-o", "json", env=env)  # type: ignore[arg-type]
    assert report.exit_code == 0, report.stdout + report.stderr
    records = json.loads(report.stdout)
    records = records if isinstance(records, list) else records.get("records", [])
    assert len(records) == 2
    assert any(e["action"] == "Created" for r in records for e in r["entries"])


@pytest.mark.parametrize("where", ["KUBECONFIG", "~/.kube/config"])
def test_the_kubeconfig_is_found_like_kubectl_finds_it(where: str, tmp_path: Path, cluster: Cluster) -> None:
    repo = example_repo(tmp_path / "repo", apps=("alpha",))
    env = no_cluster_env(tmp_path)
    if where == "KUBECONFIG":  # the first file of the list that exists
        env["KUBECONFIG"] = os.pathsep.join([str(tmp_path / "missing"), str(cluster.kubeconfig)])
    else:
        (tmp_path / "home" / ".kube").mkdir()
        (tmp_path / "home" / ".kube" / "config").write_text(cluster.kubeconfig.read_text())
    run = spindle("apply", str(repo.root), "--no-history", "--timeout", "5", env=env)  # type: ignore[arg-type]
    assert run.exit_code == 0, run.stdout + run.stderr
    assert "embedded" not in run.stderr
    assert cluster.get("apps/v1", "Deployment", "alpha") is not None  # it went to this cluster


def test_unknown_source_and_unreachable_cluster_exit_2(tmp_path: Path) -> None:
    missing = spindle("diff", str(tmp_path / "nope"), "--kubeconfig", str(tmp_path / "kc"))
    assert missing.exit_code == 2
    assert "nope" in missing.stderr
    repo = example_repo(tmp_path / "repo", apps=("alpha",))
    server = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    (tmp_path / "kc").write_text(
        f"apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {{server: '{server}'}}\n"
        "contexts:\n- name: c\n  context: {cluster: c, user: u}\ncurrent-context: c\n"
        "users:\n- name: u\n  user: {}\n"
    )
    down = spindle(
        "apply", str(repo.root), "--kubeconfig", str(tmp_path / "kc"), "--no-history", "--timeout", "1"
    )
    assert down.exit_code == 2
    port = server.rsplit(":", 1)[1]  # the error names the cluster it could not reach
    said = down.stdout + down.stderr  # before the run (taking the Lease) or during it
    assert "error:" in said.lower() and "127.0.0.1" in said and port in said, said


def test_changes_are_recorded_as_events(tmp_path: Path, cluster: Cluster) -> None:
    repo = example_repo(tmp_path / "repo", apps=("alpha",))
    assert apply(repo, cluster).exit_code == 0
    events = cluster.client.list("v1", "Event", namespace="apps")
    reasons = {(e["involvedObject"]["kind"], e["involvedObject"]["name"], e["reason"]) for e in events}
    assert ("Deployment", "alpha", "Created") in reasons
    assert all(e.get("reportingComponent") == "spindle" for e in events)
    count = len(events)
    assert apply(repo, cluster).exit_code == 0  # nothing changed: no new events
    assert len(cluster.client.list("v1", "Event", namespace="apps")) == count


def test_operator_mode_applies_spinapps_and_judges_them_by_conditions(
    tmp_path: Path, cluster: Cluster
) -> None:
    repo = example_repo(tmp_path / "repo", apps=("alpha",))
    run = apply(repo, cluster, "--mode", "operator", "--timeout", "0")
    assert run.exit_code == 0, run.stdout[-2000:]
    actions = run.actions()
    assert actions["SpinApp/apps/alpha"] == "Created"
    assert not any(s.startswith(("Deployment/", "Service/")) for s in actions)  # the operator's job
    health = {e["subject"]: e["health"] for e in run.json()["entries"]}
    assert health["SpinApp/apps/alpha"] == "Progressing"

    cluster.kubectl(
        "patch",
        "spinapp",
        "alpha",
        "-n",
        "apps",
        "--subresource=status",
        "--type=merge",
        "-p",
        '{"status":{"conditions":[{"type":"Available","status":"True","reason":"Ready","message":"ok",'
        '"lastTransitionTime":"2026-01-01T00:00:00Z"}],"readyReplicas":1}}',
    )
    again = apply(repo, cluster, "--mode", "operator", "--timeout", "0")
    health = {e["subject"]: e["health"] for e in again.json()["entries"]}
    assert health["SpinApp/apps/alpha"] == "Healthy"
    assert diff(repo, cluster, "--mode", "operator").exit_code == 0


def test_git_url_source_follows_commits(tmp_path: Path, cluster: Cluster) -> None:
    repo = example_repo(tmp_path / "repo", apps=("alpha", "beta"))
    url = f"file://{repo.root}"
    env = {"SPINDLE_STATE_DIR": str(tmp_path / "state")}
    first = apply(repo, cluster, "--ref", "branch:main", source=url, env=env)
    assert first.exit_code == 0, first.stdout + first.stderr
    assert first.json()["revision"]["sha"] == repo.git.head.commit.hexsha
    assert first.json()["source"] == "repo"
    repo.remove("apps/beta.yaml")
    sha = repo.commit("drop beta")
    second = apply(repo, cluster, "--ref", "branch:main", source=url, env=env)
    assert second.exit_code == 0, second.stdout + second.stderr
    assert second.json()["revision"] == {**second.json()["revision"], "sha": sha, "message": "drop beta"}
    assert second.actions()["Deployment/apps/beta"] == "Pruned"


def test_path_renders_only_that_sub_directory(tmp_path: Path, cluster: Cluster) -> None:
    repo = Repo(tmp_path / "repo")
    repo.write("prod/namespace.yaml", NAMESPACE)
    repo.write("prod/executor.yaml", EXECUTOR)
    repo.write("prod/alpha.yaml", spinapp("alpha"))
    repo.write(
        "staging/only.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: staging-only\n  namespace: apps\n",
    )
    repo.commit("prod and staging")
    run = apply(repo, cluster, "--path", "prod")
    assert run.exit_code == 0, run.stdout[-2000:]
    subjects = set(run.actions())
    assert "SpinApp/apps/alpha" in subjects
    assert "ConfigMap/apps/staging-only" not in subjects
    assert diff(repo, cluster, "--path", "prod").exit_code == 0
    assert diff(repo, cluster).exit_code == 1  # the whole repo also has staging's ConfigMap


def test_event_storms_are_capped_with_one_summary(tmp_path: Path, cluster: Cluster) -> None:
    repo = example_repo(tmp_path / "repo", apps=tuple(f"app{i:02d}" for i in range(20)))
    assert apply(repo, cluster, "--timeout", "0").exit_code == 0  # 60+ objects change
    per_object = [e for e in cluster.client.list("v1", "Event") if e["reason"] == "Created"]
    summary = cluster.client.list("v1", "Event", namespace="spindle-system")
    assert len(per_object) == 50
    assert [e["reason"] for e in summary] == ["Reconciled"]
    assert summary[0]["involvedObject"]["name"] == "spindle-inventory-repo"
    assert "created" in summary[0]["message"]


def test_kubectl_describe_shows_spindles_events(tmp_path: Path, cluster: Cluster) -> None:
    """kubectl describe finds an object's events by involvedObject.uid: events without it are never shown."""
    import subprocess

    repo = example_repo(tmp_path / "repo", apps=("alpha",))
    assert apply(repo, cluster).exit_code == 0
    out = subprocess.run(
        ["kubectl", "--kubeconfig", str(cluster.kubeconfig), "describe", "deployment", "alpha", "-n", "apps"],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout
    events = out.split("Events:", 1)[1]
    assert "Created" in events and "spindle" in events and "Deployment/apps/alpha created" in events


def test_two_sources_share_spindles_own_objects_without_a_tug_of_war(
    tmp_path: Path, cluster: Cluster
) -> None:
    """Every source renders the SpinKube CRDs (and a spin-ca Secret per app namespace): a second
    source must not relabel them as its own, or each source's diff shows drift after the other
    ran, forever."""
    from spindle_synclib import Repo

    with_ca = EXECUTOR + "    installDefaultCACerts: true\n"
    shop = example_repo(tmp_path / "shop", apps=("alpha",))
    shop.write("executor.yaml", with_ca)
    shop.commit("CA certificates")
    blog = Repo(tmp_path / "blog")
    blog.write("executor.yaml", with_ca.replace("containerd-shim-spin", "blog-shim"))
    blog.write("app.yaml", spinapp("post").replace("containerd-shim-spin", "blog-shim"))
    blog.commit("blog")
    assert apply(shop, cluster).exit_code == 0
    second = apply(blog, cluster)
    assert second.exit_code == 0, second.stdout
    crd = "CustomResourceDefinition/spinapps.core.spinkube.dev"
    assert second.actions()[crd] == "Unchanged" and second.actions()["Secret/apps/spin-ca"] == "Unchanged"
    for repo in (shop, blog, shop):
        run = diff(repo, cluster)
        assert run.exit_code == 0, run.stdout
        assert apply(repo, cluster).exit_code == 0
    live = cluster.get("apiextensions.k8s.io/v1", "CustomResourceDefinition", crd.split("/")[1], None)
    assert live is not None and live["metadata"]["labels"]["spindle.dev/source"] == "shop"


def test_an_object_the_api_server_rejects_is_reported_with_its_file(tmp_path: Path, cluster: Cluster) -> None:
    """A CI log must say which file in Git to fix, not only which object failed."""
    repo = example_repo(tmp_path / "repo", apps=("alpha",))
    assert apply(repo, cluster).exit_code == 0
    repo.write("settings/bad.yaml", "apiVersion: v1\nkind: Service\nmetadata:\n  name: bad\n"
               "  namespace: apps\nspec:\n  ports: [{port: eighty}]\n")
    repo.commit("a number where a string belongs")
    run = diff(repo, cluster)
    assert run.exit_code == 2
    failed = [line for line in run.stdout.splitlines() if line.startswith("✗ Service/apps/bad")]
    assert failed and "settings/bad.yaml" in failed[0] and ".spec.ports" in failed[0]
    text = spindle(*apply_args(repo, cluster))
    assert text.exit_code == 2
    row = next(line for line in text.stdout.splitlines() if line.startswith("Service/apps/bad"))
    assert "settings/bad.yaml" in row and "Failed" in row
