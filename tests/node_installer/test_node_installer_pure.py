"""The pure parts, table-tested: preset detection, config versions, the TOML edit, RUNTIME_OPTIONS,
RCM's lock file format, and the restart commands per preset (with a recording System)."""

from __future__ import annotations

import signal
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path, PurePosixPath

import pytest

from node_installer import presets, restart, state
from node_installer.cli import parse_runtime_options
from node_installer.containerd_toml import Config, coerce_option, cri_plugin
from node_installer.errors import (
    ConfigLayoutError,
    ConfigSyntaxError,
    ConfigVersionError,
    PresetError,
    RestartError,
    UsageError,
)
from node_installer.plan import Asset, Request, Snapshot, plan_install, read_paths
from node_installer.system import CommandResult

P = PurePosixPath
K3S = "/var/lib/rancher/k3s/agent/etc/containerd"


def exists_in(*paths: str) -> Callable[[PurePosixPath], bool]:
    present = {P(p) for p in paths}
    return lambda path: path in present


# -- detection --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("files", "override", "preset", "config", "copy_from"),
    [
        (["/etc/containerd/config.toml"], None, "default", "/etc/containerd/config.toml", None),
        ([f"{K3S}/config.toml"], None, "k3s", f"{K3S}/config.toml.tmpl", f"{K3S}/config.toml"),
        ([f"{K3S}/config.toml", f"{K3S}/config.toml.tmpl"], None, "k3s", f"{K3S}/config.toml.tmpl", None),
        (
            [f"{K3S}/config.toml", f"{K3S}/config.toml.tmpl", f"{K3S}/config-v3.toml.tmpl"],
            None,
            "k3s",
            f"{K3S}/config-v3.toml.tmpl",
            None,
        ),
        (
            ["/var/lib/rancher/rke2/agent/etc/containerd/config.toml"],
            None,
            "rke2",
            "/var/lib/rancher/rke2/agent/etc/containerd/config.toml.tmpl",
            "/var/lib/rancher/rke2/agent/etc/containerd/config.toml",
        ),
        (
            ["/var/snap/microk8s/current/args/containerd-template.toml"],
            None,
            "microk8s",
            "/var/snap/microk8s/current/args/containerd-template.toml",
            None,
        ),
        (["/etc/k0s/containerd.toml"], None, "k0s", "/etc/k0s/containerd.d/config.toml", None),
        # a distribution's file wins over /etc/containerd/config.toml (RCM: default_and_distro_specific_exist)
        (
            ["/etc/containerd/config.toml", "/etc/k0s/containerd.toml"],
            None,
            "k0s",
            "/etc/k0s/containerd.d/config.toml",
            None,
        ),
        # -c naming a preset's file picks that preset; another path gets the default preset
        (
            ["/etc/containerd/config.toml", "/var/snap/microk8s/current/args/containerd-template.toml"],
            "/var/snap/microk8s/current/args/containerd-template.toml",
            "microk8s",
            "/var/snap/microk8s/current/args/containerd-template.toml",
            None,
        ),
        (
            ["/etc/k0s/containerd.toml", "/srv/containerd.toml"],
            "/srv/containerd.toml",
            "default",
            "/srv/containerd.toml",
            None,
        ),
        (
            [f"{K3S}/config.toml"],
            f"{K3S}/config.toml",
            "k3s",
            f"{K3S}/config.toml.tmpl",
            f"{K3S}/config.toml",
        ),
    ],
)
def test_detect(
    files: list[str], override: str | None, preset: str, config: str, copy_from: str | None
) -> None:
    target = presets.detect(exists_in(*files), P(override) if override else None)
    assert target.preset.name == preset
    assert target.config_path == P(config)
    assert target.copy_from == (P(copy_from) if copy_from else None)


def test_detect_reports_other_distributions_and_fails_naming_every_path() -> None:
    target = presets.detect(exists_in(f"{K3S}/config.toml", "/etc/k0s/containerd.toml"))
    assert (target.preset.name, target.also_found) == ("k3s", ("k0s",))
    with pytest.raises(PresetError) as info:
        presets.detect(exists_in())
    assert "no containerd config found" in str(info.value)
    assert "/var/lib/rancher/k3s/agent/etc/containerd/config.toml" in str(info.value)
    with pytest.raises(PresetError, match=r"^/srv/x.toml: containerd config given with -c"):
        presets.detect(exists_in(), P("/srv/x.toml"))


# -- versions and parsing ---------------------------------------------------------------------------


