"""`containerd.task.v2.Task` over ttrpc: decode each request, call the task manager, encode the
answer, and turn errors into the gRPC status codes containerd's `errdefs.FromGRPC` expects.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path

from google.protobuf import any_pb2, empty_pb2, text_format, timestamp_pb2
from google.protobuf.message import DecodeError, Message

from shim.containerd import ttrpc
from shim.containerd.cgroups import Stats
from shim.containerd.errors import InvalidArgument, TaskError, Unimplemented
from shim.containerd.events import to_any
from shim.containerd.mounts import RootfsMount
from shim.containerd.proto import cgroups_v1_metrics_pb2 as v1
from shim.containerd.proto import cgroups_v2_metrics_pb2 as v2
from shim.containerd.proto import shim_pb2 as pb
from shim.containerd.proto import task_pb2
from shim.containerd.spec import parse_resources
from shim.containerd.tasks import CreateRequest, Exit, Status, Task, TaskManager

log = logging.getLogger("shim.containerd.service")

SERVICE = "containerd.task.v2.Task"
UNSUPPORTED = ("Exec", "Pause", "Resume", "Checkpoint")


def timestamp(at: datetime | None) -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    if at is not None:
        ts.FromDatetime(at)
    return ts


class TaskService:
    """The ttrpc handler of one shim daemon. `on_shutdown` runs once no task is left and
    containerd asked to shut down."""

    def __init__(self, tasks: TaskManager, on_shutdown: Callable[[], None]) -> None:
        self.tasks = tasks
        self._on_shutdown = on_shutdown
        self._methods: dict[str, tuple[type[Message], Callable[[Message], Message]]] = {
            "Create": (pb.CreateTaskRequest, self.create),  # type: ignore[dict-item]
            "Start": (pb.StartRequest, self.start),  # type: ignore[dict-item]
            "State": (pb.StateRequest, self.state),  # type: ignore[dict-item]
            "Kill": (pb.KillRequest, self.kill),  # type: ignore[dict-item]
            "Delete": (pb.DeleteRequest, self.delete),  # type: ignore[dict-item]
            "Wait": (pb.WaitRequest, self.wait),  # type: ignore[dict-item]
            "Pids": (pb.PidsRequest, self.pids),  # type: ignore[dict-item]
            "Connect": (pb.ConnectRequest, self.connect),  # type: ignore[dict-item]
            "Shutdown": (pb.ShutdownRequest, self.shutdown),  # type: ignore[dict-item]
            "Stats": (pb.StatsRequest, self.stats),  # type: ignore[dict-item]
            "CloseIO": (pb.CloseIORequest, self.close_io),  # type: ignore[dict-item]
            "ResizePty": (pb.ResizePtyRequest, self.resize_pty),  # type: ignore[dict-item]
            "Update": (pb.UpdateTaskRequest, self.update),  # type: ignore[dict-item]
        }

    def handle(self, service: str, method: str, payload: bytes, metadata: Mapping[str, str]) -> bytes:
        if service != SERVICE:
            raise ttrpc.TtrpcError(ttrpc.Code.UNIMPLEMENTED, f"service {service} is not served here")
        if method in UNSUPPORTED:
            raise ttrpc.TtrpcError(ttrpc.Code.UNIMPLEMENTED, f"{method} is not supported by the spin shim")
        entry = self._methods.get(method)
        if entry is None:
            raise ttrpc.TtrpcError(ttrpc.Code.UNIMPLEMENTED, f"{service}/{method} is not supported")
        request_type, call = entry
        try:
            request = request_type.FromString(payload)
        except DecodeError as exc:
            raise ttrpc.TtrpcError(ttrpc.Code.INVALID_ARGUMENT,
                                   f"{method}: malformed request: {exc}") from exc
        log.debug("%s %s", method, _brief(request))
        try:
            return call(request).SerializeToString()
        except TaskError as exc:
            log.log(logging.INFO if exc.code in (5, 9) else logging.ERROR, "%s: %s", method, exc)
            raise ttrpc.TtrpcError(ttrpc.Code(exc.code), str(exc)) from exc

    # -- the methods ----------------------------------------------------------------------------

    def create(self, req: pb.CreateTaskRequest) -> pb.CreateTaskResponse:
        task = self.tasks.create(CreateRequest(
            id=req.id, bundle=Path(req.bundle),
            rootfs=[RootfsMount(m.type, m.source, tuple(m.options)) for m in req.rootfs],
            stdin=req.stdin, stdout=req.stdout, stderr=req.stderr, terminal=req.terminal,
            checkpoint=req.checkpoint))
        return pb.CreateTaskResponse(pid=task.pid)

    def start(self, req: pb.StartRequest) -> pb.StartResponse:
        _no_exec(req.exec_id, "Start")
        return pb.StartResponse(pid=self.tasks.start(req.id).pid)

    def state(self, req: pb.StateRequest) -> pb.StateResponse:
        _no_exec(req.exec_id, "State")
        task = self.tasks.get(req.id)
        return _state(task)

    def kill(self, req: pb.KillRequest) -> empty_pb2.Empty:
        _no_exec(req.exec_id, "Kill")
        self.tasks.kill(req.id, req.signal, req.all)
        return empty_pb2.Empty()

    def delete(self, req: pb.DeleteRequest) -> pb.DeleteResponse:
        _no_exec(req.exec_id, "Delete")
        return _delete_response(self.tasks.delete(req.id))

    def wait(self, req: pb.WaitRequest) -> pb.WaitResponse:
        _no_exec(req.exec_id, "Wait")
        exit_ = self.tasks.wait(req.id)
        return pb.WaitResponse(exit_status=exit_.status, exited_at=timestamp(exit_.at))

    def pids(self, req: pb.PidsRequest) -> pb.PidsResponse:
        return pb.PidsResponse(processes=[task_pb2.ProcessInfo(pid=p) for p in self.tasks.pids(req.id)])

    def connect(self, req: pb.ConnectRequest) -> pb.ConnectResponse:
        task = self.tasks.get(req.id)
        return pb.ConnectResponse(shim_pid=os.getpid(), task_pid=task.pid)

    def shutdown(self, req: pb.ShutdownRequest) -> empty_pb2.Empty:
        # containerd sends Shutdown after each Delete; other tasks of the pod keep the shim alive
        if not self.tasks.ids():
            threading.Timer(0.05, self._on_shutdown).start()  # after this answer has gone out
        return empty_pb2.Empty()

    def stats(self, req: pb.StatsRequest) -> pb.StatsResponse:
        return pb.StatsResponse(stats=metrics_any(self.tasks.stats(req.id)))

    def close_io(self, req: pb.CloseIORequest) -> empty_pb2.Empty:
        self.tasks.get(req.id)  # no stdin is ever attached: nothing to close
        return empty_pb2.Empty()

    def resize_pty(self, req: pb.ResizePtyRequest) -> empty_pb2.Empty:
        self.tasks.get(req.id)  # no terminal is ever attached (Create refuses one)
        return empty_pb2.Empty()

    def update(self, req: pb.UpdateTaskRequest) -> empty_pb2.Empty:
        try:
            raw = json.loads(req.resources.value or b"{}")
        except ValueError as exc:
            raise InvalidArgument(f"task {req.id}: resources are not LinuxResources JSON: {exc}") from exc
        self.tasks.update(req.id, parse_resources(raw, f"task {req.id}: resources"))
        return empty_pb2.Empty()


def _no_exec(exec_id: str, method: str) -> None:
    if exec_id:
        raise Unimplemented(f"{method} of exec process {exec_id!r}: Exec is not supported by the spin shim")


def _state(task: Task) -> pb.StateResponse:
    status = Status.STOPPED if task.exit else task.status
    resp = pb.StateResponse(id=task.id, bundle=str(task.bundle), pid=task.pid,
                            status=status.name,
                            stdin=task.stdio[0], stdout=task.stdio[1], stderr=task.stdio[2])
    if task.exit is not None:
        resp.exit_status = task.exit.status
        resp.exited_at.CopyFrom(timestamp(task.exit.at))
    return resp


def _delete_response(exit_: Exit) -> pb.DeleteResponse:
    return pb.DeleteResponse(pid=exit_.pid, exit_status=exit_.status, exited_at=timestamp(exit_.at))


def metrics_any(s: Stats) -> any_pb2.Any:
    """cgroup statistics as containerd's metrics types (v1 or v2, by the host's cgroup version)."""
    if s.version == 2:
        m2 = v2.Metrics(
            pids=v2.PidsStat(current=s.pids, limit=s.pids_limit),
            cpu=v2.CPUStat(usage_usec=s.cpu_usage_ns // 1000, user_usec=s.cpu_user_ns // 1000,
                           system_usec=s.cpu_kernel_ns // 1000),
            memory=v2.MemoryStat(usage=s.memory_usage, usage_limit=s.memory_limit,
                                 anon=s.memory_stat.get("anon", 0), file=s.memory_stat.get("file", 0)),
            memory_events=v2.MemoryEvents(max=s.memory_failcnt, oom_kill=s.oom_kills))
        return to_any(m2)
    m1 = v1.Metrics(
        pids=v1.PidsStat(current=s.pids, limit=s.pids_limit),
        cpu=v1.CPUStat(usage=v1.CPUUsage(total=s.cpu_usage_ns, user=s.cpu_user_ns, kernel=s.cpu_kernel_ns)),
        memory=v1.MemoryStat(
            cache=s.memory_stat.get("cache", 0), rss=s.memory_stat.get("rss", 0),
            mapped_file=s.memory_stat.get("mapped_file", 0),
            usage=v1.MemoryEntry(usage=s.memory_usage, limit=s.memory_limit, max=s.memory_max_usage,
                                 failcnt=s.memory_failcnt)),
        memory_oom_control=v1.MemoryOomControl(oom_kill=s.oom_kills))
    return to_any(m1)


def _brief(msg: Message) -> str:
    return text_format.MessageToString(msg, as_one_line=True)[:300]
