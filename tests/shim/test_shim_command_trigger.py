"""The command trigger (spin-trigger-command): a Python guest (spin-sdk 3.4.1, world spin-command)
exporting `wasi:cli/run` runs once with the container's arguments, and its status is the
runtime's, HTTP triggers in the same app or not. In process, and as `python -m shim DIR ARG...`."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from shim_testlib import GUEST_CACHE, build_python_app, free_port, make_app

from shim.app import LoadOptions, load_app
from shim.engine import EngineBox
from shim.errors import ComponentLoadError, ManifestError
from shim.manifest import load_manifest, retain_components

ARTIFACTS = GUEST_CACHE / "artifacts"

MANIFEST = """\
spin_manifest_version = 2
[application]
name = "cmd-app"
[variables]
greeting = { default = "hello" }
[[trigger.http]]
route = "/..."
component = "web"
[[trigger.command]]
component = "cmd"
[component.web]
source = "handler.wasm"
[component.cmd]
source = "app.wasm"
key_value_stores = ["default"]
[component.cmd.variables]
greeting = "{{ greeting }}"
"""


@pytest.fixture(scope="module")
def cmd_wasm() -> Path:
    return build_python_app("pycommand", "spin-command")


@pytest.fixture
def root(tmp_path: Path, cmd_wasm: Path) -> Path:
    root = make_app(tmp_path / "app", MANIFEST)
    (root / "app.wasm").symlink_to(cmd_wasm)
    return root


def test_run_once_with_arguments(engine_box: EngineBox, root: Path, tmp_path: Path,
                                 capfd: pytest.CaptureFixture[str]) -> None:
    app = load_app(root, engine_box.engine, LoadOptions(env={"SPIN_VARIABLE_GREETING": "hi"},
                                                        cache_dir=ARTIFACTS, state_dir=tmp_path / "state"))
    try:
        (cmd,) = app.commands
        assert cmd.executor.run(["one", "two words"], app.limits) == 0
        assert "command args ['one', 'two words'] greeting=hi" in capfd.readouterr().out
        assert cmd.executor.run(["fail"], app.limits) == 1  # run returned its error
        with sqlite3.connect(tmp_path / "state" / "kv-default.db") as db:  # the guest's key-value store
            assert db.execute("SELECT value FROM kv WHERE key = 'runs'").fetchone() == (b"2",)
    finally:
        app.close()


def container_mode(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SPIN_HTTP_LISTEN_ADDR": f"127.0.0.1:{free_port()}", "SPINDLE_SHIM_WORKERS": "1",
           "XDG_CACHE_HOME": str(root.parent / "cache")}
    return subprocess.run([sys.executable, "-m", "shim", str(root), *args], capture_output=True, text=True,
                          timeout=120, env=env)


def test_container_mode_exits_with_the_command_status(root: Path) -> None:
    ok = container_mode(root, "a", "b")
    assert ok.returncode == 0, ok.stderr
    assert "command args ['a', 'b'] greeting=hello" in ok.stdout
    assert "Commands:\n  cmd: wasi:cli/run" in ok.stdout
    failed = container_mode(root, "fail")
    assert failed.returncode == 1, failed.stderr
    assert "ended with status 1" in failed.stderr


def test_a_component_without_run_is_refused(engine_box: EngineBox, tmp_path: Path) -> None:
    root = make_app(tmp_path / "app", MANIFEST.replace('source = "app.wasm"', 'source = "handler.wasm"'))
    with pytest.raises(ComponentLoadError, match=r"'cmd'.*command trigger needs .*wasi:cli/run"):
        load_app(root, engine_box.engine, LoadOptions(env={}, cache_dir=ARTIFACTS, state_dir=tmp_path / "s"))


@pytest.mark.parametrize(("trigger", "expected"), [
    ('component = "cmd"', ("command-trigger-0", "cmd")),
    ('id = "job"\ncomponent = "cmd"', ("job", "cmd")),
    ('component = "nope"', "no component 'nope'"),
    ("", "component"),
])
def test_manifest_command_triggers(tmp_path: Path, trigger: str, expected: tuple[str, str] | str) -> None:
    path = tmp_path / "spin.toml"
    path.write_text(f'spin_manifest_version = 2\n[application]\nname = "c"\n[[trigger.command]]\n{trigger}\n'
                    '[component.cmd]\nsource = "c.wasm"\n[component.other]\nsource = "o.wasm"\n')
    if isinstance(expected, str):
        with pytest.raises(ManifestError, match=expected):
            load_manifest(path)
        return
    (t,) = load_manifest(path).command_triggers
    assert (t.id, t.component) == expected
    assert retain_components(load_manifest(path), "other").command_triggers == ()