def test_versions() -> None:
    path = P("/etc/containerd/config.toml")
    assert cri_plugin(path, 2) == "io.containerd.grpc.v1.cri"
    assert cri_plugin(path, 3) == "io.containerd.cri.v1.runtime"
    with pytest.raises(ConfigVersionError, match=r"^/etc/containerd/config.toml: version: no `version` key"):
        cri_plugin(path, None)
    with pytest.raises(ConfigVersionError, match="unsupported config version 1"):
        cri_plugin(path, 1)
    with pytest.raises(ConfigVersionError, match="unsupported config version 4"):
        cri_plugin(path, 4)
    with pytest.raises(ConfigVersionError, match=r"version: not an integer: \"2\""):
        _ = Config(path, 'version = "2"\n').declared_version


def test_unparsable_toml_names_file_line_and_column() -> None:
    with pytest.raises(ConfigSyntaxError) as info:
        Config(P("/etc/containerd/config.toml"), "version = 2\n[plugins\nx = 1\n")
    assert info.value.line == 2
    assert str(info.value).startswith("/etc/containerd/config.toml: line 2, column")
    with pytest.raises(ConfigSyntaxError, match="not UTF-8"):
        Config.from_bytes(P("/c.toml"), b"version = 2\n\xff\n")


def test_template_actions_on_their_own_lines_are_kept_inline_ones_refused() -> None:
    text = '{{ template "base" . }}\n{{- if .X }}\n[a]\n  b = 1\n{{ end }}\n'
    cfg = Config(P(f"{K3S}/config.toml.tmpl"), text, template=True)
    assert cfg.includes_base_template
    edited = cfg.with_runtime(2, "spin-v2", "/opt/kwasm/bin/containerd-shim-spin-v2", {})
    assert edited.startswith(text)
    assert '{{ end }}\n\n[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.spin-v2]\n' in edited
    with pytest.raises(ConfigSyntaxError, match="Go template action inside a TOML line") as info:
        Config(P(f"{K3S}/config.toml.tmpl"), "version = 2\nenable_cdi = {{ .EnableCDI }}\n", template=True)
    assert info.value.line == 2


# -- the edit ---------------------------------------------------------------------------------------


def test_edit_round_trip_and_layout_checks() -> None:
    text = 'version = 2\n# keep me\n[plugins."io.containerd.grpc.v1.cri".containerd]\n  snapshotter = "x"\n'
    cfg = Config(P("/c.toml"), text)
    added = cfg.with_runtime(2, "spin-v2", "/opt/kwasm/bin/containerd-shim-spin-v2", {"SystemdCgroup": True})
    assert added.startswith(text)
    again = Config(P("/c.toml"), added)
    entry = again.runtime(2, "spin-v2")
    assert entry is not None
    assert (entry.runtime_type, dict(entry.options)) == (
        "/opt/kwasm/bin/containerd-shim-spin-v2",
        {"SystemdCgroup": True},
    )
    assert again.without_runtime(2, "spin-v2") == text
    with pytest.raises(ConfigLayoutError, match="already exists"):
        again.with_runtime(2, "spin-v2", "/x", {})
    blocked = Config(
        P("/c.toml"), 'version = 2\n[plugins."io.containerd.grpc.v1.cri"]\ncontainerd = "oops"\n'
    )
    with pytest.raises(ConfigLayoutError, match=r"containerd: is a String, not a table"):
        blocked.with_runtime(2, "spin-v2", "/x", {})
    inline = Config(
        P("/c.toml"), 'version = 2\n[plugins."io.containerd.grpc.v1.cri".containerd]\nruntimes = {}\n'
    )
    with pytest.raises(ConfigLayoutError, match="is an inline table"):
        inline.with_runtime(2, "spin-v2", "/x", {})


def test_empty_and_versionless_documents() -> None:
    cfg = Config(P("/c.toml"), "version = 3\n")
    text = cfg.with_runtime(3, "spin-v2", "/opt/kwasm/bin/containerd-shim-spin-v2", {"a": "b c"})
    assert text == (
        "version = 3\n\n"
        '[plugins."io.containerd.cri.v1.runtime".containerd.runtimes.spin-v2]\n'
        '  runtime_type = "/opt/kwasm/bin/containerd-shim-spin-v2"\n'
        '[plugins."io.containerd.cri.v1.runtime".containerd.runtimes.spin-v2.options]\n'
        '  a = "b c"\n'
    )
    assert Config(P("/c.toml"), text).without_runtime(3, "spin-v2") == "version = 3\n"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("true", True),
        ("False", False),
        (True, True),
        ("10", 10),
        ("-2", -2),
        ("1.5", 1.5),
        (3, 3),
        ("/usr/bin/x", "/usr/bin/x"),
        ("", ""),
        ("yes", "yes"),
    ],
)
def test_option_values(value: object, expected: object) -> None:
    assert coerce_option("k", value) == expected
    assert type(coerce_option("k", value)) is type(expected)


