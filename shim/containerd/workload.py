"""The process a task runs: `containerd-shim-spin-v2 _workload`, started by the shim daemon at
Create and told to go at Start.

It puts itself where the spec says before anything else runs: the stdio FIFOs (so guest output,
logs and access lines reach `ctr` and `kubectl logs`), the cgroup (so limits bind), the network,
IPC and UTS namespaces (joined by path, or new ones), and a private mount namespace with the
spec's bind mounts under the rootfs. Then:

- an app loads the Spin app from the rootfs (compiling into the node's artifact cache) and
  reports `ready` or the load error (the message `spindle shim up` prints); on `start` it binds
  SPIN_HTTP_LISTEN_ADDR and serves until SIGTERM (drain, exit 0);
- a pod sandbox only holds its namespaces (CRI points the pod's app containers at
  `/proc/<this pid>/ns/...`) until SIGTERM/SIGINT (exit 0), like the pause binary.

The daemon and this process talk over two pipes, one JSON line at a time: the config and
`start` downwards, `ready` / `serving` / `error` upwards. A closed control pipe before `start`
means the task was deleted: exit without serving.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import unquote, urlsplit

from shim.containerd import linux, mounts
from shim.containerd.launch import FDS_ENV, PRELOAD_ENV
from shim.containerd.spec import Kind, SpecMount

_NS_FLAGS = {"network": linux.CLONE_NEWNET, "ipc": linux.CLONE_NEWIPC, "uts": linux.CLONE_NEWUTS}
log = logging.getLogger("shim.containerd.workload")


@dataclass
class WorkloadConfig:
    task_id: str
    kind: str  # Kind.value
    rootfs: str
    namespaces: list[tuple[str, str | None]] = field(default_factory=list)
    cgroup_procs: list[str] = field(default_factory=list)
    mounts: list[dict[str, Any]] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    stdout: str = ""
    stderr: str = ""
    cache_dir: str = ""
    args: list[str] = field(default_factory=list)  # the container's process args: command triggers'

    def to_line(self) -> bytes:
        return json.dumps(asdict(self)).encode() + b"\n"

    @classmethod
    def from_line(cls, line: bytes) -> WorkloadConfig:
        raw = json.loads(line)
        raw["namespaces"] = [tuple(n) for n in raw.get("namespaces", [])]
        return cls(**raw)


class Reporter:
    """The upward pipe: one JSON object per line."""

    def __init__(self, fd: int) -> None:
        self._f = os.fdopen(fd, "wb", buffering=0)

    def send(self, state: str, **extra: str) -> None:
        with contextlib.suppress(OSError):  # the daemon is gone; the task goes on by itself
            self._f.write(json.dumps({"state": state, **extra}).encode() + b"\n")


def main() -> int:
    control_fd, status_fd = (int(x) for x in os.environ.pop(FDS_ENV).split(","))
    if os.environ.pop(PRELOAD_ENV, None):
        # a spare: import the app runtime while nobody waits for us yet (no threads are started,
        # so setns/unshare below still work)
        import shim.runner  # noqa: F401
    control = os.fdopen(control_fd, "rb", buffering=0)
    reporter = Reporter(status_fd)
    line = control.readline()
    if not line:
        return 0  # a spare nobody needed
    cfg = WorkloadConfig.from_line(line)
    try:
        _attach_stdio(cfg)
        _enter(cfg)
    except OSError as exc:
        return _fail(reporter, f"task {cfg.task_id}: {exc}")
    if cfg.kind == Kind.SANDBOX.value:
        return _hold_namespaces(cfg, control, reporter)
    return _run_app(cfg, control, reporter)


def _fail(reporter: Reporter, message: str) -> int:
    print(f"error: {message}", file=sys.stderr, flush=True)
    reporter.send("error", message=message)
    return 1


def stdio_path(uri: str) -> tuple[str, bool]:
    """What containerd's stdio string names: a FIFO path (`ctr`, CRI) or a `file://` log file
    (`ctr run --log-uri file:///...`), as (path, is_file). `binary://` loggers are refused."""
    if uri.startswith("file://"):
        parsed = urlsplit(uri)
        if parsed.netloc not in ("", "localhost") or not parsed.path.startswith("/"):
            raise OSError(f"log URI {uri!r}: the file path must be absolute (file:///path)")
        return unquote(parsed.path), True
    if "://" in uri:
        raise OSError(f"log URI {uri!r}: only FIFOs and file:// logs are supported by the spin shim")
    return uri, False


def _attach_stdio(cfg: WorkloadConfig) -> None:
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    for target, uri in ((1, cfg.stdout), (2, cfg.stderr)):
        if not uri:
            os.dup2(devnull, target)
            continue
        path, is_file = stdio_path(uri)
        if is_file:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        else:
            # O_RDWR as runwasi does: a FIFO whose reader has not opened yet does not block us
            fd = os.open(path, os.O_RDWR)
        os.dup2(fd, target)
        os.close(fd)
    os.close(devnull)


def _enter(cfg: WorkloadConfig) -> None:
    for procs in cfg.cgroup_procs:
        Path(procs).write_text(str(os.getpid()))
    for nstype, path in cfg.namespaces:
        flag = _NS_FLAGS.get(nstype)
        if flag is None:
            continue  # pid, user, cgroup: the wasm sandbox needs none of them (README)
        if path:
            linux.setns(path, flag)
        else:
            linux.unshare(flag)
            if flag == linux.CLONE_NEWNET:
                linux.loopback_up()
    if cfg.kind == Kind.APP.value:
        linux.unshare(linux.CLONE_NEWNS)
        mounts.make_private()
        spec_mounts = [SpecMount(m["destination"], m["type"], m["source"], tuple(m["options"]))
                       for m in cfg.mounts]
        mounts.bind_spec_mounts(spec_mounts, Path(cfg.rootfs))


def _hold_namespaces(cfg: WorkloadConfig, control: BinaryIO, reporter: Reporter) -> int:
    stop = {"now": False}

    def on_signal(_sig: int, _frame: object) -> None:
        stop["now"] = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    reporter.send("ready")
    if control.readline().strip() != b"start":
        return 0
    reporter.send("serving", address="")
    while not stop["now"]:
        signal.pause()
    return 0


def _run_app(cfg: WorkloadConfig, control: BinaryIO, reporter: Reporter) -> int:
    # imported here: a sandbox holder never pays for wasmtime
    from shim.errors import ListenError, ShimError
    from shim.runner import RunOptions, bind, configure_logging, load, serve

    configure_logging()
    logging.getLogger("shim.access").setLevel(logging.DEBUG)
    rootfs = Path(cfg.rootfs)
    ca = rootfs / "etc/ssl/certs/ca-certificates.crt"
    if ca.is_file():  # spin-operator mounts the SpinApp's CA bundle here for outbound TLS
        os.environ["SSL_CERT_FILE"] = str(ca)
    rc = rootfs / "runtime-config.toml"
    opts = RunOptions(
        target=rootfs, listen=cfg.env.get("SPIN_HTTP_LISTEN_ADDR") or "0.0.0.0:80",
        runtime_config=rc if rc.is_file() else None, state_dir=rootfs,
        cache_dir=Path(cfg.cache_dir) if cfg.cache_dir else rootfs / ".cache" / "spindle-shim",
        workers=int(cfg.env.get("SPINDLE_SHIM_WORKERS") or 1),
        # containerd-shim-spin's container mode: bare <NAME> variables too, and the pod's cgroup
        # (not a per-instance default) bounds memory unless SPIN_MAX_INSTANCE_MEMORY says otherwise
        env_names_as_variables=True, max_instance_memory=None, command_args=tuple(cfg.args))
    try:
        loaded = load(opts, cfg.env)
    except ShimError as exc:
        return _fail(reporter, str(exc))
    except (OSError, ValueError) as exc:
        return _fail(reporter, f"{cfg.rootfs}: {exc}")
    reporter.send("ready")
    if control.readline().strip() != b"start":
        return 0
    try:
        sock = bind(opts.listen)
    except ListenError as exc:
        return _fail(reporter, str(exc))
    host, port = sock.getsockname()[:2]
    reporter.send("serving", address=f"{host}:{port}")
    return serve(opts, cfg.env, sock=sock, loaded=loaded)
