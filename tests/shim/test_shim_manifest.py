"""spin.toml loading (v1 and v2), routing rules and variable resolution: pure logic, table tests."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest
from shim_testlib import spin_toml

from shim.app import DEFAULT_MAX_INSTANCE_MEMORY, parse_limits
from shim.errors import ManifestError, VariableError
from shim.executors import Limits
from shim.manifest import ExecutorKind, RouteKind, parse_manifest, retain_components
from shim.routing import Router, spin_headers
from shim.runtime_config import EnvProvider, load_runtime_config
from shim.variables import component_variables, resolve_app_variables

V2 = """\
spin_manifest_version = 2
[application]
name = "app"
[variables]
greeting = { default = "hi" }
token = { required = true, secret = true }
[[trigger.http]]
route = "/a/..."
component = "one"
[[trigger.http]]
route = "/wagi"
component = "two"
executor = { type = "wagi", argv = "${SCRIPT_NAME} x ${ARGS}", entrypoint = "run" }
[component.one]
source = "one.wasm"
allowed_outbound_hosts = ["http://127.0.0.1:*"]
key_value_stores = ["default"]
files = ["static/**/*", { source = "assets", destination = "/assets" }]
environment = { A = "1" }
[component.one.variables]
message = "{{ greeting }} there"
[component.two]
source = "two.wasm"
"""

V1 = """\
spin_manifest_version = "1"
name = "old"
trigger = { type = "http", base = "/base" }
[[component]]
id = "legacy"
source = "legacy.wasm"
[component.trigger]
route = "/hello/..."
[component.config]
who = "world"
"""


def parse(text: str) -> object:
    return parse_manifest(textwrap.dedent(text), Path("/app/spin.toml"))


def test_v2_normalised() -> None:
    app = parse_manifest(V2, Path("/app/spin.toml"))
    assert app.name == "app"
    one, two = app.http_triggers
    assert (one.route.kind, one.route.prefix, one.component) == (RouteKind.WILDCARD, "/a", "one")
    assert two.executor is ExecutorKind.WAGI
    assert (two.wagi.entrypoint, two.wagi.argv) == ("run", "${SCRIPT_NAME} x ${ARGS}")
    c = app.components["one"]
    assert c.allowed_outbound_hosts == ("http://127.0.0.1:*",)
    assert [(f.source, f.destination, f.is_glob) for f in c.files] == [
        ("static/**/*", "/", True), ("assets", "/assets", False)]
    assert app.variables["token"].required and app.variables["token"].secret


def test_v1_converted() -> None:
    app = parse_manifest(V1, Path("/app/spin.toml"))
    (t,) = app.http_triggers
    assert (t.route.based, t.route.raw, t.component) == ("/base/hello/...", "/hello/...", "legacy")
    assert app.components["legacy"].variables == {"who": "world"}


@pytest.mark.parametrize(("text", "needle"), [
    ("spin_manifest_version = 3\n", "unsupported manifest version 3"),
    ("spin_manifest_version = 2\n[application]\nname = 'x'\nbogus = 1\n", "bogus: unknown key"),
    ("spin_manifest_version = 2\n[application]\n", "application.name: is required"),
    ("spin_manifest_version = 2\n[application\n", "invalid TOML"),
    ("spin_manifest_version = 2\n[application]\nname='x'\n[[trigger.http]]\nroute='/'\ncomponent='nope'\n",
     "trigger.http[0].component: no component 'nope'"),
    ("spin_manifest_version = 2\n[application]\nname='x'\n[[trigger.http]]\nroute='x'\ncomponent='c'\n"
     "[component.c]\nsource='c.wasm'\n", "route 'x' must start with '/'"),
    ("spin_manifest_version = 2\n[application]\nname='x'\n[component.Bad_Id]\nsource='c.wasm'\n",
     "kebab-case"),
    ("spin_manifest_version = 2\n[application]\nname='x'\n[[trigger.http]]\nroute='/'\n",
     "exactly one of component and static_response"),
    ("spin_manifest_version = 2\n[application]\nname='x'\n[variables]\n"
     "v = { required = true, default = 'a' }\n",
     "a required variable cannot have a default"),
    ("spin_manifest_version = 2\n[application]\nname='x'\n[[trigger.http]]\nroute='/'\ncomponent='c'\n"
     "executor = { type = 'cgi' }\n[component.c]\nsource='c.wasm'\n", "unknown executor 'cgi'"),
])
def test_malformed_manifests_name_file_and_field(text: str, needle: str) -> None:
    with pytest.raises(ManifestError) as err:
        parse_manifest(text, Path("/app/spin.toml"))
    assert "/app/spin.toml" in str(err.value)
    assert needle in str(err.value)


def test_components_to_retain() -> None:
    app = parse_manifest(V2, Path("/app/spin.toml"))
    kept = retain_components(app, "two")
    assert list(kept.components) == ["two"]
    assert [t.component for t in kept.http_triggers] == ["two"]
    with pytest.raises(ManifestError, match=r"unknown component.*three"):
        retain_components(app, "two,three")


@pytest.mark.parametrize(("path", "expected"), [
    ("/", "root"), ("/x", "catch"), ("/api", "api"), ("/api/", "api"), ("/api/v1/x", "api-v1"),
    ("/api/v1", "api-v1"), ("/api/v1x", "api"), ("/exact", "exact"), ("/exact/sub", "catch"),
])
def test_most_specific_route_wins(path: str, expected: str) -> None:
    app = parse_manifest(spin_toml(("/...", "catch"), ("/", "root"), ("/api/...", "api"),
                                   ("/api/v1/...", "api-v1"), ("/exact", "exact"),
                                   ("{ private = true }", "private")), Path("/r/spin.toml"))
    m = Router(app.http_triggers).match(path)
    assert m is not None and m.trigger.component == expected


PARAM_ROUTES = ("/users/...", "/users/:id", "/users/:id/edit", "/users/me", "/users/:id/...", "/files/...")


@pytest.mark.parametrize(("path", "route", "path_info", "params"), [
    ("/users", "/users/...", "", {}),
    ("/users/42", "/users/:id", "", {"id": "42"}),
    ("/users/me", "/users/me", "", {}),
    ("/users/42/edit", "/users/:id/edit", "", {"id": "42"}),
    ("/users/42/posts/7", "/users/:id/...", "/posts/7", {"id": "42"}),
    ("/users/42/posts/", "/users/:id/...", "/posts/", {"id": "42"}),
    ("/files/", "/files/...", "/", {}),
    ("/files/a/b", "/files/...", "/a/b", {}),
])
def test_single_segment_wildcards_and_path_info(path: str, route: str, path_info: str,
                                                params: dict[str, str]) -> None:
    app = parse_manifest(spin_toml(*((r, "c") for r in PARAM_ROUTES)), Path("/p/spin.toml"))
    m = Router(app.http_triggers).match(path)
    assert m is not None
    assert (m.trigger.route.raw, m.path_info, m.params) == (route, path_info, params)
    headers = dict(spin_headers(m, scheme="http", host="h", path_with_query=path, client_addr="c:1"))
    assert headers["spin-matched-route"] == route
    assert headers["spin-component-route"] == route.removesuffix("/...")
    for name, value in params.items():
        assert headers[f"spin-path-match-{name}"] == value


def test_private_routes_are_unreachable() -> None:
    app = parse_manifest(spin_toml(("{ private = true }", "c")), Path("/p/spin.toml"))
    assert Router(app.http_triggers).match("/") is None


@pytest.mark.parametrize(("env", "env_names", "expected"), [
    ({}, False, {"greeting": "hi", "token": "t0"}),
    ({"SPIN_VARIABLE_GREETING": "hello"}, False, {"greeting": "hello", "token": "t0"}),
    # `spin up` (and `shim up`) never read the bare name: a variable `path` must not get $PATH
    ({"GREETING": "from-shim-copy"}, False, {"greeting": "hi", "token": "t0"}),
    # containerd-shim-spin does (the container mode)
    ({"GREETING": "from-shim-copy"}, True, {"greeting": "from-shim-copy", "token": "t0"}),
    ({"GREETING": "bare", "SPIN_VARIABLE_GREETING": "prefixed"}, True,
     {"greeting": "prefixed", "token": "t0"}),
    ({"MYAPP_GREETING": "prefixed"}, False, {"greeting": "prefixed", "token": "t0"}),
])
def test_variable_sources(env: dict[str, str], env_names: bool, expected: dict[str, str]) -> None:
    app = parse_manifest(V2, Path("/app/spin.toml"))
    providers = (EnvProvider(), EnvProvider("MYAPP"))
    values = resolve_app_variables(app.variables, {"SPIN_VARIABLE_TOKEN": "t0", **env}, providers, Path("/"),
                                   env_names=env_names)
    assert values == expected
    assert component_variables(app, "one", values) == {"message": f"{expected['greeting']} there"}


def test_dotenv_provider_and_the_environment_wins(tmp_path: Path) -> None:
    (tmp_path / "app.env").write_text('# comment\nAPP_GREETING="from dotenv"\nAPP_TOKEN=t1\n')
    app = parse_manifest(V2, Path("/app/spin.toml"))
    providers = (EnvProvider(), EnvProvider("APP", "app.env"))
    values = resolve_app_variables(app.variables, {"APP_TOKEN": "from env"}, providers, tmp_path)
    assert values == {"greeting": "from dotenv", "token": "from env"}


def test_required_variable_missing_is_a_load_error() -> None:
    app = parse_manifest(V2, Path("/app/spin.toml"))
    with pytest.raises(VariableError, match=r"'token'.*required"):
        resolve_app_variables(app.variables, {}, (EnvProvider(),), Path("/"))


def test_runtime_config(tmp_path: Path) -> None:
    rc = tmp_path / "runtime-config.toml"
    rc.write_text('[[variables_provider]]\ntype = "env"\nprefix = "APP"\n'
                  '[key_value_store.cache]\ntype = "spin"\npath = "cache.db"\n')
    cfg = load_runtime_config(rc)
    assert EnvProvider("APP") in cfg.env_providers
    assert cfg.kv_stores["cache"].path == "cache.db"
    rc.write_text("[key_value_store.bad]\n")
    with pytest.raises(ManifestError, match=r"key_value_store.bad"):
        load_runtime_config(rc)


@pytest.mark.parametrize(("env", "default", "memory", "ticks", "concurrency"), [
    ({}, None, None, Limits.timeout_ticks, 32),
    # `shim up`'s default cap; 16 instances of 256 MiB fill the 4 GiB budget
    ({}, DEFAULT_MAX_INSTANCE_MEMORY, 256 << 20, Limits.timeout_ticks, 16),
    ({"SPIN_MAX_INSTANCE_MEMORY": "1048576"}, DEFAULT_MAX_INSTANCE_MEMORY, 1 << 20, Limits.timeout_ticks, 32),
    ({"SPIN_MAX_INSTANCE_MEMORY": str(64 << 20), "SPINDLE_SHIM_MEMORY_BUDGET": str(128 << 20)}, None,
     64 << 20, Limits.timeout_ticks, 2),
    ({"SPIN_MAX_INSTANCE_MEMORY": str(1 << 30), "SPINDLE_SHIM_MEMORY_BUDGET": str(512 << 20)}, None,
     1 << 30, Limits.timeout_ticks, 1),
    ({"SPINDLE_SHIM_MAX_CONCURRENCY": "4"}, None, None, Limits.timeout_ticks, 4),
    ({"SPINDLE_SHIM_REQUEST_TIMEOUT_MS": "250"}, None, None, 25, 32),
    ({"SPINDLE_SHIM_REQUEST_TIMEOUT_MS": "3"}, None, None, 1, 32),
])
def test_limits_from_environment(env: dict[str, str], default: int | None, memory: int | None, ticks: int,
                                 concurrency: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("shim.app.cgroup_memory_limit", lambda: None)  # the test box's own cgroup
    assert parse_limits(env, default) == Limits(memory, ticks, concurrency)


def test_memory_budget_is_bounded_by_the_cgroup(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("shim.app.cgroup_memory_limit", lambda: 1 << 30)
    assert parse_limits({"SPIN_MAX_INSTANCE_MEMORY": str(256 << 20)}, None).concurrency == 4


@pytest.mark.parametrize("env", [
    {"SPIN_MAX_INSTANCE_MEMORY": "16MiB"}, {"SPIN_MAX_INSTANCE_MEMORY": "0"},
    {"SPINDLE_SHIM_REQUEST_TIMEOUT_MS": "-5"}, {"SPINDLE_SHIM_REQUEST_TIMEOUT_MS": "1.5"},
    {"SPINDLE_SHIM_MEMORY_BUDGET": "4G"}, {"SPINDLE_SHIM_MAX_CONCURRENCY": "0"},
])
def test_bad_limits_name_the_variable(env: dict[str, str]) -> None:
    (name, value), = env.items()
    with pytest.raises(ManifestError, match=rf"environment: {name}: '{re.escape(value)}' is not a number"):
        parse_limits(env)
