"""End-to-end `spindle render` / `spindle validate` through the real command line."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from spindle_renderlib import write_files

from reconciler.cli import cli
from renderers.render import KIND_ORDER

EXAMPLE_REPO = Path(__file__).resolve().parents[2] / "example-repo"

FILES = {
    "platform/namespace.yaml": "apiVersion: v1\nkind: Namespace\nmetadata: {name: web}\n",
    "platform/executor.yaml": """\
apiVersion: core.spinkube.dev/v1alpha1
kind: SpinAppExecutor
metadata: {name: containerd-shim-spin, namespace: web}
spec:
  createDeployment: true
  deploymentConfig: {runtimeClassName: wasmtime-spin-v2, installDefaultCACerts: true}
""",
    "platform/shim.yaml": """\
apiVersion: runtime.spinkube.dev/v1alpha1
kind: Shim
metadata: {name: spin-v2}
spec:
  nodeSelector: {spin: "true"}
  fetchStrategy:
    platforms:
    - {os: linux, arch: x86_64, location: "https://example.com/x86_64.tgz"}
    - {os: linux, arch: aarch64, location: "https://example.com/aarch64.tgz"}
  runtimeClass: {name: wasmtime-spin-v2, handler: spin-v2}
  rolloutStrategy: {type: recreate}
""",
    "apps/config.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings, namespace: web}\n"
                        "data: {level: info}\n",
    "apps/hello.yaml": """\
apiVersion: core.spinkube.dev/v1alpha1
kind: SpinApp
metadata: {name: hello, namespace: web}
spec:
  image: ghcr.io/example/hello:v1
  executor: containerd-shim-spin
  replicas: 2
  variables:
  - {name: level, valueFrom: {configMapKeyRef: {name: settings, key: level}}}
""",
    "apps/world.yaml": """\
apiVersion: core.spinkube.dev/v1alpha1
kind: SpinApp
metadata: {name: world, namespace: web}
spec:
  image: ghcr.io/example/world:v1
  executor: containerd-shim-spin
  enableAutoscaling: true
  runtimeConfig:
    keyValueStores: [{name: default, type: spin}]
""",
}
NODES = """\
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Node
  metadata: {name: worker-1, labels: {spin: "true"}}
  status: {nodeInfo: {operatingSystem: linux, architecture: amd64}}
