"""The shim daemon: serves the Task service on the socket `start` bound, until containerd shuts
down its last task. Logs go to the bundle's `log` FIFO, which containerd copies into its own log.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import sys
import threading
from datetime import datetime
from pathlib import Path

from google.protobuf.message import Message

from shim.containerd import ttrpc
from shim.containerd.bootstrap import CACHE_DIR_ENV, DEFAULT_CACHE_DIR, LISTEN_FD_ENV, Flags
from shim.containerd.events import Publisher
from shim.containerd.launch import Launched
from shim.containerd.proto import events_task_pb2 as ev
from shim.containerd.service import TaskService, timestamp
from shim.containerd.tasks import Events, TaskManager

log = logging.getLogger("shim.containerd")


def serve(flags: Flags, log_fd: int | None, spare: Launched | None) -> int:
    bundle = Path.cwd()
    logging.basicConfig(level=logging.DEBUG if flags.debug else logging.INFO,
                        stream=sys.stderr if log_fd is None else os.fdopen(os.dup(log_fd), "w", buffering=1),
                        format="spin-shim[%(process)d] %(levelname)s %(name)s: %(message)s")
    listener = socket.socket(fileno=int(os.environ.pop(LISTEN_FD_ENV)))
    address_path = listener.getsockname()
    (bundle / "shim.pid").write_text(str(os.getpid()))
    publisher = Publisher(flags.publish_binary, flags.address, flags.namespace)
    manager = TaskManager(spare=spare, cache_dir=os.environ.get(CACHE_DIR_ENV) or DEFAULT_CACHE_DIR,
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
    server.wait_closed(2)  # the Shutdown answer goes out before we exit
    manager.kill_all()
    publisher.close()
    with contextlib.suppress(OSError):
        os.unlink(address_path)
    log.info("shim exiting: no task left")
    return 0


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
        return ev.TaskDelete(container_id=task_id, id=task_id, pid=pid, exit_status=status,
                             exited_at=exited_at)
    return ev.TaskOOM(container_id=task_id)
