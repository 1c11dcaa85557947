"""renderers.spintoml: spin.toml v2 and v1 → the typed model, and every error with file:line: key."""

from __future__ import annotations

import copy
import random
import tomllib
from pathlib import Path
from typing import Any

import pytest
import tomlkit
from spindle_renderlib import field_paths, set_at

from renderers import spintoml, tooltable
from renderers.errors import ManifestError, RenderError
from renderers.spintoml.lines import TomlLines
from renderers.spintoml.model import ExecutorType, LocalSource, RegistrySource, UrlSource

DATA = Path(__file__).parent / "testdata" / "spintoml"
REL = "apps/web/spin.toml"

BASE = [
    "spin_manifest_version = 2",  # 1
    "",  # 2
    "[application]",  # 3
    'name = "app"',  # 4
    "",  # 5
    "[variables]",  # 6
    'greeting = { default = "hi" }',  # 7
    "",  # 8
    "[[trigger.http]]",  # 9
    'route = "/..."',  # 10
    'component = "web"',  # 11
    "",  # 12
    "[component.web]",  # 13
    'source = "web.wasm"',  # 14
]

TRIGGER_2 = '\n[[trigger.http]]\nroute = "{route}"\ncomponent = "web"'  # lines 16-18 when appended


def manifest(replace: dict[int, str] | None = None, append: str = "") -> str:
    lines = list(BASE)
    for number, text in sorted((replace or {}).items(), reverse=True):
        lines[number - 1 : number] = text.split("\n") if text else []
    return "\n".join(lines) + "\n" + append + ("\n" if append else "")


def load(text: str, tmp_path: Path) -> spintoml.Loaded:
    (tmp_path / "web.wasm").write_bytes(b"\0asm\x01\0\0\0")
    return spintoml.load(text, REL, tmp_path)


