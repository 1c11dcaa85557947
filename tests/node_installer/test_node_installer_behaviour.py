"""Refusals that leave the host root untouched, the node lock, the sha256 check, restart failures,
and the install/uninstall paths beyond the golden round trip."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

import pytest
from node_installer_testlib import GOLDENS, SHIM_BYTES, Node, installer_process, sha256

from node_installer.errors import IntegrityError
from node_installer.hostfs import OsHostFs
from node_installer.installer import Installer, Settings
from node_installer.locking import node_lock
from node_installer.plan import Request
from node_installer.system import OsSystem

CONFIG = "/etc/containerd/config.toml"
BIN = "/opt/kwasm/bin/containerd-shim-spin-v2"


def _refused(node: Node, run_args: tuple[str, ...], expected: str, **kwargs: object) -> None:
    """The run fails with exactly one stderr line naming the file and what is wrong, and every file
    under the host root is as it was (nothing created, nothing rewritten)."""
    before = node.stat_tree()
    run = node.run(*run_args, **kwargs)  # type: ignore[arg-type]
    assert run.exit_code == 1, run.stdout + run.stderr
    failure = [line for line in run.stderr.splitlines() if not line.startswith("spindle-node-installer: ")]
    assert failure == [expected]
    assert node.stat_tree() == before
    assert not node.file("/opt/kwasm").exists()
    assert node.restart_lines() == []


# -- refusals ---------------------------------------------------------------------------------------


def test_unparsable_toml_is_refused_untouched(make_node: Callable[..., Node]) -> None:
    node = make_node()
    node.file(CONFIG).parent.mkdir(parents=True)
    node.file(CONFIG).write_text('version = 2\n[plugins."io.containerd.grpc.v1.cri"\nx = 1\n')
    _refused(
        node,
        ("install", "-r", "spin-v2"),
        "spin-v2: failed: /etc/containerd/config.toml: line 2, column 36: not valid TOML: "
        "Unexpected character: '\\n'",
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "version = 1\n",
            "version: unsupported config version 1 (supported: 2 for containerd 1.x, 3 for containerd 2.x)",
        ),
        (
            'root = "/var/lib/containerd"\n',
            "version: no `version` key (containerd reads that as version 1, whose CRI "
            "table is plugins.cri); add `version = 2` (containerd 1.x) or `version = 3` (containerd 2.x)",
        ),
        ('version = "3"\n', 'version: not an integer: "3"'),
    ],
)
def test_unknown_config_version_is_refused_untouched(
    make_node: Callable[..., Node], text: str, message: str
) -> None:
    node = make_node()
    node.file(CONFIG).parent.mkdir(parents=True)
    node.file(CONFIG).write_text(text)
    _refused(node, ("install", "-r", "spin-v2"), f"spin-v2: failed: /etc/containerd/config.toml: {message}")


def test_missing_assets_host_root_and_config_are_refused(
    make_node: Callable[..., Node], tmp_path: Path
) -> None:
    node = make_node("default-v2")
    empty = tmp_path / "empty-assets"
    empty.mkdir()
    _refused(
        node,
        ("install", "-r", "spin-v2", "-a", str(empty)),
        f"spin-v2: failed: {empty}/containerd-shim-spin-v2: no such file",
    )
    _refused(
        node,
        ("install", "-r", "spin-v2", "-a", str(tmp_path / "nope")),
        f"spin-v2: failed: {tmp_path}/nope: no such file or directory (-a/--asset-path; it should hold "
        "containerd-shim-spin-v2)",
    )
    _refused(
        node,
        ("install", "-r", "spin-v2", "--sha256", "0" * 64),
        f"spin-v2: failed: {node.assets}/containerd-shim-spin-v2: sha256 is {sha256(SHIM_BYTES)}, "
        f"--sha256 says {'0' * 64}",
    )
    missing = tmp_path / "no-such-root"
    run = node.run("install", "-r", "spin-v2", "-H", str(missing))
    assert run.exit_code == 1
    assert run.stderr.strip() == (
        f"spin-v2: failed: {missing}: host root does not exist (mount the node's / there, or set -H)"
    )
    assert not missing.exists()
    bare = make_node()
    _refused(
        bare,
        ("install", "-r", "spin-v2"),
        "spin-v2: failed: /etc/containerd/config.toml: no containerd config found (looked for "
        "/var/snap/microk8s/current/args/containerd-template.toml, "
        "/var/lib/rancher/rke2/agent/etc/containerd/config.toml, "
        "/var/lib/rancher/k3s/agent/etc/containerd/config.toml, /etc/k0s/containerd.toml, "
        "/etc/containerd/config.toml)",
    )


def test_bad_runtime_options_are_refused(make_node: Callable[..., Node]) -> None:
    node = make_node("default-v2")
    _refused(
        node,
        ("install", "-r", "spin-v2"),
        "spin-v2: failed: RUNTIME_OPTIONS: must be a JSON object, not list",
        options='["SystemdCgroup"]',
    )


@pytest.fixture
def unshare_ok() -> None:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip(
            "a read-only bind mount needs root and unshare (util-linux) to make a private mount namespace"
        )
    probe = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "true"],
        capture_output=True,
        text=True,
        check=False,
    )
    if probe.returncode != 0:
        pytest.skip(f"cannot create a mount namespace here: {probe.stderr.strip()}")


def test_read_only_file_system_is_refused_untouched(make_node: Callable[..., Node], unshare_ok: None) -> None:
    """/etc/containerd bind-mounted read-only inside a private mount namespace (so nothing outside
    the installer's process sees the mount, and nothing needs unmounting afterwards)."""
    node = make_node("default-v2")
    before = node.stat_tree()
    etc = node.file("/etc/containerd")
    script = (
        f"mount --bind {etc} {etc} && mount -o remount,ro,bind {etc} && "
        f'exec "$0" -c "from node_installer.cli import main; main()" install -H {node.root} -r spin-v2 '
        f"-a {node.assets} --restart-command 'echo restarted >> {node.restarts}'"
    )
    proc = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, sys.executable],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == (
        "spin-v2: failed: /etc/containerd/config.toml: read-only file system; nothing was written"
    )
    assert node.stat_tree() == before
    assert not node.file("/opt/kwasm").exists()
    assert node.restart_lines() == []


