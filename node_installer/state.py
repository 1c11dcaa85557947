"""What the installer records on the node (pure encode/decode; the installer does the I/O).

`<rcm-path>/rcm-lock.json`: runtime-class-manager's lock file, in its format exactly (RCM's
`internal/state`, unchanged from its ancestor KWasm/kwasm-node-installer `pkg/state/{state,shim}.go`,
where the file was `kwasm-lock.json`): Go's `json.MarshalIndent(state, "", " ")` of

    {"shims": {"<runtime name>": {"sha256": "<hex>", "path": "<node path of the binary>"}}}

one-space indentation, keys sorted (Go marshals maps that way), no trailing newline; an uninstall
leaves `{"shims": {}}` as RCM does. The runtime name is the binary name without `containerd-shim-`
(RCM's `shim.RuntimeName`). RCM's installer decides from it whether the binary changed; so does
spindle, and it also hashes the binary on disk, so a copy changed behind its back is replaced.

`<rcm-path>/spindle-node-installer.json`: spindle's own record, kept apart so rcm-lock.json stays
byte-compatible with RCM's. Per runtime: the preset and file edited, whether that file existed
before, where the pre-install copy of it is (`backups/<runtime>/<node path>`, written once), the
sha256 of the file as the installer left it (an uninstall restores the backup byte for byte only
when the file is still exactly that), how the runtime table came to be (`added`, `adopted`: an
existing table already pointing at the installed binary, `existing`: someone else's table with the
same name, left alone), and `restart_pending` (set until containerd has been restarted).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import PurePosixPath
from typing import Any

from node_installer.errors import StateError

LOCK_FILE = "rcm-lock.json"
STATE_FILE = "spindle-node-installer.json"
NODE_LOCK = ".installer.lock"
BACKUP_DIR = "backups"
BIN_DIR = "bin"
SHIM_PREFIX = "containerd-shim-"
STATE_FORMAT = 1


def runtime_name(binary_or_runtime: str) -> str:
    """`containerd-shim-spin-v2` or `spin-v2` → `spin-v2` (RCM's shim.RuntimeName)."""
    return binary_or_runtime.removeprefix(SHIM_PREFIX)


@dataclass(frozen=True)
class LockedShim:
    sha256: str
    path: str


def decode_lock(path: PurePosixPath, data: bytes | None) -> dict[str, LockedShim]:
    """rcm-lock.json's shims; {} when the file does not exist."""
    if data is None:
        return {}
    try:
        raw = json.loads(data)
        shims = raw["shims"] if isinstance(raw, dict) else None
        if shims is None:
            shims = {}
        if not isinstance(shims, dict):
            raise TypeError("`shims` is not an object")
        out = {}
        for name, entry in shims.items():
            if not isinstance(entry, dict):
                raise TypeError(f"shims.{name} is not an object")
            out[str(name)] = LockedShim(sha256=str(entry.get("sha256", "")), path=str(entry.get("path", "")))
        return out
    except (ValueError, KeyError, TypeError) as exc:
        raise StateError(str(path), f"not RCM's lock format ({exc}); move it away to start over") from exc


def encode_lock(shims: dict[str, LockedShim]) -> bytes:
    """Byte for byte what RCM's `State.Write` produces."""
    body = {"shims": {name: {"sha256": s.sha256, "path": s.path} for name, s in sorted(shims.items())}}
    return json.dumps(body, indent=1, ensure_ascii=False).encode()


@dataclass(frozen=True)
class RuntimeRecord:
    """What spindle did for one runtime (see the module docstring)."""

    preset: str
    config: str
    config_existed: bool
    backup: str | None
    config_sha256: str
    version: int
    table: str  # added | adopted | existing
    copied_from: str | None = None
    restart_pending: bool = False
    options: dict[str, Any] = field(default_factory=dict)

    def with_restart_pending(self, pending: bool) -> RuntimeRecord:
        return replace(self, restart_pending=pending)


def decode_state(path: PurePosixPath, data: bytes | None) -> dict[str, RuntimeRecord]:
    if data is None:
        return {}
    try:
        raw = json.loads(data)
        if not isinstance(raw, dict) or raw.get("format") != STATE_FORMAT:
            raise ValueError(f"unknown format {raw.get('format') if isinstance(raw, dict) else raw!r}")
        runtimes = raw.get("runtimes", {})
        return {str(name): RuntimeRecord(**entry) for name, entry in runtimes.items()}
    except (ValueError, TypeError) as exc:
        raise StateError(
            str(path), f"unreadable installer state ({exc}); move it away to start over"
        ) from exc


def encode_state(records: dict[str, RuntimeRecord]) -> bytes:
    body = {"format": STATE_FORMAT, "runtimes": {name: asdict(r) for name, r in sorted(records.items())}}
    return (json.dumps(body, indent=1, sort_keys=True) + "\n").encode()