# (case id, manifest text, line, dotted key, message fragment)
BROKEN = [
    ("unknown-top-level-key", manifest(append="\n[extra]\nx = 1"), 16, "extra", "unknown key 'extra'"),
    (
        "unknown-application-key",
        manifest({4: 'name = "app"\nlicense = "MIT"'}),
        5,
        "application.license",
        "unknown key 'license' in [application]",
    ),
    (
        "missing-application-name",
        manifest({4: 'version = "1"'}),
        3,
        "application.name",
        "missing required key",
    ),
    (
        "variable-not-snake-case",
        manifest({7: 'Greeting = { default = "hi" }'}),
        7,
        "variables.Greeting",
        "not lower_snake_case",
    ),
    (
        "variable-kebab-case",
        manifest({7: 'greet-ing = { default = "hi" }'}),
        7,
        "variables.greet-ing",
        "separated with '_', not '-'",
    ),
    (
        "variable-unknown-key",
        manifest({7: 'greeting = { default = "hi", type = "string" }'}),
        7,
        "variables.greeting.type",
        "unknown key 'type'",
    ),
    (
        "variable-required-and-default",
        manifest({7: 'greeting = { default = "hi", required = true }'}),
        7,
        "variables.greeting",
        "'required' and has a 'default'",
    ),
    (
        "variable-neither-required-nor-default",
        manifest({7: "greeting = { secret = true }"}),
        7,
        "variables.greeting",
        "must be 'required = true' or have a 'default'",
    ),
    (
        "variable-default-not-string",
        manifest({7: "greeting = { default = 3 }"}),
        7,
        "variables.greeting.default",
        "must be a string",
    ),
    (
        "component-id-not-kebab",
        manifest({11: 'component = "web_app"', 13: "[component.web_app]"}),
        13,
        "component.web_app",
        "not kebab-case",
    ),
    (
        "component-unknown-key",
        manifest(append='sources = "x.wasm"'),
        15,
        "component.web.sources",
        "unknown key 'sources' in component 'web' (did you mean 'source'?)",
    ),
    (
        "component-config-is-v1-only",
        manifest(append='config = { a = "b" }'),
        15,
        "component.web.config",
        "unknown key 'config'",
    ),
    (
        "missing-source",
        manifest({14: 'description = "no source"'}),
        13,
        "component.web.source",
        "missing required key 'source'",
    ),
    (
        "source-file-missing",
        manifest({14: 'source = "target/missing.wasm"'}),
        14,
        "component.web.source",
        "'target/missing.wasm' does not exist",
    ),
    (
        "source-absolute",
        manifest({14: 'source = "/abs/web.wasm"'}),
        14,
        "component.web.source",
        "must be relative",
    ),
    (
        "source-url-bad-digest",
        manifest({14: 'source = { url = "https://x/y.wasm", digest = "md5:abc" }'}),
        14,
        "component.web.source.digest",
        "must start with 'sha256:'",
    ),
    ("source-wrong-type", manifest({14: "source = 42"}), 14, "component.web.source", "must be a table"),
    (
        "trigger-unknown-component",
        manifest({11: 'component = "api"'}),
        11,
        "trigger.http[0].component",
        "component 'api', which is not defined",
    ),
    (
        "trigger-component-not-kebab",
        manifest({11: 'component = "Web_App"'}),
        11,
        "trigger.http[0].component",
        "not kebab-case",
    ),
    (
        "trigger-unknown-key",
        manifest({10: 'route = "/..."\npath = "/x"'}),
        11,
        "trigger.http[0].path",
        "unknown key 'path'",
    ),
    ("route-missing", manifest({10: ""}), 9, "trigger.http[0].route", "missing required key 'route'"),
    (
        "route-reserved-prefix",
        manifest({10: 'route = "/.well-known/spin/info"'}),
        10,
        "trigger.http[0].route",
        "which Spin reserves",
    ),
    (
        "route-empty-parameter",
        manifest({10: 'route = "/users/:"'}),
        10,
        "trigger.http[0].route",
        "needs a name",
    ),
    (
        "route-duplicate-without-leading-slash",
        manifest({10: 'route = "api"'}, TRIGGER_2.format(route="/api")),
        17,
        "trigger.http[1].route",
        "duplicate route '/api'",
    ),
    (
        "route-wildcard-in-the-middle",
        manifest({10: 'route = "/a/.../b"'}),
        10,
        "trigger.http[0].route",
        "'...' is a wildcard only as the whole last segment",
    ),
    ("route-wildcard-glued", manifest({10: 'route = "/files..."'}), 10, "trigger.http[0].route", "wildcard"),
    (
        "route-duplicate",
        manifest(append=TRIGGER_2.format(route="/...")),
        17,
        "trigger.http[1].route",
        "duplicate route '/...' (already used by '/...' at line 10)",
    ),
    (
        "route-duplicate-trailing-slash",
        manifest({10: 'route = "/api"'}, TRIGGER_2.format(route="/api/")),
        17,
        "trigger.http[1].route",
        "duplicate route '/api/'",
    ),
    (
        "route-duplicate-parameter-names",
        manifest({10: 'route = "/u/:id"'}, TRIGGER_2.format(route="/u/:name")),
        17,
        "trigger.http[1].route",
        "duplicate route",
    ),
    (
        "route-private-false",
        manifest({10: "route = { private = false }"}),
        10,
        "trigger.http[0].route",
        "{ private = true }",
    ),
    (
        "route-table-unknown-key",
        manifest({10: "route = { private = true, public = 1 }"}),
        10,
        "trigger.http[0].route.public",
        "unknown key 'public'",
    ),
    (
        "component-and-static-response",
        manifest({11: 'component = "web"\nstatic_response = { body = "x" }'}),
        12,
        "trigger.http[0].static_response",
        "exactly one of 'component' and 'static_response', not both",
    ),
    (
        "neither-component-nor-static-response",
        manifest({11: ""}),
        9,
        "trigger.http[0]",
        "exactly one of 'component' and 'static_response'",
    ),
    (
        "static-response-unknown-key",
        manifest({11: 'static_response = { body = "x", code = 200 }'}),
        11,
        "trigger.http[0].static_response.code",
        "unknown key 'code'",
    ),
    (
        "static-response-bad-status",
        manifest({11: "static_response = { status_code = 42 }"}),
        11,
        "trigger.http[0].static_response.status_code",
        "HTTP status",
    ),
    (
        "executor-unknown-type",
        manifest({11: 'component = "web"\nexecutor = { type = "cgi" }'}),
        12,
        "trigger.http[0].executor.type",
        "executor type 'cgi' is not one of",
    ),
    (
        "executor-spin-with-argv",
        manifest({11: 'component = "web"\nexecutor = { type = "spin", argv = "x" }'}),
        12,
        "trigger.http[0].executor.argv",
        "unknown key 'argv' in a 'spin' executor",
    ),
    (
        "redis-missing-channel",
        manifest(append='\n[[trigger.redis]]\ncomponent = "web"'),
        16,
        "trigger.redis[0].channel",
        "missing required key 'channel'",
    ),
    (
        "redis-unknown-key",
        manifest(append='\n[[trigger.redis]]\nchannel = "c"\ncomponent = "web"\ntopic = "t"'),
        19,
        "trigger.redis[0].topic",
        "unknown key 'topic'",
    ),
    ("no-triggers", manifest({9: "", 10: "", 11: ""}), None, "trigger", "no triggers"),
    (
        "http-base-not-slash",
        manifest(append='\n[application.trigger.http]\nbase = "/api"'),
        17,
        "application.trigger.http.base",
        "'base' setting is no longer supported",
    ),
    (
        "component-variable-undeclared",
        manifest(append='variables = { msg = "{{ greting }}" }'),
        15,
        "component.web.variables.msg",
        "{{ greting }} refers to an undeclared application variable",
    ),
    (
        "component-variable-name",
        manifest(append='variables = { Msg = "x" }'),
        15,
        "component.web.variables.Msg",
        "not lower_snake_case",
    ),
    (
        "component-variable-unbalanced",
        manifest(append='variables = { msg = "{{ greeting" }'),
        15,
        "component.web.variables.msg",
        "unbalanced template braces",
    ),
    (
        "component-variable-not-string",
        manifest(append="variables = { msg = 1 }"),
        15,
        "component.web.variables.msg",
        "must be a string",
    ),
    (
        "outbound-no-scheme",
        manifest(append='allowed_outbound_hosts = ["example.com"]'),
        15,
        "component.web.allowed_outbound_hosts[0]",
        "does not contain a scheme",
    ),
    (
        "outbound-with-path-second-line",
        manifest(
            append='allowed_outbound_hosts = [\n  "https://ok.example.com",\n  "https://example.com/api",\n]'
        ),
        17,
        "component.web.allowed_outbound_hosts[1]",
        "hosts must not contain paths",
    ),
    (
        "outbound-bad-port",
        manifest(append='allowed_outbound_hosts = ["redis://cache:99999"]'),
        15,
        "component.web.allowed_outbound_hosts[0]",
        "is not a number from 0 to 65535",
    ),
    (
        "outbound-inner-wildcard",
        manifest(append='allowed_outbound_hosts = ["https://api.*.com"]'),
        15,
        "component.web.allowed_outbound_hosts[0]",
        "wildcards are allowed only as subdomains",
    ),
    (
        "outbound-undeclared-template",
        manifest(append='allowed_outbound_hosts = ["https://{{ host }}"]'),
        15,
        "component.web.allowed_outbound_hosts[0]",
        "{{ host }} refers to an undeclared application variable",
    ),
    (
        "outbound-insecure-allow-all",
        manifest(append='allowed_outbound_hosts = ["insecure:allow-all"]'),
        15,
        "component.web.allowed_outbound_hosts[0]",
        "use '*://*:*'",
    ),
    (
        "outbound-no-default-port",
        manifest(append='allowed_outbound_hosts = ["tcp://db.internal"]'),
        15,
        "component.web.allowed_outbound_hosts[0]",
        "scheme 'tcp' has no known default port",
    ),
    (
        "outbound-scheme-not-letters",
        manifest(append='allowed_outbound_hosts = ["git+ssh://host:22"]'),
        15,
        "component.web.allowed_outbound_hosts[0]",
        "non-alphabetic",
    ),
    (
        "outbound-no-host",
        manifest(append='allowed_outbound_hosts = ["https://"]'),
        15,
        "component.web.allowed_outbound_hosts[0]",
        "no host given",
    ),
    (
        "dependency-unknown-key",
        manifest(append='[component.web.dependencies]\n"a:b/c" = { path = "web.wasm", exprt = "x" }'),
        16,
        "component.web.dependencies.a:b/c.exprt",
        "did you mean 'export'?",
    ),
    (
        "dependency-path-missing",
        manifest(append='[component.web.dependencies]\n"a:b/c" = { path = "dep.wasm" }'),
        16,
        "component.web.dependencies.a:b/c.path",
        "dependency file 'dep.wasm' does not exist",
    ),
    (
        "dependency-url-without-digest",
        manifest(append='[component.web.dependencies]\n"a:b/c" = { url = "https://x/d.wasm" }'),
        16,
        "component.web.dependencies.a:b/c.digest",
        "needs a 'digest'",
    ),
    (
        "dependency-shapeless",
        manifest(append='[component.web.dependencies]\n"a:b/c" = { export = "x" }'),
        16,
        "component.web.dependencies.a:b/c",
        "needs one of 'version', 'path', 'url' or 'component'",
    ),
    (
        "target-unknown-key",
        manifest({4: 'name = "app"\ntargets = [{ registry = "r", idd = "x" }]'}),
        5,
        "application.targets[0].idd",
        "did you mean 'id'?",
    ),
    (
        "key-value-store-label",
        manifest(append='key_value_stores = ["My Store"]'),
        15,
        "component.web.key_value_stores[0]",
        "not a valid label",
    ),
    (
        "sqlite-label",
        manifest(append='sqlite_databases = ["default", "bad.db"]'),
        15,
        "component.web.sqlite_databases[1]",
        "not a valid label",
    ),
    (
        "files-source-missing",
        manifest(append='files = [{ source = "assets", destination = "/" }]'),
        15,
        "component.web.files[0].source",
        "files source 'assets' does not exist",
    ),
    (
        "files-relative-destination",
        manifest(append='files = [{ source = "web.wasm", destination = "data" }]'),
        15,
        "component.web.files[0].destination",
        "must be an absolute path",
    ),
    (
        "files-unknown-key",
        manifest(append='files = [{ source = "web.wasm", destination = "/", mode = "r" }]'),
        15,
        "component.web.files[0].mode",
        "unknown key 'mode'",
    ),
    ("files-not-a-list", manifest(append='files = "static/*"'), 15, "component.web.files", "must be a list"),
    (
        "build-without-command",
        manifest(append='[component.web.build]\nworkdir = "web"'),
        15,
        "component.web.build.command",
        "missing required key 'command'",
    ),
    (
        "build-unknown-key",
        manifest(append='[component.web.build]\ncommand = "make"\nargs = ["x"]'),
        17,
        "component.web.build.args",
        "unknown key 'args'",
    ),
    ("malformed-toml", manifest({4: 'name = "app'}), 4, None, "malformed TOML"),
    ("duplicate-toml-key", manifest({4: 'name = "app"\nname = "again"'}), 5, None, "malformed TOML"),
    (
        "manifest-version-3",
        manifest({1: "spin_manifest_version = 3"}),
        1,
        "spin_manifest_version",
        "unsupported manifest version 3",
    ),
    (
        "manifest-version-float",
        manifest({1: "spin_manifest_version = 2.0"}),
        1,
        "spin_manifest_version",
        "unsupported manifest version 2.0",
    ),
    ("manifest-version-missing", manifest({1: ""}), None, None, "missing spin_manifest_version"),
    (
        "misspelled-manifest-version-key",
        manifest({1: "spin_manifest_verison = 2"}),
        1,
        "spin_manifest_verison",
        "missing spin_manifest_version: unknown key 'spin_manifest_verison' "
        "(did you mean 'spin_manifest_version'?)",
    ),
    (
        "misspelled-trigger-type",
        manifest({9: "[[trigger.htpp]]"}),
        9,
        "trigger.htpp",
        "unknown trigger type 'htpp' (did you mean 'http'?)",
    ),
    (
        "misspelled-spindle-tool-table",
        manifest({4: 'name = "app"\n[application.tool.spindel]\nimage = "x"'}),
        5,
        "application.tool.spindel",
        "[application.tool.spindel] is not read by spindle (did you mean [application.tool.spindle]?)",
    ),
    (
        "capitalised-spindle-tool-table",
        manifest({4: 'name = "app"\n[application.tool.Spindle]\nimage = "x"'}),
        5,
        "application.tool.Spindle",
        "did you mean [application.tool.spindle]?",
    ),
]