@pytest.fixture
def chattr() -> Iterator[Callable[[Path], None]]:
    made: list[Path] = []

    def immutable(path: Path) -> None:
        proc = subprocess.run(["chattr", "+i", str(path)], capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            pytest.skip(f"chattr +i is not possible here: {proc.stderr.strip()}")
        made.append(path)

    if shutil.which("chattr") is None:
        pytest.skip("chattr (e2fsprogs) is not installed")
    yield immutable
    for path in made:
        subprocess.run(["chattr", "-i", str(path)], check=False)


def test_immutable_config_is_refused_untouched(
    make_node: Callable[..., Node], chattr: Callable[[Path], None]
) -> None:
    node = make_node("default-v2")
    chattr(node.file(CONFIG))
    _refused(
        node,
        ("install", "-r", "spin-v2"),
        "spin-v2: failed: /etc/containerd/config.toml: the file is not writable (chattr +i, or permissions); "
        "nothing was written",
    )


def test_unreadable_state_is_refused(make_node: Callable[..., Node]) -> None:
    node = make_node("default-v2")
    node.file("/opt/kwasm").mkdir(parents=True)
    node.file("/opt/kwasm/rcm-lock.json").write_text("{not json")
    before = node.stat_tree()
    run = node.run("install", "-r", "spin-v2")
    assert run.exit_code == 1
    assert run.stderr.strip().startswith("spin-v2: failed: /opt/kwasm/rcm-lock.json: not RCM's lock format")
    assert node.stat_tree() == before


# -- the node lock ----------------------------------------------------------------------------------


def test_two_installers_on_one_node_are_serialized(make_node: Callable[..., Node]) -> None:
    """Two installers for two runtimes on one config: each restart command logs its start and end
    and takes 0.5 s; the second installer waits for the first (and says for whom), so the
    log never interleaves, and the config ends up with both runtimes."""
    node = make_node("default-v2")
    shutil.copy(node.assets / "containerd-shim-spin-v2", node.assets / "containerd-shim-wasmtime-v1")
    log = node.restarts

    def command(tag: str) -> str:
        return f"echo start {tag} >> {log}; sleep 0.5; echo end {tag} >> {log}"

    first = installer_process(node, "install", "-r", "spin-v2", restart_command=command("A"))
    deadline = time.monotonic() + 20
    while "start A" not in (log.read_text() if log.exists() else "") and time.monotonic() < deadline:
        time.sleep(0.01)
    second = installer_process(node, "install", "-r", "wasmtime-v1", restart_command=command("B"))
    _, err_a = first.communicate(timeout=60)
    _, err_b = second.communicate(timeout=60)
    assert first.returncode == 0, err_a
    assert second.returncode == 0, err_b
    assert log.read_text().splitlines() == ["start A", "end A", "start B", "end B"]
    assert (
        f"waiting up to 300s for /opt/kwasm/.installer.lock: held by pid {first.pid} (install spin-v2, since "
        in err_b
    )
    config = node.file(CONFIG).read_text()
    assert "runtimes.spin-v2]" in config and "runtimes.wasmtime-v1]" in config
    lock = json.loads(node.file("/opt/kwasm/rcm-lock.json").read_text())
    assert sorted(lock["shims"]) == ["spin-v2", "wasmtime-v1"]
    assert node.file("/opt/kwasm/.installer.lock").read_text() == ""


def test_lock_wait_is_bounded_and_names_the_holder(make_node: Callable[..., Node]) -> None:
    node = make_node("default-v2")
    node.file("/opt/kwasm").mkdir(parents=True)
    with node_lock(
        node.file("/opt/kwasm/.installer.lock"),
        node_path="/opt/kwasm/.installer.lock",
        operation="uninstall",
        runtime="other",
        timeout=1,
    ):
        run = node.run("install", "-r", "spin-v2", "--lock-timeout", "0.3")
    assert run.exit_code == 1
    assert run.stderr.splitlines()[-1].startswith(
        "spin-v2: failed: /opt/kwasm/.installer.lock: "
        f"still held by pid {os.getpid()} (uninstall other, since "
    )
    assert run.stderr.splitlines()[-1].endswith(") after 0.3s")
    assert not node.file(BIN).exists()
    assert node.restart_lines() == []


# -- the sha256 check -------------------------------------------------------------------------------


class CorruptingFs(OsHostFs):
    """Flips a bit in everything it writes: a disk or a copy that goes wrong."""

    def _write_chunk(self, out: BinaryIO, chunk: bytes) -> None:
        out.write(bytes([chunk[0] ^ 1]) + chunk[1:] if chunk else chunk)


def test_a_corrupted_copy_is_detected_and_not_installed(make_node: Callable[..., Node]) -> None:
    node = make_node("default-v2")
    config = node.file(CONFIG).read_bytes()
    installer = Installer(CorruptingFs(node.root), OsSystem())
    settings = Settings(asset_path=node.assets, restart_command=node.restart_command)
    with pytest.raises(IntegrityError) as info:
        installer.install(Request("spin-v2"), settings)
    assert str(info.value).startswith(f"{BIN}: the copy's sha256 is ")
    assert str(info.value).endswith(f", the asset's is {sha256(SHIM_BYTES)}; not installed")
    assert not node.file(BIN).exists()
    assert list(node.file("/opt/kwasm/bin").iterdir()) == []  # no temp file left either
    assert node.file(CONFIG).read_bytes() == config
    assert not node.file("/opt/kwasm/rcm-lock.json").exists()
    assert node.restart_lines() == []


def test_a_binary_changed_on_the_node_is_replaced(make_node: Callable[..., Node]) -> None:
    node = make_node("default-v2")
    assert node.run("install", "-r", "spin-v2").exit_code == 0
    node.file(BIN).write_bytes(b"tampered")
    run = node.run("install", "-r", "spin-v2", "-o", "json")
    assert run.exit_code == 0, run.stderr
    result = json.loads(run.stdout)
    assert (result["binary"]["changed"], result["config"]["changed"]) == (True, False)
    assert f"{BIN} did not match rcm-lock.json (changed or corrupted); replaced" in result["notes"]
    assert node.file(BIN).read_bytes() == SHIM_BYTES
    assert len(node.restart_lines()) == 2


# -- restarts ---------------------------------------------------------------------------------------


def test_a_failed_restart_is_retried_by_the_next_run(make_node: Callable[..., Node]) -> None:
    node = make_node("default-v2")
    failed = node.run(
        "install", "-r", "spin-v2", "--restart-command", "echo no dbus >&2; exit 7", restart=False
    )
    assert failed.exit_code == 1
    assert failed.stderr.splitlines()[-1] == (
        "spin-v2: failed: --restart-command 'echo no dbus >&2; exit 7': exit 7: no dbus"
    )
    assert "runtimes.spin-v2]" in node.file(CONFIG).read_text()
    assert json.loads(node.file("/opt/kwasm/spindle-node-installer.json").read_text())["runtimes"]["spin-v2"][
        "restart_pending"
    ]
    retried = node.run("install", "-r", "spin-v2")
    assert retried.exit_code == 0
    assert retried.last_line.endswith(f"containerd restarted (--restart-command {node.restart_command!r})")
    assert "config /etc/containerd/config.toml unchanged" in retried.last_line
    assert node.run("install", "-r", "spin-v2").last_line.endswith("no restart needed")
    assert len(node.restart_lines()) == 1


def test_no_restart_says_so_and_keeps_the_restart_pending(make_node: Callable[..., Node]) -> None:
    node = make_node("default-v2")
    run = node.run("install", "-r", "spin-v2", "--no-restart", restart=False)
    assert run.exit_code == 0
    assert run.last_line.endswith(
        "containerd NOT restarted (--no-restart): restart it for the change to apply"
    )
    assert node.run("install", "-r", "spin-v2").last_line.endswith(
        f"containerd restarted (--restart-command {node.restart_command!r})"
    )
    conflict = node.run("install", "-r", "spin-v2", "--no-restart")
    assert conflict.exit_code == 1
    assert (
        conflict.stderr.strip() == "spin-v2: failed: --no-restart: cannot be combined with --restart-command"
    )


# -- more install and uninstall paths ---------------------------------------------------------------


def test_uninstall_after_someone_else_edited_the_config_removes_only_the_table(
    make_node: Callable[..., Node],
) -> None:
    node = make_node("default-v2")
    original = node.file(CONFIG).read_text()
    assert node.run("install", "-r", "spin-v2").exit_code == 0
    with node.file(CONFIG).open("a") as handle:
        handle.write('\n[plugins."io.containerd.monitor.v1.cgroups"]\n  no_prometheus = true\n')
    run = node.run("uninstall", "-r", "spin-v2", "-o", "json")
    assert run.exit_code == 0, run.stderr
    result = json.loads(run.stdout)
    assert result["config"]["runtime_table"] == "removed"
    assert f"{CONFIG} changed since the install; removed only the runtime table" in result["notes"]
    backup = "/opt/kwasm/backups/spin-v2/etc/containerd/config.toml"
    assert f"the pre-install copy of {CONFIG} stays at {backup}" in result["notes"]
    assert node.file(CONFIG).read_text() == (
        original + '\n[plugins."io.containerd.monitor.v1.cgroups"]\n  no_prometheus = true\n'
    )
    assert node.file(backup).read_text() == original
    assert not node.file(BIN).exists()


def test_changed_options_update_the_table_and_uninstall_still_restores(
    make_node: Callable[..., Node],
) -> None:
    node = make_node("default-v3")
    original = node.file(CONFIG).read_bytes()
    assert node.run("install", "-r", "spin-v2").exit_code == 0
    run = node.run("install", "-r", "spin-v2", "-o", "json", options='{"SystemdCgroup":"false","IoUid":"0"}')
    assert run.exit_code == 0, run.stderr
    assert json.loads(run.stdout)["config"]["runtime_table"] == "updated"
    text = node.file(CONFIG).read_text()
    assert "SystemdCgroup = false\n            IoUid = 0\n" in text
    assert text.count("runtimes.spin-v2]") == 1
    assert len(node.restart_lines()) == 2
    assert node.file(f"/opt/kwasm/backups/spin-v2{CONFIG}").read_bytes() == original  # kept once
    assert node.run("uninstall", "-r", "spin-v2").exit_code == 0
    assert node.file(CONFIG).read_bytes() == original


def test_a_created_drop_in_is_updated_in_place_and_removed_by_uninstall(
    make_node: Callable[..., Node],
) -> None:
    node = make_node("k0s")
    before = node.tree()
    assert node.run("install", "-r", "spin-v2").exit_code == 0
    run = node.run("install", "-r", "spin-v2", "-o", "json", options=None)
    assert run.exit_code == 0, run.stderr
    result = json.loads(run.stdout)
    assert (result["config"]["runtime_table"], result["config"]["backup"]) == ("updated", None)
    assert "options" not in node.file("/etc/k0s/containerd.d/config.toml").read_text()
    assert not node.file("/opt/kwasm/backups").exists()
    assert node.run("uninstall", "-r", "spin-v2").exit_code == 0
    after = node.tree()
    assert {k: v for k, v in after.items() if not k.startswith("/opt/kwasm/")} == before


def test_a_table_rcm_wrote_for_the_same_binary_is_adopted(make_node: Callable[..., Node]) -> None:
    node = make_node()
    node.file(CONFIG).parent.mkdir(parents=True)
    rcm_block = (
        "\n# RCM runtime config for spin-v2\n"
        '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.spin-v2]\n'
        'runtime_type = "/opt/kwasm/bin/containerd-shim-spin-v2"\n'
    )
    node.file(CONFIG).write_text("version = 2\n" + rcm_block)
    run = node.run("install", "-r", "spin-v2", "-o", "json", options=None)
    assert run.exit_code == 0, run.stderr
    result = json.loads(run.stdout)
    assert result["config"]["runtime_table"] == "unchanged"
    assert f"{CONFIG} already had runtime spin-v2 pointing at {BIN}; adopted it" in result["notes"]
    run = node.run("uninstall", "-r", "spin-v2")
    assert run.exit_code == 0
    assert "runtimes.spin-v2" not in node.file(CONFIG).read_text()
    assert not node.file(BIN).exists()


def test_uninstall_on_a_node_rcm_provisioned(make_node: Callable[..., Node]) -> None:
    """No spindle state: the table pointing at the installed binary, the binary and its
    rcm-lock.json entry go (RCM's own uninstall removes the block by exact text only)."""
    node = make_node()
    node.file(CONFIG).parent.mkdir(parents=True)
    node.file(CONFIG).write_text(
        'version = 2\n\n[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]\n'
        '  runtime_type = "io.containerd.runc.v2"\n'
        "\n# RCM runtime config for spin-v2\n"
        '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.spin-v2]\n'
        'runtime_type = "/opt/kwasm/bin/containerd-shim-spin-v2"\n'
    )
    node.file(BIN).parent.mkdir(parents=True)
    node.file(BIN).write_bytes(SHIM_BYTES)
    lock = {"shims": {"spin-v2": {"sha256": sha256(SHIM_BYTES), "path": BIN}}}
    node.file("/opt/kwasm/rcm-lock.json").write_text(json.dumps(lock, indent=1))
    run = node.run("uninstall", "-r", "spin-v2", "-o", "json")
    assert run.exit_code == 0, run.stderr
    result = json.loads(run.stdout)
    assert result["config"]["runtime_table"] == "removed"
    assert f"removed runtime spin-v2 (it pointed at {BIN})" in result["notes"]
    assert node.file(CONFIG).read_text() == (
        'version = 2\n\n[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]\n'
        '  runtime_type = "io.containerd.runc.v2"\n\n# RCM runtime config for spin-v2\n'
    )
    assert not node.file(BIN).exists()
    assert node.file("/opt/kwasm/rcm-lock.json").read_text() == '{\n "shims": {}\n}'
    assert len(node.restart_lines()) == 1


def test_a_symlinked_config_is_edited_inside_the_host_root(make_node: Callable[..., Node]) -> None:
    node = make_node()
    real = node.file("/etc/containerd/real.toml")
    real.parent.mkdir(parents=True)
    real.write_bytes((GOLDENS / "debian-minimal/before/etc/containerd/config.toml").read_bytes())
    node.file(CONFIG).symlink_to("/etc/containerd/real.toml")  # absolute, as on the node
    assert node.run("install", "-r", "spin-v2").exit_code == 0
    assert node.file(CONFIG).is_symlink()
    assert real.read_text() == (GOLDENS / "debian-minimal/after.toml").read_text()


def test_runtime_name_from_the_asset_and_uninstall_of_nothing(make_node: Callable[..., Node]) -> None:
    node = make_node("default-v2")
    before = node.stat_tree()
    run = node.run("uninstall", "-r", "spin-v2")
    assert run.exit_code == 0
    assert "runtime spin-v2 is not installed on this node; nothing to do" in run.stderr
    assert node.stat_tree() == before
    run = node.run("install")  # -r taken from /assets/containerd-shim-spin-v2
    assert run.exit_code == 0, run.stderr
    assert run.last_line.startswith("spin-v2: provisioned on default: ")
    run = node.run("install", "-r", "containerd-shim-spin-v2")  # the binary's name works too
    assert run.last_line.startswith("spin-v2: provisioned on default: ")
    assert run.last_line.endswith("no restart needed")


def test_uninstall_removes_the_frozen_shims_unpacked_bundles(make_node: Callable[..., Node]) -> None:
    """A frozen shim unpacks itself next to the binary (`.spindle-bundles/<binary>-<hash>/`, see
    reconciler/node/launcher.c); uninstall takes those with it and leaves other shims' bundles."""
    node = make_node("default-v2")
    assert node.run("install", "-r", "spin-v2").exit_code == 0
    bundles = node.file("/opt/kwasm/bin/.spindle-bundles")
    for name in ("containerd-shim-spin-v2-0a1b2c", "containerd-shim-spin-v2-3d4e5f",
                 "containerd-shim-other-v1-99"):
        (bundles / name / "lib").mkdir(parents=True)
        (bundles / name / "lib" / "libpython3.11.so").write_bytes(b"\0" * 64)
    result = node.run("uninstall", "-r", "spin-v2")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert sorted(p.name for p in bundles.iterdir()) == ["containerd-shim-other-v1-99"]
    log = result.stdout + result.stderr
    removed = [line for line in log.splitlines() if "(unpacked shim)" in line]
    assert len(removed) == 2 and all(".spindle-bundles/containerd-shim-spin-v2-" in line for line in removed)
