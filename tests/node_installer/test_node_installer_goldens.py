"""Every preset end to end on a host root: install (the edited config equals its golden file), a
second install (nothing written, nothing restarted), uninstall (every file byte for byte as before)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from node_installer_testlib import GOLDENS, SHIM_BYTES, UPDATE_GOLDENS, Node, sha256

K3S_DIR = "/var/lib/rancher/k3s/agent/etc/containerd"
RKE2_DIR = "/var/lib/rancher/rke2/agent/etc/containerd"


@dataclass(frozen=True)
class Case:
    edited: str  # node path of the file the install writes
    preset: str
    version: int = 2
    created: bool = False  # the file did not exist before
    note: str = ""  # a substring one of the notes must contain


CASES = {
    "default-v2": Case("/etc/containerd/config.toml", "default"),
    "default-v3": Case("/etc/containerd/config.toml", "default", version=3),
    "debian-minimal": Case("/etc/containerd/config.toml", "default"),
    "k3s-copy": Case(f"{K3S_DIR}/config.toml.tmpl", "k3s", created=True),
    "k3s-template": Case(f"{K3S_DIR}/config.toml.tmpl", "k3s"),
    "k3s-own-spin": Case(
        f"{K3S_DIR}/config.toml.tmpl",
        "k3s",
        created=True,
        note="runtime spin (io.containerd.spin.v2 -> /usr/local/bin/containerd-shim-spin-v2) also uses this",
    ),
    "k3s-base-template": Case(f"{K3S_DIR}/config.toml.tmpl", "k3s"),
    "k3s-v3-template": Case(f"{K3S_DIR}/config-v3.toml.tmpl", "k3s", version=3),
    "rke2": Case(f"{RKE2_DIR}/config.toml.tmpl", "rke2", created=True),
    "microk8s": Case("/var/snap/microk8s/current/args/containerd-template.toml", "microk8s"),
    "k0s": Case("/etc/k0s/containerd.d/config.toml", "k0s", created=True),
}


@pytest.mark.parametrize("case_name", sorted(CASES))
def test_install_matches_golden_then_noop_then_uninstall_restores(
    make_node: Callable[..., Node], case_name: str
) -> None:
    case = CASES[case_name]
    node = make_node(case_name)
    before = node.tree()
    assert (case.edited in before) is not case.created

    # install: the golden config, the shim, RCM's lock file, one restart
    first = node.run("install", "-r", "spin-v2", "-o", "json")
    assert first.exit_code == 0, first.stderr
    result = json.loads(first.stdout)
    assert result["status"] == "provisioned"
    assert result["preset"] == case.preset
    assert result["config"] == {
        "path": case.edited,
        "version": case.version,
        "changed": True,
        "runtime_table": "added",
        "backup": None if case.created else f"/opt/kwasm/backups/spin-v2{case.edited}",
    }
    if case.note:
        assert any(case.note in note for note in result["notes"]), result["notes"]
    edited = node.file(case.edited).read_bytes()
    golden = GOLDENS / case_name / "after.toml"
    if UPDATE_GOLDENS:
        golden.write_bytes(edited)
    assert edited.decode() == golden.read_text()
    assert node.file("/opt/kwasm/bin/containerd-shim-spin-v2").read_bytes() == SHIM_BYTES
    lock = node.file("/opt/kwasm/rcm-lock.json").read_text()
    assert lock == (
        '{\n "shims": {\n  "spin-v2": {\n   "sha256": "'
        + sha256(SHIM_BYTES)
        + '",\n   "path": "/opt/kwasm/bin/containerd-shim-spin-v2"\n  }\n }\n}'
    )
    assert node.restart_lines() == [f"install spin-v2 {case.preset} {case.edited}"]
    if not case.created:
        assert node.file(f"/opt/kwasm/backups/spin-v2{case.edited}").read_bytes() == before[case.edited]

    # a second install: no file touched (not even rewritten), no restart
    installed = node.stat_tree()
    second = node.run("install", "-r", "spin-v2")
    assert second.exit_code == 0, second.stderr
    assert second.last_line == (
        f"spin-v2: provisioned on {case.preset}: config {case.edited} unchanged (runtime table unchanged); "
        "binary /opt/kwasm/bin/containerd-shim-spin-v2 unchanged; no restart needed"
    )
    assert node.stat_tree() == installed
    assert len(node.restart_lines()) == 1

    # uninstall: every file as it was; RCM's empty lock file and the (empty) node lock stay
    third = node.run("uninstall", "-r", "spin-v2")
    assert third.exit_code == 0, third.stderr
    assert third.last_line.startswith(f"spin-v2: uninstalled on {case.preset}: config {case.edited} changed")
    after = node.tree()
    assert after.pop("/opt/kwasm/rcm-lock.json") == b'{\n "shims": {}\n}'
    assert after.pop("/opt/kwasm/.installer.lock") == b""
    assert after == before
    assert node.restart_lines()[1] == f"uninstall spin-v2 {case.preset} {case.edited}"
    assert not node.file("/opt/kwasm/bin").exists() or not any(node.file("/opt/kwasm/bin").iterdir())


def test_k3s_own_spin_entry_is_recognised_not_duplicated(make_node: Callable[..., Node]) -> None:
    """`-r spin`: k3s already registers `spin` (io.containerd.spin.v2); the installer adds no
    second table, leaves k3s's files alone, still installs the binary and says so."""
    node = make_node("k3s-own-spin")
    before = node.tree()
    run = node.run("install", "-r", "spin", "-a", str(node.assets / "containerd-shim-spin-v2"), "-o", "json")
    assert run.exit_code == 0, run.stderr
    result = json.loads(run.stdout)
    assert result["config"]["runtime_table"] == "existing"
    assert result["config"]["changed"] is False
    assert any(
        "already defines runtime spin (io.containerd.spin.v2 -> /usr/local/bin/containerd-shim-spin-v2); "
        "left as is, not duplicated" in note
        for note in result["notes"]
    ), result["notes"]
    after = node.tree()
    assert not node.file(f"{K3S_DIR}/config.toml.tmpl").exists()
    assert {k: v for k, v in after.items() if not k.startswith("/opt/kwasm/")} == before
    assert node.file("/opt/kwasm/bin/containerd-shim-spin").read_bytes() == SHIM_BYTES

    # the uninstall keeps k3s's entry and removes only what the installer put there
    run = node.run("uninstall", "-r", "spin")
    assert run.exit_code == 0, run.stderr
    assert "(runtime table kept)" in run.last_line
    assert {k: v for k, v in node.tree().items() if not k.startswith("/opt/kwasm/")} == before
    assert not node.file("/opt/kwasm/bin/containerd-shim-spin").exists()


def test_k3s_base_template_runtime_from_k3s_is_not_duplicated(make_node: Callable[..., Node]) -> None:
    """A template that includes k3s's base renders k3s's own `spin` entry: adding another
    `runtimes.spin` table would be a duplicate TOML table and stop containerd from starting."""
    node = make_node("k3s-base-template")
    template = node.file(f"{K3S_DIR}/config.toml.tmpl").read_bytes()
    run = node.run("install", "-r", "spin", "-o", "json", "-a", str(node.assets / "containerd-shim-spin-v2"))
    assert run.exit_code == 0, run.stderr
    result = json.loads(run.stdout)
    assert result["config"]["runtime_table"] == "existing"
    assert any("rendered by k3s from its base template" in note for note in result["notes"])
    assert node.file(f"{K3S_DIR}/config.toml.tmpl").read_bytes() == template