@pytest.mark.parametrize(
    ("text", "line", "key", "needle"), [case[1:] for case in BROKEN], ids=[case[0] for case in BROKEN]
)
def test_broken_manifests_name_file_line_and_key(
    tmp_path: Path, text: str, line: int | None, key: str | None, needle: str
) -> None:
    loaded = load(text, tmp_path)
    assert loaded.app is None
    assert loaded.errors, "expected an error"
    assert all(isinstance(e, ManifestError) and e.location.path == REL for e in loaded.errors)
    matching = [e for e in loaded.errors if needle in e.message]
    assert matching, [str(e) for e in loaded.errors]
    error = matching[0]
    assert (error.location.line, error.location.field) == (line, key), str(error)
    prefix = REL + (f":{line}" if line else "") + (f": {key}" if key else "")
    assert str(error).startswith(prefix)


def test_every_error_of_a_file_is_reported(tmp_path: Path) -> None:
    text = manifest(
        {7: 'Greeting = { default = "hi" }', 10: 'route = "/:"', 14: 'source = "gone.wasm"'},
        'allowed_outbound_hosts = ["nope"]',
    )
    loaded = load(text, tmp_path)
    got = [(e.location.line, e.location.field) for e in loaded.errors]
    assert got == [
        (7, "variables.Greeting"),
        (14, "component.web.source"),
        (15, "component.web.allowed_outbound_hosts[0]"),
        (10, "trigger.http[0].route"),
    ]


