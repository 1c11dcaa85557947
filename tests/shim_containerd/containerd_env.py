"""A real containerd 1.6 for the shim tests, confined to one temp dir, with the CRI plugin on.

`Containerd.start()` writes a version-2 config under a short temp root (`/tmp/sdc-XXXXXXXX`; unix
socket paths must stay under ~100 characters), starts `containerd` with its stdout/stderr going to
`root/containerd.log`, waits until the CRI plugin answers and reports its network ready, and checks
the log for plugin-load errors. Everything containerd and CRI write lives under the root:

    root/containerd.toml    the config (see `render_config`)
    root/containerd.log     containerd's combined log; shims' log FIFOs are copied into it
    root/run/               grpc, ttrpc and debug sockets
    root/lib, root/state    containerd root and state; CRI's netns files under state/.../netns
    root/opt/bin/           the opt plugin dir; containerd-shim-spin-v2 is linked here
    root/s/                 SPINDLE_SHIM_SOCKET_DIR: where the spin shim binds its sockets
    root/fifo/              ctr's stdio FIFOs (--fifo-dir)
    root/runc/              runc's state (the runc runtime's Root option)
    root/cni/               CNI conflist (net.d), host-local IPAM data (ipam)
    root/pods/              pod log directories for CRI tests
    root/tmp/               containerd's temp mounts (unpacking)

`Containerd.cleanup()` stops containerd by PID, SIGKILLs leftover shims and containers (cwd, root
or cmdline under the root; containers by their mounts from under the root, since their own root
reads "/"; and all their descendants), unmounts everything under the root (deepest first), deletes
leftover veths and the CNI bridge, removes the root, rmdirs the cgroups runc made for our
namespaces and the /run/containerd and /var/lib/cni dirs that appeared during the session (only
when empty), and restores net.ipv4.ip_forward (the bridge plugin turns it on for `isGateway`).
It returns what tests left behind (notes) and what it could not remove (problems).

Traps met on this machine (containerd 1.6.20, runc 1.1.5, CNI plugins 1.1.1):
- root here lacks CAP_SYS_RESOURCE, so runc cannot set the pause container's oom_score_adj to
  -998 ("can't get final child's PID from pipe: EOF", runc's log says "failed to update
  /proc/self/oom_score_adj: Permission denied"); `restrict_oom_score_adj = true` clamps it.
- runc-v2 shims bind `/run/containerd/s/<sha256>` whatever the config says (hard-coded in 1.6),
  and `ctr run` puts runc state in /run/containerd/runc unless given `--runc-root` (`ctr()` adds it).
- libcni caches ADD results under /var/lib/cni (not configurable from containerd 1.6).
- containerd adds its own loopback network (go-cni `WithLoNetwork`, binary `<bin_dir>/loopback`);
  the conflist therefore holds only the bridge.
- Images are only ever imported locally (`ctr images import` of OCI layout tars); docker.io is
  redirected to a dead local endpoint (registry `config_path`), so a missing sandbox image fails
  at once ("dial tcp 127.0.0.1:9: connect: connection refused") instead of going out.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import ipaddress
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from oci.layers import LayerEntry
from oci.layout import ImageConfig, build_image, write_layout_tar

if TYPE_CHECKING:  # cri.client imports grpc; containerd_env itself does not need it at import time
    from cri.client import CriClient, pb

CONTAINERD = "containerd"
CTR = "ctr"
SHIM_BINARY = "containerd-shim-spin-v2"
SPIN_RUNTIME_TYPE = "io.containerd.spin.v2"
SPIN_HANDLER = "spin"
CRI_NAMESPACE = "k8s.io"
DEFAULT_NAMESPACE = "spindle"
PAUSE_IMAGE = "docker.io/library/spindle-pause:test"
HTTPD_IMAGE = "docker.io/library/spindle-httpd:test"
BUSYBOX = Path("/bin/busybox")
CNI_BIN_DIR = Path("/usr/lib/cni")
POD_SUPERNET = ipaddress.IPv4Network("198.18.0.0/15")
RUN_CONTAINERD = Path("/run/containerd")
VAR_LIB_CNI = Path("/var/lib/cni")
IP_FORWARD = Path("/proc/sys/net/ipv4/ip_forward")
STARTUP_TIMEOUT = 15.0
STOP_TIMEOUT = 10.0
_SKIP_LOG_ERRORS = (
    # Harmless here: optional snapshotters, tracing, and the shim log copier seeing its FIFO close.
    "aufs",
    "btrfs",
    "zfs",
    "devmapper",
    "tracing",
    'msg="copy shim log" error="read /proc/self/fd/',
)
_MNT_DETACH = 2


class CtrError(subprocess.CalledProcessError):
    """A failed `ctr` command; its message carries ctr's own error line."""

    def __str__(self) -> str:
        return f"{super().__str__()}\n{self.stderr.strip()}"


