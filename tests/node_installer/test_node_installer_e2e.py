"""End to end with a real containerd (1.6, CRI on): the installer edits the containerd config in a
temp host root, restarts that containerd through `--restart-command`, and the runtime it wrote
serves a Spin app; the uninstall takes it away again.

Layout (a short /tmp dir: unix socket paths must stay under ~100 characters):

    ROOT/host/                   the host root (-H)
      etc/containerd/config.toml version 2; root, state, sockets, opt, CNI dirs all under ROOT/ctrd
      opt/kwasm/                 where the installer puts the shim, rcm-lock.json and its state
    ROOT/assets/                 containerd-shim-spin-v2: a copy of the console script next to
                                 sys.executable (a Python script, so a copy runs as well)
    ROOT/ctrd/                   containerd's root, state, sockets, shim sockets, cache, FIFOs
    ROOT/restart.sh              the restart command: SIGTERM the current containerd (PID from
                                 ROOT/containerd.pid) and wait until the supervisor has started the
                                 next one and it answers

The installer writes `runtime_type = "/opt/kwasm/bin/containerd-shim-spin-v2"`, a node path. So
containerd runs in its own mount namespace (`unshare --mount --propagation private`) where
ROOT/host/opt/kwasm is bind-mounted on /opt/kwasm: the path resolves for containerd and for the
shims it starts, and the mount vanishes with the namespace. /opt/kwasm is created on this machine
only if it does not exist, and removed afterwards.

The test plays systemd: a supervisor thread owns containerd's process, starts it again whenever
it exits, and writes the new PID; the restart script only sends SIGTERM. Shim daemons outlive
their `start` process; this test process is their subreaper while it runs, so they are reaped.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import tomlkit
from containerd_env import _kill_processes_under, find_shim_binary
from spin_images import wat_app_tar

pytestmark = pytest.mark.slow

IMAGE = "docker.io/library/spin-node-installer:test"
NAMESPACE = "spindle-ni"
NODE_KWASM = Path("/opt/kwasm")
PR_SET_CHILD_SUBREAPER = 36
START_TIMEOUT = 20.0


def _config(root: Path) -> str:
    ctrd = root / "ctrd"
    return f"""\
# the test's containerd: everything under {ctrd}
version = 2
root = "{ctrd / "lib"}"
state = "{ctrd / "state"}"
temp = "{ctrd / "tmp"}"

[grpc]
  address = "{ctrd / "run" / "containerd.sock"}"

[ttrpc]
  address = "{ctrd / "run" / "containerd.sock.ttrpc"}"

[debug]
  address = "{ctrd / "run" / "debug.sock"}"
  level = "debug"

[metrics]
  address = ""