def test_other_tools_tables_are_left_alone(tmp_path: Path) -> None:
    text = manifest({4: 'name = "app"\n[application.tool.spin-test]\nsource = "t.wasm"\n'
                        '[application.tool.spinner]\nx = 1'})
    assert load(text, tmp_path).errors == []


def test_the_base_manifest_is_valid(tmp_path: Path) -> None:
    loaded = load(manifest(), tmp_path)
    assert loaded.errors == []
    assert loaded.app is not None and loaded.app.name == "app"


def test_full_v2_manifest_model() -> None:
    path = DATA / "v2-full" / "spin.toml"
    loaded = spintoml.load(path.read_bytes(), "v2-full/spin.toml", path.parent)
    assert loaded.errors == []
    app = loaded.app
    assert app is not None
    assert (app.name, app.manifest_version, app.version, app.authors) == (
        "full",
        2,
        "0.3.0",
        ("Ada <ada@example.com>",),
    )
    assert app.variables["api_token"].required and app.variables["api_token"].secret
    assert app.variables["api_host"].default == "api.example.com"
    assert app.trigger_settings == {"redis": {"address": "redis://redis.example.com:6379"}}
    assert app.spindle == {"image": "ghcr.io/acme/full:0.3.0"}
    http = [t for t in app.triggers if t.type == "http"]
    assert [(t.route, t.private, t.component) for t in http] == [
        ("/api/...", False, "api"),
        ("/users/:id", False, "api"),
        (None, True, "api"),
        ("/cgi", False, "wagi"),
        ("/health", False, None),
        ("/static/...", False, "assets-component"),
    ]
    assert http[3].executor is not None and http[3].executor.type is ExecutorType.WAGI
    assert http[3].executor.entrypoint == "_start"
    assert http[4].static_response is not None and http[4].static_response.body == "ok"
    [redis] = [t for t in app.triggers if t.type == "redis"]
    assert (redis.channel, redis.component) == ("orders", "worker")
    api = app.components["api"]
    assert api.source == LocalSource("api.wasm")
    assert api.variables == {"upstream": "https://{{ api_host }}/v1", "token": "{{ api_token }}"}
    assert api.key_value_stores == ("default", "user-sessions")
    assert api.build is not None and api.build.commands == ("cargo build --release", "cp target/api.wasm .")
    assert api.build.workdir == "api"
    assert app.components["wagi"].build is not None and app.components["wagi"].build.commands == ("make",)
    assert app.components["worker"].source == RegistrySource("acme:worker", "1.0.0", "registry.acme.dev")
    assets = app.components["assets-component"]
    assert isinstance(assets.source, UrlSource) and assets.source.digest.startswith("sha256:")
    assert assets.files[0].destination == "/"