class ContainerdError(RuntimeError):
    """containerd did not start, stop or answer as expected; the message carries its log tail."""


@dataclass
class CleanupReport:
    """What `Containerd.cleanup` found: `notes` were left behind by tests and removed anyway;
    `problems` could not be removed (a teardown should fail on those)."""

    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def render_config(
    root: Path,
    *,
    sandbox_image: str,
    cni_conf_dir: Path,
    registry_config_path: Path,
) -> str:
    """The containerd config (version 2) for a daemon confined to `root` (pure; no I/O)."""
    return f"""\
version = 2
root = "{root / "lib"}"
state = "{root / "state"}"
temp = "{root / "tmp"}"
oom_score = 0

[grpc]
  address = "{root / "run" / "containerd.sock"}"

[ttrpc]
  address = "{root / "run" / "containerd.sock.ttrpc"}"

[debug]
  address = "{root / "run" / "debug.sock"}"
  level = "debug"

[metrics]
  address = ""

[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = "{root / "opt"}"

  [plugins."io.containerd.grpc.v1.cri"]
    sandbox_image = "{sandbox_image}"
    netns_mounts_under_state_dir = true
    restrict_oom_score_adj = true
    disable_apparmor = true
    enable_selinux = false
    disable_tcp_service = true
    stream_server_address = "127.0.0.1"
    stream_server_port = "0"
    enable_tls_streaming = false
    max_container_log_line_size = 16384

    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = "{CNI_BIN_DIR}"
      conf_dir = "{cni_conf_dir}"
      max_conf_num = 1

    [plugins."io.containerd.grpc.v1.cri".containerd]
      snapshotter = "overlayfs"
      default_runtime_name = "runc"

      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"
        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
          SystemdCgroup = false
          Root = "{root / "runc"}"

      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.{SPIN_HANDLER}]
        runtime_type = "{SPIN_RUNTIME_TYPE}"

    [plugins."io.containerd.grpc.v1.cri".registry]
      config_path = "{registry_config_path}"
"""


def render_cni_conflist(name: str, bridge: str, subnet: ipaddress.IPv4Network, ipam_dir: Path) -> str:
    """The CNI network: one Linux bridge with the gateway on the host side, no NAT (pure)."""
    conflist = {
        "cniVersion": "1.0.0",
        "name": name,
        "plugins": [
            {
                "type": "bridge",
                "bridge": bridge,
                "isGateway": True,
                "ipMasq": False,
                "hairpinMode": False,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": str(subnet)}]],
                    "dataDir": str(ipam_dir),
                },
            }
        ],
    }
    return json.dumps(conflist, indent=2) + "\n"


# A registry host that refuses connections: docker.io pulls fail at once instead of leaving the machine.
_DEAD_REGISTRY_HOSTS_TOML = """\
server = "http://127.0.0.1:9"

[host."http://127.0.0.1:9"]
  capabilities = ["pull", "resolve"]
"""


