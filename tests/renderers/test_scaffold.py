"""renderers.scaffold and `spindle scaffold`: byte-for-byte `spin kube scaffold` output.

The expected files in testdata/scaffold/ are written from spin-plugin-kube v0.4.0's template and
testdata (spinkube.md section 5); the base64 in them was made with coreutils `base64`.
"""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from reconciler.cli.scaffold_cmds import scaffold as scaffold_cmd
from renderers import scaffold, spintoml, tooltable
from renderers.errors import ManifestError, RenderError, ScaffoldError

DATA = Path(__file__).parent / "testdata" / "scaffold"
IMAGE = "ghcr.io/foo/example-app:v0.1.0"
RC = str(DATA / "runtime-config.toml")

GOLDEN = [
    ("image.yml", ["-f", IMAGE]),
    ("image.yml", ["--from", IMAGE, "--cpu-request", "100m", "--memory-request", "1Gi"]),
    ("image.yml", ["-f", IMAGE, "--max-replicas", "9", "--autoscaler-target-cpu-utilization", "0"]),
    ("runtime_config.yml", ["-f", IMAGE, "-c", RC]),
    ("runtime_config.yml", ["-f", IMAGE, "--runtime-config-file", RC]),
    ("azure_workload_identity.yml", ["-f", IMAGE, "--azure-identity"]),
    ("one_image_secret.yml", ["-f", IMAGE, "-c", RC, "-s", "secret-name"]),
    ("multiple_image_secrets.yml", ["-f", IMAGE, "-c", RC, "-s", "secret-name", "-s", "secret-name-2"]),
    (
        "multiple_image_secrets.yml",
        ["-f", IMAGE, "-c", RC, "--image-pull-secret", "secret-name,secret-name-2"],
    ),
    ("service_account_name.yml", ["-f", IMAGE, "--service-account-name", "my-service-account"]),
    (
        "hpa_service_account.yml",
        [
            "-f",
            IMAGE,
            "--autoscaler",
            "hpa",
            "--cpu-limit",
            "100m",
            "--memory-limit",
            "128Mi",
            "--service-account-name",
            "my-service-account",
        ],
    ),
    (
        "hpa_autoscaler.yml",
        ["-f", IMAGE, "--autoscaler", "hpa", "--cpu-limit", "100m", "--memory-limit", "128Mi"],
    ),
    (
        "keda_autoscaler.yml",
        ["-f", IMAGE, "--autoscaler", "keda", "--cpu-limit", "100m", "--memory-limit", "128Mi"],
    ),
    (
        "keda_custom.yml",
        [
            "-f",
            IMAGE,
            "--autoscaler",
            "keda",
            "--cpu-limit",
            "250m",
            "--memory-limit",
            "64Mi",
            "-r",
            "1",
            "--max-replicas",
            "10",
            "--autoscaler-target-cpu-utilization",
            "75",
            "--autoscaler-target-memory-utilization",
            "90",
        ],
    ),
    ("variables.yml", ["-f", IMAGE, "-v", "foo=yoo", "-v", "bar=yee"]),
    ("variables.yml", ["-f", IMAGE, "--variable", "foo=yoo,bar=yee"]),
    ("variables.yml", ["-f", IMAGE, "-v", "foo=old", "-v", '"bar=yee"', "-v", "foo=yoo"]),
    ("components.yml", ["-f", IMAGE, "--component", "hello", "--component", "world"]),
    ("components.yml", ["-f", IMAGE, "--component", "hello,world"]),
    (
        "resources.yml",
        [
            "-f",
            IMAGE,
            "--cpu-limit",
            "500m",
            "--memory-limit",
            "256Mi",
            "--cpu-request",
            "100m",
            "--memory-request",
            "64Mi",
        ],
    ),
    ("memory_limit_cpu_request.yml", ["-f", IMAGE, "--memory-limit", "256Mi", "--cpu-request", "100m"]),
    (
        "executor_replicas.yml",
        [
            "-f",
            "ttl.sh/hello-spinkube@sha256:cc4b191d11728b4e9e024308f0c03aded893da2002403943adc9deb8c4ca1644",
            "--executor",
            "spintainer",
            "--replicas",
            "0",
        ],
    ),
    (
        "everything.yml",
        [
            "-f",
            IMAGE,
            "--autoscaler",
            "hpa",
            "--cpu-limit",
            "100m",
            "--memory-limit",
            "128Mi",
            "--cpu-request",
            "50m",
            "--memory-request",
            "64Mi",
            "--max-replicas",
            "5",
            "--autoscaler-target-cpu-utilization",
            "70",
            "--autoscaler-target-memory-utilization",
            "80",
            "-v",
            "gamma=three",
            "-v",
            "alpha=one,beta=two=2",
            "--component",
            "api",
            "--component",
            "web",
            "-s",
            "ghcr",
            "-s",
            "quay",
            "--service-account-name",
            "app-sa",
            "--azure-identity",
            "-c",
            RC,
        ],
    ),
]