def test_v1_manifest_is_converted_to_the_v2_model() -> None:
    path = DATA / "v1-app" / "spin.toml"
    loaded = spintoml.load(path.read_bytes(), "v1-app/spin.toml", path.parent)
    assert loaded.errors == []
    app = loaded.app
    assert app is not None
    assert (app.name, app.manifest_version, app.version, app.authors) == (
        "legacy",
        1,
        "1.0.0",
        ("Old Timer",),
    )
    assert list(app.components) == ["hello", "old-style"]  # Spin's id fix-up: snake/Mixed → kebab
    hello, old = app.components["hello"], app.components["old-style"]
    assert hello.variables == {"message": "{{ greeting }}"}
    assert hello.allowed_http_hosts == ("example.com", "localhost:3001")
    # No allowed_outbound_hosts in v1: the old implicit database access stays.
    assert hello.allowed_outbound_hosts == (
        "redis://*:*",
        "mysql://*:*",
        "postgres://*:*",
        "http://example.com",
        "https://example.com",
        "http://localhost:3001",
        "https://localhost:3001",
    )
    assert old.allowed_outbound_hosts == (
        "https://api.example.com",
        "http://*:*",
        "https://*:*",
        "http://self",
    )
    assert [(t.type, t.id, t.route, t.component) for t in app.triggers] == [
        ("http", "trigger-hello", "/hello", "hello"),
        ("http", "trigger-old-style", "/cgi/...", "old-style"),
    ]
    executor = app.triggers[1].executor
    assert executor is not None and executor.type is ExecutorType.WAGI
    assert app.trigger_settings == {"http": {"base": "/"}}