@dataclass
class Containerd:
    """A running containerd confined to `root` (see the module docstring for the layout)."""

    root: Path
    address: Path
    namespace: str
    shim_socket_dir: Path
    fifo_dir: Path
    config_path: Path
    log_path: Path
    pod_subnet: ipaddress.IPv4Network
    bridge: str
    cni_network: str
    shim_binary: Path | None = None
    pid: int | None = None
    _log_offset: int = field(default=0, repr=False)
    _namespaces_used: set[str] = field(default_factory=lambda: {CRI_NAMESPACE}, repr=False)
    _proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _host_state: dict[str, object] = field(default_factory=dict, repr=False)

    # -- derived paths ----------------------------------------------------------------------------

    @property
    def ttrpc_address(self) -> Path:
        return self.root / "run" / "containerd.sock.ttrpc"

    @property
    def state_dir(self) -> Path:
        return self.root / "state"

    @property
    def cri_state_dir(self) -> Path:
        return self.state_dir / "io.containerd.grpc.v1.cri"

    @property
    def netns_dir(self) -> Path:
        """Where CRI bind-mounts pod network namespaces (netns_mounts_under_state_dir)."""
        return self.cri_state_dir / "netns"

    @property
    def task_dir(self) -> Path:
        """Bundles: task_dir/<namespace>/<container id>."""
        return self.state_dir / "io.containerd.runtime.v2.task"

    @property
    def opt_bin(self) -> Path:
        return self.root / "opt" / "bin"

    def pod_log_dir(self, name: str) -> Path:
        """A fresh log directory for a pod (kubelet creates it before RunPodSandbox; so do we)."""
        path = self.root / "pods" / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    # -- lifecycle --------------------------------------------------------------------------------

    @classmethod
    def start(cls, *, namespace: str = DEFAULT_NAMESPACE, shim: Path | bool | None = True) -> Containerd:
        """Create the root, write config and CNI network, start containerd and wait for CRI.

        `shim=True` links `containerd-shim-spin-v2` from PATH into the opt bin dir when it exists;
        a Path links that file; False/None links nothing.
        """
        root = Path(tempfile.mkdtemp(prefix="sdc-", dir="/tmp"))
        token = root.name.removeprefix("sdc-")[:8].lower()
        host_state: dict[str, object] = {
            "host_dirs": _dirs_in(RUN_CONTAINERD) | _dirs_in(VAR_LIB_CNI),
            "ip_forward": _read_text(IP_FORWARD),
            "cgroups": _cgroup_children(),
        }
        env = cls(
            root=root,
            address=root / "run" / "containerd.sock",
            namespace=namespace,
            shim_socket_dir=root / "s",
            fifo_dir=root / "fifo",
            config_path=root / "containerd.toml",
            log_path=root / "containerd.log",
            pod_subnet=_free_subnet(),
            bridge=f"sdc{_alnum(token)}"[:15],
            cni_network=f"spindle-{token}",
            _host_state=host_state,
        )
        try:
            env._prepare(shim)
            env._launch()
        except BaseException:
            env.cleanup()
            raise
        return env

    def _prepare(self, shim: Path | bool | None) -> None:
        for sub in (
            "run",
            "lib",
            "state",
            "tmp",
            "opt/bin",
            "opt/lib",
            "s",
            "fifo",
            "runc",
            "pods",
            "cni/net.d",
            "cni/ipam",
            "certs.d/docker.io",
        ):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        (self.root / "certs.d" / "docker.io" / "hosts.toml").write_text(_DEAD_REGISTRY_HOSTS_TOML)
        conflist = render_cni_conflist(
            self.cni_network, self.bridge, self.pod_subnet, self.root / "cni" / "ipam"
        )
        (self.root / "cni" / "net.d" / "10-spindle.conflist").write_text(conflist)
        self.config_path.write_text(
            render_config(
                self.root,
                sandbox_image=PAUSE_IMAGE,
                cni_conf_dir=self.root / "cni" / "net.d",
                registry_config_path=self.root / "certs.d",
            )
        )
        target: Path | None = None
        if shim is True:
            target = find_shim_binary()
        elif isinstance(shim, Path):
            target = shim
        if target is not None:
            (self.opt_bin / SHIM_BINARY).symlink_to(target.resolve())
            self.shim_binary = target.resolve()

    def _environ(self) -> dict[str, str]:
        env = dict(os.environ)
        env["SPINDLE_SHIM_SOCKET_DIR"] = str(self.shim_socket_dir)
        env["SPINDLE_SHIM_CACHE_DIR"] = str(self.root / "cache")  # the node's artifact cache
        env["TMPDIR"] = str(self.root / "tmp")
        # containerd's own CLI/env knobs that would point it elsewhere.
        for var in ("CONTAINERD_ADDRESS", "CONTAINERD_NAMESPACE", "CONTAINERD_SNAPSHOTTER"):
            env.pop(var, None)
        return env

    def _launch(self) -> None:
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child, closed below
        try:
            self._proc = subprocess.Popen(
                [CONTAINERD, "--config", str(self.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.root,
                env=self._environ(),
                start_new_session=True,
            )
        finally:
            log.close()
        self.pid = self._proc.pid
        self._wait_ready()

    def _wait_ready(self) -> None:
        from cri.client import CriClient, CriError  # the CRI stubs import grpc; only needed here

        deadline = time.monotonic() + STARTUP_TIMEOUT
        last = "no answer yet"
        with CriClient(self.address, timeout=2.0) as cri:
            while True:
                if self._proc is not None and self._proc.poll() is not None:
                    status = self._proc.returncode
                    raise ContainerdError(
                        f"containerd exited with {status} during startup\n{self.log_tail()}"
                    )
                if self.address.is_socket():
                    try:
                        conditions = {c.type: c for c in cri.status().status.conditions}
                        network = conditions.get("NetworkReady")
                        runtime = conditions.get("RuntimeReady")
                        if network and network.status and runtime and runtime.status:
                            break
                        last = "; ".join(
                            f"{c.type}={c.status} {c.reason} {c.message}" for c in conditions.values()
                        )
                    except CriError as exc:
                        last = str(exc)
                if time.monotonic() > deadline:
                    raise ContainerdError(
                        f"CRI plugin not ready after {STARTUP_TIMEOUT}s: {last}\n{self.log_tail()}"
                    )
                time.sleep(0.02)
        problems = self.startup_errors()
        if problems:
            raise ContainerdError("containerd logged errors at startup:\n" + "\n".join(problems))

    def startup_errors(self) -> list[str]:
        """Error lines logged since the last (re)start that are not known-harmless."""
        return self.errors_since(self._log_offset)

    def log_mark(self) -> int:
        """A position in the log; pass it to `errors_since` / `log_text` to look only at what follows."""
        return self.log_path.stat().st_size if self.log_path.exists() else 0

    def errors_since(self, mark: int = 0) -> list[str]:
        """level=error/fatal and plugin-load failures logged after `mark`, minus the known-harmless
        ones (optional snapshotters, and containerd 1.6's "copy shim log ... file already closed"
        when a shim's log FIFO closes as the shim exits)."""
        out = []
        for line in self.log_text(mark).splitlines():
            if (
                "level=error" not in line
                and "level=fatal" not in line
                and "failed to load plugin" not in line
            ):
                continue
            if any(word in line for word in _SKIP_LOG_ERRORS):
                continue
            out.append(line)
        return out

    def restart(self) -> None:
        """SIGTERM containerd, wait for it, start it again with the same config.

        Shims are separate processes (own process groups), so tasks keep running; containerd
        reconnects to them from each bundle's `address` file.
        """
        self._terminate()
        self._launch()

    def stop(self) -> None:
        """Stop containerd (SIGTERM, then SIGKILL after STOP_TIMEOUT); shims are left alone."""
        self._terminate()

    def _terminate(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=STOP_TIMEOUT)

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    # -- clients ----------------------------------------------------------------------------------

    def ctr(
        self,
        *args: str,
        namespace: str | None = None,
        check: bool = True,
        timeout: float = 60,
        input: bytes | None = None,  # noqa: A002 - mirrors subprocess.run
    ) -> subprocess.CompletedProcess[str]:
        """Run `ctr --address <address> --namespace <namespace> ARGS`.

        `run`, `task start` and `task exec` get `--fifo-dir <fifo_dir>`, and `run` and
        `containers create` get `--runc-root <root>/runc` (used only by the runc runtime), unless
        the caller gave them; so nothing lands in /run/containerd/{fifo,runc}. CalledProcessError
        on failure when `check` (its stderr is ctr's).
        """
        argv = _with_ctr_defaults(list(args), fifo_dir=self.fifo_dir, runc_root=self.root / "runc")
        namespace = namespace or self.namespace
        self._namespaces_used.add(namespace)
        cmd = [CTR, "--address", str(self.address), "--namespace", namespace, *argv]
        proc = subprocess.run(
            cmd,
            input=input,
            capture_output=True,
            timeout=timeout,
            env={k: v for k, v in os.environ.items() if not k.startswith("CONTAINERD_")},
            check=False,
        )
        result = subprocess.CompletedProcess(
            proc.args,
            proc.returncode,
            proc.stdout.decode(errors="replace"),
            proc.stderr.decode(errors="replace"),
        )
        if check and result.returncode != 0:
            raise CtrError(result.returncode, cmd, result.stdout, result.stderr)
        return result

    def import_image(self, tar: Path, namespace: str | None = None) -> None:
        """`ctr images import` an OCI layout tar (unpacked for the default snapshotter).

        ctr exits 0 even when the index carries no `io.containerd.image.name`; the images it
        printed are checked so such a tar fails here instead of later.
        """
        result = self.ctr("images", "import", str(tar), namespace=namespace)
        if not result.stdout.strip():
            raise ContainerdError(f"ctr images import {tar} imported nothing (no io.containerd.image.name?)")

    def cri(self, *, timeout: float = 30.0) -> CriClient:
        """A CRI client on this containerd's socket (close it, or use it as a context manager)."""
        from cri.client import CriClient

        return CriClient(self.address, timeout=timeout)

    # -- logs -------------------------------------------------------------------------------------

    def log_text(self, since: int = 0) -> str:
        """containerd's combined log (shim log FIFO lines included), from byte offset `since`."""
        try:
            with open(self.log_path, "rb") as handle:
                handle.seek(since)
                return handle.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    # -- inspection helpers for tests -------------------------------------------------------------

    def netns_files(self) -> list[Path]:
        return sorted(self.netns_dir.iterdir()) if self.netns_dir.is_dir() else []

    def bridge_ports(self) -> list[str]:
        """Interfaces (veths) attached to the CNI bridge; [] when the bridge does not exist."""
        proc = subprocess.run(
            ["ip", "-o", "link", "show", "master", self.bridge], capture_output=True, text=True, check=False
        )
        if proc.returncode != 0:
            return []
        return [line.split(":")[1].strip().split("@")[0] for line in proc.stdout.splitlines() if ":" in line]

    def mounts_under_root(self) -> list[Path]:
        return [m for m in _mountpoints() if _is_under(m, self.root)]

    def processes_under_root(self) -> list[int]:
        """Long-lived processes tied to the root: shims, containers, their children. containerd
        itself and its direct children (short-lived shim `start`/`delete` runs, CNI plugins) are
        left out, so two calls compare stably."""
        return _processes_under(self.root, exclude={os.getpid()}, prune={self.pid} if self.pid else set())

    def bundles(self, namespace: str) -> list[str]:
        path = self.task_dir / namespace
        return sorted(p.name for p in path.iterdir()) if path.is_dir() else []

    # -- teardown ---------------------------------------------------------------------------------

    def cleanup(self) -> CleanupReport:
        """Stop everything and remove every trace; reports what was left over and what stayed."""
        report = CleanupReport()
        problems = report.problems
        sandbox_ids = self._sandbox_ids()
        with contextlib.suppress(Exception):
            self._terminate()
        killed, alive = _kill_processes_under(self.root)
        if killed:
            report.notes.append(f"killed leftover processes (shims, containers): {killed}")
        if alive:
            problems.append(f"processes still alive after SIGKILL: {alive}")
        mounts = self.mounts_under_root()
        if mounts:
            report.notes.append(f"unmounting {len(mounts)} leftover mounts under {self.root}")
        for mountpoint in sorted(mounts, key=lambda p: len(p.parts), reverse=True):
            err = _umount(mountpoint)
            if err:
                problems.append(f"cannot unmount {mountpoint}: {err}")
        if _link_exists(self.bridge):
            ports = self.bridge_ports()
            if ports:
                report.notes.append(f"veths still on bridge {self.bridge}: {ports}")
            for port in ports:
                subprocess.run(["ip", "link", "del", port], capture_output=True, check=False)
            proc = subprocess.run(
                ["ip", "link", "del", self.bridge], capture_output=True, text=True, check=False
            )
            if proc.returncode != 0:
                problems.append(f"ip link del {self.bridge}: {proc.stderr.strip()}")
        if self.root.exists():
            if any(_is_under(m, self.root) for m in _mountpoints()):
                problems.append(f"mounts left under {self.root}; not removing it")
            else:
                shutil.rmtree(self.root, ignore_errors=True)
                if self.root.exists():
                    problems.append(f"cannot remove {self.root}")
        problems += self._restore_host(sandbox_ids)
        return report

    def _sandbox_ids(self) -> set[str]:
        ids: set[str] = set()
        for base in (self.root / "lib", self.state_dir):
            path = base / "io.containerd.grpc.v1.cri" / "sandboxes"
            if path.is_dir():
                ids |= {p.name for p in path.iterdir()}
        return ids

    def _restore_host(self, sandbox_ids: set[str]) -> list[str]:
        problems: list[str] = []
        state = self._host_state
        before = state.get("cgroups")
        if isinstance(before, dict):
            problems += _remove_new_cgroups(before, self._namespaces_used | {self.namespace})
        _remove_cni_cache(VAR_LIB_CNI, self.cni_network, sandbox_ids)
        host_dirs = state.get("host_dirs")
        if isinstance(host_dirs, set):
            # Only directories that appeared during the session, and only once empty: another
            # containerd on this machine may be using /run/containerd at the same time.
            _rmdir_new_empty_dirs(RUN_CONTAINERD, host_dirs)
            _rmdir_new_empty_dirs(VAR_LIB_CNI, host_dirs)
        ip_forward = state.get("ip_forward")
        if isinstance(ip_forward, str) and _read_text(IP_FORWARD) != ip_forward:
            try:
                IP_FORWARD.write_text(ip_forward)
            except OSError as exc:
                problems.append(f"cannot restore {IP_FORWARD} to {ip_forward.strip()}: {exc}")
        return problems


def find_shim_binary() -> Path | None:
    """The installed `containerd-shim-spin-v2` console script: next to this interpreter first (where
    `pip install -e .` puts it; a pyenv shim on PATH would need pyenv's environment), else PATH."""
    beside = Path(sys.executable).parent / SHIM_BINARY
    if beside.is_file() and os.access(beside, os.X_OK):
        return beside
    found = shutil.which(SHIM_BINARY)
    return Path(found) if found else None


# -- images ---------------------------------------------------------------------------------------


def busybox_image_tar(
    out: Path,
    reference: str,
    *,
    cmd: Sequence[str],
    files: Mapping[str, bytes | str] | None = None,
    env: Sequence[str] = ("PATH=/usr/sbin:/usr/bin:/sbin:/bin",),
    applets: Iterable[str] = ("sh", "sleep", "httpd", "cat", "echo", "ls"),
) -> Path:
    """An OCI layout tar of a one-layer image: static busybox, applet symlinks, `files`, and `cmd`."""
    entries = [LayerEntry.from_disk("bin/busybox", BUSYBOX, mode=0o755)]
    entries += [LayerEntry.symlink(f"bin/{name}", "busybox") for name in applets]
    entries += [LayerEntry.directory(d) for d in ("dev", "etc", "proc", "sys", "tmp", "run", "var")]
    entries += [LayerEntry.file(path.lstrip("/"), data) for path, data in (files or {}).items()]
    image = build_image([entries], ImageConfig(cmd=list(cmd), env=list(env)))
    write_layout_tar(image, out, reference)
    return out


PAUSE_CMD = ("/bin/busybox", "sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1; done")


def pause_image_tar(out: Path) -> Path:
    """The sandbox ("pause") image: sleeps until SIGTERM, then exits 0."""
    return busybox_image_tar(out, PAUSE_IMAGE, cmd=PAUSE_CMD)


def httpd_image_tar(out: Path, index_html: str = "hello from busybox httpd\n", *, port: int = 8080) -> Path:
    """busybox httpd serving /www (with `index_html` as /www/index.html) on `port`, in the foreground."""
    return busybox_image_tar(
        out,
        HTTPD_IMAGE,
        cmd=["/bin/busybox", "httpd", "-f", "-v", "-p", str(port), "-h", "/www"],
        files={"www/index.html": index_html},
    )


# -- host helpers (module-private) ----------------------------------------------------------------


def _with_ctr_defaults(argv: list[str], *, fifo_dir: Path, runc_root: Path) -> list[str]:
    """Insert --fifo-dir / --runc-root right after the (sub)command where ctr accepts them (pure)."""
    if not argv:
        return argv
    command = tuple(argv[:2])
    run = argv[0] == "run"
    create = command in {(c, "create") for c in ("containers", "container", "c")}
    task_io = command in {(t, s) for t in ("tasks", "task", "t") for s in ("start", "exec")}
    extra: list[str] = []
    if (run or task_io) and not any(a.startswith("--fifo-dir") for a in argv):
        extra += ["--fifo-dir", str(fifo_dir)]
    if (run or create) and not any(a.startswith("--runc-root") for a in argv):
        extra += ["--runc-root", str(runc_root)]
    head = 1 if run else 2
    return argv[:head] + extra + argv[head:]


def _alnum(text: str) -> str:
    return "".join(ch for ch in text if ch.isalnum())


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


def _free_subnet() -> ipaddress.IPv4Network:
    """A /24 inside 198.18.0.0/15 that no local address or route overlaps (randomised start)."""
    used: list[ipaddress.IPv4Network] = []
    for cmd in (["ip", "-4", "-o", "addr", "show"], ["ip", "-4", "route", "show", "table", "all"]):
        out = subprocess.run(cmd, capture_output=True, text=True, check=False).stdout
        for word in out.split():
            with contextlib.suppress(ValueError):
                net = ipaddress.ip_network(word, strict=False)
                if isinstance(net, ipaddress.IPv4Network) and net.prefixlen > 0:
                    used.append(net)
    candidates = list(POD_SUPERNET.subnets(new_prefix=24))
    start = random.randrange(len(candidates))
    for candidate in candidates[start:] + candidates[:start]:
        if candidate.network_address.packed[2] in (0, 255):
            continue
        if not any(candidate.overlaps(u) for u in used):
            return candidate
    raise ContainerdError(f"no free /24 left in {POD_SUPERNET}")


def _link_exists(name: str) -> bool:
    return Path("/sys/class/net", name).exists()


def _unescape_mount(field_text: str) -> str:
    return (
        field_text.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")
    )


def _mountinfo() -> list[tuple[Path, str, str]]:
    """(mountpoint, root within the source fs, fstype) for every mount in our mount namespace."""
    out = []
    with open("/proc/self/mountinfo") as handle:
        for line in handle:
            fields = line.split()
            sep = fields.index("-")
            out.append((Path(_unescape_mount(fields[4])), _unescape_mount(fields[3]), fields[sep + 1]))
    return out


def _mountpoints() -> list[Path]:
    return [m for m, _, _ in _mountinfo()]


def _is_under(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


_libc: ctypes.CDLL | None = None


def _umount(path: Path) -> str | None:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    for flags in (0, _MNT_DETACH):
        if _libc.umount2(os.fsencode(path), flags) == 0:
            return None
        err = ctypes.get_errno()
        if err == errno.EINVAL and path not in _mountpoints():
            return None
    return os.strerror(err)


def _proc_link(pid: int, name: str) -> str:
    try:
        return os.readlink(f"/proc/{pid}/{name}")
    except OSError:
        return ""


def _processes_under(
    root: Path, exclude: set[int], prune: frozenset[int] | set[int] = frozenset()
) -> list[int]:
    """Live (non-zombie) PIDs tied to `root`, and all their descendants:

    - cwd or root under `root`, or `root` in the command line (containerd, shims, ctr);
    - in another mount namespace whose mounts come from under `root` (containers: their rootfs
      is an overlay of snapshots under root/lib, so this finds them even once their shim is gone).

    `exclude` PIDs are left out; `prune` PIDs are left out together with their direct children.
    """
    prefix = str(root)
    own_mnt_ns = _proc_link(os.getpid(), "ns/mnt")
    parents: dict[int, int] = {}
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        try:
            with open(f"/proc/{pid}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
            if fields[0] == "Z":
                continue
            parents[pid] = int(fields[1])
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                cmdline = handle.read().decode(errors="replace")
        except OSError:
            continue
        links = (_proc_link(pid, "cwd"), _proc_link(pid, "root"))
        if prefix in cmdline or any(link == prefix or link.startswith(prefix + "/") for link in links):
            found.add(pid)
            continue
        mnt_ns = _proc_link(pid, "ns/mnt")
        if mnt_ns and mnt_ns != own_mnt_ns:
            with contextlib.suppress(OSError), open(f"/proc/{pid}/mountinfo") as handle:
                if prefix + "/" in handle.read():
                    found.add(pid)
    grew = True
    while grew:
        children = {pid for pid, ppid in parents.items() if ppid in found and pid not in found}
        found |= children
        grew = bool(children)
    pruned = {pid for pid in found if pid in prune or parents.get(pid) in prune}
    return sorted(found - exclude - pruned)


def _unix_socket_paths(pid: int) -> list[str]:
    inodes = set()
    with contextlib.suppress(OSError):
        for fd in os.listdir(f"/proc/{pid}/fd"):
            link = _proc_link(pid, f"fd/{fd}")
            if link.startswith("socket:["):
                inodes.add(link[8:-1])
    paths = []
    with contextlib.suppress(OSError), open("/proc/net/unix") as handle:
        next(handle)
        for line in handle:
            fields = line.split()
            if len(fields) >= 8 and fields[6] in inodes and fields[7].startswith("/"):
                paths.append(fields[7])
    return paths


def _kill_processes_under(root: Path) -> tuple[list[int], list[int]]:
    """SIGKILL every process tied to `root` (leftover shims and their containers), wait for them,
    and remove the unix sockets they were listening on under /run/containerd/s or `root`.
    Returns (killed, still alive)."""
    pids = _processes_under(root, exclude={os.getpid()})
    if not pids:
        return [], []
    sockets = {path for pid in pids for path in _unix_socket_paths(pid)}
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and _processes_under(root, exclude={os.getpid()}):
        time.sleep(0.02)
    for path in sockets:
        if path.startswith(str(RUN_CONTAINERD / "s") + "/") or path.startswith(str(root) + "/"):
            with contextlib.suppress(OSError):
                os.unlink(path)
    return sorted(pids), _processes_under(root, exclude={os.getpid()})


def _cgroup_mounts() -> list[Path]:
    return sorted({m for m, _, fstype in _mountinfo() if fstype in ("cgroup", "cgroup2")})


def _cgroup_children() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for mount in _cgroup_mounts():
        with contextlib.suppress(OSError):
            out[str(mount)] = sorted(e.name for e in os.scandir(mount) if e.is_dir(follow_symlinks=False))
    return out


def _remove_new_cgroups(before: dict[str, list[str]], namespaces: set[str]) -> list[str]:
    """rmdir (bottom-up) the top-level cgroups named after a containerd namespace we used
    (runc's default cgroupsPath is /<namespace>/<id>) that appeared since `before`; busy ones
    stay and are reported."""
    problems = []
    for mount, names in _cgroup_children().items():
        old = set(before.get(mount, names))
        for name in names:
            if name in old or name not in namespaces:
                continue
            top = Path(mount) / name
            for dirpath, _dirs, _files in os.walk(top, topdown=False):
                with contextlib.suppress(OSError):
                    os.rmdir(dirpath)
            if top.exists():
                problems.append(f"cgroup {top} is not empty")
    return problems


def _remove_cni_cache(base: Path, network: str, sandbox_ids: set[str]) -> None:
    """libcni's cached results for our pods: <base>/results/<network>-<sandbox id>-<ifname>, and
    go-cni's loopback network's cni-loopback-<sandbox id>-lo. CRI removes them on a clean
    StopPodSandbox; these are the ones a leaked pod leaves."""
    results = base / "results"
    if results.is_dir():
        for entry in results.iterdir():
            if entry.name.startswith(network + "-") or any(i in entry.name for i in sandbox_ids):
                with contextlib.suppress(OSError):
                    entry.unlink()


def _dirs_in(top: Path) -> set[str]:
    """`top` and every directory below it that exists now (empty set if `top` does not)."""
    if not top.is_dir():
        return set()
    return {str(top)} | {str(Path(d) / n) for d, names, _ in os.walk(top) for n in names}


def _rmdir_new_empty_dirs(top: Path, existed: set[str]) -> None:
    """rmdir, bottom-up, the empty directories under (and including) `top` not in `existed`."""
    if not top.is_dir():
        return
    for dirpath, _dirs, _files in os.walk(top, topdown=False):
        if dirpath not in existed:
            with contextlib.suppress(OSError):
                os.rmdir(dirpath)


# -- what this machine allows ---------------------------------------------------------------------


def host_restrictions(env: Containerd) -> dict[str, str]:
    """Features a CRI pod needs that this machine forbids: {feature: exact reason}. Empty = all fine.

    Probes, each the smallest version of what containerd/runc will do: the overlayfs snapshotter
    loaded; a new network namespace (`unshare --net`); creating a cgroup in every v1 hierarchy
    and the unified one (runc makes `/<ns>/<id>` there when no cgroup_parent is given).
    """
    out: dict[str, str] = {}
    plugins = env.ctr("plugins", "ls", check=False)
    overlay = [line for line in plugins.stdout.splitlines() if " overlayfs " in f" {line} "]
    if not any(line.split()[-1] == "ok" for line in overlay):
        out["overlay"] = f"overlayfs snapshotter not loaded: {overlay or plugins.stderr.strip()}"
    if shutil.which("unshare"):
        proc = subprocess.run(["unshare", "--net", "true"], capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            out["netns"] = f"cannot create a network namespace: {proc.stderr.strip()}"
    probe = f"spindle-probe-{os.getpid()}"
    for mount in _cgroup_mounts():
        path = mount / probe
        try:
            path.mkdir()
        except OSError as exc:
            out["cgroups"] = f"cannot create a cgroup under {mount}: {exc.strerror}"
            break
        finally:
            with contextlib.suppress(OSError):
                path.rmdir()
    return out


# -- CRI pods a test created ----------------------------------------------------------------------


class CriPods:
    """Runs pod sandboxes for one test and always stops and removes them afterwards (`close`)."""

    def __init__(self, env: Containerd, cri: CriClient) -> None:
        self.env, self.cri = env, cri
        self.sandboxes: list[str] = []

    def run(
        self,
        name: str,
        handler: str = "",
        *,
        namespace: str = "default",
        cgroup_parent: str = "",
        annotations: Mapping[str, str] | None = None,
    ) -> tuple[str, pb.PodSandboxConfig]:
        """RunPodSandbox (`handler` "" = runc, "spin" = the spin shim) with a fresh log dir under the
        root; returns (sandbox id, the config to pass again to CreateContainer)."""
        from cri.client import pod_sandbox_config

        sandbox_config = pod_sandbox_config(
            name,
            log_directory=self.env.pod_log_dir(name),
            namespace=namespace,
            cgroup_parent=cgroup_parent,
            annotations=annotations,
        )
        sandbox_id = self.cri.run_pod_sandbox(sandbox_config, handler)
        self.sandboxes.append(sandbox_id)
        return sandbox_id, sandbox_config

    def close(self) -> None:
        from cri.client import CriError

        errors = []
        for sandbox_id in reversed(self.sandboxes):
            try:
                self.cri.stop_pod_sandbox(sandbox_id)
                self.cri.remove_pod_sandbox(sandbox_id)
            except CriError as exc:
                errors.append(str(exc))
        self.sandboxes.clear()
        if errors:
            raise ContainerdError("cleaning up pods failed: " + "; ".join(errors))
