"""The binary's short-lived actions, kept light (each is a process containerd waits for).

- `start`: find or make the pod's shim. The socket address is derived from containerd's
  address, the namespace and the group key (CRI's sandbox id, else the task id), as containerd's
  Go shims and runwasi derive it, so the second container of a pod finds the first one's daemon
  and gets the same address. Otherwise bind the socket, start the daemon with it (stdio on
  /dev/null: containerd reads `start`'s combined output until EOF), write `./address`, and
  print only the address.
- `delete`: after every task removal and after a shim died: kill what is left of the task,
  unmount, remove the cgroup, and print a DeleteResponse.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from shim.containerd import launch
from shim.containerd.spec import group_key

SOCKET_DIR_ENV = "SPINDLE_SHIM_SOCKET_DIR"  # where the sockets go; containerd's default otherwise
CACHE_DIR_ENV = "SPINDLE_SHIM_CACHE_DIR"  # the node's artifact cache, shared by every app
LISTEN_FD_ENV = "SPINDLE_SHIM_LISTEN_FD"
LOG_FD_ENV = "SPINDLE_SHIM_LOG_FD"
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
    subprocess.Popen([*launch.self_command(), *args], cwd=bundle, stdin=subprocess.DEVNULL,
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
    from shim.containerd.proto import shim_pb2
    from shim.containerd.tasks import cleanup_bundle

    try:
        exit_ = cleanup_bundle(bundle)
    except OSError as exc:
        print(f"cleanup of {bundle}: {exc}", file=sys.stderr)  # logged by containerd as a warning
        exit_ = None
    _remove_dead_socket(bundle)
    # runwasi's answer: the task was killed (137), now
    response = shim_pb2.DeleteResponse(pid=exit_.pid if exit_ else 0, exit_status=137)
    response.exited_at.FromDatetime(exit_.at if exit_ else datetime.now(UTC))
    sys.stdout.buffer.write(response.SerializeToString())
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


