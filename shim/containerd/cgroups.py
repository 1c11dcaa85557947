"""A task's cgroup: created from the spec's `cgroupsPath`, limited by its resources, joined by the
task's processes, read for Stats and OOM kills, emptied and removed at delete. cgroup v1 (one
directory per controller, as on this hybrid host) and v2 (one unified directory) are both handled.

The cgroupfs driver is used for both path forms: a systemd `slice:prefix:name` path is expanded
to the directories systemd would use (`a-b.slice` → `a.slice/a-b.slice`, name `prefix-name.scope`)
and written directly, since nodes without systemd (and this test machine) have no manager to ask.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from shim.containerd.spec import Resources

ROOT = Path("/sys/fs/cgroup")
V1_CONTROLLERS = ("memory", "cpu", "cpuacct", "pids", "freezer")


def relative_path(cgroups_path: str, task_id: str) -> str:
    """The cgroup directory (relative to each hierarchy's root) for a spec's `cgroupsPath`."""
    if not cgroups_path:
        return task_id
    parts = cgroups_path.split(":")
    if len(parts) == 3 and not cgroups_path.startswith("/"):
        slice_name, prefix, name = parts
        return "/".join([*expand_slice(slice_name or "system.slice"),
                         f"{prefix}-{name}.scope" if prefix else f"{name}.scope"])
    return cgroups_path.strip("/")


def expand_slice(slice_name: str) -> list[str]:
    """systemd's slice nesting: `kubepods-burstable-pod1.slice` lives in `kubepods.slice/
    kubepods-burstable.slice/`; `-.slice` is the root."""
    if slice_name == "-.slice":
        return []
    stem = slice_name.removesuffix(".slice")
    words = stem.split("-")
    return ["-".join(words[:i]) + ".slice" for i in range(1, len(words) + 1)]


@dataclass(frozen=True)
class Stats:
    version: int
    pids: int
    pids_limit: int
    cpu_usage_ns: int
    cpu_user_ns: int
    cpu_kernel_ns: int
    memory_usage: int
    memory_limit: int
    memory_max_usage: int
    memory_failcnt: int
    memory_stat: dict[str, int]
    oom_kills: int


@dataclass(frozen=True)
class Cgroup:
    version: int  # 1 or 2
    dirs: tuple[Path, ...]  # v1: one per controller, memory first; v2: one

    @classmethod
    def for_task(cls, cgroups_path: str, task_id: str, root: Path = ROOT) -> Cgroup:
        rel = relative_path(cgroups_path, task_id)
        if (root / "cgroup.controllers").exists():
            return cls(2, (root / rel,))
        dirs: list[Path] = []
        seen: set[str] = set()
        for controller in V1_CONTROLLERS:
            base = root / controller
            if base.is_dir() and os.path.realpath(base) not in seen:
                seen.add(os.path.realpath(base))
                dirs.append(base / rel)
        return cls(1, tuple(dirs))

    def to_json(self) -> dict[str, object]:
        return {"version": self.version, "dirs": [str(d) for d in self.dirs]}

    @classmethod
    def from_json(cls, raw: dict[str, object]) -> Cgroup:
        dirs = raw.get("dirs")
        assert isinstance(dirs, list)
        return cls(int(str(raw.get("version", 1))), tuple(Path(str(d)) for d in dirs))

    # -- lifecycle ------------------------------------------------------------------------------

    def create(self, resources: Resources) -> None:
        for d in self.dirs:
            d.mkdir(parents=True, exist_ok=True)
        if self.version == 2:
            with contextlib.suppress(OSError):  # enable controllers for our leaf, where allowed
                parent = self.dirs[0].parent
                ctrl = (parent / "cgroup.controllers").read_text().split()
                want = " ".join(f"+{c}" for c in ("memory", "cpu", "pids") if c in ctrl)
                if want:
                    (parent / "cgroup.subtree_control").write_text(want)
        self.apply(resources)

    def apply(self, r: Resources) -> None:
        """Write the limits the spec (or an Update) gives; unset ones are left as they are."""
        for name, value in self._limit_files(r):
            target = self._file(name)
            if target is not None:
                target.write_text(value)

    def _limit_files(self, r: Resources) -> Iterator[tuple[str, str]]:
        if self.version == 2:
            if r.memory_limit is not None:
                yield "memory.max", "max" if r.memory_limit < 0 else str(r.memory_limit)
            if r.memory_swap is not None and r.memory_limit is not None and r.memory_swap >= 0:
                yield "memory.swap.max", str(max(0, r.memory_swap - r.memory_limit))
            if r.cpu_shares is not None:  # runc's conversion of shares to weight
                yield "cpu.weight", str(1 + ((max(2, r.cpu_shares) - 2) * 9999) // 262142)
            if r.cpu_quota is not None or r.cpu_period is not None:
                quota = "max" if r.cpu_quota is None or r.cpu_quota < 0 else str(r.cpu_quota)
                yield "cpu.max", f"{quota} {r.cpu_period or 100000}"
            if r.pids_limit is not None:
                yield "pids.max", "max" if r.pids_limit <= 0 else str(r.pids_limit)
            return
        if r.memory_limit is not None:
            yield "memory.limit_in_bytes", str(r.memory_limit)
            if r.memory_swap is None:  # no swap beyond the limit, as runc does when unset
                yield "memory.memsw.limit_in_bytes", str(r.memory_limit)
        if r.memory_swap is not None:
            yield "memory.memsw.limit_in_bytes", str(r.memory_swap)
        if r.cpu_shares is not None:
            yield "cpu.shares", str(r.cpu_shares)
        if r.cpu_period is not None:
            yield "cpu.cfs_period_us", str(r.cpu_period)
        if r.cpu_quota is not None:
            yield "cpu.cfs_quota_us", str(r.cpu_quota)
        if r.pids_limit is not None:
            yield "pids.max", "max" if r.pids_limit <= 0 else str(r.pids_limit)

    def _file(self, name: str) -> Path | None:
        # v1 files carry their controller's prefix (memory.*, cpuacct.*), so only that
        # controller's directory has them
        for d in self.dirs:
            if (d / name).exists():
                return d / name
        return None

    def procs_files(self) -> list[str]:
        """The `cgroup.procs` files a process writes its pid to, to join every hierarchy."""
        return [str(d / "cgroup.procs") for d in self.dirs]

    def pids(self) -> list[int]:
        for d in self.dirs:
            with contextlib.suppress(OSError):
                return [int(p) for p in (d / "cgroup.procs").read_text().split()]
        return []

    def kill_all(self) -> None:
        """SIGKILL every process in the cgroup (cgroup.kill on v2 where the kernel has it)."""
        kill_file = self.dirs[0] / "cgroup.kill" if self.version == 2 else None
        if kill_file is not None and kill_file.exists():
            with contextlib.suppress(OSError):
                kill_file.write_text("1")
                return
        for pid in self.pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def remove(self, timeout: float = 2.0) -> None:
        """Remove the directories (deepest first); killed processes take a moment to leave."""
        deadline = time.monotonic() + timeout
        for d in self.dirs:
            while d.exists():
                try:
                    d.rmdir()
                except FileNotFoundError:
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.02)

    # -- reading --------------------------------------------------------------------------------

    def oom_kills(self) -> int:
        name = "memory.events" if self.version == 2 else "memory.oom_control"
        f = self._file(name)
        if f is None:
            return 0
        with contextlib.suppress(OSError):
            return _kv(f.read_text()).get("oom_kill", 0)
        return 0

    def stats(self) -> Stats:
        if self.version == 2:
            cpu = _kv(self._read("cpu.stat"))
            mem = _kv(self._read("memory.stat"))
            events = _kv(self._read("memory.events"))
            return Stats(
                2, len(self.pids()), _limit(self._read("pids.max")),
                cpu.get("usage_usec", 0) * 1000, cpu.get("user_usec", 0) * 1000,
                cpu.get("system_usec", 0) * 1000,
                _num(self._read("memory.current")), _limit(self._read("memory.max")),
                _num(self._read("memory.peak")), events.get("max", 0), mem, events.get("oom_kill", 0))
        acct = _kv(self._read("cpuacct.stat"))
        tick_ns = 1_000_000_000 // os.sysconf("SC_CLK_TCK")
        return Stats(
            1, len(self.pids()), _limit(self._read("pids.max")),
            _num(self._read("cpuacct.usage")), acct.get("user", 0) * tick_ns,
            acct.get("system", 0) * tick_ns,
            _num(self._read("memory.usage_in_bytes")), _num(self._read("memory.limit_in_bytes")),
            _num(self._read("memory.max_usage_in_bytes")), _num(self._read("memory.failcnt")),
            _kv(self._read("memory.stat")), self.oom_kills())

    def _read(self, name: str) -> str:
        f = self._file(name)
        if f is None:
            return ""
        try:
            return f.read_text()
        except OSError:
            return ""


def _kv(text: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if value.strip().lstrip("-").isdigit():
            out[key] = int(value)
    return out


def _num(text: str) -> int:
    text = text.strip()
    return int(text) if text.isdigit() else 0


def _limit(text: str) -> int:
    """A limit file's value; 'max' (no limit) is 0, as containerd's metrics report it."""
    return _num(text)
