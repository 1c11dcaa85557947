"""Removing a namespace's directory from Git: the Namespace goes only when nothing in it belongs
to anyone else or is protected, its own objects first; Events never go into a namespace that
is gone; a failure to record an Event is a warning. Through the CLI against kubesim and real git."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from spindle_synclib import Cluster, Repo, apply

from reconciler import engine
from reconciler.changeset import ObjectRef
from reconciler.kube import errors
from reconciler.kube.client import KubeClient
from reconciler.ssa import nsprune

TEAM = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: team-a\n"


def configmap(name: str, *, annotations: str = "") -> str:
    meta = f"  annotations:\n    {annotations}\n" if annotations else ""
    return (
        f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: team-a\n{meta}"
        "data:\n  k: v\n"
    )


def team_repo(root: Path, *, protected: bool = False) -> Repo:
    repo = Repo(root)
    repo.write("keep/ns.yaml", "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: keep\n")
    repo.write("team-a/ns.yaml", TEAM)
    repo.write("team-a/settings.yaml", configmap("settings"))
    if protected:
        repo.write("team-a/precious.yaml", configmap("precious", annotations="spindle.dev/prune: disabled"))
    repo.commit("team-a")
    return repo


def remove_team(repo: Repo) -> None:
    for f in sorted((repo.root / "team-a").iterdir()):
        f.unlink()
    repo.commit("team-a leaves Git")


def gone_or_terminating(cluster: Cluster, name: str) -> bool:
    ns = cluster.get("v1", "Namespace", name, None)
    return ns is None or (ns.get("status") or {}).get("phase") == "Terminating"


def entry(run_json: dict[str, object], subject: str) -> dict[str, object]:
    entries = run_json["entries"]
    assert isinstance(entries, list)
    return next(e for e in entries if e["subject"] == subject)


@pytest.mark.slow
def test_a_namespace_holding_foreign_objects_is_kept_and_the_report_says_which(
    tmp_path: Path, cluster: Cluster
) -> None:
    repo = team_repo(tmp_path / "repo")
    assert apply(repo, cluster).exit_code == 0
    cluster.client.apply(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "hand-made", "namespace": "team-a"}},
        field_manager="kubectl",
    )
    remove_team(repo)
    run = apply(repo, cluster)
    assert run.exit_code == 0, run.stdout + run.stderr
    doc = run.json()
    ns = entry(doc, "Namespace/team-a")
    assert ns["action"] == "Skipped"
    assert "objects spindle does not own: ConfigMap/team-a/hand-made" in str(ns["message"])
    assert any("Namespace/team-a not pruned" in w for w in doc["warnings"])
    assert entry(doc, "ConfigMap/team-a/settings")["action"] == "Pruned"  # its own object went
    assert cluster.get("v1", "ConfigMap", "hand-made", "team-a") is not None
    assert not gone_or_terminating(cluster, "team-a")

    # Once the foreign object is gone, the next run prunes the Namespace (it stayed in the inventory).
    cluster.client.delete("v1", "ConfigMap", "hand-made", "team-a")
    again = apply(repo, cluster)
    assert again.exit_code == 0, again.stdout + again.stderr
    assert entry(again.json(), "Namespace/team-a")["action"] == "Pruned"
    assert again.json()["warnings"] == [] and again.json()["errors"] == []  # no Events into team-a
    assert gone_or_terminating(cluster, "team-a")


@pytest.mark.slow
def test_a_namespace_holding_a_protected_object_is_kept(tmp_path: Path, cluster: Cluster) -> None:
    repo = team_repo(tmp_path / "repo", protected=True)
    assert apply(repo, cluster).exit_code == 0
    remove_team(repo)
    run = apply(repo, cluster)
    assert run.exit_code == 0, run.stdout + run.stderr
    message = str(entry(run.json(), "Namespace/team-a")["message"])
    assert "objects marked spindle.dev/prune: disabled: ConfigMap/team-a/precious" in message
    assert cluster.get("v1", "ConfigMap", "precious", "team-a") is not None
    assert not gone_or_terminating(cluster, "team-a")


@pytest.mark.slow
def test_a_namespace_of_only_spindle_objects_is_emptied_then_deleted_and_the_run_succeeds(
    tmp_path: Path, cluster: Cluster
) -> None:
    repo = team_repo(tmp_path / "repo")
    assert apply(repo, cluster).exit_code == 0
    remove_team(repo)
    run = apply(repo, cluster)
    assert run.exit_code == 0, run.stdout + run.stderr
    actions = run.actions()
    assert actions["Namespace/team-a"] == "Pruned" and actions["ConfigMap/team-a/settings"] == "Pruned"
    assert run.json()["errors"] == [] and run.json()["warnings"] == []
    assert gone_or_terminating(cluster, "team-a")
    events = cluster.client.list("v1", "Event", namespace="team-a")
    assert not [e for e in events if (e.get("source") or {}).get("component") == "spindle"
                and "revision" in str(e.get("message")) and e.get("reason") == "Pruned"]


def cm(name: str, *, source: str | None = "repo", annotations: dict[str, str] | None = None,
       owners: bool = False, kind: str = "ConfigMap", api_version: str = "v1") -> dict[str, object]:
    meta: dict[str, object] = {"name": name, "namespace": "ns"}
    if source:
        meta["labels"] = {"spindle.dev/source": source}
    if annotations:
        meta["annotations"] = annotations
    if owners:
        meta["ownerReferences"] = [{"kind": "Deployment", "name": "x", "uid": "1"}]
    return {"apiVersion": api_version, "kind": kind, "metadata": meta}


@pytest.mark.parametrize(
    ("item", "where"),
    [
        (cm("mine"), "owned"),
        (cm("theirs", source="other"), "foreign"),
        (cm("nobody", source=None), "foreign"),
        (cm("kept", annotations={"spindle.dev/prune": "disabled"}), "protected"),
        (cm("ignored", annotations={"spindle.dev/ssa": "Ignore"}), "protected"),
        (cm("in-git"), "desired"),
        (cm("kube-root-ca.crt", source=None), None),
        (cm("default", source=None, kind="ServiceAccount"), None),
        (cm("rs-pod", source=None, owners=True, kind="Pod"), None),
        (cm("ev", source=None, kind="Event"), None),
        (cm("ev2", source=None, kind="Event", api_version="events.k8s.io/v1"), None),
    ],
)
def test_classify(item: dict[str, object], where: str | None) -> None:
    desired = {ObjectRef("v1", "ConfigMap", "ns", "in-git").key}
    got = nsprune.classify([item], source="repo", desired=desired)
    buckets = {"owned": got.owned, "foreign": got.foreign, "protected": got.protected, "desired": got.desired}
    placed = [name for name, refs in buckets.items() if refs]
    assert placed == ([where] if where else [])
    assert got.blocked == (where in ("foreign", "protected", "desired"))


def test_the_reason_names_ten_objects_and_counts_the_rest() -> None:
    got = nsprune.classify([cm(f"c{i:02}", source=None) for i in range(12)], source="repo", desired=set())
    reason = got.reason()
    assert reason.startswith("not pruned: it holds objects spindle does not own: ConfigMap/ns/c00, ")
    assert reason.endswith("ConfigMap/ns/c09 and 2 more")


class EventsForbidden(KubeClient):
    """A client whose account may not create Events (as with a tight RBAC role)."""

    def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        if obj.get("kind") == "Event":
            raise errors.Forbidden(f"Event/{obj['metadata']['namespace']}", "events is forbidden")
        return super().create(obj)


@pytest.mark.slow
def test_a_failure_to_record_events_is_a_warning_not_a_failed_run(tmp_path: Path, cluster: Cluster) -> None:
    repo = team_repo(tmp_path / "repo")
    client = EventsForbidden(cluster.client.api)
    result = engine.run(repo.root, source_name="repo", revision=None, options=engine.Options(), client=client)
    assert result.record.ok, result.record.errors
    assert result.record.warnings == [
        "cannot record events in namespace default: Event/default: events is forbidden",
        "cannot record events in namespace team-a: Event/team-a: events is forbidden",
    ]
