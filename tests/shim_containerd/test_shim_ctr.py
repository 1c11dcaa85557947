"""containerd-shim-spin-v2 under a real containerd 1.6, driven with `ctr` the way an operator
would: run, serve, kill, delete, restart containerd, kill the shim, network namespaces, memory
limits, broken apps, and a pod sandbox + app pair grouped into one shim by CRI's annotations."""

from __future__ import annotations

import http.client
import os
import re
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from containerd_env import Containerd
from spin_images import GUESTS, WAT_APP, hungry_app_tar, spin_image_tar, wat_app_tar

pytestmark = pytest.mark.slow

RUNTIME = "io.containerd.spin.v2"
WAT_IMAGE = "docker.io/library/spin-wat:test"
HUNGRY_IMAGE = "docker.io/library/spin-hungry:test"


# -- the runtime under test (issue 10): every test runs with the installed shim (the runtime type,
#    found on PATH) and with the frozen executable `spindle node build` makes (by absolute path,
#    as runtime-class-manager registers it), built once per source tree by tests/node_release.
@pytest.fixture(scope="module", params=["installed", "frozen"], autouse=True)
def runtime(request: pytest.FixtureRequest) -> Iterator[str]:
    global RUNTIME
    if request.param == "frozen":
        import sys

        sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "node_release"))
        from node_build import can_freeze, frozen

        from reconciler.node.freeze import SHIM

        if (reason := can_freeze()) is not None:
            pytest.skip(f"cannot freeze the shim: {reason}")
        RUNTIME = str(frozen(SHIM))
    yield RUNTIME
    RUNTIME = "io.containerd.spin.v2"


@pytest.fixture(scope="module")
def images(containerd: Containerd, tmp_path_factory: pytest.TempPathFactory) -> Containerd:
    out = tmp_path_factory.mktemp("images")
    containerd.import_image(wat_app_tar(out / "wat.tar", WAT_IMAGE))
    containerd.import_image(hungry_app_tar(out / "hungry.tar", HUNGRY_IMAGE))
    return containerd