[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = "{ctrd / "opt"}"

  [plugins."io.containerd.grpc.v1.cri"]
    sandbox_image = "docker.io/library/spindle-pause:test"
    netns_mounts_under_state_dir = true
    restrict_oom_score_adj = true
    disable_apparmor = true
    disable_tcp_service = true
    stream_server_address = "127.0.0.1"
    stream_server_port = "0"

    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = "{ctrd / "cni" / "bin"}"
      conf_dir = "{ctrd / "cni" / "net.d"}"

    [plugins."io.containerd.grpc.v1.cri".containerd]
      default_runtime_name = "runc"

      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"
"""


_RESTART_SCRIPT = """\
#!/bin/sh
# Restart the test's containerd: SIGTERM it; the test's supervisor starts the next one.
old=$(cat "{pidfile}")
echo "$old" >> "{log}"
kill -TERM "$old" || exit 1
n=0
while [ "$(cat "{pidfile}")" = "$old" ]; do
  n=$((n + 1)); [ "$n" -gt 400 ] && {{ echo "containerd did not come back" >&2; exit 1; }}; sleep 0.05
done
n=0
until ctr --address "{address}" version >/dev/null 2>&1; do
  n=$((n + 1)); [ "$n" -gt 400 ] && {{ echo "containerd does not answer" >&2; exit 1; }}; sleep 0.05
done
"""


class Supervisor:
    """Keeps one containerd running in its own mount namespace (see the module docstring)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.config = root / "host" / "etc" / "containerd" / "config.toml"
        self.address = root / "ctrd" / "run" / "containerd.sock"
        self.pidfile = root / "containerd.pid"
        self.log = root / "containerd.log"
        self.pids: list[int] = []
        self._proc: subprocess.Popen[bytes] | None = None
        self._stopping = False
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._watch, name="containerd-supervisor", daemon=True)

    @property
    def pid(self) -> int:
        return self.pids[-1]

    def start(self) -> None:
        self._launch()
        self._thread.start()
        self.wait_ready()

    def _launch(self) -> None:
        if len(self.pids) >= 10:
            raise RuntimeError("containerd was started 10 times; giving up")
        env = dict(os.environ)
        env["SPINDLE_SHIM_SOCKET_DIR"] = str(self.root / "ctrd" / "s")
        env["SPINDLE_SHIM_CACHE_DIR"] = str(self.root / "ctrd" / "cache")
        env["TMPDIR"] = str(self.root / "ctrd" / "tmp")
        script = 'mount --bind "$1" /opt/kwasm && exec containerd --config "$2"'
        argv = ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh"]
        argv += [str(self.root / "host" / "opt" / "kwasm"), str(self.config)]
        with open(self.log, "ab") as log:
            self._proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
                cwd=self.root, start_new_session=True,
            )  # fmt: skip
        self.pids.append(self._proc.pid)  # unshare and sh exec: this is containerd's PID
        self.pidfile.write_text(str(self._proc.pid))

    def _watch(self) -> None:
        while True:
            proc = self._proc
            assert proc is not None
            proc.wait()
            with self._lock:
                if self._stopping:
                    return
                self._launch()

    def wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if ctr(self, "version", check=False).returncode == 0:
                return
            time.sleep(0.05)
        raise RuntimeError(f"containerd does not answer on {self.address}:\n{self.log_tail()}")

    def log_tail(self) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-30:]) if self.log.exists() else ""

    @property
    def exited(self) -> bool:
        """The last containerd has exited and been reaped (the earlier ones were, by `_watch`)."""
        return self._proc is None or self._proc.poll() is not None

    def stop(self) -> None:
        with self._lock:
            self._stopping = True
            proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        if self._thread.is_alive():
            self._thread.join(timeout=10)


def ctr(
    sup: Supervisor, *args: str, check: bool = True, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    argv = ["ctr", "--address", str(sup.address), "--namespace", NAMESPACE, *args]
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONTAINERD_")}
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr}\n{sup.log_tail()}")
    return proc


def _set_subreaper(on: bool) -> None:
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1 if on else 0, 0, 0, 0)


def _reap_orphans(keep: set[int]) -> None:
    """waitpid the exited processes that were reparented to us (shim daemons), not our own Popens."""
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) in keep:
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            comm = Path(f"/proc/{entry}/comm").read_text().strip()
        except OSError:
            continue
        if int(fields[1]) == me and fields[0] == "Z" and comm.startswith(("containerd-shi", "python")):
            with contextlib.suppress(ChildProcessError):
                os.waitpid(int(entry), os.WNOHANG)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(port: int, path: str) -> tuple[int, bytes]:
    deadline = time.monotonic() + 10
    while True:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            conn.request("GET", path)
            resp = conn.getresponse()
            return resp.status, resp.read()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
        finally:
            conn.close()