def run(args: list[str]) -> tuple[int, str, str]:
    result = CliRunner().invoke(scaffold_cmd, args, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize(("expected", "args"), GOLDEN, ids=[f"{e}-{i}" for i, (e, _) in enumerate(GOLDEN)])
def test_cli_output_matches_the_plugin_byte_for_byte(expected: str, args: list[str]) -> None:
    code, out, err = run(args)
    assert (code, err) == (0, "")
    assert out == (DATA / expected).read_text()


def test_a_variable_with_one_equals_sign_keeps_its_commas() -> None:
    code, out, _ = run(["-f", IMAGE, "-v", "greeting=hello,world", "-v", "a=1,b=x=y"])
    assert code == 0
    assert "  - name: a\n    value: 1\n  - name: b\n    value: x=y\n" in out
    assert "  - name: greeting\n    value: hello,world\n" in out


def test_objects_are_what_the_text_means() -> None:
    result = scaffold.scaffold(
        scaffold.ScaffoldOptions(
            IMAGE,
            autoscaler="hpa",
            cpu_limit="100m",
            memory_limit="128Mi",
            runtime_config=(DATA / "runtime-config.toml").read_bytes(),
            variables={"b": "2", "a": "x"},
            image_pull_secrets=("s",),
        )
    )
    assert [o["kind"] for o in result.objects] == ["SpinApp", "Secret", "HorizontalPodAutoscaler"]
    parsed = list(yaml.safe_load_all(result.text))
    # Variable values are strings in the objects; the plugin's text writes them raw.
    assert parsed[0]["spec"]["variables"] == [{"name": "a", "value": "x"}, {"name": "b", "value": 2}]
    result.objects[0]["spec"]["variables"][1]["value"] = 2
    assert parsed == result.objects


@pytest.mark.parametrize("flag", ["-o", "--out"])
def test_script_entry_point_writes_out_file_with_mode_0600(tmp_path: Path, flag: str) -> None:
    out = tmp_path / "app.yaml"
    out.write_text("old")
    out.chmod(0o644)
    proc = subprocess.run(
        [sys.executable, "-m", "reconciler.cli", "scaffold", "-f", IMAGE, flag, str(out)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""
    assert f"Application manifest saved to {out}" in proc.stderr
    assert out.read_text() == (DATA / "image.yml").read_text()
    assert stat.S_IMODE(out.stat().st_mode) == 0o600


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-f", IMAGE, "-r", "-1"], "the minimum replica count (-1) must be greater than 0"),
        (["-f", "invalid image reference!"], "invalid image reference provided: 'invalid image reference!'"),
        (["-f", "Upper/Case"], "invalid image reference provided: 'Upper/Case'"),
        (
            ["-f", IMAGE, "--autoscaler", "invalid"],
            "invalid autoscaler type 'invalid'; the autoscaler type must be either 'hpa' or 'keda'",
        ),
        (
            ["-f", IMAGE, "--autoscaler", "hpa", "--max-replicas", "-1", "-r", "0"],
            "the maximum replica count (-1) must be equal to or greater than 0",
        ),
        (
            ["-f", IMAGE, "--autoscaler", "hpa", "-r", "5", "--max-replicas", "2"],
            "the minimum replica count (5) must be less than or equal to the maximum replica count (2)",
        ),
        (["-f", IMAGE, "--autoscaler", "hpa"], "cpu limits must be set when autoscaling is enabled"),
        (
            ["-f", IMAGE, "--autoscaler", "keda", "--cpu-limit", "50m"],
            "memory limits must be set when autoscaling is enabled",
        ),
        (
            [
                "-f",
                IMAGE,
                "--autoscaler",
                "hpa",
                "--cpu-limit",
                "50m",
                "--memory-limit",
                "1Mi",
                "--autoscaler-target-cpu-utilization",
                "0",
            ],
            "target cpu utilization percentage (0) must be between 1 and 100",
        ),
        (
            [
                "-f",
                IMAGE,
                "--autoscaler",
                "hpa",
                "--cpu-limit",
                "50m",
                "--memory-limit",
                "1Mi",
                "--autoscaler-target-memory-utilization",
                "101",
            ],
            "target memory utilization percentage (101) must be between 1 and 100",
        ),
    ],
)
def test_invalid_options_exit_1_with_the_plugins_message(args: list[str], message: str) -> None:
    code, out, err = run(args)
    assert (code, out) == (1, "")
    assert err == f"Error: {message}\n"


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        ([], '"from" not set'),
        (["-f", IMAGE, "-v", "novalue"], "novalue must be formatted as key=value"),
        (["-f", IMAGE, "-r", "two"], "'two' is not a valid integer"),
        (["-f", IMAGE, "-c", "/nonexistent/rc.toml"], "does not exist"),
        (["--project", str(DATA / "project" / "spin.toml"), "-r", "3"], "drop the other flags"),
        (["-f", IMAGE, "--bogus"], "No such option"),
    ],
)
def test_usage_errors_exit_2(args: list[str], needle: str) -> None:
    code, _, err = run(args)
    assert code == 2
    assert needle in err


