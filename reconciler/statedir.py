"""Where spindle keeps its state: the history database, Git caches and the embedded cluster.

`$SPINDLE_STATE_DIR`, else `$XDG_STATE_HOME/spindle`, else `~/.local/state/spindle`.
"""

from __future__ import annotations

import os
from pathlib import Path


def state_dir() -> Path:
    explicit = os.environ.get("SPINDLE_STATE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_STATE_HOME")
    if xdg:
        return Path(xdg).expanduser() / "spindle"
    return Path.home() / ".local" / "state" / "spindle"


def cluster_dir() -> Path:
    """The embedded kubesim cluster: its SQLite database, TLS key pair and kubeconfig."""
    return state_dir() / "cluster"