"""


def make_repo(root: Path, order: list[str] | None = None) -> Path:
    return write_files(root, {rel: FILES[rel] for rel in order or FILES})


def spindle(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "reconciler.cli", *args], capture_output=True, text=True)


def test_render_prints_every_object_in_apply_order(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    proc = spindle("render", str(repo))
    assert proc.returncode == 0, proc.stderr
    objects = list(yaml.safe_load_all(proc.stdout))
    kinds = [o["kind"] for o in objects]
    assert kinds[:3] == ["CustomResourceDefinition"] * 3
    ranks = [KIND_ORDER.index(k) for k in kinds]
    assert ranks == sorted(ranks), kinds
    assert kinds.count("Deployment") == 2 and kinds.count("Service") == 2
    for obj in objects:
        assert obj["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "spindle"
        assert obj["metadata"]["annotations"]["spindle.dev/source-path"]
    world = next(o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == "world")
    assert "replicas" not in world["spec"]
    assert world["metadata"]["annotations"]["spindle.dev/source-path"] == "apps/world.yaml"


def test_output_is_deterministic_whatever_the_file_order(tmp_path: Path) -> None:
    first = make_repo(tmp_path / "a")
    second = make_repo(tmp_path / "b", order=list(reversed(FILES)))
    outputs = {spindle("render", str(first)).stdout, spindle("render", str(first)).stdout,
               spindle("render", str(second)).stdout}
    assert len(outputs) == 1


def test_json_output_is_a_list(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    result = CliRunner().invoke(cli, ["render", str(repo), "-o", "json"])
    assert result.exit_code == 0
    document = json.loads(result.stdout)
    assert document["kind"] == "List" and len(document["items"]) > 5


def test_out_dir_one_file_per_object(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    out = tmp_path / "out"
    out.mkdir()
    (out / "0999_stale_object.yaml").write_text(  # what an earlier render wrote
        "kind: ConfigMap\nmetadata:\n  annotations:\n    spindle.dev/source-path: apps/gone.yaml\n")
    (out / "README.md").write_text("kept")
    runner = CliRunner()
    assert runner.invoke(cli, ["render", str(repo), "--out", str(out)]).exit_code == 0
    names = sorted(p.name for p in out.iterdir())
    assert "README.md" in names and "0999_stale_object.yaml" not in names
    assert "0001_customresourcedefinition_shims.runtime.spinkube.dev.yaml" in names
    assert any(n.endswith("_deployment_web_hello.yaml") for n in names)
    stdout = yaml.safe_load_all(runner.invoke(cli, ["render", str(repo)]).stdout)
    written = [yaml.safe_load((out / n).read_text()) for n in names if n != "README.md"]
    assert written == list(stdout)


def test_nodes_file_adds_installer_jobs(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    nodes = tmp_path / "nodes.yaml"
    nodes.write_text(NODES)
    result = CliRunner().invoke(cli, ["render", str(repo), "--nodes", str(nodes)])
    assert result.exit_code == 0, result.stderr
    jobs = [o for o in yaml.safe_load_all(result.stdout) if o["kind"] == "Job"]
    assert [j["metadata"]["name"] for j in jobs] == ["worker-1-spin-v2-install"]


def node_doc(name: str, arch: str, labels: str = 'spin: "true"') -> str:
    return (f"---\napiVersion: v1\nkind: Node\nmetadata: {{name: {name}, labels: {{{labels}}}}}\n"
            f"status: {{nodeInfo: {{operatingSystem: linux, architecture: {arch}}}}}\n")


# Go-style and uname-style architecture names, one node already provisioned.
THREE_NODES = (node_doc("amd", "amd64") + node_doc("arm", "arm64")
               + node_doc("done", "x86_64", 'spin: "true", spin-v2: provisioned'))


@pytest.mark.parametrize("with_odd_node", [False, True])
def test_three_nodes_of_mixed_architectures(tmp_path: Path, with_odd_node: bool) -> None:
    repo = make_repo(tmp_path / "repo")
    nodes = tmp_path / "nodes.yaml"
    # A selected node that no platform matches is an error; the other nodes still get their Jobs.
    nodes.write_text(THREE_NODES + (node_doc("odd", "riscv64") if with_odd_node else ""))
    result = CliRunner().invoke(cli, ["render", str(repo), "--nodes", str(nodes)])
    jobs = {o["metadata"]["name"]: o for o in yaml.safe_load_all(result.stdout) if o["kind"] == "Job"}
    assert sorted(jobs) == ["amd-spin-v2-install", "arm-spin-v2-install"]
    location = {
        name: {e["name"]: e["value"] for e in job["spec"]["template"]["spec"]["initContainers"][0]["env"]}
        for name, job in jobs.items()
    }
    assert location["amd-spin-v2-install"]["SHIM_LOCATION"] == "https://example.com/x86_64.tgz"
    assert location["arm-spin-v2-install"]["SHIM_LOCATION"] == "https://example.com/aarch64.tgz"
    if with_odd_node:
        assert result.exit_code == 1
        assert "platform/shim.yaml" in result.stderr and "spec.fetchStrategy.platforms" in result.stderr
        assert "node odd (linux/riscv64)" in result.stderr
    else:
        assert result.exit_code == 0, result.stderr


def test_subpath_limits_the_walk(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    result = CliRunner().invoke(cli, ["render", str(repo), "--path", "platform"])
    assert result.exit_code == 0
    kinds = {o["kind"] for o in yaml.safe_load_all(result.stdout)}
    assert "SpinApp" not in kinds and "Namespace" in kinds


def test_validate_clean_repo(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    proc = spindle("validate", str(repo), "-o", "json")
    assert proc.returncode == 0, proc.stdout
    assert json.loads(proc.stdout)["valid"] is True
    assert spindle("validate", str(repo)).stdout.startswith("ok:")


@pytest.mark.parametrize(
    "args",
    [
        ["render", "/nonexistent/repo"],
        ["validate", "/nonexistent/repo"],
        ["render", "{repo}", "-o", "toml"],
        ["render", "{repo}", "--nodes", "/nonexistent/nodes.yaml"],
        ["render", "{repo}", "--nodes", "{bad_nodes}"],
        ["render", "{repo}", "--path", "no/such/dir"],
        ["render", "{repo}", "--path", "../.."],
        ["validate", "{repo}", "--bogus"],
        ["render", "{repo}", "--out", "{a_file}"],
        ["render", "{repo}", "--out", "{a_file}/sub"],
    ],
)
def test_usage_and_io_errors_exit_2(args: list[str], tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    bad_nodes = tmp_path / "nodes.yaml"
    bad_nodes.write_text("items: [\n")
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    argv = [a.format(repo=repo, bad_nodes=bad_nodes, a_file=a_file) for a in args]
    result = CliRunner().invoke(cli, argv)
    assert result.exit_code == 2, (result.output, result.exception)


def test_example_repo_renders_cleanly_and_deterministically(tmp_path: Path) -> None:
    copy = tmp_path / "example-repo"
    shutil.copytree(EXAMPLE_REPO, copy)
    first = spindle("render", str(EXAMPLE_REPO))
    assert first.returncode == 0, first.stderr
    assert spindle("render", str(copy)).stdout == first.stdout
    objects = list(yaml.safe_load_all(first.stdout))
    kinds = {o["kind"] for o in objects}
    assert {"CustomResourceDefinition", "Deployment", "Service", "Secret", "RuntimeClass"} <= kinds
    validate = spindle("validate", str(EXAMPLE_REPO), "-o", "json")
    assert validate.returncode == 0 and json.loads(validate.stdout)["valid"] is True


def test_settings_flags(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    (tmp_path / "repo" / "apps" / "loose.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: loose}\n")
    nodes = tmp_path / "nodes.yaml"
    nodes.write_text(NODES)
    result = CliRunner().invoke(cli, [
        "render", str(repo), "--nodes", str(nodes), "--installer-namespace", "rcm",
        "--node-installer-image", "example.com/ni:1", "--downloader-image", "example.com/dl:1",
        "--default-namespace", "team-a", "-o", "json",
    ])
    assert result.exit_code == 0, result.stderr
    items = json.loads(result.stdout)["items"]
    (job,) = [o for o in items if o["kind"] == "Job"]
    assert job["metadata"]["namespace"] == "rcm"
    pod = job["spec"]["template"]["spec"]
    assert pod["containers"][0]["image"] == "example.com/ni:1"
    assert pod["initContainers"][0]["image"] == "example.com/dl:1"
    # the executor and apps name their namespace; the loose ConfigMap is kept as written
    assert all(o["metadata"].get("namespace") in (None, "web", "rcm") for o in items)


def test_bench_render_runs_and_prints_rates_and_peer_ratios() -> None:
    # A smoke run with few apps: the benchmark must stay runnable; speed is judged by running it
    # in full (`python3 bench/render.py`), never asserted here.
    bench = Path(__file__).resolve().parents[2] / "bench" / "render.py"
    proc = subprocess.run(
        [sys.executable, str(bench), "--apps", "20", "--projects", "10", "--repeat", "1"],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    rows = [line for line in proc.stdout.splitlines() if "obj/s" in line]
    assert len(rows) == 4 and all("x peer" in row for row in rows), proc.stdout
    assert "20 SpinApps, 10 Spin projects" in proc.stdout


@pytest.mark.parametrize("content", [{}, {"README.md": "# docs only\n", "apps/spin.toml.bak": "x"}])
def test_a_repo_with_nothing_to_deploy_passes_with_a_warning(tmp_path: Path, content: dict[str, str]) -> None:
    # A CI job pointed at the wrong directory must not pass silently.
    repo = write_files(tmp_path / "repo", content)
    repo.mkdir(exist_ok=True)
    for args in (["validate", str(repo)], ["render", str(repo)]):
        proc = spindle(*args)
        assert proc.returncode == 0, proc.stderr
        assert f"warning: nothing to deploy under {repo}" in proc.stderr
    report = json.loads(spindle("validate", str(repo), "-o", "json").stdout)
    assert report["valid"] is True and len(report["warnings"]) == 1
    assert report["warnings"][0].startswith(f"nothing to deploy under {repo}")


def test_validate_json_has_no_warnings_for_a_repo_with_apps(tmp_path: Path) -> None:
    proc = spindle("validate", str(make_repo(tmp_path)), "-o", "json")
    assert proc.stderr == "" and json.loads(proc.stdout)["warnings"] == []


@pytest.mark.parametrize("command", ["render", "validate"])
def test_help_tells_ci_the_exit_codes_and_output_formats(command: str) -> None:
    text = " ".join(CliRunner().invoke(cli, [command, "--help"]).output.split())
    assert "Exit codes: 0 clean, 1 the repo has errors, 2 usage or I/O error." in text
    assert "-o, --output" in text and ("Output format" in text)


def test_a_malformed_nodes_file_is_named_with_its_line(tmp_path: Path) -> None:
    nodes = tmp_path / "nodes.yaml"
    nodes.write_text("apiVersion: v1\nkind: List\nitems:\n- kind: Node\n  metadata: {name: a\n")
    result = CliRunner().invoke(cli, ["render", str(make_repo(tmp_path / "repo")), "--nodes", str(nodes)])
    assert result.exit_code == 2
    assert f"{nodes}:6: malformed YAML" in result.output and "<unicode string>" not in result.output


def test_out_dir_keeps_files_spindle_did_not_write(tmp_path: Path) -> None:
    # Numbered manifests are a common convention; only an earlier render's files are replaced.
    out = tmp_path / "out"
    out.mkdir()
    mine = out / "0001_namespace.yaml"
    mine.write_text("apiVersion: v1\nkind: Namespace\nmetadata: {name: mine}\n")
    result = CliRunner().invoke(cli, ["render", str(make_repo(tmp_path / "repo")), "--out", str(out)])
    assert result.exit_code == 0
    assert mine.read_text() == "apiVersion: v1\nkind: Namespace\nmetadata: {name: mine}\n"


def test_a_spin_project_without_a_tool_table_is_noted_as_not_deployed(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    write_files(repo, {
        "apps/local/spin.toml": 'spin_manifest_version = 2\n[application]\nname = "local"\n'
                                '[[trigger.http]]\nroute = "/..."\ncomponent = "c"\n'
                                '[component.c]\nsource = "c.wasm"\n',
        "apps/local/c.wasm": b"\0asm\x01\0\0\0",
    })
    note = ("note: apps/local/spin.toml (Spin app local) has no [application.tool.spindle] table: "
            "checked, not deployed")
    for command in ("validate", "render"):
        proc = spindle(command, str(repo))
        assert proc.returncode == 0 and note in proc.stderr, proc.stderr
    assert spindle("validate", str(repo), "-o", "json").stderr == ""  # json stays the whole answer


def test_a_spin_project_without_its_executor_is_told_where_to_set_it(tmp_path: Path) -> None:
    repo = write_files(tmp_path / "repo", {
        "apps/a/spin.toml": 'spin_manifest_version = 2\n[application]\nname = "a"\n'
                            '[application.tool.spindle]\nimage = "x/a:1"\nnamespace = "prod"\n'
                            '[[trigger.http]]\nroute = "/..."\ncomponent = "c"\n'
                            '[component.c]\nsource = "c.wasm"\n',
        "apps/a/c.wasm": b"\0asm\x01\0\0\0",
        "platform/executor.yaml": FILES["platform/executor.yaml"],  # in namespace web
    })
    proc = spindle("validate", str(repo))
    assert proc.returncode == 1
    assert ("apps/a/spin.toml:4: spec.executor (SpinApp/prod/a): SpinAppExecutor prod/containerd-shim-spin "
            "does not exist") in proc.stdout
    hint = "or change executor (now containerd-shim-spin) or namespace in [application.tool.spindle]"
    assert hint in proc.stdout