@pytest.mark.parametrize(
    ("ref", "name"),
    [
        ("bacongobbler/hello-rust", "hello-rust"),
        ("bacongobbler/hello-rust:v1.0.0", "hello-rust"),
        ("ghcr.io/bacongobbler/hello-rust", "hello-rust"),
        ("ghcr.io/spinkube/spinkube/runtime-class-manager:v1", "runtime-class-manager"),
        ("nginx:latest", "nginx"),
        ("nginx", "nginx"),
        ("localhost:5000/app:dev", "app"),
        (
            "ttl.sh/hello-spinkube@sha256:cc4b191d11728b4e9e024308f0c03aded893da2002403943adc9deb8c4ca1644",
            "hello-spinkube",
        ),
    ],
)
def test_name_from_image(ref: str, name: str) -> None:
    assert scaffold.valid_image_reference(ref)
    assert scaffold.name_from_image(ref) == name


@pytest.mark.parametrize(
    "ref", ["", "UPPER/app", "app:", "a//b", "app@sha256:short", "-app", "app:tag with space"]
)
def test_invalid_image_references(ref: str) -> None:
    assert not scaffold.valid_image_reference(ref)
    with pytest.raises(ScaffoldError):
        scaffold.name_from_image(ref)


# --- Spin projects ----------------------------------------------------------------------------


@pytest.mark.parametrize("target", ["project/spin.toml", "project"])
def test_project_scaffolds_like_the_flags_plus_namespace(target: str) -> None:
    code, out, err = run(["--project", str(DATA / target)])
    assert (code, err) == (0, "")
    assert out == (DATA / "project.yml").read_text()


def test_project_directory_without_spin_toml_is_an_io_error(tmp_path: Path) -> None:
    code, _, err = run(["--project", str(tmp_path)])
    assert code == 2 and "spin.toml" in err
    code, _, err = run(["-f", IMAGE, "-o", str(tmp_path / "missing-dir" / "out.yaml")])
    assert code == 2 and "out.yaml" in err


def test_project_objects_carry_the_namespace_and_lines() -> None:
    path = DATA / "project" / "spin.toml"
    loaded = spintoml.load(path.read_bytes(), "shop/spin.toml", path.parent)
    assert loaded.app is not None and loaded.lines is not None
    errors: list[RenderError] = []
    docs = tooltable.scaffold_project(loaded.app, "shop/spin.toml", loaded.lines, path.parent, errors)
    assert errors == []
    assert [d.subject for d in docs] == [
        "SpinApp/spin-apps/shop",
        "Secret/spin-apps/shop-runtime-config",
        "ScaledObject/spin-apps/shop-autoscaler",
    ]
    assert docs[0].location.line == 7
    assert docs[0].at("spec.image").line == 8
    assert docs[0].at("spec.resources.limits.memory").line == 17
    assert docs[0].at("spec.variables[0].value").line == 20
    assert [d.body for d in docs] == list(yaml.safe_load_all((DATA / "project.yml").read_text()))


