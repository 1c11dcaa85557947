"""The three ways containerd runs the shim binary, and the daemon they lead to.

- `start`: find or make the pod's shim. The socket address is derived from containerd's
  address, the namespace and the group key (CRI's sandbox id, else the task id), as containerd's
  Go shims and runwasi derive it, so the second container of a pod finds the first one's daemon
  and gets the same address. Otherwise bind the socket, start the daemon with it (stdio on
  /dev/null: containerd reads `start`'s combined output until EOF), write `./address`, and
  print only the address.
- the daemon (no action word; re-executed by `start`): serve the Task service on the inherited
  socket until containerd shuts down its last task. Logs go to the bundle's `log` FIFO, which
  containerd copies into its own log.
- `delete`: after every task removal and after a shim died: kill what is left of the task,
  unmount, remove the cgroup, and print a DeleteResponse.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from google.protobuf.message import Message

from shim.containerd import ttrpc
from shim.containerd.events import Publisher
from shim.containerd.proto import events_task_pb2 as ev
from shim.containerd.service import TaskService, delete_response_bytes, timestamp
from shim.containerd.spec import group_key
from shim.containerd.tasks import Events, Exit, TaskManager, cleanup_bundle, self_command

log = logging.getLogger("shim.containerd")

SOCKET_DIR_ENV = "SPINDLE_SHIM_SOCKET_DIR"  # where the sockets go; containerd's default otherwise
CACHE_DIR_ENV = "SPINDLE_SHIM_CACHE_DIR"  # the node's artifact cache, shared by every app
LISTEN_FD_ENV = "SPINDLE_SHIM_LISTEN_FD"
DEFAULT_SOCKET_DIR = "/run/containerd/s"
DEFAULT_CACHE_DIR = "/var/lib/spindle-shim/cache"


@dataclass(frozen=True)
class Flags:
    """The flags containerd passes (Go flag syntax: `-name value`)."""

    namespace: str
    address: str
    publish_binary: str
    id: str
    bundle: str
    debug: bool


def socket_address(containerd_address: str, namespace: str, group: str, socket_dir: str) -> str:
    """unix://<dir>/<sha256 of address/namespace/group>, the Go shims' formula."""
    digest = hashlib.sha256(os.path.join(containerd_address, namespace, group).encode()).hexdigest()
    return f"unix://{os.path.join(socket_dir, digest)}"


def _socket_path(address: str) -> str:
    return address.removeprefix("unix://")


def _write_address(bundle: Path, address: str) -> None:
    tmp = bundle / ".address"
    tmp.write_text(address)
    tmp.rename(bundle / "address")


def _alive(path: str) -> bool:
    """Does a daemon answer on this socket? Tried for up to a second, as runwasi does, since a
    daemon that is starting has bound but may not accept yet."""
    for _ in range(20):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(0.5)
            try:
                s.connect(path)
                return True
            except ConnectionRefusedError:
                return False
            except OSError:
                time.sleep(0.05)
    return False


# -- start ----------------------------------------------------------------------------------------

def start(flags: Flags) -> int:
    bundle = Path.cwd()
    try:
        spec_json = json.loads((bundle / "config.json").read_text())
    except (OSError, ValueError) as exc:
        print(f"{bundle}/config.json: cannot read the OCI runtime spec: {exc}", file=sys.stderr)
        return 1
    socket_dir = os.environ.get(SOCKET_DIR_ENV) or DEFAULT_SOCKET_DIR
    address = socket_address(flags.address, flags.namespace, group_key(spec_json, flags.id), socket_dir)
    path = _socket_path(address)
    if len(path) > 106:
        print(f"shim socket path {path} is longer than 106 characters", file=sys.stderr)
        return 1
    os.makedirs(socket_dir, mode=0o711, exist_ok=True)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        listener.bind(path)
    except OSError:
        if _alive(path):  # the pod's shim runs already: share it
            listener.close()
            _write_address(bundle, address)
            sys.stdout.write(address)
            return 0
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)  # left by a shim that died
        listener.bind(path)
    os.chmod(path, 0o600)
    listener.listen(64)
    args = ["-namespace", flags.namespace, "-id", flags.id, "-address", flags.address,
            "-publish-binary", flags.publish_binary, *(["-debug"] if flags.debug else [])]
    subprocess.Popen([*self_command(), *args], cwd=bundle, stdin=subprocess.DEVNULL,
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                     pass_fds=(listener.fileno(),),
                     env={**os.environ, LISTEN_FD_ENV: str(listener.fileno())})
    listener.close()
    _write_address(bundle, address)
    sys.stdout.write(address)
    return 0


