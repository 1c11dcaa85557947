"""What the shim reads from a bundle's OCI runtime spec (`config.json`): pure parsing into a
small typed view, with errors naming the bundle and the field.

Only what a Spin task uses is kept: process args, env and cwd; CRI annotations; the Linux
namespaces (with their paths), the cgroups path and resources; and mounts. Everything else in
the spec (capabilities, seccomp, devices, rlimits) concerns native Linux processes and is ignored
by design: the app runs as wasm inside wasmtime's sandbox.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from shim.containerd.errors import InvalidArgument

CONTAINER_TYPE = "io.kubernetes.cri.container-type"
SANDBOX_ID = "io.kubernetes.cri.sandbox-id"


class Kind(Enum):
    """A pod sandbox (CRI's pause container: hold the pod's namespaces) or a Spin app."""

    SANDBOX = "sandbox"
    APP = "app"


@dataclass(frozen=True)
class Namespace:
    type: str  # network, ipc, uts, mount, pid, user, cgroup
    path: str | None  # None: a new namespace of that type


@dataclass(frozen=True)
class SpecMount:
    destination: str
    type: str
    source: str
    options: tuple[str, ...]


@dataclass(frozen=True)
class Resources:
    memory_limit: int | None = None
    memory_swap: int | None = None
    cpu_shares: int | None = None
    cpu_quota: int | None = None
    cpu_period: int | None = None
    pids_limit: int | None = None


@dataclass(frozen=True)
class Spec:
    args: tuple[str, ...] = ()
    env: tuple[str, ...] = ()
    cwd: str = "/"
    root: str = "rootfs"
    annotations: Mapping[str, str] = field(default_factory=dict)
    namespaces: tuple[Namespace, ...] = ()
    cgroups_path: str = ""
    resources: Resources = Resources()
    mounts: tuple[SpecMount, ...] = ()

    @property
    def kind(self) -> Kind:
        return Kind.SANDBOX if self.annotations.get(CONTAINER_TYPE) == "sandbox" else Kind.APP

    def env_map(self) -> dict[str, str]:
        """`process.env` as a mapping; a later entry wins, as execve's consumers see it."""
        pairs = (e.partition("=") for e in self.env)
        return {name: value for name, _, value in pairs}


def group_key(spec_json: Mapping[str, Any], task_id: str) -> str:
    """The key that puts a pod's containers into one shim: CRI's sandbox id, else the task id."""
    annotations = spec_json.get("annotations") or {}
    return str(annotations.get(SANDBOX_ID) or task_id)


def load_spec(bundle: Path) -> Spec:
    path = bundle / "config.json"
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InvalidArgument(f"{path}: cannot read the OCI runtime spec: {exc}") from exc
    return parse_spec(raw, str(path))


def parse_spec(raw: Any, where: str = "config.json") -> Spec:
    if not isinstance(raw, dict):
        raise InvalidArgument(f"{where}: the OCI runtime spec is not a JSON object")
    process = _obj(raw, "process", where)
    linux = _obj(raw, "linux", where)
    root = _obj(raw, "root", where)
    return Spec(
        args=tuple(_strs(process, "args", f"{where}: process")),
        env=tuple(_strs(process, "env", f"{where}: process")),
        cwd=str(process.get("cwd") or "/"),
        root=str(root.get("path") or "rootfs"),
        annotations={str(k): str(v) for k, v in (_obj(raw, "annotations", where)).items()},
        namespaces=tuple(Namespace(str(n.get("type", "")), n.get("path") or None)
                         for n in _list(linux, "namespaces", f"{where}: linux")),
        cgroups_path=str(linux.get("cgroupsPath") or ""),
        resources=parse_resources(linux.get("resources") or {}, f"{where}: linux.resources"),
        mounts=tuple(SpecMount(str(m.get("destination", "")), str(m.get("type") or "bind"),
                               str(m.get("source", "")), tuple(str(o) for o in m.get("options") or ()))
                     for m in _list(raw, "mounts", where)),
    )


def parse_resources(raw: Any, where: str = "resources") -> Resources:
    """`linux.resources` of a spec, or the LinuxResources JSON of an Update request."""
    if not isinstance(raw, dict):
        raise InvalidArgument(f"{where}: not a JSON object")
    memory = raw.get("memory") or {}
    cpu = raw.get("cpu") or {}
    pids = raw.get("pids") or {}
    return Resources(
        memory_limit=_int(memory, "limit", where), memory_swap=_int(memory, "swap", where),
        cpu_shares=_int(cpu, "shares", where), cpu_quota=_int(cpu, "quota", where),
        cpu_period=_int(cpu, "period", where), pids_limit=_int(pids, "limit", where),
    )


def _obj(raw: Mapping[str, Any], key: str, where: str) -> dict[str, Any]:
    value = raw.get(key) or {}
    if not isinstance(value, dict):
        raise InvalidArgument(f"{where}: {key}: expected an object")
    return value


def _list(raw: Mapping[str, Any], key: str, where: str) -> list[dict[str, Any]]:
    value = raw.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise InvalidArgument(f"{where}: {key}: expected a list of objects")
    return value


def _strs(raw: Mapping[str, Any], key: str, where: str) -> list[str]:
    value = raw.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidArgument(f"{where}: {key}: expected a list of strings")
    return value


def _int(raw: Mapping[str, Any], key: str, where: str) -> int | None:
    value = raw.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgument(f"{where}: {key}: expected an integer, got {value!r}")
    return value
