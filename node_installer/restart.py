"""Restarting containerd the way each preset needs it, as runtime-class-manager's node installer
does (`internal/containerd/restart_unix.go` at spinframework/runtime-class-manager 25903b3).

Everything on the node runs through PID 1's namespaces, since the installer runs in a container
with hostPID: `nsenter --mount=<root>/proc/1/ns/mnt --uts=... --ipc=... --net=... --pid=... --
<command>` (RCM enters only the mount namespace; the others make `systemctl` talk to the node's
systemd over the node's D-Bus socket in every setup). Whether the node runs systemd is decided
as RCM does: `systemctl list-units --type service` succeeds.

| preset   | with systemd                                         | without systemd          |
|----------|------------------------------------------------------|--------------------------|
| default  | systemctl restart containerd                         | SIGHUP to the one        |
|          |                                                      | process named containerd |
| k3s      | systemctl restart <unit matching k3s(-.*|)\\.service> | kill 1 (k3d: PID 1 is    |
|          |                                                      | k3s, its container       |
|          |                                                      | restarts)                |
| rke2     | systemctl restart <rke2-agent|rke2-server>           | refused (RestartError)   |
| microk8s | systemctl restart snap.microk8s.daemon-containerd    | refused                  |
| k0s      | systemctl restart <k0sworker|k0scontroller>          | refused                  |

`--restart-command CMD` replaces all of that with `sh -c CMD` run in the installer's own
namespaces, with HOST_ROOT, SPINDLE_PRESET, SPINDLE_RUNTIME and SPINDLE_CONTAINERD_CONFIG (a node
path) in its environment. RCM's dbus install step (apt/dnf/apk on the node when `systemctl start
dbus` fails) is left out: spindle does not install packages on nodes.
"""

from __future__ import annotations

import re
import signal
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from node_installer.errors import RestartError
from node_installer.presets import Preset, PresetName
from node_installer.system import CommandResult, System

NAMESPACES = ("mnt", "uts", "ipc", "net", "pid")
_NSENTER_FLAGS = {"mnt": "--mount", "uts": "--uts", "ipc": "--ipc", "net": "--net", "pid": "--pid"}


@dataclass(frozen=True)
class Restarted:
    """How containerd was restarted: a short description and the commands that ran."""

    how: str
    commands: tuple[tuple[str, ...], ...]


def nsenter(host_root: Path, argv: Sequence[str]) -> list[str]:
    """`argv` run in PID 1's namespaces, named through the host root's /proc (pure)."""
    ns = host_root / "proc" / "1" / "ns"
    return ["nsenter", *(f"{_NSENTER_FLAGS[name]}={ns / name}" for name in NAMESPACES), "--", *argv]


def find_unit(units_listing: str, pattern: str) -> str | None:
    """The first unit name in `systemctl list-units` output that `pattern` matches (RCM's rule)."""
    match = re.search(pattern, units_listing)
    return match.group(0) if match else None


def restart(preset: Preset, system: System, host_root: Path) -> Restarted:
    """Restart the node's containerd for `preset`; RestartError says which command failed and why."""
    ran: list[tuple[str, ...]] = []

    def run(argv: Sequence[str]) -> CommandResult:
        full = nsenter(host_root, argv)
        ran.append(tuple(full))
        return system.run(full)

    listing = run(["systemctl", "list-units", "--type", "service"])
    systemd = listing.ok
    if systemd:
        unit = preset.systemd_unit or ("containerd" if preset.name is PresetName.DEFAULT else "")
        if not unit:
            unit = find_unit(listing.output, preset.systemd_units) or ""
            if not unit:
                raise RestartError(
                    "systemctl list-units",
                    f"no systemd unit matching {preset.systemd_units!r} for {preset.name} on this node",
                )
        result = run(["systemctl", "restart", unit])
        if not result.ok:
            raise RestartError(f"systemctl restart {unit}", f"exit {result.returncode}: {result.tail()}")
        return Restarted(f"systemctl restart {unit}", tuple(ran))
    if preset.name is PresetName.K3S:
        result = run(["kill", "1"])
        if not result.ok:
            raise RestartError("kill 1", f"exit {result.returncode}: {result.tail()} (k3d: PID 1 is k3s)")
        return Restarted("kill 1 (no systemd: k3d)", tuple(ran))
    if preset.name is PresetName.DEFAULT:
        pids = [pid for pid, comm in system.processes() if comm == "containerd"]
        if len(pids) != 1:
            raise RestartError(
                "containerd",
                f"no systemd ({listing.tail(1) or 'systemctl failed'}), and need exactly one containerd "
                f"process to send SIGHUP to, found {len(pids)}",
            )
        try:
            system.kill(pids[0], signal.SIGHUP)
        except OSError as exc:
            raise RestartError(f"containerd (pid {pids[0]})", f"SIGHUP failed: {exc.strerror}") from exc
        return Restarted(f"SIGHUP to containerd (pid {pids[0]}; no systemd)", tuple(ran))
    raise RestartError(
        "systemctl list-units",
        f"{preset.name} restarts containerd through systemd, which does not answer: "
        f"exit {listing.returncode}: {listing.tail()}",
    )


def run_override(command: str, system: System, env: dict[str, str]) -> Restarted:
    """`--restart-command`: `sh -c COMMAND` in the installer's own namespaces."""
    argv = ("sh", "-c", command)
    result = system.run(argv, env=env)
    if not result.ok:
        raise RestartError(f"--restart-command {command!r}", f"exit {result.returncode}: {result.tail()}")
    return Restarted(f"--restart-command {command!r}", (argv,))