# -- delete ---------------------------------------------------------------------------------------

def delete(flags: Flags) -> int:
    bundle = Path(flags.bundle) if flags.bundle else Path.cwd()
    try:
        exit_ = cleanup_bundle(bundle)
    except OSError as exc:
        print(f"cleanup of {bundle}: {exc}", file=sys.stderr)  # logged by containerd as a warning
        exit_ = None
    # runwasi's answer: the task was killed (137) now
    exit_ = exit_ or Exit(0, 137, datetime.now(UTC))
    _remove_dead_socket(bundle)
    sys.stdout.buffer.write(delete_response_bytes(Exit(exit_.pid, 137, exit_.at)))
    sys.stdout.buffer.flush()
    return 0


def _remove_dead_socket(bundle: Path) -> None:
    try:
        path = _socket_path((bundle / "address").read_text().strip())
    except OSError:
        return
    if os.path.exists(path) and not _alive(path):
        with contextlib.suppress(OSError):
            os.unlink(path)


# -- the daemon -----------------------------------------------------------------------------------

def serve(flags: Flags) -> int:
    bundle = Path.cwd()
    log_fd = _open_log_fifo(bundle)
    logging.basicConfig(level=logging.DEBUG if flags.debug else logging.INFO,
                        stream=sys.stderr if log_fd is None else os.fdopen(os.dup(log_fd), "w", buffering=1),
                        format="spin-shim[%(process)d] %(levelname)s %(name)s: %(message)s")
    listener = socket.socket(fileno=int(os.environ.pop(LISTEN_FD_ENV)))
    address_path = listener.getsockname()
    (bundle / "shim.pid").write_text(str(os.getpid()))
    publisher = Publisher(flags.publish_binary, flags.address, flags.namespace)
    manager = TaskManager(workload_command=self_command(),
                          cache_dir=os.environ.get(CACHE_DIR_ENV) or DEFAULT_CACHE_DIR,
                          events=Events(lambda topic, task_id, fields:
                                        publisher.publish(topic, _event(topic, task_id, fields))),
                          log_fd=log_fd)
    done = threading.Event()
    server = ttrpc.Server(TaskService(manager, done.set).handle)
    threading.Thread(target=server.serve, args=(listener,), name="ttrpc", daemon=True).start()
    log.info("serving the task API for %s/%s on %s", flags.namespace, flags.id, address_path)
    while not done.wait(0.5):
        manager.poll_oom()
    server.close()
    manager.kill_all()
    publisher.close()
    with contextlib.suppress(OSError):
        os.unlink(address_path)
    log.info("shim exiting: no task left")
    return 0


def _open_log_fifo(bundle: Path) -> int | None:
    try:
        # containerd holds the read end open (O_RDWR|O_NONBLOCK), so this does not block
        fd = os.open(bundle / "log", os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    os.set_blocking(fd, True)  # a full pipe waits for containerd rather than losing lines
    return fd


def _event(topic: str, task_id: str, f: dict[str, object]) -> Message:
    pid = int(str(f.get("pid", 0)))
    at = f.get("exited_at")
    exited_at = timestamp(at if isinstance(at, datetime) else None)
    status = int(str(f.get("exit_status", 0)))
    if topic == "/tasks/create":
        return ev.TaskCreate(container_id=task_id, bundle=str(f.get("bundle", "")), pid=pid)
    if topic == "/tasks/start":
        return ev.TaskStart(container_id=task_id, pid=pid)
    if topic == "/tasks/exit":
        return ev.TaskExit(container_id=task_id, id=task_id, pid=pid, exit_status=status, exited_at=exited_at)
    if topic == "/tasks/delete":
        return ev.TaskDelete(container_id=task_id, id=task_id, pid=pid, exit_status=status, exited_at=exited_at)
    return ev.TaskOOM(container_id=task_id)