def _cri_runtimes(sup: Supervisor) -> dict[str, dict[str, object]]:
    """The runtimes containerd's CRI plugin loaded from the config (CRI Status, verbose)."""
    from cri.client import CriClient, CriError

    deadline = time.monotonic() + START_TIMEOUT
    while True:
        try:
            with CriClient(sup.address, timeout=5) as cri:
                info = cri.status(verbose=True).info
            config = json.loads(info["config"])
            runtimes: dict[str, dict[str, object]] = config["containerd"]["runtimes"]
            return runtimes
        except (CriError, KeyError) as exc:
            if time.monotonic() > deadline:
                raise AssertionError(f"CRI status: {exc}\n{sup.log_tail()}") from exc
            time.sleep(0.1)


def _serve_once(sup: Supervisor, runtime_type: str, path: str) -> tuple[str, bytes]:
    """`ctr run -d --net-host --runtime RUNTIME_TYPE` the app and GET `path` from it. A free port
    can be taken by another process between choosing and binding it (the task then exits 1 at
    once); such a run is retried on a new port, twice at most."""
    failures = []
    for attempt in range(3):
        cid, port = f"ni-app{attempt}", _free_port()
        listen = f"SPIN_HTTP_LISTEN_ADDR=127.0.0.1:{port}"
        fifos = str(sup.root / "ctrd/fifo")
        ctr(
            sup,
            "run",
            "-d",
            "--net-host",
            "--fifo-dir",
            fifos,
            "--runtime",
            runtime_type,
            "--env",
            listen,
            IMAGE,
            cid,
        )
        try:
            status, body = _get(port, path)
        except OSError as exc:
            failures.append(f"port {port}: {exc}; {ctr(sup, 'task', 'ls', check=False).stdout.strip()}")
            _remove_task(sup, cid)
            continue
        assert status == 200, body
        return cid, body
    raise AssertionError("the app did not answer:\n" + "\n".join(failures) + "\n" + sup.log_tail())


def _remove_task(sup: Supervisor, cid: str) -> None:
    ctr(sup, "task", "kill", "-s", "SIGKILL", cid, check=False)
    deadline = time.monotonic() + 15
    while "RUNNING" in ctr(sup, "task", "ls").stdout and time.monotonic() < deadline:
        time.sleep(0.05)
    ctr(sup, "task", "rm", "-f", cid, check=False)
    ctr(sup, "containers", "rm", cid)


def _installer(root: Path, operation: str) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).parent / "spindle-node-installer"
    argv = (
        [str(script)]
        if script.is_file()
        else [sys.executable, "-c", "from node_installer.cli import main; main()"]
    )
    argv += [
        operation,
        "-H",
        str(root / "host"),
        "-r",
        "spin-v2",
        "--restart-command",
        f"sh {root / 'restart.sh'}",
    ]
    if operation == "install":
        argv += ["-a", str(root / "assets")]
    env = {**os.environ, "RUNTIME_OPTIONS": '{"SystemdCgroup":"false"}'}
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, env=env, check=False)


