"""The Shim node flow against kubesim (its simulator completes Jobs): installer Jobs for the
selected nodes, node labels pending → provisioned, uninstall when the Shim leaves Git, then the
label is removed; Jobs that are no longer rendered are pruned."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from spindle_synclib import Cluster, apply, example_repo

pytestmark = pytest.mark.slow

SHIM = """apiVersion: runtime.spinkube.dev/v1alpha1
kind: Shim
metadata:
  name: spin-v2
spec:
  nodeSelector:
    spin: "true"
  fetchStrategy:
    type: anonymousHttp
    anonHttp:
      location: https://example.com/containerd-shim-spin-v2-linux-x86_64.tar.gz
  runtimeClass:
    name: wasmtime-spin-v2
    handler: spin-v2
  rolloutStrategy:
    type: recreate
  containerdRuntimeOptions:
    SystemdCgroup: "true"
"""


def add_node(cluster: Cluster, tmp_path: Path, name: str, labels: dict[str, str]) -> None:
    lines = "".join(f'    {k}: "{v}"\n' for k, v in labels.items())
    manifest = tmp_path / f"{name}.yaml"
    manifest.write_text(f"apiVersion: v1\nkind: Node\nmetadata:\n  name: {name}\n  labels:\n{lines}")
    cluster.kubectl("apply", "--server-side", "-f", str(manifest))
    cluster.kubectl(
        "patch",
        "node",
        name,
        "--subresource=status",
        "--type=merge",
        "-p",
        '{"status":{"nodeInfo":{"operatingSystem":"linux","architecture":"amd64"}}}',
    )


def node_labels(cluster: Cluster, name: str) -> dict[str, str]:
    node = cluster.get("v1", "Node", name, None)
    assert node is not None
    return dict(node["metadata"].get("labels") or {})


def test_shim_install_and_uninstall_follow_the_jobs(tmp_path: Path, cluster: Cluster) -> None:
    add_node(cluster, tmp_path, "node-a", {"spin": "true"})
    add_node(cluster, tmp_path, "node-b", {"spin": "false"})
    repo = example_repo(tmp_path / "repo", apps=("alpha",))
    repo.write("shim.yaml", SHIM)
    repo.commit("shim")

    first = apply(repo, cluster, "--timeout", "0")  # do not wait: the Job is still running
    assert first.exit_code == 0, first.stdout[-3000:]
    actions = first.actions()
    assert actions["Job/spindle-system/node-a-spin-v2-install"] == "Created"
    assert actions["RuntimeClass/wasmtime-spin-v2"] == "Created"
    assert not any("node-b" in s for s in actions)  # not selected
    assert node_labels(cluster, "node-a")["spin-v2"] == "pending"
    assert "spin-v2" not in node_labels(cluster, "node-b")

    deadline = time.monotonic() + 30
    while True:  # the simulator completes the Job
        job = cluster.get("batch/v1", "Job", "node-a-spin-v2-install", "spindle-system")
        if job and any(c["type"] == "Complete" for c in (job.get("status") or {}).get("conditions") or []):
            break
        assert time.monotonic() < deadline, f"the install Job never completed: {job}"
        time.sleep(0.05)
    second = apply(repo, cluster)
    assert second.exit_code == 0
    assert second.actions()["Job/spindle-system/node-a-spin-v2-install"] == "Unchanged"
    assert node_labels(cluster, "node-a")["spin-v2"] == "provisioned"

    third = apply(repo, cluster)
    assert third.actions()["Job/spindle-system/node-a-spin-v2-install"] == "Pruned"  # provisioned: done
    assert node_labels(cluster, "node-a")["spin-v2"] == "provisioned"

    repo.remove("shim.yaml")
    repo.commit("remove the shim")
    uninstall = apply(repo, cluster)
    assert uninstall.exit_code == 0, uninstall.stdout[-3000:]
    actions = uninstall.actions()
    assert actions["Job/spindle-system/node-a-spin-v2-uninstall"] == "Created"
    assert actions["RuntimeClass/wasmtime-spin-v2"] == "Pruned"
    assert "spin-v2" not in node_labels(cluster, "node-a")
    job = cluster.get("batch/v1", "Job", "node-a-spin-v2-uninstall", "spindle-system")
    assert job is not None
    env = {e["name"]: e.get("value") for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["RUNTIME_OPTIONS"] == '{"SystemdCgroup":"true"}'  # same as the install's

    fourth = apply(repo, cluster)
    assert fourth.exit_code == 0
    assert fourth.actions()["Job/spindle-system/node-a-spin-v2-uninstall"] == "Pruned"
