"""`spindle cluster serve | kubeconfig | reset`: the embedded kubesim cluster.

State lives under spindle's state directory (`reconciler.statedir.cluster_dir()`): the SQLite
database `kubesim.db`, its TLS key pair, the kubeconfig `serve` writes (mode 0600, a fresh random
bearer token each run) and `serve.pid` while a server runs.

Exit codes: 0 ok, 2 usage or I/O error (no kubeconfig yet, reset while serving, bad state path).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

import click

from reconciler.statedir import cluster_dir

EXIT_USAGE = 2
DB_NAME = "kubesim.db"


class UsageFailure(click.ClickException):
    exit_code = EXIT_USAGE


def _default_state() -> Path:
    return cluster_dir() / DB_NAME


def _default_kubeconfig() -> Path:
    return cluster_dir() / "kubeconfig"


def _pid_file() -> Path:
    return cluster_dir() / "serve.pid"


@click.group()
def cluster() -> None:
    """Run and manage the embedded kubesim cluster."""


@cluster.command()
@click.option(
    "--state", "state", default=None, help="SQLite state file, or :memory: (default: spindle's state dir)."
)
@click.option(
    "--port", type=click.IntRange(0, 65535), default=0, show_default=True, help="0 picks a free port."
)
@click.option("--address", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option(
    "--kubeconfig",
    "kubeconfig",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Where to write the kubeconfig (spindle's state dir always gets one with the default --state).",
)
@click.option(
    "--simulate-workloads",
    is_flag=True,
    default=False,
    help="Mark Deployments available and Jobs complete after a short delay (labelled as simulated).",
)
@click.option("--verbose", "-v", is_flag=True, default=False, help="Log every request to stderr.")
def serve(
    state: str | None,
    port: int,
    address: str,
    kubeconfig: Path | None,
    simulate_workloads: bool,
    verbose: bool,
) -> None:
    """Serve the Kubernetes API (HTTPS, bearer token) in the foreground until SIGTERM or Ctrl-C."""
    import logging

    from kubesim import server
    from kubesim.errors import StoreError

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if verbose:
        logging.getLogger("kubesim").setLevel(logging.DEBUG)

    state_path = state or str(_default_state())
    kubeconfig_path = kubeconfig or _default_kubeconfig()
    try:
        running = server.start(state_path, port, address=address, simulate_workloads=simulate_workloads)
    except (StoreError, OSError) as exc:
        raise UsageFailure(f"cannot start kubesim with state {state_path}: {exc}") from exc
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    pid_file = _pid_file() if state is None else None
    try:
        running.kubeconfig(kubeconfig_path)
        if pid_file is not None and kubeconfig_path != _default_kubeconfig():
            # spindle's commands find this server through the state dir's kubeconfig; without
            # it they would start a second kubesim on the same database.
            running.kubeconfig(_default_kubeconfig())
        if pid_file is not None:
            pid_file.parent.mkdir(parents=True, exist_ok=True)
            pid_file.write_text(str(os.getpid()))
        click.echo(f"kubesim serving at {running.url} (state: {state_path})")
        click.echo(f"kubeconfig: {kubeconfig_path}")
        if simulate_workloads:
            click.echo("workload simulation is ON: Deployment and Job status is simulated, not real")
        sys.stdout.flush()
        while not stop.wait(0.5):
            pass
    finally:
        running.stop()
        if pid_file is not None:
            pid_file.unlink(missing_ok=True)
        click.echo("kubesim stopped")


@cluster.command(name="kubeconfig")
@click.option(
    "--output",
    "-o",
    "output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write it to this file (mode 0600) instead of printing it.",
)
def kubeconfig_cmd(output: Path | None) -> None:
    """Print the kubeconfig of the embedded cluster (written by `spindle cluster serve`)."""
    path = _default_kubeconfig()
    if not path.exists():
        raise UsageFailure(
            f"no kubeconfig at {path}: start the embedded cluster with `spindle cluster serve`"
        )
    text = path.read_text()
    if _running_pid() is None:
        click.echo(
            f"note: no `spindle cluster serve` is running for {path.parent}; this kubeconfig works once it "
            "is (a new serve writes a new token and port)",
            err=True,
        )
    if output is None:
        click.echo(text, nl=False)
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    output.touch(mode=0o600, exist_ok=True)
    output.chmod(0o600)
    output.write_text(text)
    click.echo(f"wrote {output}", err=True)


@cluster.command()
@click.option("--yes", is_flag=True, default=False, help="Do not ask for confirmation.")
def reset(yes: bool) -> None:
    """Wipe the embedded cluster's state (every object, the TLS key pair and the kubeconfig)."""
    directory = cluster_dir()
    pid = _running_pid()
    if pid is not None:
        raise UsageFailure(f"kubesim is serving this state (pid {pid}): stop it before resetting")
    if not yes and sys.stdin.isatty():
        click.confirm(f"Delete every object of the embedded cluster in {directory}?", abort=True)
    removed = 0
    if directory.exists():
        for child in directory.iterdir():
            if child.name.startswith(DB_NAME) or child.name == "kubeconfig":
                child.unlink()
                removed += 1
    click.echo(f"reset {directory} ({removed} files removed)")


def _running_pid() -> int | None:
    try:
        pid = int(_pid_file().read_text().strip())
    except (OSError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid
    return pid