def test_runtime_options_env() -> None:
    assert parse_runtime_options(None) == {}
    assert parse_runtime_options(" ") == {}
    assert parse_runtime_options('{"SystemdCgroup":"true","IoUid":"0"}') == {
        "SystemdCgroup": True,
        "IoUid": 0,
    }
    with pytest.raises(UsageError, match=r"^RUNTIME_OPTIONS: not JSON"):
        parse_runtime_options("{SystemdCgroup: true}")
    with pytest.raises(UsageError, match="must be a JSON object, not list"):
        parse_runtime_options("[1]")
    with pytest.raises(UsageError, match="option x: list values cannot be written"):
        parse_runtime_options('{"x": [1]}')


# -- RCM's lock file --------------------------------------------------------------------------------


def test_lock_file_is_rcms_format() -> None:
    # KWasm/kwasm-node-installer testdata/shim/opt/kwasm/kwasm-lock.json, the same format RCM keeps
    rcm = (
        '{\n "shims": {\n  "spin-v1": {\n   "sha256": '
        '"6da5e8f17a9bfa9cb04cf22c87b6475394ecec3af4fdc337f72d6dbf3319ea52",\n'
        '   "path": "/opt/kwasm/bin/containerd-shim-spin-v1"\n  }\n }\n}'
    )
    shims = state.decode_lock(P("/opt/kwasm/rcm-lock.json"), rcm.encode())
    assert state.encode_lock(shims).decode() == rcm
    assert state.encode_lock({}) == b'{\n "shims": {}\n}'
    assert state.runtime_name("containerd-shim-spin-v2") == "spin-v2"
    with pytest.raises(Exception, match=r"^/opt/kwasm/rcm-lock\.json: not RCM's lock format"):
        state.decode_lock(P("/opt/kwasm/rcm-lock.json"), b'{"shims": []}')


def test_install_plan_on_a_snapshot() -> None:
    request = Request("spin-v2")
    config = P("/etc/containerd/config.toml")
    files: dict[PurePosixPath, bytes | None] = dict.fromkeys(read_paths(request, {}))
    files[config] = b"version = 2\n"
    plan = plan_install(Snapshot(files), request, Asset(Path("/assets/containerd-shim-spin-v2"), "ab" * 32))
    assert [type(a).__name__ for a in plan.actions] == [
        "CopyBinary",
        "WriteFile",  # rcm-lock.json
        "WriteFile",  # backup
        "WriteFile",  # config
        "WriteFile",  # state
    ]
    assert [str(a.path) for a in plan.actions][1:] == [
        "/opt/kwasm/rcm-lock.json",
        "/opt/kwasm/backups/spin-v2/etc/containerd/config.toml",
        "/etc/containerd/config.toml",
        "/opt/kwasm/spindle-node-installer.json",
    ]
    assert plan.restart and plan.config_changed and plan.binary_changed
    with pytest.raises(UsageError, match=r"^-r/--runtime: not a runtime name"):
        Request("a/b")


# -- restarts ---------------------------------------------------------------------------------------


class RecordingSystem:
    """Answers commands from a table (argv tail → (rc, output)); records everything."""

    def __init__(
        self, answers: Mapping[tuple[str, ...], tuple[int, str]], procs: Sequence[tuple[int, str]] = ()
    ):
        self.answers = dict(answers)
        self.calls: list[tuple[str, ...]] = []
        self.procs = list(procs)
        self.signals: list[tuple[int, int]] = []

    def run(
        self, argv: Sequence[str], *, env: Mapping[str, str] | None = None, timeout: float = 120.0
    ) -> CommandResult:
        self.calls.append(tuple(argv))
        tail = tuple(argv[argv.index("--") + 1 :]) if "--" in argv else tuple(argv)
        rc, out = self.answers.get(tail, (0, ""))
        return CommandResult(tuple(argv), rc, out)

    def processes(self) -> list[tuple[int, str]]:
        return self.procs

    def kill(self, pid: int, sig: int) -> None:
        self.signals.append((pid, sig))


