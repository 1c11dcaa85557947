"""The commit that last changed a project: its sha and time make `created` and the report's commit.

One `git log` walk answers for many projects at once (`last_changes`), so publishing 200 projects costs one
process, not 200. A project's paths are its directory plus any file it reads from outside it. Paths never
touched by a commit (uncommitted, or no repository) get None.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Change:
    sha: str
    epoch: int  # committer time, seconds since the epoch


def repo_root(path: Path) -> Path | None:
    """The top of the Git work tree holding `path`, or None."""
    try:
        out = subprocess.run(
            ["git", "-C", str(path), "rev-parse", "--show-toplevel"],
            capture_output=True,
            text=True,
            check=False,
            timeout=30,
        )
    except OSError:
        return None
    return Path(out.stdout.strip()) if out.returncode == 0 and out.stdout.strip() else None


def _covers(prefix: str, changed: str) -> bool:
    return prefix in ("", ".") or changed == prefix or changed.startswith(prefix.rstrip("/") + "/")


def last_changes(root: Path, projects: Mapping[str, Sequence[str]]) -> dict[str, Change | None]:
    """For each key, the newest commit (from HEAD) touching any of its root-relative paths."""
    found: dict[str, Change | None] = {key: None for key in projects}
    if not projects:
        return found
    env = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1"}
    cmd = ["git", "-C", str(root), "log", "--no-renames", "--format=%x00%H %ct", "--name-only", "HEAD", "--"]
    try:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True)
    except OSError:
        return found
    pending = dict(projects)
    assert proc.stdout is not None
    current: Change | None = None
    try:
        for line in proc.stdout:
            line = line.rstrip("\n")
            if line.startswith("\0"):
                sha, _, stamp = line[1:].partition(" ")
                current = Change(sha, int(stamp))
                continue
            if not line or current is None:
                continue
            for key in [k for k, paths in pending.items() if any(_covers(p, line) for p in paths)]:
                found[key] = current
                del pending[key]
            if not pending:
                break
    finally:
        proc.stdout.close()
        proc.kill()
        proc.wait()
    return found
