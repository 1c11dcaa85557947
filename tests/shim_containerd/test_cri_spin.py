"""containerd-shim-spin-v2 the way kubelet drives it: containerd's CRI plugin with a `spin` runtime
handler, the pod's sandbox and its Spin app container in one shim, CNI bridge networking, HTTP at
the pod IP on Spin's default port 80, the CRI log file, stop and removal leaving nothing behind."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from containerd_env import CRI_NAMESPACE, Containerd, CriPods
from cri.client import CriClient, container_config, pb
from cri_checks import (
    NodeState,
    http_get,
    log_lines,
    skip_unless_pods_possible,
    stop_and_remove_pod,
    wait_until,
)
from spin_images import WAT_APP, spin_image_tar, wat_app_tar

pytestmark = pytest.mark.slow

SPIN_IMAGE = "docker.io/library/spin-wat-cri:test"


@pytest.fixture(scope="module")
def spin_image(containerd: Containerd) -> str:
    containerd.import_image(wat_app_tar(containerd.root / "images" / "spin-wat.tar", SPIN_IMAGE),
                            namespace=CRI_NAMESPACE)
    return SPIN_IMAGE


def test_spin_pod_over_cri(containerd: Containerd, cri: CriClient, pods: CriPods, spin_image: str) -> None:
    skip_unless_pods_possible(containerd)
    mark, before = containerd.log_mark(), NodeState.now(containerd, cri)
    sandbox_id, sandbox_config = pods.run("spin-app", handler="spin")
    sandbox = cri.pod_sandbox_status(sandbox_id).status
    assert sandbox.state == pb.SANDBOX_READY and sandbox.runtime_handler == "spin"
    pod_ip = sandbox.network.ip

    # spin-operator's container: command ["/"], SPIN_HTTP_LISTEN_ADDR unset (the shim's 0.0.0.0:80)
    config = container_config("app", spin_image, command=["/"], log_path="app/0.log")
    container_id = cri.create_container(sandbox_id, config, sandbox_config)
    cri.start_container(container_id)
    assert cri.container_status(container_id).status.state == pb.CONTAINER_RUNNING

    # one shim for the pod: the app's bundle points at the sandbox's socket
    bundles = containerd.task_dir / CRI_NAMESPACE
    assert (bundles / container_id / "address").read_text() == (bundles / sandbox_id / "address").read_text()

    status, body = http_get(f"http://{pod_ip}:80/from-kubelet?x=1")
    assert status == 200 and body.startswith("path=/from-kubelet?x=1")

    log_file = Path(sandbox_config.log_directory) / "app" / "0.log"
    wait_until(f"no access line in {log_file}", lambda: "/from-kubelet" in log_file.read_text())
    lines = [text for _, text in log_lines(log_file)]
    assert any("serving on http://0.0.0.0:80" in t for t in lines)
    assert any('"GET /from-kubelet?x=1 HTTP/1.1" 200' in t for t in lines)

    started = time.monotonic()
    cri.stop_container(container_id, grace=10)
    assert time.monotonic() - started < 5, "SIGTERM did not stop the app; CRI waited for SIGKILL"
    exited = cri.wait_container_state(container_id, pb.CONTAINER_EXITED)
    assert (exited.exit_code, exited.reason) == (0, "Completed")
    assert exited.finished_at >= exited.started_at > 0

    stop_and_remove_pod(containerd, cri, pods, sandbox_id, before)
    assert containerd.errors_since(mark) == []


def test_a_broken_spin_app_fails_start_container_with_the_load_error(
        containerd: Containerd, cri: CriClient, pods: CriPods, tmp_path: Path) -> None:
    skip_unless_pods_possible(containerd)
    before = NodeState.now(containerd, cri)
    image = "docker.io/library/spin-broken-cri:test"
    broken = spin_image_tar(tmp_path / "broken.tar", image, WAT_APP,
                            {"handler.wasm": b"\0asm\1\0\0\0garbage"})
    containerd.import_image(broken, namespace=CRI_NAMESPACE)
    sandbox_id, sandbox_config = pods.run("spin-broken", handler="spin")
    container_id = cri.create_container(sandbox_id, container_config("app", image, command=["/"],
                                                                     log_path="app/0.log"), sandbox_config)
    with pytest.raises(Exception, match="component 'wat'"):
        cri.start_container(container_id)
    assert cri.pod_sandbox_status(sandbox_id).status.state == pb.SANDBOX_READY  # the pod's shim lives on
    stop_and_remove_pod(containerd, cri, pods, sandbox_id, before)