LIST = ("systemctl", "list-units", "--type", "service")
UNITS = (
    "  k3s-agent.service loaded active running Lightweight Kubernetes\n  rke2-server.service loaded active\n"
)
ROOT = Path("/mnt/node-root")
NS = "/mnt/node-root/proc/1/ns"


def _tails(system: RecordingSystem) -> list[tuple[str, ...]]:
    return [call[call.index("--") + 1 :] for call in system.calls]


def test_nsenter_goes_through_pid1_namespaces_under_the_host_root() -> None:
    assert restart.nsenter(ROOT, ["systemctl", "restart", "containerd"]) == [
        "nsenter",
        f"--mount={NS}/mnt",
        f"--uts={NS}/uts",
        f"--ipc={NS}/ipc",
        f"--net={NS}/net",
        f"--pid={NS}/pid",
        "--",
        "systemctl",
        "restart",
        "containerd",
    ]


@pytest.mark.parametrize(
    ("preset", "answers", "restarted", "how"),
    [
        (
            presets.DEFAULT,
            {LIST: (0, UNITS)},
            ("systemctl", "restart", "containerd"),
            "systemctl restart containerd",
        ),
        (
            presets.K3S,
            {LIST: (0, UNITS)},
            ("systemctl", "restart", "k3s-agent.service"),
            "systemctl restart k3s-agent.service",
        ),
        (
            presets.K3S,
            {LIST: (1, "System has not been booted with systemd")},
            ("kill", "1"),
            "kill 1 (no systemd: k3d)",
        ),
        (
            presets.RKE2,
            {LIST: (0, UNITS)},
            ("systemctl", "restart", "rke2-server"),
            "systemctl restart rke2-server",
        ),
        (
            presets.MICROK8S,
            {LIST: (0, "")},
            ("systemctl", "restart", "snap.microk8s.daemon-containerd"),
            "systemctl restart snap.microk8s.daemon-containerd",
        ),
        (
            presets.K0S,
            {LIST: (0, "k0sworker.service loaded active\n")},
            ("systemctl", "restart", "k0sworker"),
            "systemctl restart k0sworker",
        ),
    ],
)
def test_restart_per_preset(
    preset: presets.Preset,
    answers: dict[tuple[str, ...], tuple[int, str]],
    restarted: tuple[str, ...],
    how: str,
) -> None:
    system = RecordingSystem(answers)
    done = restart.restart(preset, system, ROOT)
    assert done.how == how
    assert _tails(system) == [LIST, restarted]
    assert all(call[:2] == ("nsenter", f"--mount={NS}/mnt") for call in system.calls)


def test_default_without_systemd_sends_sighup_to_the_one_containerd() -> None:
    system = RecordingSystem(
        {LIST: (1, "no systemd")}, procs=[(1, "init"), (42, "containerd"), (43, "containerd-shim")]
    )
    assert restart.restart(presets.DEFAULT, system, ROOT).how == "SIGHUP to containerd (pid 42; no systemd)"
    assert system.signals == [(42, signal.SIGHUP)]
    two = RecordingSystem({LIST: (1, "")}, procs=[(42, "containerd"), (44, "containerd")])
    with pytest.raises(RestartError, match="need exactly one containerd process to send SIGHUP to, found 2"):
        restart.restart(presets.DEFAULT, two, ROOT)


def test_restart_failures_name_the_command() -> None:
    with pytest.raises(
        RestartError, match=r"^systemctl list-units: no systemd unit matching 'rke2-agent\|rke2-server'"
    ):
        restart.restart(presets.RKE2, RecordingSystem({LIST: (0, "k3s.service")}), ROOT)
    failing = RecordingSystem(
        {LIST: (0, ""), ("systemctl", "restart", "containerd"): (1, "Unit containerd.service not found.")}
    )
    with pytest.raises(
        RestartError, match=r"^systemctl restart containerd: exit 1: Unit containerd.service not found."
    ):
        restart.restart(presets.DEFAULT, failing, ROOT)
    with pytest.raises(RestartError, match="k0s restarts containerd through systemd, which does not answer"):
        restart.restart(presets.K0S, RecordingSystem({LIST: (1, "no")}), ROOT)
    with pytest.raises(RestartError, match=r"^--restart-command 'exit 3': exit 3"):
        restart.run_override("exit 3", RecordingSystem({("sh", "-c", "exit 3"): (3, "")}), {})