V1 = """\
spin_manifest_version = "1"
name = "legacy"
trigger = { type = "http" }

[[component]]
id = "hello"
source = "web.wasm"
[component.trigger]
route = "/hello"

[[component]]
id = "second"
source = "web.wasm"
[component.trigger]
route = "/two"
"""


@pytest.mark.parametrize(
    ("old", "new", "line", "key", "needle"),
    [
        ('id = "second"', 'id = "2nd"', 12, "component[1].id", "not kebab-case"),
        (
            'trigger = { type = "http" }',
            'trigger = { type = "http", base = "/v1" }',
            3,
            "trigger.base",
            "'base' setting is no longer supported",
        ),
        (
            'id = "second"\nsource = "web.wasm"',
            'id = "second"\nsource = "web.wasm"\nallowed_http_hosts = ["ftp://x"]',
            14,
            "component[1].allowed_http_hosts[0]",
            "only http and https",
        ),
        ('id = "second"', 'id = "hello"', 12, "component[1].id", "duplicate component id 'hello'"),
        ('route = "/two"', 'route = "/hello"', 15, "component[1].trigger.route", "duplicate route '/hello'"),
        (
            'route = "/two"',
            'route = "/two/.../x"',
            15,
            "component[1].trigger.route",
            "only as the whole last",
        ),
        (
            'route = "/two"',
            'route = "/two"\nchannel = "x"',
            16,
            "component[1].trigger.channel",
            "unknown key 'channel'",
        ),
        (
            'source = "web.wasm"\n[component.trigger]\nroute = "/two"',
            'source = "gone.wasm"\n[component.trigger]\nroute = "/two"',
            13,
            "component[1].source",
            "does not exist",
        ),
        ('name = "legacy"', 'name = "legacy"\nlicense = "MIT"', 3, "license", "unknown key 'license'"),
        (
            'id = "second"\nsource = "web.wasm"',
            'id = "second"\nsource = "web.wasm"\nvariables = { a = "b" }',
            14,
            "component[1].variables",
            "unknown key 'variables'",
        ),
        (
            '[component.trigger]\nroute = "/two"\n',
            "",
            11,
            "component[1].trigger",
            "no [component.trigger] table",
        ),
        (
            'spin_manifest_version = "1"',
            'spin_manifest_version = "2"',
            1,
            "spin_manifest_version",
            "unsupported manifest version '2'",
        ),
    ],
)
def test_broken_v1_manifests_point_at_v1_keys(
    tmp_path: Path, old: str, new: str, line: int, key: str, needle: str
) -> None:
    assert old in V1
    loaded = load(
        V1.replace(old, new, 1)
        if old != '[component.trigger]\nroute = "/two"\n'
        else V1[: V1.rindex(old)] + new,
        tmp_path,
    )
    matching = [e for e in loaded.errors if needle in e.message]
    assert matching, [str(e) for e in loaded.errors]
    assert (matching[0].location.line, matching[0].location.field) == (line, key)