@pytest.fixture
def ids(images: Containerd) -> Iterator[Callable[[], str]]:
    """Fresh container ids; whatever a test leaves is force-removed after it."""
    made: list[str] = []

    def new() -> str:
        made.append(f"t{uuid.uuid4().hex[:10]}")
        return made[-1]

    yield new
    for cid in made:
        images.ctr("task", "kill", "-s", "KILL", cid, check=False)
        _wait(lambda cid=cid: _status(images, cid) in (None, "STOPPED"), 10)
        images.ctr("task", "rm", "-f", cid, check=False)
        images.ctr("containers", "rm", cid, check=False)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(port: int, path: str = "/", host: str = "127.0.0.1", timeout: float = 10) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def _wait(cond: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(interval)
    return cond()


def _tasks(c: Containerd) -> dict[str, tuple[int, str]]:
    out = c.ctr("task", "ls").stdout.splitlines()[1:]
    return {f[0]: (int(f[1]), f[2]) for f in (line.split() for line in out) if len(f) >= 3}


def _status(c: Containerd, cid: str) -> str | None:
    entry = _tasks(c).get(cid)
    return entry[1] if entry else None


def _run(
    c: Containerd, cid: str, *extra: str, image: str = WAT_IMAGE, port: int | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    env = ["--env", f"SPIN_HTTP_LISTEN_ADDR=127.0.0.1:{port}"] if port else []
    # without a network namespace to join, the host's (ctr's default is a new, empty one)
    net = [] if any(e.startswith("network:") for e in extra) else ["--net-host"]
    return c.ctr("run", "-d", "--runtime", RUNTIME, *net, *env, *extra, image, cid, check=check)


def _exit_status(c: Containerd, cid: str) -> int:
    """The status of a stopped task through the Wait RPC: `ctr task attach` waits for the task
    and exits with its status (and removes the task)."""
    return c.ctr("task", "attach", cid, check=False, timeout=20).returncode


def _workloads(c: Containerd) -> list[int]:
    return [pid for pid in _pids_with("_workload") if _cwd_under(pid, c.root)]


def _pids_with(word: str) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            if word.encode() in cmdline:
                out.append(int(entry))
    return out


def _cwd_under(pid: int, root: Path) -> bool:
    try:
        return os.readlink(f"/proc/{pid}/cwd").startswith(str(root))
    except OSError:
        return False


def _shim_daemons(c: Containerd) -> list[int]:
    return [
        pid
        for pid in _pids_with("-publish-binary")
        if _cwd_under(pid, c.root) and b"start" not in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    ]


# -- the lifecycle --------------------------------------------------------------------------------


def test_run_serves_then_sigterm_stops_with_0_and_delete_leaves_nothing(
    images: Containerd, ids: Callable[[], str]
) -> None:
    cid, port = ids(), _free_port()
    _run(images, cid, port=port)
    pid, status = _tasks(images)[cid]
    assert status == "RUNNING" and pid > 0
    code, body = _get(port, "/hello?x=1")
    assert code == 200 and body.startswith(b"path=/hello?x=1")
    assert images.ctr("task", "ps", cid).stdout.count(str(pid)) == 1

    images.ctr("task", "kill", cid)  # SIGTERM: drain, exit 0
    assert _wait(lambda: _status(images, cid) == "STOPPED", 15)
    rm = images.ctr("task", "rm", cid)
    assert "exit code" not in rm.stderr, rm.stderr  # ctr warns on a non-zero status
    images.ctr("containers", "rm", cid)
    bundle = images.task_dir / images.namespace / cid
    assert _wait(lambda: not bundle.exists(), 5), "containerd removed the bundle"
    assert not [m for m in images.mounts_under_root() if cid in str(m)]
    assert not _workloads(images)
    assert _wait(lambda: not os.listdir(images.shim_socket_dir), 5), "the shim's socket is gone"
    assert not _shim_daemons(images)
    with pytest.raises(OSError):
        _get(port, timeout=1)


def test_sigterm_exit_status_is_0_and_sigkill_is_137(images: Containerd, ids: Callable[[], str]) -> None:
    term, kill = ids(), ids()
    _run(images, term, port=_free_port())
    _run(images, kill, port=_free_port())
    images.ctr("task", "kill", term)
    images.ctr("task", "kill", "-s", "KILL", kill)
    assert _wait(lambda: _status(images, term) == "STOPPED" and _status(images, kill) == "STOPPED", 15)
    assert _exit_status(images, term) == 0
    assert _exit_status(images, kill) == 137
    log = images.log_text()
    assert "topic=/tasks/exit" in log and f"task {kill} exited with status 137" in log


def test_in_flight_request_finishes_after_sigterm(
    images: Containerd, ids: Callable[[], str], tmp_path: Path
) -> None:
    cid, port = ids(), _free_port()
    _run(images, cid, port=port)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    body = os.urandom(1 << 20)
    conn.putrequest("POST", "/echo")
    conn.putheader("Content-Length", str(len(body)))
    conn.endheaders()
    conn.send(body[: 1 << 19])  # half the body is in, the request is in flight
    time.sleep(0.2)
    images.ctr("task", "kill", cid)
    conn.send(body[1 << 19 :])
    resp = conn.getresponse()
    assert resp.status == 200 and resp.read() == body
    assert _wait(lambda: _status(images, cid) == "STOPPED", 15)
    assert _exit_status(images, cid) == 0


def test_two_apps_at_once_and_guest_logs_reach_ctr_through_the_task_stdio(
        images: Containerd, ids: Callable[[], str]) -> None:
    a, b = ids(), ids()
    pa, pb = _free_port(), _free_port()
    # `a` in the foreground: ctr copies the task's stdio FIFOs to its own and exits with its status
    foreground = subprocess.Popen(
        ["ctr", "--address", str(images.address), "--namespace", images.namespace, "run", "--rm",
         "--fifo-dir", str(images.fifo_dir), "--runtime", RUNTIME, "--net-host",
         "--env", f"SPIN_HTTP_LISTEN_ADDR=127.0.0.1:{pa}", WAT_IMAGE, a],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        _run(images, b, port=pb)
        assert _wait(lambda: _status(images, a) == "RUNNING", 30)
        assert _get(pa, "/from-a")[1].startswith(b"path=/from-a")
        assert _get(pb, "/from-b")[1].startswith(b"path=/from-b")
        assert len(_shim_daemons(images)) >= 2  # one shim per container outside a pod
        images.ctr("task", "kill", a)
        output, _ = foreground.communicate(timeout=30)
    finally:
        if foreground.poll() is None:
            foreground.kill()
    assert foreground.returncode == 0, output
    # what the app wrote to its stdout/stderr: the start banner and the access line
    assert f"serving on http://127.0.0.1:{pa}" in output
    assert '"GET /from-a HTTP/1.1" 200' in output
    assert _get(pb, "/still")[0] == 200


def test_containerd_restart_reconnects_and_the_app_keeps_serving(
    images: Containerd, ids: Callable[[], str]
) -> None:
    cid, port = ids(), _free_port()
    _run(images, cid, port=port)
    pid = _tasks(images)[cid][0]
    images.restart()
    assert _get(port, "/after")[0] == 200
    assert _tasks(images)[cid] == (pid, "RUNNING")  # reconnected to the same shim and task
    images.ctr("task", "kill", cid)
    assert _wait(lambda: _status(images, cid) == "STOPPED", 15)
    assert _exit_status(images, cid) == 0


def test_killed_shim_is_cleaned_up_by_the_delete_action(images: Containerd, ids: Callable[[], str]) -> None:
    cid, port = ids(), _free_port()
    _run(images, cid, port=port)
    bundle = images.task_dir / images.namespace / cid
    daemon = int((bundle / "shim.pid").read_text())
    workload = _tasks(images)[cid][0]
    os.kill(daemon, signal.SIGKILL)
    # containerd sees the connection drop, runs `containerd-shim-spin-v2 ... delete`, which
    # kills the orphaned workload and unmounts the rootfs
    assert _wait(lambda: cid not in _tasks(images), 15), images.log_tail()
    assert _wait(lambda: not Path(f"/proc/{workload}").exists(), 10)
    assert _wait(lambda: not [m for m in images.mounts_under_root() if cid in str(m)], 10)
    with pytest.raises(OSError):
        _get(port, timeout=1)
    assert "cleaning up dead shim" in images.log_text()


def test_own_network_namespace_on_the_same_port_as_another_app(images: Containerd,
                                                                ids: Callable[[], str], netns: str) -> None:
    port = _free_port()
    host, isolated = ids(), ids()
    _run(images, host, port=port)
    _run(images, isolated, "--with-ns", f"network:/var/run/netns/{netns}", port=port)
    assert _get(port, "/host")[1].startswith(b"path=/host")
    assert _get_in_netns(netns, port, "/ns").startswith("200 path=/ns")
    assert _same_ns(_tasks(images)[isolated][0], "net", f"/var/run/netns/{netns}")
    images.ctr("task", "kill", "-s", "KILL", isolated)  # before the namespace goes


@pytest.fixture
def netns() -> Iterator[str]:
    """A network namespace made with `ip netns add`, loopback up; deleted after the test."""
    name = f"sdc-{uuid.uuid4().hex[:8]}"
    made = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"this machine does not allow network namespaces: ip netns add: {made.stderr.strip()}")
    subprocess.run(["ip", "netns", "exec", name, "ip", "link", "set", "lo", "up"], check=True)
    yield name
    subprocess.run(["ip", "netns", "del", name], check=False)


def _get_in_netns(netns: str, port: int, path: str) -> str:
    code = ("import http.client as h, sys; c = h.HTTPConnection('127.0.0.1', %d, timeout=10); "
            "c.request('GET', %r); r = c.getresponse(); sys.stdout.write(f'{r.status} ' + r.read().decode())")
    proc = subprocess.run(["ip", "netns", "exec", netns, "python3", "-c", code % (port, path)],
                          capture_output=True, text=True, timeout=30)
    return proc.stdout or proc.stderr


def _same_ns(pid: int, kind: str, path: str) -> bool:
    return os.stat(f"/proc/{pid}/ns/{kind}").st_ino == os.stat(path).st_ino


def test_sandbox_and_app_grouped_like_cri_share_one_shim_and_the_pod_network(
        images: Containerd, ids: Callable[[], str], netns: str) -> None:
    sandbox, app, port = ids(), ids(), _free_port()

    def cri(kind: str) -> list[str]:
        return ["--annotation", f"io.kubernetes.cri.container-type={kind}",
                "--annotation", f"io.kubernetes.cri.sandbox-id={sandbox}",
                "--annotation", "io.kubernetes.cri.sandbox-namespace=default"]

    images.ctr("run", "-d", "--runtime", RUNTIME, *cri("sandbox"),
               "--with-ns", f"network:/var/run/netns/{netns}", WAT_IMAGE, sandbox)
    holder = _tasks(images)[sandbox][0]
    assert _same_ns(holder, "net", f"/var/run/netns/{netns}")  # the pid CRI points apps at
    # CRI's app spec: the pod's namespaces through /proc/<sandbox pid>/ns/...
    _run(images, app, *cri("container"), "--with-ns", f"network:/proc/{holder}/ns/net",
         "--with-ns", f"ipc:/proc/{holder}/ns/ipc", "--with-ns", f"uts:/proc/{holder}/ns/uts", port=port)
    bundles = images.task_dir / images.namespace
    assert (bundles / sandbox / "address").read_text() == (bundles / app / "address").read_text()
    assert not (bundles / app / "shim.pid").exists()  # `start` found the pod's shim and reused it
    daemon = int((bundles / sandbox / "shim.pid").read_text())
    app_pid = _tasks(images)[app][0]
    for kind in ("net", "ipc", "uts"):
        assert _same_ns(app_pid, kind, f"/proc/{holder}/ns/{kind}")
    assert _get_in_netns(netns, port, "/in-pod").startswith("200 path=/in-pod")

    images.ctr("task", "kill", app)
    assert _wait(lambda: _status(images, app) == "STOPPED", 15)
    images.ctr("task", "rm", app)  # Delete, then Shutdown: ignored while the sandbox remains
    images.ctr("containers", "rm", app)
    time.sleep(0.3)
    assert Path(f"/proc/{daemon}").exists() and _status(images, sandbox) == "RUNNING"

    images.ctr("task", "kill", sandbox)  # SIGTERM: the holder exits 0, like pause
    assert _wait(lambda: _status(images, sandbox) == "STOPPED", 10)
    assert _exit_status(images, sandbox) == 0
    images.ctr("containers", "rm", sandbox)
    assert _wait(lambda: not Path(f"/proc/{daemon}").exists(), 10), "the last task took the shim with it"


def test_memory_limit_stops_a_hungry_guest_and_not_the_shim(
    images: Containerd, ids: Callable[[], str]
) -> None:
    hungry, bystander = ids(), ids()
    hp, bp = _free_port(), _free_port()
    _run(images, bystander, port=bp)
    _run(images, hungry, "--memory-limit", str(128 << 20), image=HUNGRY_IMAGE, port=hp)
    pid = _tasks(images)[hungry][0]
    limits = [
        Path(line.split(":", 2)[2])
        for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines()
        if ":memory:" in line
    ]
    assert limits, "the workload joined a memory cgroup"
    limit_file = Path("/sys/fs/cgroup/memory") / str(limits[0]).lstrip("/") / "memory.limit_in_bytes"
    assert int(limit_file.read_text()) == 128 << 20
    with pytest.raises((OSError, http.client.HTTPException)):
        _get(hp, "/fill", timeout=30)  # the kernel kills the app mid-request
    assert _wait(lambda: _status(images, hungry) == "STOPPED", 15)
    assert _exit_status(images, hungry) == 137
    assert "topic=/tasks/oom" in images.log_text()
    assert _get(bp, "/unharmed")[0] == 200


VARIABLE_APP = (
    WAT_APP
    + """\
[variables]
api_key = { required = true }
[component.wat.variables]
key = "{{ api_key }}"
"""
)

BROKEN = {
    "no-spin-toml": (None, {"handler.wasm": b"\0asm\1\0\0\0"}, "spin.toml"),
    "wasm-does-not-compile": (WAT_APP, {"handler.wasm": b"\0asm\1\0\0\0garbage"}, "component 'wat'"),
    "missing-required-variable": (
        VARIABLE_APP,
        {"handler.wasm": (GUESTS / "handler.wasm").read_bytes()},
        "variable 'api_key'",
    ),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_a_broken_app_fails_the_task_with_a_clear_message_and_leaves_nothing(
    images: Containerd, ids: Callable[[], str], tmp_path: Path, case: str
) -> None:
    manifest, files, message = BROKEN[case]
    image = f"docker.io/library/broken-{case}:test"
    images.import_image(spin_image_tar(tmp_path / "img.tar", image, manifest, files))
    cid = ids()
    before = set(_workloads(images))
    proc = _run(images, cid, image=image, port=_free_port(), check=False)
    assert proc.returncode != 0
    assert message in proc.stderr, proc.stderr  # the ctr error
    assert message in images.log_text()  # and the containerd log
    assert cid not in _tasks(images)
    assert set(_workloads(images)) <= before
    assert not [m for m in images.mounts_under_root() if cid in str(m)]
    images.ctr("containers", "rm", cid)


def test_metrics_come_from_the_task_cgroup_and_update_changes_its_limit(images: Containerd,
                                                                         ids: Callable[[], str]) -> None:
    from shim.containerd import ttrpc
    from shim.containerd.proto import shim_pb2

    cid = ids()
    _run(images, cid, port=_free_port())
    metrics = images.ctr("task", "metrics", cid).stdout
    usage = int(re.search(r"memory\.usage_in_bytes\s+(\d+)", metrics).group(1))  # type: ignore[union-attr]
    # what the app allocated after joining its cgroup (the spare's preloaded runtime stays charged to
    # the shim's cgroup: the kernel no longer moves charges; README)
    assert usage > 0, metrics
    assert re.search(r"pids\.current\s+1\b", metrics), metrics
    # containerd's Update (CRI's UpdateContainerResources; ctr 1.6 has no command for it)
    address = (images.task_dir / images.namespace / cid / "address").read_text()
    update = shim_pb2.UpdateTaskRequest(id=cid)
    update.resources.type_url = "types.containerd.io/opencontainers/runtime-spec/1/LinuxResources"
    update.resources.value = b'{"memory": {"limit": 268435456}}'
    with ttrpc.Client.connect(address, timeout=5) as client:
        client.call("containerd.task.v2.Task", "Update", update.SerializeToString(), timeout=5)
    metrics = images.ctr("task", "metrics", cid).stdout
    assert re.search(r"memory\.limit_in_bytes\s+268435456\b", metrics), metrics


@pytest.mark.parametrize("command", [["exec", "--exec-id", "e1"], ["pause"], ["resume"], ["checkpoint"]])
def test_unsupported_calls_fail_at_once_with_a_clear_message(images: Containerd, ids: Callable[[], str],
                                                             command: list[str]) -> None:
    cid = ids()
    _run(images, cid, port=_free_port())
    args = [*command, cid, "/bin/sh"] if command[0] == "exec" else [*command, cid]
    started = time.monotonic()
    proc = images.ctr("task", *args, check=False, timeout=20)
    assert proc.returncode != 0 and time.monotonic() - started < 10
    assert "is not supported by the spin shim" in proc.stderr, proc.stderr
    assert _status(images, cid) == "RUNNING"


def test_a_port_in_use_fails_start_with_the_listen_error(images: Containerd, ids: Callable[[], str]) -> None:
    first, second, port = ids(), ids(), _free_port()
    _run(images, first, port=port)
    proc = _run(images, second, port=port, check=False)
    assert proc.returncode != 0
    assert f"cannot listen on 127.0.0.1:{port}" in proc.stderr, proc.stderr
    assert _wait(lambda: _status(images, second) in (None, "STOPPED"), 10)
    assert _get(port, "/first")[0] == 200


def test_log_uri_file_gets_the_app_output(images: Containerd, ids: Callable[[], str], tmp_path: Path) -> None:
    cid, port = ids(), _free_port()
    log = tmp_path / "logs" / "app.log"
    _run(images, cid, "--log-uri", f"file://{log}", port=port)
    assert _get(port, "/logged")[0] == 200
    assert _wait(lambda: log.exists() and '"GET /logged HTTP/1.1" 200' in log.read_text(), 10)
    assert f"serving on http://127.0.0.1:{port}" in log.read_text()
