"""The process seam: running commands, listing and signalling processes. `OsSystem` is the real one;
tests pass a recorder. With RCM's Job (hostPID: true) `/proc` lists the node's processes.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class CommandResult:
    argv: tuple[str, ...]
    returncode: int
    output: str  # stdout and stderr, combined

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def tail(self, lines: int = 5) -> str:
        return " | ".join(line for line in self.output.strip().splitlines()[-lines:] if line.strip())


class System(Protocol):
    def run(
        self, argv: Sequence[str], *, env: Mapping[str, str] | None = None, timeout: float = 120.0
    ) -> CommandResult: ...

    def processes(self) -> list[tuple[int, str]]:
        """(pid, comm) of every process."""
        ...

    def kill(self, pid: int, signal: int) -> None: ...


class OsSystem:
    def run(
        self, argv: Sequence[str], *, env: Mapping[str, str] | None = None, timeout: float = 120.0
    ) -> CommandResult:
        try:
            proc = subprocess.run(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env=None if env is None else {**os.environ, **env},
                timeout=timeout,
                check=False,
            )
        except FileNotFoundError as exc:
            return CommandResult(tuple(argv), 127, f"{argv[0]}: {exc.strerror}")
        except subprocess.TimeoutExpired as exc:
            out = exc.output.decode(errors="replace") if isinstance(exc.output, bytes) else ""
            return CommandResult(tuple(argv), 124, f"{out}\ntimed out after {timeout:g}s")
        return CommandResult(tuple(argv), proc.returncode, proc.stdout.decode(errors="replace"))

    def processes(self) -> list[tuple[int, str]]:
        out = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/comm") as handle:
                    out.append((int(entry), handle.read().strip()))
            except OSError:
                continue
        return out

    def kill(self, pid: int, signal: int) -> None:
        os.kill(pid, signal)
