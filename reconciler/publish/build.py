"""`--build`: run each component's `build.command` as `spin build` does, before its content is read.

Commands run one after the other through `sh -c`, in the component's `workdir` (relative to the spin.toml;
the spin.toml's directory when unset), with stdin closed. Their combined output is logged line by line
(logger `spindle.publish.build`, prefixed with the component id) and kept for the error; a command that
cannot start or exits non-zero stops the build with a `BuildError` naming the project, the component, the
command and its exit status.
"""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path

from reconciler.publish.errors import BuildError
from renderers.spintoml.model import App

log = logging.getLogger("spindle.publish.build")
BUILD_TIMEOUT = 1800.0


def build_app(app: App, project: Path, rel: str) -> list[str]:
    """Run every component's build commands (components in manifest order); returns the output lines."""
    lines: list[str] = []
    for cid, component in app.components.items():
        if component.build is None:
            continue
        workdir = project / (component.build.workdir or ".")
        where = f"{rel}: component {cid!r}"
        if not workdir.is_dir():
            raise BuildError(where, f"build workdir {component.build.workdir!r} is not a directory")
        for command in component.build.commands:
            log.info("%s: building: %s (in %s)", cid, command, workdir)
            try:
                proc = subprocess.run(
                    ["sh", "-c", command],
                    cwd=workdir,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    timeout=BUILD_TIMEOUT,
                    check=False,
                )
            except (OSError, subprocess.TimeoutExpired) as exc:
                raise BuildError(where, f"build command {command!r} could not run: {exc}") from None
            output = proc.stdout.decode("utf-8", "replace").splitlines()
            for line in output:
                log.info("%s: %s", cid, line)
            lines += [f"[{cid}] {line}" for line in output]
            if proc.returncode != 0:
                tail = "\n".join(output[-20:])
                raise BuildError(
                    where,
                    f"build command {command!r} exited with status {proc.returncode}"
                    + (f"; its output ends:\n{tail}" if tail else ""),
                )
    return lines
