"""Table tests for the containerd shim's pure parts: flags, socket addresses, the OCI spec view,
cgroup paths and limit files, mount options."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from shim.containerd import cgroups, cli, linux, mounts, workload
from shim.containerd.bootstrap import socket_address
from shim.containerd.errors import InvalidArgument
from shim.containerd.spec import Kind, Resources, group_key, parse_resources, parse_spec


@pytest.mark.parametrize(("argv", "action", "namespace", "task_id", "bundle", "debug"), [
    # exactly what containerd 1.6.20 passed (reference lab capture)
    (["-namespace", "lab", "-address", "/run/c.sock", "-publish-binary", "/usr/bin/containerd", "-id",
      "spin2", "-debug", "start"], "start", "lab", "spin2", "", True),
    (["-namespace", "lab", "-address", "/run/c.sock", "-publish-binary", "/usr/bin/containerd", "-id",
      "app1", "-bundle", "/state/lab/app1", "delete"], "delete", "lab", "app1", "/state/lab/app1", False),
    # the daemon: no action word; Go's --flag=value form; unknown flags of newer versions ignored
    (["--namespace=k8s.io", "-id", "x", "-address", "/a", "-socket", "unix:///s", "-future-flag"], "",
     "k8s.io", "x", "", False),
])
def test_flags_as_containerd_passes_them(argv: list[str], action: str, namespace: str, task_id: str,
                                         bundle: str, debug: bool) -> None:
    flags, got_action, version = cli.parse(argv)
    assert (got_action, flags.namespace, flags.id, flags.bundle, flags.debug, version) == \
        (action, namespace, task_id, bundle, debug, False)


def test_version_flag_prints_and_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["-v"]) == 0
    assert "containerd-shim-spin-v2" in capsys.readouterr().out


def test_empty_namespace_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["-id", "x", "start"]) == 1
    assert "namespace cannot be empty" in capsys.readouterr().err


def test_socket_address_is_the_go_shims_formula() -> None:
    # containerd's shim.SocketAddress: sha256(filepath.Join(address, namespace, id))
    digest = hashlib.sha256(b"/run/containerd/containerd.sock/k8s.io/sandbox1").hexdigest()
    assert socket_address("/run/containerd/containerd.sock", "k8s.io", "sandbox1", "/run/containerd/s") == \
        f"unix:///run/containerd/s/{digest}"


@pytest.mark.parametrize(("annotations", "expected"), [
    ({}, "task1"),
    ({"io.kubernetes.cri.sandbox-id": "sb"}, "sb"),
    ({"io.kubernetes.cri.container-type": "container"}, "task1"),
])
def test_group_key(annotations: dict[str, str], expected: str) -> None:
    assert group_key({"annotations": annotations}, "task1") == expected


CRI_APP_SPEC = {
    "ociVersion": "1.0.2-dev",
    "process": {"args": ["/"], "env": ["PATH=/bin", "SPIN_VARIABLE_A=1=2", "EMPTY="], "cwd": "/"},
    "root": {"path": "rootfs"},
    "mounts": [{"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid"]},
               {"destination": "/runtime-config.toml", "type": "bind", "source": "/var/lib/kubelet/x",
                "options": ["rbind", "ro"]}],
    "annotations": {"io.kubernetes.cri.container-type": "container", "io.kubernetes.cri.sandbox-id": "sb"},
    "linux": {
        "namespaces": [{"type": "pid"}, {"type": "ipc", "path": "/proc/42/ns/ipc"},
                       {"type": "network", "path": "/proc/42/ns/net"}, {"type": "mount"}],
        "cgroupsPath": "kubepods-burstable-pod1.slice:cri-containerd:abc",
        "resources": {"memory": {"limit": 134217728}, "cpu": {"shares": 102, "quota": 50000,
                                                               "period": 100000}},
    },
}


def test_a_cri_app_spec() -> None:
    spec = parse_spec(CRI_APP_SPEC)
    assert spec.kind is Kind.APP
    assert spec.args == ("/",)
    assert spec.env_map() == {"PATH": "/bin", "SPIN_VARIABLE_A": "1=2", "EMPTY": ""}
    assert [(n.type, n.path) for n in spec.namespaces] == [
        ("pid", None), ("ipc", "/proc/42/ns/ipc"), ("network", "/proc/42/ns/net"), ("mount", None)]
    assert spec.resources == Resources(memory_limit=134217728, cpu_shares=102, cpu_quota=50000,
                                       cpu_period=100000)
    assert spec.mounts[1].options == ("rbind", "ro")


def test_a_sandbox_spec_is_a_sandbox() -> None:
    assert parse_spec({"annotations": {"io.kubernetes.cri.container-type": "sandbox"}}).kind is Kind.SANDBOX


@pytest.mark.parametrize(("raw", "message"), [
    ([], "not a JSON object"),
    ({"process": {"args": "/"}}, "process: args: expected a list of strings"),
    ({"linux": {"namespaces": {"type": "network"}}}, "linux: namespaces: expected a list of objects"),
    ({"linux": {"resources": {"memory": {"limit": "1Gi"}}}}, "linux.resources: limit: expected an integer"),
])
def test_bad_specs_name_the_field(raw: object, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        parse_spec(raw, "/bundle/config.json")


def test_update_resources_json() -> None:
    # containerd sends Update's LinuxResources as JSON in an Any
    raw = json.loads('{"memory": {"limit": 268435456}, "pids": {"limit": 64}}')
    assert parse_resources(raw) == Resources(memory_limit=268435456, pids_limit=64)


@pytest.mark.parametrize(("path", "task_id", "expected"), [
    ("/spindle/app1", "app1", "spindle/app1"),  # ctr's default: /<namespace>/<id>
    ("", "app1", "app1"),
    ("kubepods-burstable-pod1.slice:cri-containerd:abc",
     "abc", "kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice/cri-containerd-abc.scope"),
    ("system.slice:docker:x", "x", "system.slice/docker-x.scope"),
    ("-.slice:p:x", "x", "p-x.scope"),
    ("/kubepods/burstable/pod1/abc", "abc", "kubepods/burstable/pod1/abc"),
])
def test_cgroup_paths(path: str, task_id: str, expected: str) -> None:
    assert cgroups.relative_path(path, task_id) == expected


def _fake_root(tmp_path: Path, version: int) -> Path:
    root = tmp_path / "cgroup"
    if version == 2:
        root.mkdir()
        (root / "cgroup.controllers").write_text("cpu memory pids\n")
    else:
        for c in cgroups.V1_CONTROLLERS:
            (root / c).mkdir(parents=True)
    return root


V2_FILES = ("memory.max", "memory.swap.max", "cpu.weight", "cpu.max", "pids.max", "cgroup.procs")
V1_FILES = {"memory": ("memory.limit_in_bytes", "memory.memsw.limit_in_bytes"),
            "cpu": ("cpu.shares", "cpu.cfs_quota_us", "cpu.cfs_period_us"), "pids": ("pids.max",)}


@pytest.mark.parametrize(("version", "resources", "expected"), [
    (2, Resources(memory_limit=128 << 20, cpu_shares=1024, cpu_quota=50000, cpu_period=100000, pids_limit=10),
     {"memory.max": "134217728", "cpu.weight": "39", "cpu.max": "50000 100000", "pids.max": "10"}),
    (2, Resources(memory_limit=-1, cpu_quota=-1), {"memory.max": "max", "cpu.max": "max 100000"}),
    (1, Resources(memory_limit=64 << 20, cpu_shares=512, cpu_quota=20000, pids_limit=0),
     {"memory/memory.limit_in_bytes": "67108864", "memory/memory.memsw.limit_in_bytes": "67108864",
      "cpu/cpu.shares": "512", "cpu/cpu.cfs_quota_us": "20000", "pids/pids.max": "max"}),
])
def test_cgroup_limits_are_written_to_the_right_files(tmp_path: Path, version: int, resources: Resources,
                                                      expected: dict[str, str]) -> None:
    root = _fake_root(tmp_path, version)
    cg = cgroups.Cgroup.for_task("/ns/task", "task", root=root)
    assert cg.version == version
    for d in cg.dirs:  # the kernel creates the interface files with the directory
        d.mkdir(parents=True)
        names = V2_FILES if version == 2 else (*V1_FILES.get(d.parts[-3], ()), "cgroup.procs")
        for name in names:
            (d / name).write_text("")
    cg.apply(resources)
    written = {}
    for d in cg.dirs:
        for f in d.iterdir():
            if f.read_text():
                written[f.name if version == 2 else f"{d.parts[-3]}/{f.name}"] = f.read_text()
    assert written == expected


@pytest.mark.parametrize(("options", "flags", "data", "propagation"), [
    (["rbind", "ro"], linux.MS_BIND | linux.MS_REC | linux.MS_RDONLY, "", 0),
    (["index=off", "workdir=/w", "upperdir=/u", "lowerdir=/l1:/l2"], 0,
     "index=off,workdir=/w,upperdir=/u,lowerdir=/l1:/l2", 0),
    (["nosuid", "noexec", "nodev", "rw", "rprivate"], linux.MS_NOSUID | linux.MS_NOEXEC | linux.MS_NODEV, "",
     linux.MS_PRIVATE | linux.MS_REC),
    (["ro", "rw"], 0, "", 0),  # later options win, as in mount(8)
])
def test_mount_options(options: list[str], flags: int, data: str, propagation: int) -> None:
    assert mounts.parse_options(options) == mounts.MountOptions(flags, data, propagation)


@pytest.mark.parametrize(("uri", "expected"), [
    ("/run/containerd/fifo/1/app-stdout", ("/run/containerd/fifo/1/app-stdout", False)),
    ("file:///var/log/app%20one.log", ("/var/log/app one.log", True)),
])
def test_stdio_uris(uri: str, expected: tuple[str, bool]) -> None:
    assert workload.stdio_path(uri) == expected


@pytest.mark.parametrize(("uri", "message"), [
    ("binary:///usr/bin/logger?tag=x", "only FIFOs and file:// logs"),
    ("file://relative/x.log", "must be absolute"),
])
def test_unsupported_stdio_uris(uri: str, message: str) -> None:
    with pytest.raises(OSError, match=message):
        workload.stdio_path(uri)
