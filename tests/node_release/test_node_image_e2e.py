"""End to end through a registry: the node-installer image is pushed by `spindle node push` to
Debian's docker-registry (127.0.0.1, htpasswd auth), pulled with `ctr images pull`, and run with
runc the way runtime-class-manager's Job runs it (privileged, the node's PID namespace, the host
root bind-mounted at /mnt/node-root). The result is the one tests/node_installer's end-to-end test
gets with the installer run directly: the config of a real containerd gains the runtime, that
containerd is restarted through `--restart-command`, and the shim the image carried (the frozen
one, from /assets) serves an app from /opt/kwasm/bin; uninstall takes it all away again.

Two containerds: the *node's* (tests/node_installer's Supervisor, whose config lives in the temp
host root and which the installer restarts) and a *runner* (containerd_env) that pulls and runs
the installer container, so the container's own runtime is not the one being restarted. From the
container, the restart command enters this test's mount namespace (`nsenter`, through the PID
namespace the Job shares with the test, as RCM's Job shares the node's) and runs
tests/node_installer's restart script there.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import test_node_installer_e2e as node
import tomlkit
from click.testing import CliRunner
from containerd_env import Containerd, _kill_processes_under
from node_release_testlib import PASSWORD, USER
from oci_testlib import Registry
from spin_images import wat_app_tar
from test_node_installer_e2e import e2e_root  # noqa: F401 - the fixture: the temp host root

from reconciler.cli import cli

pytestmark = pytest.mark.slow

RUNTIME_TYPE = "/opt/kwasm/bin/containerd-shim-spin-v2"


@pytest.fixture
def runner() -> Iterator[Containerd]:
    """The containerd that runs the installer container (runc); not the node's."""
    if shutil.which("runc") is None:
        pytest.skip("runc is not installed (Debian: runc)")
    env = Containerd.start(namespace="spindle-node-job", shim=False)
    try:
        yield env
    finally:
        report = env.cleanup()
        if report.problems:
            pytest.fail("the runner containerd left things behind:\n" + "\n".join(report.problems))


def _job(runner: Containerd, reference: str, root: Path, name: str, *args: str) -> tuple[int, str, str]:
    """Run the installer image like RCM's Job: `ctr run --rm` in the foreground, its exit status."""
    restart = f"nsenter --mount=/proc/{os.getpid()}/ns/mnt -- /bin/sh {root / 'restart.sh'}"
    proc = runner.ctr(
        "run", "--rm", "--runtime", "io.containerd.runc.v2", "--privileged",
        "--with-ns", f"pid:/proc/{os.getpid()}/ns/pid",  # hostPID: true (this test's "host")
        "--mount", f"type=bind,src={root / 'host'},dst=/mnt/node-root,options=rbind:rw",
        "--env", "HOST_ROOT=/mnt/node-root", "--env", 'RUNTIME_OPTIONS={"SystemdCgroup":"false"}',
        reference, name, "/usr/local/bin/spindle-node-installer", *args, "-H", "/mnt/node-root",
        "-r", "spin-v2", "--restart-command", restart,
        check=False, timeout=120,
    )  # fmt: skip
    return proc.returncode, proc.stdout, proc.stderr


def test_pushed_image_pulled_and_run_with_runc_installs_the_frozen_shim(
    e2e_root: Path,  # noqa: F811 - the imported fixture
    basic_registry: Registry,
    build_dir: Path,
    runner: Containerd,
) -> None:
    root = e2e_root
    reference = basic_registry.ref("spindle/node-installer-e2e:1")
    pushed = CliRunner().invoke(cli, ["node", "push", reference, "--from", str(build_dir), "--username", USER,
                                      "--password-stdin", "--plain-http"], input=PASSWORD + "\n")
    assert pushed.exit_code == 0, pushed.output
    runner.ctr("images", "pull", "--plain-http", "--user", f"{USER}:{PASSWORD}", reference, timeout=120)
    shim = (build_dir / "containerd-shim-spin-v2").read_bytes()

    sup = node.Supervisor(root)
    node._set_subreaper(True)
    cid = ""
    try:
        sup.start()
        original_config = sup.config.read_bytes()
        assert "spin-v2" not in node._cri_runtimes(sup)
        node.ctr(sup, "images", "import", str(wat_app_tar(root / "app.tar", node.IMAGE)))
        first_pid = sup.pid

        code, out, err = _job(runner, reference, root, "job-install", "install")
        assert code == 0, err + sup.log_tail()
        assert out.strip().startswith(
            "spin-v2: provisioned on default: config /etc/containerd/config.toml changed")
        assert (root / "restarts.log").read_text().split() == [str(first_pid)]
        assert sup.pid != first_pid and len(sup.pids) == 2
        written = tomlkit.parse(sup.config.read_text()).unwrap()
        entry = written["plugins"]["io.containerd.grpc.v1.cri"]["containerd"]["runtimes"]["spin-v2"]
        assert entry["runtime_type"] == RUNTIME_TYPE
        installed = root / "host" / RUNTIME_TYPE.lstrip("/")
        assert installed.read_bytes() == shim  # the image's /assets/containerd-shim-spin-v2
        assert node._cri_runtimes(sup)["spin-v2"]["options"] == {"SystemdCgroup": False}

        # the frozen shim the image installed serves an app (it unpacks next to itself, on the node)
        cid, body = node._serve_once(sup, RUNTIME_TYPE, "/installed?by=node-installer-image")
        assert body.startswith(b"path=/installed?by=node-installer-image"), body
        assert list((installed.parent / ".spindle-bundles").glob("containerd-shim-spin-v2-*/.complete"))
        node._remove_task(sup, cid)
        cid = ""

        code, out, err = _job(runner, reference, root, "job-again", "install")
        assert code == 0, err
        assert out.strip().endswith("no restart needed") and len(sup.pids) == 2

        code, out, err = _job(runner, reference, root, "job-uninstall", "uninstall")
        assert code == 0, err + sup.log_tail()
        assert len(sup.pids) == 3
        assert sup.config.read_bytes() == original_config
        assert not installed.exists()
        assert "spin-v2" not in node._cri_runtimes(sup)
    finally:
        if cid and sup.pids:
            node.ctr(sup, "task", "rm", "-f", cid, check=False, timeout=20)
        sup.stop()
        _kill_processes_under(root)
        node._reap_orphans(keep=set(sup.pids))
        node._set_subreaper(False)