def test_spin_version_key_is_accepted_for_v1(tmp_path: Path) -> None:
    loaded = load(V1.replace("spin_manifest_version", "spin_version"), tmp_path)
    assert loaded.errors == [] and loaded.app is not None and loaded.app.manifest_version == 1


def test_line_scanner_handles_strings_comments_and_arrays_of_tables() -> None:
    text = (
        "a = 1 # [not.a.table]\n"
        'b = """\n[fake]\nc = 2\n"""\n'
        "[[t.x]]\n"
        "k = 1\n"
        "[[t.x]]\n"
        "k = { inner = [1,\n  2] }\n"
        "[t.x.sub]\n"
        "z = 'lit'\n"
        '"quoted key".q = 1\n'
    )
    lines = TomlLines(text)
    assert lines.line_of(("a",)) == 1
    assert lines.line_of(("fake",)) is None
    assert lines.line_of(("t", "x", 0, "k")) == 7
    assert lines.line_of(("t", "x", 1, "k", "inner", 1)) == 10
    assert lines.line_of(("t", "x", 1, "sub", "z")) == 12
    assert lines.line_of(("t", "x", 1, "sub", "quoted key", "q")) == 13
    assert lines.line_of(("t", "x", 1, "missing")) == 8


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("a = 1\n\n[application.tool.spindle]\nimage = 'x'\n", 3),
        ("a = 1\n  [ application . tool . spindle ]  # spaced\n", 2),
        ("[application]\nname = 'x'\ntool.spindle.image = 'y'\n", 3),  # no header: full scan
        ("[application.tool.spindle.extra]\n", 1),  # only a sub-table: its parent path's line
        ("[application]\n", 1),
    ],
)
def test_table_line_finds_headers_cheaply_and_falls_back(text: str, line: int) -> None:
    assert TomlLines(text).table_line(("application", "tool", "spindle")) == line