@pytest.fixture
def e2e_root() -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip(
            f"needs root (containerd, mount namespaces, overlay mounts); running as uid {os.geteuid()}"
        )
    for tool in ("containerd", "ctr", "unshare"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (Debian: containerd, util-linux)")
    pytest.importorskip("grpc", reason="the CRI client (tests/shim_containerd/cri) needs grpcio")
    shim = find_shim_binary()
    if shim is None:
        pytest.skip("containerd-shim-spin-v2 is not installed (pip install -e .)")
    root = Path(tempfile.mkdtemp(prefix="sni-", dir="/tmp"))
    made_node_kwasm = False
    try:
        if not NODE_KWASM.exists():
            NODE_KWASM.mkdir(parents=True)
            made_node_kwasm = True
        for sub in ("host/etc/containerd", "host/opt/kwasm", "assets", "ctrd/run", "ctrd/s", "ctrd/fifo",
                    "ctrd/tmp", "ctrd/cni/net.d", "ctrd/cni/bin"):  # fmt: skip
            (root / sub).mkdir(parents=True, exist_ok=True)
        (root / "host/etc/containerd/config.toml").write_text(_config(root))
        shutil.copy2(shim, root / "assets" / "containerd-shim-spin-v2")
        (root / "restart.sh").write_text(
            _RESTART_SCRIPT.format(
                pidfile=root / "containerd.pid",
                log=root / "restarts.log",
                address=root / "ctrd/run/containerd.sock",
            )
        )
        yield root
    finally:
        if made_node_kwasm:
            with contextlib.suppress(OSError):
                NODE_KWASM.rmdir()
        shutil.rmtree(root, ignore_errors=True)


def test_installer_registers_a_runtime_a_real_containerd_runs(e2e_root: Path) -> None:
    root = e2e_root
    sup = Supervisor(root)
    _set_subreaper(True)
    cid = ""
    try:
        sup.start()
        original_config = sup.config.read_bytes()
        assert "spin-v2" not in _cri_runtimes(sup)
        ctr(sup, "images", "import", str(wat_app_tar(root / "app.tar", IMAGE)))
        first_pid = sup.pid

        # install: the config gets the runtime, containerd is restarted through --restart-command
        done = _installer(root, "install")
        assert done.returncode == 0, done.stderr + sup.log_tail()
        assert done.stdout.strip().startswith(
            "spin-v2: provisioned on default: config /etc/containerd/config.toml changed"
        )
        assert (root / "restarts.log").read_text().split() == [str(first_pid)]
        assert sup.pid != first_pid and len(sup.pids) == 2
        written = tomlkit.parse(sup.config.read_text()).unwrap()
        runtime_type = str(
            written["plugins"]["io.containerd.grpc.v1.cri"]["containerd"]["runtimes"]["spin-v2"][
                "runtime_type"
            ]
        )
        assert runtime_type == "/opt/kwasm/bin/containerd-shim-spin-v2"
        assert (root / "host" / runtime_type.lstrip("/")).read_bytes() == (
            root / "assets/containerd-shim-spin-v2"
        ).read_bytes()
        cri = _cri_runtimes(sup)["spin-v2"]  # containerd's CRI plugin loaded the entry
        assert cri["runtimeType"] == runtime_type
        assert cri["options"] == {"SystemdCgroup": False}

        # the runtime the config names runs an app
        cid, body = _serve_once(sup, runtime_type, "/installed?by=spindle-node-installer")
        assert body.startswith(b"path=/installed?by=spindle-node-installer"), body
        _remove_task(sup, cid)

        # a second install changes nothing and restarts nothing
        again = _installer(root, "install")
        assert again.returncode == 0, again.stderr
        assert again.stdout.strip().endswith("no restart needed")
        assert len(sup.pids) == 2 and (root / "restarts.log").read_text().split() == [str(first_pid)]

        # uninstall: config as before, binary gone, containerd restarted, the runtime no longer runs
        gone = _installer(root, "uninstall")
        assert gone.returncode == 0, gone.stderr + sup.log_tail()
        assert len(sup.pids) == 3
        assert sup.config.read_bytes() == original_config
        assert not (root / "host" / runtime_type.lstrip("/")).exists()
        assert "spin-v2" not in _cri_runtimes(sup)
        fifos = str(root / "ctrd/fifo")
        failed = ctr(
            sup, "run", "-d", "--fifo-dir", fifos, "--runtime", runtime_type, IMAGE, "ni-after", check=False
        )
        assert failed.returncode != 0
        assert "containerd-shim-spin-v2" in failed.stderr and "no such file or directory" in failed.stderr, (
            failed.stderr
        )
        ctr(sup, "containers", "rm", "ni-after", check=False)
    finally:
        for leftover in (cid, "ni-after"):
            if leftover and sup.pids:
                ctr(sup, "task", "rm", "-f", leftover, check=False, timeout=20)
        sup.stop()
        _kill_processes_under(root)
        _reap_orphans(keep=set(sup.pids))
        _set_subreaper(False)
        assert sup.exited, f"containerd {sup.pid} is still running"