TOOL_BASE = """\
spin_manifest_version = 2

[application]
name = "app"

[application.tool.spindle]
{tool}

[variables]
greeting = {{ default = "hi" }}

[[trigger.http]]
route = "/..."
component = "app"

[component.app]
source = "app.wasm"
"""


@pytest.mark.parametrize(
    ("tool", "line", "key", "needle"),
    [
        ('image = "x/app:1"\nimage_tag = "1"', 8, "image_tag", "unknown key 'image_tag'"),
        ('image = "x/app:1"\ncpu-limit = "1"', 8, "cpu-limit", "(did you mean 'cpu_limit'?)"),
        ('image = "x/app:1"\nreplica = 1', 8, "replica", "(did you mean 'replicas'?)"),
        ('image = "x/app:1"\nmax_replicas = 5', 8, "max_replicas", "has no effect without an autoscaler"),
        ('image = "x/my_app:1"', 7, "image", "'my_app' is not a valid DNS label (it comes from the image"),
        ('image = "x/app:1"\nname = "App"', 8, "name", "'App' is not a valid DNS label"),
        (
            'image = "x/app:1"\nautoscaler_target_cpu_utilization = 50',
            8,
            "autoscaler_target_cpu_utilization",
            "has no effect without an autoscaler",
        ),
        (
            'image = "x/app:1"\nmemory_request = "1Mi"',
            8,
            "memory_request",
            "only used with a cpu_limit or memory_limit",
        ),
        ('namespace = "spin-apps"', 6, None, "needs an 'image'"),
        ('image = "Bad Image"', 7, "image", "invalid image reference provided: 'Bad Image'"),
        ('image = "x/app:1"\nreplicas = "2"', 8, "replicas", "replicas must be an integer"),
        (
            'image = "x/app:1"\nreplicas = -3',
            8,
            "replicas",
            "the minimum replica count (-3) must be greater than 0",
        ),
        ('image = "x/app:1"\nautoscaler = "vpa"', 8, "autoscaler", "invalid autoscaler type 'vpa'"),
        ('image = "x/app:1"\nautoscaler = "hpa"', 8, "cpu_limit", "cpu limits must be set"),
        (
            'image = "x/app:1"\nautoscaler = "hpa"\ncpu_limit = "1"\nmemory_limit = "1Mi"\nreplicas = 4',
            11,
            "replicas",
            "must be less than or equal to the maximum replica count (3)",
        ),
        ('image = "x/app:1"\nnamespace = "Spin_Apps"', 8, "namespace", "not a valid DNS label"),
        (
            'image = "x/app:1"\nvariables = { greting = "x" }',
            8,
            "variables",
            "declares no variable 'greting'",
        ),
        (
            'image = "x/app:1"\nvariables = { greeting = 1 }',
            8,
            "variables",
            "variables.greeting must be a string",
        ),
        (
            'image = "x/app:1"\ncomponents = ["app", "nope"]',
            8,
            "components",
            "component 'nope' is not defined",
        ),
        ('image = "x/app:1"\nimage_pull_secrets = "creds"', 8, "image_pull_secrets", "must be an array"),
        ('image = "x/app:1"\nazure_identity = "yes"', 8, "azure_identity", "must be a boolean"),
        ('image = "x/app:1"\nruntime_config_file = "nope.toml"', 8, "runtime_config_file", "cannot read"),
    ],
)
def test_bad_tool_tables_name_file_line_and_key(
    tmp_path: Path, tool: str, line: int, key: str | None, needle: str
) -> None:
    (tmp_path / "app.wasm").write_bytes(b"\0asm")
    text = TOOL_BASE.format(tool=tool)
    loaded = spintoml.load(text, "apps/app/spin.toml", tmp_path)
    assert loaded.errors == [] and loaded.app is not None and loaded.lines is not None
    errors: list[RenderError] = []
    docs = tooltable.scaffold_project(loaded.app, "apps/app/spin.toml", loaded.lines, tmp_path, errors)
    assert docs == []
    assert len(errors) == 1, errors
    [error] = errors
    assert isinstance(error, ManifestError)
    assert error.location.path == "apps/app/spin.toml"
    assert error.location.line == line
    expected_field = "application.tool.spindle" + (f".{key}" if key else "")
    assert error.location.field == expected_field
    assert needle in error.message
    assert str(error).startswith(f"apps/app/spin.toml:{line}: {expected_field}")


