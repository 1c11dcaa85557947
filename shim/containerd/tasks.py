"""The tasks one shim daemon holds (one per container of a pod, or one for a `ctr run`), their
state machine and their processes.

    CREATED ──start──▶ RUNNING ──exit──▶ STOPPED ──delete──▶ (gone)
       └────────────── exit (killed, failed) ─────▶ STOPPED

Create mounts the rootfs, makes the cgroup and starts the workload process, which loads the app
and waits; Start lets it serve. A task's exit is seen by one watcher thread per process and
recorded once (status, time, /tasks/exit); Wait blocks on that. Errors name the task.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import IntEnum
from pathlib import Path
from typing import IO

from shim.containerd import linux, mounts
from shim.containerd.cgroups import Cgroup, Stats
from shim.containerd.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound, TaskError
from shim.containerd.launch import Launched, launch
from shim.containerd.mounts import RootfsMount
from shim.containerd.spec import Kind, Resources, Spec, load_spec
from shim.containerd.workload import WorkloadConfig

log = logging.getLogger("shim.containerd.tasks")

STATE_FILE = "spindle-task.json"  # in the bundle: what the `delete` action needs after a crash


class Status(IntEnum):
    """containerd.v1.types.Status."""

    UNKNOWN = 0
    CREATED = 1
    RUNNING = 2
    STOPPED = 3


@dataclass(frozen=True)
class CreateRequest:
    id: str
    bundle: Path
    rootfs: list[RootfsMount]
    stdin: str = ""
    stdout: str = ""
    stderr: str = ""
    terminal: bool = False
    checkpoint: str = ""


@dataclass(frozen=True)
class Exit:
    pid: int
    status: int
    at: datetime


@dataclass
class Task:
    id: str
    bundle: Path
    spec: Spec
    stdio: tuple[str, str, str]
    cgroup: Cgroup | None
    rootfs_mounted: bool
    proc: subprocess.Popen[bytes]
    control: IO[bytes]
    status_pipe: IO[bytes]
    status: Status = Status.CREATED
    exit: Exit | None = None
    exited: threading.Event = field(default_factory=threading.Event)
    oom_kills: int = 0

    @property
    def pid(self) -> int:
        return self.proc.pid

    def read_status(self) -> dict[str, str]:
        """The workload's next report; EOF (it died) reads as an error."""
        line = self.status_pipe.readline()
        if not line:
            self.proc.wait()
            return {"state": "error",
                    "message": f"task {self.id}: the workload exited with status {exit_status(self.proc)}"}
        report: dict[str, str] = json.loads(line)
        return report


def exit_status(proc: subprocess.Popen[bytes]) -> int:
    rc = proc.returncode
    return 128 - rc if rc is not None and rc < 0 else (rc or 0)


class Events:
    """What the manager tells the world; the daemon wires it to the publisher."""

    def __init__(self, emit: Callable[[str, str, dict[str, object]], None] | None = None) -> None:
        self._emit = emit or (lambda topic, task_id, fields: None)

    def __call__(self, topic: str, task_id: str, **fields: object) -> None:
        self._emit(topic, task_id, fields)