def test_trigger_ids_and_inline_components_are_named_like_spin(tmp_path: Path) -> None:
    text = manifest(
        append="\n".join(
            [
                "",
                "[[trigger.http]]",  # 16: same component again → counter id
                'route = "/two"',
                'component = "web"',
                "",
                "[[trigger.http]]",  # 20: inline component, no id
                'route = "/three"',
                'component = { source = "web.wasm" }',
                "",
                "[[trigger.cron]]",  # 24: several specs → counter-based inline ids
                'component = { source = "web.wasm" }',
                'components = { extra = [{ source = "web.wasm" }, "web"] }',
                "",
                "[[trigger.http]]",  # 28: an explicit id that a generated one must avoid
                'id = "http-trigger3"',
                'route = "/four"',
                'component = "web"',
            ]
        )
    )
    loaded = load(text, tmp_path)
    assert loaded.errors == []
    app = loaded.app
    assert app is not None
    assert [(t.type, t.id, t.component) for t in app.triggers] == [
        ("http", "web-http-trigger", "web"),
        ("http", "http-trigger1", "web"),
        ("http", "http-trigger2", "http-trigger2-component"),
        ("http", "http-trigger3", "web"),
        ("cron", "cron-trigger1", "inline-component1"),
    ]
    assert sorted(app.components) == [
        "http-trigger2-component",
        "inline-component1",
        "inline-component2",
        "web",
    ]


ODD_VALUES: list[Any] = [
    1,
    -1,
    "x",
    "",
    [],
    {},
    True,
    1.5,
    [1, "a"],
    {"a": 1},
    {"private": True},
    ["default"],
]


@pytest.mark.parametrize(
    ("manifest_path", "seed"),
    [(p, seed) for p in ("spintoml/v2-full", "spintoml/v1-app", "scaffold/project") for seed in range(3)],
)
def test_type_swapped_manifests_give_errors_not_exceptions(manifest_path: str, seed: int) -> None:
    rng = random.Random(seed)
    path = DATA.parent / manifest_path / "spin.toml"
    base = tomllib.loads(path.read_text())
    paths = field_paths(base)
    for _ in range(100):
        doc = copy.deepcopy(base)
        set_at(doc, rng.choice(paths), rng.choice(ODD_VALUES))
        loaded = spintoml.load(tomlkit.dumps(doc), "odd/spin.toml", path.parent)
        assert (loaded.app is None) == bool(loaded.errors)
        errors: list[RenderError] = list(loaded.errors)
        if loaded.app is not None and loaded.lines is not None:
            tooltable.scaffold_project(loaded.app, "odd/spin.toml", loaded.lines, path.parent, errors)
        for error in errors:
            assert error.location.path.startswith("odd/")
            str(error)


def test_v2_deprecated_allowed_http_hosts_join_the_outbound_hosts(tmp_path: Path) -> None:
    text = manifest(
        append='allowed_outbound_hosts = ["redis://cache:6379"]\nallowed_http_hosts = ["self", "x.io:81"]'
    )
    loaded = load(text, tmp_path)
    assert loaded.errors == [] and loaded.app is not None
    assert loaded.app.components["web"].allowed_outbound_hosts == (
        "redis://cache:6379",
        "http://self",
        "http://x.io:81",
        "https://x.io:81",
    )


def test_a_spin_toml_that_is_not_utf8_names_the_line_and_byte(tmp_path: Path) -> None:
    data = manifest({4: 'name = "caf\xe9"'}).encode("latin-1")
    loaded = spintoml.load(data, REL, tmp_path)
    (error,) = loaded.errors
    assert (error.location.path, error.location.line) == (REL, 4)
    assert "not UTF-8 text: byte 0xe9" in error.message