def test_project_without_tool_table_or_invalid_exits_1(tmp_path: Path) -> None:
    (tmp_path / "app.wasm").write_bytes(b"\0asm")
    plain = tmp_path / "spin.toml"
    plain.write_text(TOOL_BASE.format(tool="").replace("[application.tool.spindle]", ""))
    code, out, err = run(["--project", str(plain)])
    assert (code, out) == (1, "")
    assert "no [application.tool.spindle] table" in err
    plain.write_text(TOOL_BASE.format(tool='image = "x/app:1"\nreplicas = true'))
    code, out, err = run(["--project", str(plain)])
    assert (code, out) == (1, "")
    expected = (
        f"{plain.as_posix()}:8: application.tool.spindle.replicas (Spin app app): replicas must be an integer"
    )
    assert expected in err


STORES = """\
spin_manifest_version = 2

[application]
name = "app"

[application.tool.spindle]
image = "x/app:1"
{tool}

[[trigger.http]]
route = "/..."
component = "app"

[[trigger.http]]
route = "/admin/..."
component = "admin"

[component.app]
source = "app.wasm"
key_value_stores = ["default", "sessions"]
sqlite_databases = ["default"]

[component.admin]
source = "app.wasm"
sqlite_databases = ["audit"]
"""


@pytest.mark.parametrize(
    ("tool", "runtime_config", "expected"),
    [
        ("", None, [(20, "component.app.key_value_stores[1]"), (25, "component.admin.sqlite_databases[0]")]),
        (
            'runtime_config_file = "rc.toml"',
            "[key_value_store.sessions]\ntype = 'spin'\n",
            [(25, "component.admin.sqlite_databases[0]")],
        ),
        (
            'runtime_config_file = "rc.toml"',
            "[key_value_store.sessions]\ntype = 'spin'\n[sqlite_database.audit]\ntype = 'libsql'\n",
            [],
        ),
        ('components = ["app"]', None, [(20, "component.app.key_value_stores[1]")]),
    ],
)
def test_non_default_stores_need_the_runtime_config(
    tmp_path: Path, tool: str, runtime_config: str | None, expected: list[tuple[int, str]]
) -> None:
    (tmp_path / "app.wasm").write_bytes(b"\0asm")
    if runtime_config is not None:
        (tmp_path / "rc.toml").write_text(runtime_config)
    loaded = spintoml.load(STORES.format(tool=tool), "p/spin.toml", tmp_path)
    assert loaded.errors == [] and loaded.app is not None and loaded.lines is not None
    errors: list[RenderError] = []
    docs = tooltable.scaffold_project(loaded.app, "p/spin.toml", loaded.lines, tmp_path, errors)
    assert [(e.location.line, e.location.field) for e in errors] == expected
    assert all(e.location.path == "p/spin.toml" and "must define [" in e.message for e in errors)
    assert bool(docs) == (not expected)


def test_malformed_runtime_config_is_reported_at_its_own_line(tmp_path: Path) -> None:
    (tmp_path / "app.wasm").write_bytes(b"\0asm")
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "rc.toml").write_text("[key_value_store.sessions]\ntype = spin\n")
    text = STORES.format(tool='runtime_config_file = "config/rc.toml"')
    loaded = spintoml.load(text, "apps/p/spin.toml", tmp_path)
    assert loaded.app is not None and loaded.lines is not None
    errors: list[RenderError] = []
    assert tooltable.scaffold_project(loaded.app, "apps/p/spin.toml", loaded.lines, tmp_path, errors) == []
    [error] = errors
    assert (error.location.path, error.location.line) == ("apps/p/config/rc.toml", 2)
    assert "malformed TOML in the runtime config" in error.message
