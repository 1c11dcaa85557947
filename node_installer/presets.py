"""Which containerd config a node uses, and how its containerd is restarted: the distribution
presets of runtime-class-manager's node installer (`internal/preset`, `cmd/node-installer/detect.go`
at spinframework/runtime-class-manager 25903b3), detected the same way. Pure: detection takes an
`exists` predicate over node paths, so tests and the installer share it.

| preset   | detected by (node path)                                  | file edited                    |
|----------|----------------------------------------------------------|--------------------------------|
| microk8s | /var/snap/microk8s/current/args/containerd-template.toml | that template                  |
| rke2     | /var/lib/rancher/rke2/agent/etc/containerd/config.toml   | config-v3.toml.tmpl if there,  |
|          |                                                          | else config.toml.tmpl (copied  |
|          |                                                          | from config.toml when missing) |
| k3s      | /var/lib/rancher/k3s/agent/etc/containerd/config.toml    | as rke2                        |
| k0s      | /etc/k0s/containerd.toml                                 | /etc/k0s/containerd.d/         |
|          |                                                          | config.toml (a drop-in,        |
|          |                                                          | created when missing)          |
| default  | /etc/containerd/config.toml                              | that file (kind, minikube,     |
|          |                                                          | kubeadm, AKS/EKS/GKE Ubuntu)   |

Order: like RCM, a distribution's own file wins over /etc/containerd/config.toml (RCM's
`default_and_distro_specific_exist` case detects k0s); RCM checks the distribution files in Go map
order (random), spindle in the fixed order of the table. `-c/--runtime-config` naming a preset's
detection or edited file picks that preset; any other path is edited with the default preset's
restart, as RCM does.

k3s and RKE2 render containerd's config.toml from a Go template on every start; RCM copies the
rendered file to `config.toml.tmpl` and edits the copy. spindle does the same, but edits an
existing `config-v3.toml.tmpl` (the template k3s/RKE2 read for containerd 2.x) instead when there is
one. A template or drop-in without its own `version` takes the version of the rendered config
(k3s/RKE2) or of k0s's main config.

Restarts (see `restart.py`; all through PID 1's namespaces, since the Job runs with hostPID):
default: `systemctl restart containerd` when systemd answers, else SIGHUP to the one `containerd`
process (RCM's choice); k3s: the unit matching `k3s(-.*|)\\.service`, or `kill 1` without systemd
(k3d, whose PID 1 is k3s itself); rke2: `rke2-agent|rke2-server`; microk8s:
`snap.microk8s.daemon-containerd`; k0s: `k0sworker|k0scontroller`.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePosixPath

from node_installer.errors import PresetError


class PresetName(enum.StrEnum):
    DEFAULT = "default"
    K3S = "k3s"
    RKE2 = "rke2"
    MICROK8S = "microk8s"
    K0S = "k0s"


class ConfigKind(enum.StrEnum):
    """How the edited file relates to the detection file."""

    FILE = "file"  # edit the detected file itself
    TEMPLATE = "template"  # edit the k3s/RKE2 template next to the rendered config
    DROPIN = "dropin"  # edit a drop-in that the main config imports


@dataclass(frozen=True)
class Preset:
    name: PresetName
    detect_path: PurePosixPath
    kind: ConfigKind
    systemd_units: str = ""  # regex over `systemctl list-units` output; "" = fixed unit below
    systemd_unit: str = ""

    @property
    def dropin_path(self) -> PurePosixPath:
        return self.detect_path.parent / "containerd.d" / "config.toml"

    def template_candidates(self) -> tuple[PurePosixPath, PurePosixPath]:
        """(containerd 2.x template, classic template), in the order k3s/RKE2 prefer them."""
        folder = self.detect_path.parent
        return folder / "config-v3.toml.tmpl", folder / "config.toml.tmpl"


DEFAULT = Preset(PresetName.DEFAULT, PurePosixPath("/etc/containerd/config.toml"), ConfigKind.FILE)
K3S = Preset(
    PresetName.K3S,
    PurePosixPath("/var/lib/rancher/k3s/agent/etc/containerd/config.toml"),
    ConfigKind.TEMPLATE,
    systemd_units=r"k3s(-.*|)\.service",
)
RKE2 = Preset(
    PresetName.RKE2,
    PurePosixPath("/var/lib/rancher/rke2/agent/etc/containerd/config.toml"),
    ConfigKind.TEMPLATE,
    systemd_units="rke2-agent|rke2-server",
)
MICROK8S = Preset(
    PresetName.MICROK8S,
    PurePosixPath("/var/snap/microk8s/current/args/containerd-template.toml"),
    ConfigKind.FILE,
    systemd_unit="snap.microk8s.daemon-containerd",
)
K0S = Preset(
    PresetName.K0S,
    PurePosixPath("/etc/k0s/containerd.toml"),
    ConfigKind.DROPIN,
    systemd_units="k0sworker|k0scontroller",
)

DISTRIBUTIONS: tuple[Preset, ...] = (MICROK8S, RKE2, K3S, K0S)
ALL: tuple[Preset, ...] = (*DISTRIBUTIONS, DEFAULT)
BY_NAME: dict[str, Preset] = {p.name.value: p for p in ALL}


@dataclass(frozen=True)
class Target:
    """The file to edit on a node, and where it comes from when it does not exist yet."""

    preset: Preset
    config_path: PurePosixPath
    copy_from: PurePosixPath | None = None  # k3s/RKE2: the rendered config, copied to the template
    create: bool = False  # k0s: the drop-in is created when missing
    version_source: PurePosixPath | None = None  # where the version comes from if the file has none
    also_found: tuple[PresetName, ...] = ()  # other distributions whose files exist too

    @property
    def rendered_config(self) -> PurePosixPath | None:
        """The config k3s/RKE2 render from the template (None for the other presets)."""
        return self.preset.detect_path if self.preset.kind is ConfigKind.TEMPLATE else None


def probe_paths(runtime_config: PurePosixPath | None = None) -> tuple[PurePosixPath, ...]:
    """Every node path detection may look at (the installer reads these before planning)."""
    paths: list[PurePosixPath] = []
    for preset in ALL:
        paths.append(preset.detect_path)
        if preset.kind is ConfigKind.TEMPLATE:
            paths.extend(preset.template_candidates())
        elif preset.kind is ConfigKind.DROPIN:
            paths.append(preset.dropin_path)
    if runtime_config is not None:
        paths.append(runtime_config)
    return tuple(dict.fromkeys(paths))


def target_for(preset: Preset, exists: Callable[[PurePosixPath], bool]) -> Target:
    """The file `preset` edits on a node where `exists` says which files are present."""
    if preset.kind is ConfigKind.TEMPLATE:
        v3_template, template = preset.template_candidates()
        source = preset.detect_path
        if exists(v3_template):
            return Target(preset, v3_template, version_source=source)
        if exists(template):
            return Target(preset, template, version_source=source)
        return Target(preset, template, copy_from=source, version_source=source)
    if preset.kind is ConfigKind.DROPIN:
        return Target(preset, preset.dropin_path, create=True, version_source=preset.detect_path)
    return Target(preset, preset.detect_path)


def detect(exists: Callable[[PurePosixPath], bool], runtime_config: PurePosixPath | None = None) -> Target:
    """The preset and file for this node (see the module docstring for the rules).

    Raises PresetError naming every path it looked for when none exists.
    """
    if runtime_config is not None:
        for preset in ALL:
            target = target_for(preset, exists)
            known = {preset.detect_path, target.config_path}
            if preset.kind is ConfigKind.TEMPLATE:
                known.update(preset.template_candidates())
            if runtime_config in known:
                if runtime_config != target.config_path and runtime_config != preset.detect_path:
                    # an explicit template path: edit exactly that one
                    copy = preset.detect_path if not exists(runtime_config) else None
                    return Target(preset, runtime_config, copy_from=copy, version_source=preset.detect_path)
                return target
        if not exists(runtime_config):
            raise PresetError(
                str(runtime_config), "containerd config given with -c/--runtime-config does not exist"
            )
        return Target(DEFAULT, runtime_config)
    found = [preset for preset in DISTRIBUTIONS if exists(preset.detect_path)]
    if found:
        target = target_for(found[0], exists)
        others = tuple(p.name for p in found[1:])
        return Target(
            target.preset,
            target.config_path,
            copy_from=target.copy_from,
            create=target.create,
            version_source=target.version_source,
            also_found=others,
        )
    if exists(DEFAULT.detect_path):
        return target_for(DEFAULT, exists)
    looked = ", ".join(str(p.detect_path) for p in ALL)
    raise PresetError(str(DEFAULT.detect_path), f"no containerd config found (looked for {looked})")