class TaskManager:
    def __init__(self, *, cache_dir: str, events: Events, log_fd: int | None = None,
                 spare: Launched | None = None) -> None:
        self._spare = spare  # an app workload started ahead of the first Create (launch.py)
        self._cache_dir = cache_dir
        self._events = events
        self._log_fd = log_fd
        self._tasks: dict[str, Task] = {}
        self._lock = threading.Lock()
        self.emptied = threading.Condition(self._lock)

    # -- lookups --------------------------------------------------------------------------------

    def get(self, task_id: str) -> Task:
        with self._lock:
            task = self._tasks.get(task_id)
        if task is None:
            raise NotFound(f"task {task_id}: not found")
        return task

    def ids(self) -> list[str]:
        with self._lock:
            return list(self._tasks)

    # -- Create / Start -------------------------------------------------------------------------

    def create(self, req: CreateRequest) -> Task:
        if req.terminal:
            raise InvalidArgument(f"task {req.id}: a terminal is not supported by the spin shim")
        if req.checkpoint:
            raise InvalidArgument(f"task {req.id}: restoring a checkpoint is not supported by the spin shim")
        with self._lock:
            if req.id in self._tasks:
                raise AlreadyExists(f"task {req.id}: already exists")
        spec = load_spec(req.bundle)
        rootfs = req.bundle / spec.root if not spec.root.startswith("/") else Path(spec.root)
        undo: list[Callable[[], None]] = []  # what to take down again if a later step fails
        try:
            mounted = mounts.mount_rootfs(req.rootfs, rootfs)
            if mounted:
                undo.append(lambda: mounts.unmount_all(rootfs))
            cgroup = self._make_cgroup(req.id, spec)
            if cgroup is not None:
                undo.append(cgroup.remove)
            task = self._spawn(req, spec, rootfs, cgroup, mounted)
            undo.append(lambda: _kill_and_reap(task))
            report = task.read_status()
            if report["state"] != "ready":
                raise TaskError(report.get("message") or f"task {req.id}: the workload did not start")
        except (OSError, TaskError) as exc:
            for step in reversed(undo):
                with contextlib.suppress(OSError):
                    step()
            if isinstance(exc, TaskError):
                raise
            raise TaskError(f"task {req.id}: {exc}") from exc
        with self._lock:
            self._tasks[req.id] = task
        _write_state(task)
        threading.Thread(target=self._watch, args=(task,), name=f"wait-{req.id[:12]}", daemon=True).start()
        self._events("/tasks/create", task.id, bundle=str(task.bundle), pid=task.pid)
        log.info("task %s created (%s, pid %d)", task.id, spec.kind.value, task.pid)
        return task

    def _make_cgroup(self, task_id: str, spec: Spec) -> Cgroup | None:
        cgroup = Cgroup.for_task(spec.cgroups_path, task_id)
        if not cgroup.dirs:
            log.warning("task %s: no cgroup hierarchy found; limits are not applied", task_id)
            return None
        try:
            cgroup.create(spec.resources)
        except OSError as exc:
            if spec.resources != Resources():
                raise OSError(exc.errno, f"cgroup {cgroup.dirs[0]}: cannot apply the spec's limits: "
                                         f"{exc.strerror or exc}") from exc
            log.warning("task %s: cgroup %s not usable (%s); running without one", task_id,
                        cgroup.dirs[0], exc)
            with contextlib.suppress(OSError):
                cgroup.remove(timeout=0)
            return None
        return cgroup

    def _spawn(self, req: CreateRequest, spec: Spec, rootfs: Path, cgroup: Cgroup | None,
               mounted: bool) -> Task:
        app = spec.kind is Kind.APP
        spare, self._spare = (self._spare, None) if app else (None, self._spare)
        if spare is not None and not spare.alive():
            spare = None
        w = spare or launch(preload=app, log_fd=self._log_fd, cwd=str(req.bundle))
        task = Task(req.id, req.bundle, spec, (req.stdin, req.stdout, req.stderr), cgroup, mounted,
                    w.proc, w.control, w.status)
        config = WorkloadConfig(
            task_id=req.id, kind=spec.kind.value, rootfs=str(rootfs),
            namespaces=[(n.type, n.path) for n in spec.namespaces],
            cgroup_procs=cgroup.procs_files() if cgroup else [],
            mounts=[{"destination": m.destination, "type": m.type, "source": m.source,
                     "options": list(m.options)} for m in spec.mounts] if app else [],
            env=spec.env_map(), stdout=req.stdout, stderr=req.stderr, cache_dir=self._cache_dir,
            args=list(spec.args))
        with contextlib.suppress(OSError, ValueError):
            w.control.write(config.to_line())
        return task

    def start(self, task_id: str) -> Task:
        task = self.get(task_id)
        if task.status is not Status.CREATED:
            raise FailedPrecondition(f"task {task_id}: cannot start a task that is {task.status.name}")
        with contextlib.suppress(OSError, ValueError):
            task.control.write(b"start\n")
        report = task.read_status()
        if report["state"] != "serving":
            task.exited.wait(5)
            raise TaskError(report.get("message") or f"task {task_id}: the workload did not start")
        if task.exit is None:
            task.status = Status.RUNNING
        self._events("/tasks/start", task.id, pid=task.pid)
        where = f", serving on {report['address']}" if report.get("address") else ""
        log.info("task %s started%s", task_id, where)
        return task

    # -- exits ----------------------------------------------------------------------------------

    def _watch(self, task: Task) -> None:
        task.proc.wait()
        self._check_oom(task)  # before the exit, so subscribers learn why first
        task.exit = Exit(task.pid, exit_status(task.proc), datetime.now(UTC))
        task.status = Status.STOPPED
        log.info("task %s exited with status %d", task.id, task.exit.status)
        self._events("/tasks/exit", task.id, pid=task.pid, exit_status=task.exit.status,
                     exited_at=task.exit.at)
        task.exited.set()

    def poll_oom(self) -> None:
        """Publish /tasks/oom when a task's cgroup counts a new OOM kill."""
        with self._lock:
            tasks = [t for t in self._tasks.values() if t.exit is None]
        for t in tasks:
            self._check_oom(t)

    def _check_oom(self, task: Task) -> None:
        if task.cgroup is None:
            return
        with self._lock:
            kills = task.cgroup.oom_kills()
            if kills <= task.oom_kills:
                return
            task.oom_kills = kills
        log.warning("task %s: the kernel's OOM killer ended a process (memory limit)", task.id)
        self._events("/tasks/oom", task.id)

    def wait(self, task_id: str) -> Exit:
        task = self.get(task_id)
        task.exited.wait()
        assert task.exit is not None
        return task.exit

    # -- Kill / Delete --------------------------------------------------------------------------

    def kill(self, task_id: str, signum: int, all_processes: bool) -> None:
        task = self.get(task_id)
        if task.exit is not None:
            raise NotFound(f"task {task_id}: process already finished")
        try:
            if all_processes:
                os.killpg(task.pid, signum)
            else:
                os.kill(task.pid, signum)
        except ProcessLookupError:
            raise NotFound(f"task {task_id}: process already finished") from None

    def delete(self, task_id: str) -> Exit:
        task = self.get(task_id)
        if task.status is Status.RUNNING and task.exit is None:
            raise FailedPrecondition(f"task {task_id}: cannot delete a running task; kill it first")
        if task.exit is None:  # created, never started: stop the waiting workload
            _kill_and_reap(task)
            task.exited.wait(10)
        exit_ = task.exit or Exit(task.pid, 137, datetime.now(UTC))
        for pipe in (task.control, task.status_pipe):
            with contextlib.suppress(OSError):
                pipe.close()
        _cleanup(task.bundle / task.spec.root, task.cgroup)
        with contextlib.suppress(OSError):
            (task.bundle / STATE_FILE).unlink()
        with self._lock:
            self._tasks.pop(task_id, None)
            self.emptied.notify_all()
        self._events("/tasks/delete", task.id, pid=exit_.pid, exit_status=exit_.status, exited_at=exit_.at)
        log.info("task %s deleted", task_id)
        return exit_

    # -- the rest -------------------------------------------------------------------------------

    def pids(self, task_id: str) -> list[int]:
        task = self.get(task_id)
        if task.cgroup is not None:
            pids = task.cgroup.pids()
            if pids:
                return pids
        return [] if task.exit else [task.pid]

    def stats(self, task_id: str) -> Stats:
        task = self.get(task_id)
        if task.cgroup is None:
            raise FailedPrecondition(f"task {task_id}: has no cgroup to read statistics from")
        return task.cgroup.stats()

    def update(self, task_id: str, resources: Resources) -> None:
        task = self.get(task_id)
        if task.cgroup is None:
            raise FailedPrecondition(f"task {task_id}: has no cgroup to update")
        try:
            task.cgroup.apply(resources)
        except OSError as exc:
            raise TaskError(f"task {task_id}: cannot update the cgroup: {exc}") from exc

    def kill_all(self) -> None:
        """The daemon is going away for good: leave nothing running."""
        if self._spare is not None:
            with contextlib.suppress(ProcessLookupError):
                self._spare.proc.kill()
            self._spare.proc.wait()
        for task_id in self.ids():
            with contextlib.suppress(TaskError):
                task = self.get(task_id)
                if task.exit is None:
                    _kill_and_reap(task)


