"""Helpers for the node installer tests: host roots copied from `goldens/<case>/before/`, a fake
shim asset, a restart command that records its calls, and the CLI run in-process (or as a process).

Golden files: `goldens/<case>/after.toml` is the edited config after an install. Run the tests with
SPINDLE_UPDATE_GOLDENS=1 to rewrite them from the installer's output (then read the diff).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from click.testing import CliRunner

from node_installer import cli

GOLDENS = Path(__file__).parent / "goldens"
UPDATE_GOLDENS = os.environ.get("SPINDLE_UPDATE_GOLDENS") == "1"
SHIM_BYTES = b"#!/bin/sh\n# a stand-in for containerd-shim-spin-v2\nexit 0\n"


@dataclass
class Run:
    exit_code: int
    stdout: str
    stderr: str

    @property
    def last_line(self) -> str:
        lines = self.stdout.strip().splitlines()
        return lines[-1] if lines else ""


@dataclass
class Node:
    """A host root plus what a test needs around it."""

    root: Path
    assets: Path
    restarts: Path  # one line per restart the restart command saw

    @property
    def restart_command(self) -> str:
        fields = "$SPINDLE_OPERATION $SPINDLE_RUNTIME $SPINDLE_PRESET $SPINDLE_CONTAINERD_CONFIG"
        return f'echo "{fields}" >> {self.restarts}'

    def restart_lines(self) -> list[str]:
        return self.restarts.read_text().splitlines() if self.restarts.exists() else []

    def file(self, node_path: str) -> Path:
        return self.root / node_path.lstrip("/")

    def tree(self) -> dict[str, bytes]:
        """Every file under the root (node path → bytes)."""
        out = {}
        for path in sorted(self.root.rglob("*")):
            if path.is_file() and not path.is_symlink():
                out["/" + str(path.relative_to(self.root))] = path.read_bytes()
        return out

    def stat_tree(self) -> dict[str, tuple[int, int, bytes]]:
        """Every file with its mtime and inode: a no-op run must not even rewrite one."""
        out = {}
        for path in sorted(self.root.rglob("*")):
            if path.is_file():
                st = path.stat()
                out[str(path.relative_to(self.root))] = (st.st_mtime_ns, st.st_ino, path.read_bytes())
        return out

    def run(
        self,
        *args: str,
        options: str | None = '{"SystemdCgroup":"true"}',
        restart: bool = True,
        env: Mapping[str, str] | None = None,
    ) -> Run:
        """The CLI in-process: `args` after `-H <root>`; install gets `-a <assets>`."""
        argv = [args[0], "-H", str(self.root)]
        if args[0] == "install":
            argv += ["-a", str(self.assets)]
        if restart:
            argv += ["--restart-command", self.restart_command]
        argv += list(args[1:])
        full_env = {"RUNTIME_OPTIONS": options, **(env or {})}
        result = CliRunner().invoke(cli.cli, argv, env=full_env, catch_exceptions=False)
        return Run(result.exit_code, result.stdout, result.stderr)


def copy_tree(source: Path, dest: Path) -> None:
    shutil.copytree(source, dest, symlinks=True, dirs_exist_ok=True)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def installer_process(
    node: Node, *args: str, restart_command: str | None = None, env: Mapping[str, str] | None = None
) -> subprocess.Popen[str]:
    """The installer as its own process (the console script's code, run by this interpreter)."""
    argv = [
        sys.executable,
        "-c",
        "from node_installer.cli import main; main()",
        args[0],
        "-H",
        str(node.root),
    ]
    if args[0] == "install":
        argv += ["-a", str(node.assets)]
    argv += ["--restart-command", restart_command or node.restart_command, *args[1:]]
    return subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "RUNTIME_OPTIONS": '{"SystemdCgroup":"true"}', **(env or {})},
    )


def make_node_in(base_dir: Path, case: str | None = None, shim: bytes = SHIM_BYTES) -> Node:
    """A Node under `base_dir` whose root is a copy of goldens/<case>/before (or empty)."""
    root = base_dir / "root"
    root.mkdir(parents=True)
    if case is not None:
        copy_tree(GOLDENS / case / "before", root)
    assets = base_dir / "assets"
    assets.mkdir()
    (assets / "containerd-shim-spin-v2").write_bytes(shim)
    (assets / "containerd-shim-spin-v2").chmod(0o755)
    return Node(root=root, assets=assets, restarts=base_dir / "restarts.log")
