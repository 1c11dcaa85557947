"""Which cluster spindle talks to.

In order: an explicit `--kubeconfig`/`--context`; `$KUBECONFIG`; `~/.kube/config`; the
in-cluster service account; otherwise the embedded kubesim cluster kept under spindle's state
directory, started on demand (a notice says so). The `kubernetes` package is imported here
only, when a connection is made.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reconciler.kube.client import KubeClient
from reconciler.kube.errors import KubeError


@dataclass
class Target:
    client: KubeClient
    description: str  # e.g. "context kind-dev (/home/me/.kube/config)"
    embedded: bool = False
    _stop: Callable[[], None] | None = field(default=None, repr=False)

    def close(self) -> None:
        if self._stop is not None:
            self._stop()
            self._stop = None
        self.client.api.close()


def _kubeconfig_path(explicit: str | None) -> str | None:
    if explicit:
        return explicit
    env = os.environ.get("KUBECONFIG")
    if env:
        first = next((p for p in env.split(os.pathsep) if p and Path(p).is_file()), None)
        if first:
            return first
    home = Path.home() / ".kube" / "config"
    return str(home) if home.is_file() else None


def from_kubeconfig(path: str, context: str | None = None, **kwargs: Any) -> Target:
    from kubernetes import config

    try:
        api = config.new_client_from_config(config_file=path, context=context)
    except Exception as exc:  # the kubernetes loader raises ConfigException, ValueError, OSError
        raise KubeError(f"kubeconfig {path}", f"cannot load context {context or '(current)'}: {exc}") from exc
    ctx = context or _current_context(path)

    def reload() -> Any:
        return config.new_client_from_config(config_file=path, context=context)

    return Target(KubeClient(api, reload=reload, **kwargs), f"context {ctx} ({path})")


def _current_context(path: str) -> str:
    import yaml

    try:
        doc = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        return str(doc.get("current-context") or "?")
    except (OSError, yaml.YAMLError):
        return "?"


def in_cluster(**kwargs: Any) -> Target:
    from kubernetes import client, config

    cfg = client.Configuration()
    config.load_incluster_config(client_configuration=cfg)
    return Target(KubeClient(client.ApiClient(cfg), **kwargs), "in-cluster service account")


# Seconds a command waits for another command's embedded cluster (one process owns its database).
EMBEDDED_LOCK_WAIT = 30.0


def embedded(state_dir: Path, *, share: bool = False, **kwargs: Any) -> Target:
    """The embedded kubesim cluster under `<state>/cluster`: the one `spindle cluster serve` is
    running, else one started in this process on a free loopback port (stopped by `close()`)."""
    import importlib

    state = state_dir / "cluster"
    served = _served_kubeconfig(state)
    if served is not None:
        target = from_kubeconfig(str(served), None, **kwargs)
        target.description = (
            "embedded kubesim cluster served by `spindle cluster serve` or a running `spindle reconcile`"
            f" ({state})"
        )
        target.embedded = True
        return target
    server: Any = importlib.import_module("kubesim.server")
    state.mkdir(parents=True, exist_ok=True)
    # Nothing runs workloads in kubesim: its (clearly labelled) simulator marks Deployments
    # available and Jobs complete, so health checks finish instead of timing out.
    store_error: Any = importlib.import_module("kubesim.errors").StoreError
    try:
        # Another command's embedded cluster owns the database while it runs: wait for it.
        running = server.start(
            str(state / "kubesim.db"),
            0,
            simulate_workloads=True,
            simulate_delay=0.5,
            lock_wait=EMBEDDED_LOCK_WAIT,
        )
    except store_error as exc:
        raise KubeError(
            f"embedded cluster {state}",
            f"{exc}; to share it between commands, run `spindle cluster serve`",
        ) from exc
    kubeconfig = state / "kubeconfig.spindle"
    running.kubeconfig(kubeconfig)
    try:
        target = from_kubeconfig(str(kubeconfig), None, **kwargs)
    except KubeError:
        running.stop()
        raise
    target.description = (
        f"embedded kubesim cluster ({state}), started for this command; workloads are simulated"
        " (Deployments and Jobs are marked ready, nothing runs)"
    )
    target.embedded = True
    target._stop = running.stop
    if share:
        _share(state, running, target)
    return target


def _share(state: Path, running: Any, target: Target) -> None:
    """Publish a long-lived embedded cluster the way `spindle cluster serve` does (kubeconfig and
    pid file in the state dir), so other commands and kubectl use it instead of its database."""
    pid_file = state / "serve.pid"
    running.kubeconfig(state / "kubeconfig")
    pid_file.write_text(str(os.getpid()))
    target.description += (
        "; shared with other spindle commands and kubectl (`spindle cluster kubeconfig`) while it runs"
    )

    def stop() -> None:
        try:
            if pid_file.read_text().strip() == str(os.getpid()):
                pid_file.unlink()
        except OSError:
            pass
        running.stop()

    target._stop = stop


def _served_kubeconfig(state: Path) -> Path | None:
    """The kubeconfig of a live `spindle cluster serve`, judged by its pid file."""
    kubeconfig, pid_file = state / "kubeconfig", state / "serve.pid"
    try:
        pid = int(pid_file.read_text().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return kubeconfig if kubeconfig.is_file() else None


def connect(
    *,
    kubeconfig: str | None = None,
    context: str | None = None,
    state_dir: Path | None = None,
    notice: Callable[[str], None] = lambda _m: None,
    share_embedded: bool = False,
    **kwargs: Any,
) -> Target:
    path = _kubeconfig_path(kubeconfig)
    if path is not None:
        return from_kubeconfig(path, context, **kwargs)
    if context:
        raise KubeError(f"context {context}", "no kubeconfig found (set --kubeconfig or KUBECONFIG)")
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        return in_cluster(**kwargs)
    if state_dir is None:
        from reconciler.statedir import state_dir as default_state_dir

        state_dir = default_state_dir()
    target = embedded(state_dir, share=share_embedded, **kwargs)
    notice(f"No kubeconfig found: using the {target.description}.")
    return target
