"""The containerd test environment, proven with runc: a pod driven over CRI exactly as kubelet does.

RunPodSandbox (default handler = runc) gets a pod IP from the test's CNI bridge; a busybox httpd
container started in it answers the host over HTTP; CRI writes its log file; StopContainer delivers
SIGTERM and ContainerStatus reports the exit; StopPodSandbox + RemovePodSandbox leave no netns, veth,
task, bundle, mount, process or cgroup behind. The spin shim's CRI tests repeat this shape with
handler "spin".
"""

from __future__ import annotations

import ipaddress
import time
from pathlib import Path

import pytest
from containerd_env import Containerd, CriPods
from cri.client import CriClient, container_config, pb
from cri_checks import (
    NodeState,
    http_get,
    log_lines,
    skip_unless_pods_possible,
    stop_and_remove_pod,
    wait_until,
)

pytestmark = pytest.mark.slow

INDEX_HTML = "hello from busybox httpd\n"
HTTPD_SCRIPT = (
    "echo httpd starting; "
    "trap 'echo stopping on TERM; exit 0' TERM; "
    "/bin/busybox httpd -f -v -p 8080 -h /www & wait"
)
def _run_httpd_pod(
    containerd: Containerd, cri: CriClient, pods: CriPods, image: str, name: str
) -> tuple[str, pb.PodSandboxConfig, str, str]:
    """RunPodSandbox (runc) + CreateContainer + StartContainer of busybox httpd; checks each step.
    Returns (sandbox id, sandbox config, container id, pod IP)."""
    sandbox_id, sandbox_config = pods.run(name, handler="")
    sandbox = cri.pod_sandbox_status(sandbox_id).status
    assert sandbox.state == pb.SANDBOX_READY
    assert sandbox.runtime_handler == ""
    pod_ip = ipaddress.ip_address(sandbox.network.ip)
    assert pod_ip in containerd.pod_subnet, f"pod IP {pod_ip} outside {containerd.pod_subnet}"

    config = container_config(
        "httpd",
        image,
        command=["/bin/busybox", "sh", "-c", HTTPD_SCRIPT],
        log_path="httpd/0.log",
    )
    container_id = cri.create_container(sandbox_id, config, sandbox_config)
    assert cri.container_status(container_id).status.state == pb.CONTAINER_CREATED
    cri.start_container(container_id)
    status = cri.container_status(container_id).status
    assert status.state == pb.CONTAINER_RUNNING and status.started_at > 0
    return sandbox_id, sandbox_config, container_id, str(pod_ip)


def test_runc_pod_over_cri(containerd: Containerd, cri: CriClient, pods: CriPods, httpd_image: str) -> None:
    skip_unless_pods_possible(containerd)
    mark, before = containerd.log_mark(), NodeState.now(containerd, cri)
    version = cri.version()
    assert version.runtime_name == "containerd" and version.runtime_api_version == "v1"

    # RunPodSandbox with the default handler (runc): pause container, CNI bridge, netns under root.
    sandbox_id, sandbox_config, container_id, pod_ip = _run_httpd_pod(
        containerd, cri, pods, httpd_image, "httpd"
    )
    during = NodeState.now(containerd, cri)
    assert len(during.netns - before.netns) == 1, containerd.netns_files()
    assert len(during.veths - before.veths) == 1, containerd.bridge_ports()
    assert sandbox_id in {p.id for p in cri.list_pod_sandbox(state=pb.SANDBOX_READY)}
    listed = cri.list_containers(sandbox_id=sandbox_id)
    assert [(c.id, c.state) for c in listed] == [(container_id, pb.CONTAINER_RUNNING)]

    # The host reaches the pod IP through the bridge.
    assert http_get(f"http://{pod_ip}:8080/") == (200, INDEX_HTML)

    # CRI copied the container's stdout/stderr into <pod log dir>/<log_path>, in CRI log format.
    log_file = Path(sandbox_config.log_directory) / "httpd" / "0.log"
    assert cri.container_status(container_id).status.log_path == str(log_file)
    wait_until(f"no 'httpd starting' line in {log_file}", lambda: "httpd starting" in log_file.read_text())
    assert ("stdout", "httpd starting") in log_lines(log_file)

    # StopContainer: SIGTERM (the stop signal) ends it gracefully, well within the grace period.
    started = time.monotonic()
    cri.stop_container(container_id, grace=10)
    assert time.monotonic() - started < 5, "SIGTERM did not stop the container; it waited for SIGKILL"
    status = cri.wait_container_state(container_id, pb.CONTAINER_EXITED)
    assert (status.exit_code, status.reason) == (0, "Completed")
    assert status.finished_at >= status.started_at > 0
    wait_until("no 'stopping on TERM' in the log", lambda: "stopping on TERM" in log_file.read_text())

    stop_and_remove_pod(containerd, cri, pods, sandbox_id, before)
    assert containerd.errors_since(mark) == []


def test_runc_pod_survives_containerd_restart(
    containerd: Containerd, cri: CriClient, pods: CriPods, httpd_image: str
) -> None:
    """containerd restarts (SIGTERM by PID, same config); the shim and the pod keep running and CRI
    reconnects: the pod is still ready, the container still running and serving, and it stops and
    is removed as cleanly as before."""
    skip_unless_pods_possible(containerd)
    mark, before = containerd.log_mark(), NodeState.now(containerd, cri)
    sandbox_id, _, container_id, pod_ip = _run_httpd_pod(containerd, cri, pods, httpd_image, "restart")
    processes = sorted(containerd.processes_under_root())
    old_pid = containerd.pid

    containerd.restart()
    assert containerd.pid != old_pid and containerd.running
    assert sorted(containerd.processes_under_root()) == processes  # shim and containers untouched
    assert cri.pod_sandbox_status(sandbox_id).status.state == pb.SANDBOX_READY
    assert cri.container_status(container_id).status.state == pb.CONTAINER_RUNNING
    assert http_get(f"http://{pod_ip}:8080/") == (200, INDEX_HTML)

    stop_and_remove_pod(containerd, cri, pods, sandbox_id, before)
    assert containerd.errors_since(mark) == []
