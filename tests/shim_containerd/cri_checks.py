"""Checks shared by the CRI tests (runc and spin handlers): HTTP to a pod, CRI log lines, and
"the node is as it was before the pod" after StopPodSandbox + RemovePodSandbox."""

from __future__ import annotations

import re
import shutil
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
from containerd_env import CRI_NAMESPACE, Containerd, CriPods, host_restrictions
from cri.client import CriClient, pb

# CRI log line: <RFC3339Nano> <stdout|stderr> <F|P> <text>
CRI_LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\S+ (stdout|stderr) [FP] (.*)$")


def http_get(url: str, within: float = 10.0) -> tuple[int, str]:
    """GET `url` without any proxy, retrying until the server answers or `within` runs out."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    deadline = time.monotonic() + within
    while True:
        try:
            with opener.open(url, timeout=2) as response:
                return response.status, response.read().decode()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def log_lines(path: Path) -> list[tuple[str, str]]:
    out = []
    for line in path.read_text().splitlines():
        match = CRI_LOG_LINE.match(line)
        assert match, f"not a CRI log line: {line!r}"
        out.append((match.group(1), match.group(2)))
    return out


def wait_until(what: str, check: object, within: float = 10.0) -> None:
    assert callable(check)
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} after {within}s")
        time.sleep(0.05)


def skip_unless_pods_possible(containerd: Containerd) -> None:
    if shutil.which("runc") is None:
        pytest.skip("runc is not installed (Debian: runc)")
    forbidden = host_restrictions(containerd)
    if forbidden:
        pytest.skip("this machine forbids what a CRI pod needs: " + "; ".join(forbidden.values()))


def cgroups_named(ids: set[str]) -> list[Path]:
    found = []
    for mount in (p for p in Path("/sys/fs/cgroup").iterdir() if p.is_dir()):
        for ns_dir in (mount / CRI_NAMESPACE, mount):
            if ns_dir.is_dir():
                found += [ns_dir / name for name in ids if (ns_dir / name).exists()]
    return found


@dataclass(frozen=True)
class NodeState:
    """What exists on the node (this containerd) at one moment; tests compare before and after, so
    pods and shims other tests leave running do not count against this one."""

    sandboxes: frozenset[str]
    containers: frozenset[str]
    tasks: frozenset[str]
    bundles: frozenset[str]
    processes: frozenset[int]
    mounts: frozenset[Path]
    netns: frozenset[Path]
    veths: frozenset[str]

    @classmethod
    def now(cls, containerd: Containerd, cri: CriClient) -> NodeState:
        def ctr_ls(*args: str) -> frozenset[str]:
            return frozenset(containerd.ctr(*args, "-q", namespace=CRI_NAMESPACE).stdout.split())

        return cls(
            sandboxes=frozenset(p.id for p in cri.list_pod_sandbox()),
            containers=frozenset(c.id for c in cri.list_containers()) | ctr_ls("containers", "ls"),
            tasks=ctr_ls("tasks", "ls"),
            bundles=frozenset(containerd.bundles(CRI_NAMESPACE)),
            processes=frozenset(containerd.processes_under_root()),
            mounts=frozenset(containerd.mounts_under_root()),
            netns=frozenset(containerd.netns_files()),
            veths=frozenset(containerd.bridge_ports()),
        )


def stop_and_remove_pod(
    containerd: Containerd, cri: CriClient, pods: CriPods, sandbox_id: str, before: NodeState
) -> None:
    """StopPodSandbox + RemovePodSandbox, then the node is as it was `before` the pod: no netns,
    veth, sandbox, container, task, bundle, process or mount of it is left, and no cgroup."""
    container_ids = {c.id for c in cri.list_containers(sandbox_id=sandbox_id)}
    cri.stop_pod_sandbox(sandbox_id)
    assert cri.pod_sandbox_status(sandbox_id).status.state == pb.SANDBOX_NOTREADY
    assert set(containerd.netns_files()) == before.netns
    assert set(containerd.bridge_ports()) == before.veths
    cri.remove_pod_sandbox(sandbox_id)
    pods.sandboxes.remove(sandbox_id)
    wait_until(
        "shim or container processes of the pod still running",
        lambda: set(containerd.processes_under_root()) == before.processes,
    )
    assert NodeState.now(containerd, cri) == before
    assert cgroups_named({sandbox_id, *container_ids}) == []