def _kill_and_reap(task: Task) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(task.pid, signal.SIGKILL)
    if task.cgroup is not None:
        task.cgroup.kill_all()
    with contextlib.suppress(subprocess.TimeoutExpired):
        task.proc.wait(10)


def _cleanup(rootfs: Path, cgroup: Cgroup | None) -> None:
    mounts.unmount_all(rootfs)
    if cgroup is not None:
        cgroup.kill_all()
        try:
            cgroup.remove()
        except OSError as exc:
            log.warning("cannot remove cgroup %s: %s", cgroup.dirs[0], exc)


def _write_state(task: Task) -> None:
    state = {"pid": task.pid, "start_time": linux.process_start_time(task.pid),
             "root": task.spec.root, "cgroup": task.cgroup.to_json() if task.cgroup else None}
    tmp = task.bundle / f".{STATE_FILE}"
    tmp.write_text(json.dumps(state))
    tmp.rename(task.bundle / STATE_FILE)


def cleanup_bundle(bundle: Path) -> Exit | None:
    """The `delete` action after a shim died: kill what the task left running (only if the pid
    still names the same process), unmount the rootfs, remove the cgroup."""
    try:
        state = json.loads((bundle / STATE_FILE).read_text())
    except (OSError, ValueError):
        state = {}
    pid = int(state.get("pid") or 0)
    if pid and state.get("start_time") is not None and linux.process_start_time(pid) == state["start_time"]:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while linux.process_start_time(pid) == state["start_time"] and time.monotonic() < deadline:
            time.sleep(0.02)  # not our child: it is reaped by whoever adopted it
    cgroup = Cgroup.from_json(state["cgroup"]) if state.get("cgroup") else None
    root = str(state.get("root") or "rootfs")
    _cleanup(bundle / root if not root.startswith("/") else Path(root), cgroup)
    with contextlib.suppress(OSError):
        (bundle / STATE_FILE).unlink()
    return Exit(pid, 137, datetime.now(UTC)) if pid else None


