"""Running an install or uninstall on a host root: the I/O around the pure plan.

    check the host root → find and hash the asset → read a snapshot → plan (refusals happen here)
    → check every path the plan writes is writable → take the node lock → read and plan again
    (another installer may have finished meanwhile) → write → restart containerd → finish the state

A plan that changes nothing is reported without taking the lock or writing anything, so a second
install is a true no-op. A restart failure leaves the files in place and `restart_pending` in the
state, so the next run restarts containerd even though nothing else changed.

How a run reports the node's state mirrors RCM's Jobs: RCM's controller labels the node
`<shim>=provisioned` when the install Job completes (exit 0) and `<shim>=failed` when it fails, and
deletes the label when the uninstall Job completes. The installer exits 0/1 accordingly, prints a
final status line that begins with that word (`spin-v2: provisioned ...`, `spin-v2: uninstalled
...`, `spin-v2: failed: <file>: <what>`), records the shim in rcm-lock.json as RCM does, and with
`-o json` prints the whole result as one JSON object.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from node_installer import presets, restart, state
from node_installer.errors import AssetError, HostRootError, ReadOnlyError
from node_installer.hostfs import HostFs, asset_sha256
from node_installer.locking import node_lock
from node_installer.plan import (
    Action,
    Asset,
    CopyBinary,
    Plan,
    RemoveFile,
    Request,
    Snapshot,
    WriteFile,
    plan_install,
    plan_uninstall,
    read_paths,
)
from node_installer.system import System

DEFAULT_LOCK_TIMEOUT = 300.0


@dataclass(frozen=True)
class Settings:
    asset_path: Path = Path("/assets")
    restart_command: str | None = None
    no_restart: bool = False
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT
    expected_sha256: str | None = None


@dataclass(frozen=True)
class Result:
    plan: Plan
    restarted: restart.Restarted | None = None
    restart_skipped: bool = False

    @property
    def status(self) -> str:
        return "provisioned" if self.plan.operation == "install" else "uninstalled"

    def status_line(self) -> str:
        """The final line: `<runtime>: <status> (<what happened>)`."""
        plan = self.plan
        parts = []
        if plan.config_path is not None:
            config = "changed" if plan.config_changed else "unchanged"
            parts.append(f"config {plan.config_path} {config} (runtime table {plan.table})")
        if plan.operation == "install":
            parts.append(f"binary {plan.binary_path} {'installed' if plan.binary_changed else 'unchanged'}")
        else:
            parts.append(f"binary {plan.binary_path} {'removed' if plan.binary_changed else 'absent'}")
        if self.restarted is not None:
            parts.append(f"containerd restarted ({self.restarted.how})")
        elif self.restart_skipped:
            parts.append("containerd NOT restarted (--no-restart): restart it for the change to apply")
        else:
            parts.append("no restart needed")
        preset = f" on {plan.preset}" if plan.preset else ""
        return f"{plan.runtime}: {self.status}{preset}: " + "; ".join(parts)

    def to_json(self) -> dict[str, Any]:
        plan = self.plan
        return {
            "operation": plan.operation,
            "runtime": plan.runtime,
            "status": self.status,
            "preset": plan.preset,
            "config": {
                "path": str(plan.config_path) if plan.config_path else None,
                "version": plan.version,
                "changed": plan.config_changed,
                "runtime_table": plan.table,
                "backup": str(plan.backup) if plan.backup else None,
            },
            "binary": {
                "path": str(plan.binary_path) if plan.binary_path else None,
                "sha256": plan.binary_sha256,
                "changed": plan.binary_changed,
            },
            "restart": {
                "needed": plan.restart,
                "performed": self.restarted is not None,
                "how": self.restarted.how if self.restarted else None,
                "skipped": self.restart_skipped,
            },
            "files": [{"path": str(a.path), "action": _verb(a), "what": a.what} for a in plan.actions],
            "notes": list(plan.notes),
        }


class Installer:
    """Install or uninstall one runtime on the host root behind `fs`, restarting through `system`."""

    def __init__(
        self, fs: HostFs, system: System, *, log: Callable[[str], None] = lambda message: None
    ) -> None:
        self.fs = fs
        self.system = system
        self.log = log

    # -- entry points -------------------------------------------------------------------------------

    def install(self, request: Request, settings: Settings) -> Result:
        self._check_root()
        asset = self._asset(request, settings)
        return self._run(request, settings, lambda snapshot: plan_install(snapshot, request, asset))

    def uninstall(self, request: Request, settings: Settings) -> Result:
        self._check_root()
        return self._run(request, settings, lambda snapshot: plan_uninstall(snapshot, request))

    # -- the run ------------------------------------------------------------------------------------

    def _run(self, request: Request, settings: Settings, planner: Callable[[Snapshot], Plan]) -> Result:
        plan = planner(self._snapshot(request))
        if not plan.actions and not plan.restart:
            self._log_plan(plan)
            return Result(plan)
        self._preflight([*plan.paths(), request.node_lock_path])
        lock_dir = self.fs.mkdirs(request.rcm_path)
        with node_lock(
            lock_dir / state.NODE_LOCK,
            node_path=str(request.node_lock_path),
            operation=plan.operation,
            runtime=request.runtime,
            timeout=settings.lock_timeout,
            on_wait=self.log,
        ):
            plan = planner(self._snapshot(request))
            self._preflight(plan.paths())
            self._log_plan(plan)
            self._apply(plan.actions)
            if not plan.restart:
                return Result(plan)
            if settings.no_restart:
                self.log("restart skipped (--no-restart)")
                self._apply(plan.without_restart)
                return Result(plan, restart_skipped=True)
            restarted = self._restart(plan, request, settings)
            self.log(f"containerd restarted: {restarted.how}")
            self._apply(plan.after_restart)
            if plan.operation == "uninstall" and plan.binary_changed:
                self._remove_bundles(request)
            return Result(plan, restarted=restarted)

    def _remove_bundles(self, request: Request) -> None:
        """A frozen shim unpacks itself once per build into `.spindle-bundles/<binary>-<hash>/` next
        to the binary (reconciler/node/launcher.c); with the binary gone and containerd restarted,
        nothing runs from them any more."""
        bundles = self.fs.host_path(request.binary_path).parent / ".spindle-bundles"
        for folder in sorted(bundles.glob(f"{request.binary_name}-*")):
            if folder.is_dir() and not folder.is_symlink():
                shutil.rmtree(folder, ignore_errors=True)
                self.log(f"removed {folder.relative_to(self.fs.root)} (unpacked shim)")
        with contextlib.suppress(OSError):
            bundles.rmdir()  # only when empty: other shims' bundles stay

    def _check_root(self) -> None:
        root = self.fs.root
        if not root.exists():
            raise HostRootError(str(root), "host root does not exist (mount the node's / there, or set -H)")
        if not root.is_dir():
            raise HostRootError(str(root), "host root is not a directory")

    def _asset(self, request: Request, settings: Settings) -> Asset:
        path = settings.asset_path
        if path.is_dir():
            path = path / request.binary_name
        elif not path.exists():
            raise AssetError(
                str(path),
                f"no such file or directory (-a/--asset-path; it should hold {request.binary_name})",
            )
        sha = asset_sha256(path)
        if settings.expected_sha256 and sha != settings.expected_sha256.lower():
            raise AssetError(str(path), f"sha256 is {sha}, --sha256 says {settings.expected_sha256}")
        return Asset(path, sha)

    def _snapshot(self, request: Request) -> Snapshot:
        first = {p: self.fs.read(p) for p in (request.state_path,)}
        records = state.decode_state(request.state_path, first[request.state_path])
        files = {p: self.fs.read(p) for p in read_paths(request, records)}
        return Snapshot(files, binary_sha256=self.fs.sha256(request.binary_path))

    def _preflight(self, paths: Iterable[PurePosixPath]) -> None:
        problems = [(path, reason) for path in paths if (reason := self.fs.unwritable(path)) is not None]
        if problems:
            path, reason = problems[0]
            more = (
                f" (and {len(problems) - 1} more: {', '.join(str(p) for p, _ in problems[1:])})"
                if problems[1:]
                else ""
            )
            raise ReadOnlyError(str(path), f"{reason}; nothing was written{more}")

    def _apply(self, actions: Iterable[Action]) -> None:
        for action in actions:
            if isinstance(action, WriteFile):
                self.fs.write_atomic(action.path, action.data, action.mode)
            elif isinstance(action, RemoveFile):
                self.fs.remove(action.path)
            elif isinstance(action, CopyBinary):
                self.fs.copy_verified(action.source, action.path, action.sha256)
            self.log(f"{_verb(action)} {action.path} ({action.what})")

    def _restart(self, plan: Plan, request: Request, settings: Settings) -> restart.Restarted:
        preset = presets.BY_NAME.get(plan.preset or "", presets.DEFAULT)
        if settings.restart_command:
            env = {
                "HOST_ROOT": str(self.fs.root),
                "SPINDLE_OPERATION": plan.operation,
                "SPINDLE_PRESET": preset.name.value,
                "SPINDLE_RUNTIME": request.runtime,
                "SPINDLE_CONTAINERD_CONFIG": str(plan.config_path or ""),
            }
            return restart.run_override(settings.restart_command, self.system, env)
        return restart.restart(preset, self.system, self.fs.root)

    def _log_plan(self, plan: Plan) -> None:
        where = (
            f"{plan.preset} preset, {plan.config_path} (version {plan.version})"
            if plan.config_path
            else "no config"
        )
        self.log(f"{plan.operation} {plan.runtime}: {where}")
        for note in plan.notes:
            self.log(f"note: {note}")
        if not plan.actions and not plan.restart:
            self.log("nothing to change")


def _verb(action: Action) -> str:
    if isinstance(action, WriteFile):
        return "wrote"
    if isinstance(action, RemoveFile):
        return "removed"
    return "installed"
