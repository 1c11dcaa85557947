"""renderers.discovery: a checkout → RepoTree."""

from __future__ import annotations

import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest
import yaml

from renderers import spintoml
from renderers.discovery import discover
from renderers.errors import DocumentError, ManifestError

SPINAPP = """\
apiVersion: core.spinkube.dev/v1alpha1
kind: SpinApp
metadata:
  name: {name}
  namespace: spin-apps
spec:
  image: "ghcr.io/acme/{name}:v1"
  executor: containerd-shim-spin
  replicas: 1
"""

EXECUTOR = """\
apiVersion: core.spinkube.dev/v1alpha1
kind: SpinAppExecutor
metadata:
  name: containerd-shim-spin
  namespace: spin-apps
spec:
  createDeployment: true
  deploymentConfig:
    runtimeClassName: wasmtime-spin-v2
"""

SHIM = """\
apiVersion: runtime.spinkube.dev/v1alpha1
kind: Shim
metadata:
  name: spin-v2
spec:
  runtimeClass:
    name: wasmtime-spin-v2
    handler: spin-v2
"""

SPIN_TOML = """\
spin_manifest_version = 2

[application]
name = "{name}"

[application.tool.spindle]
image = "ghcr.io/acme/{name}:v2"
namespace = "spin-apps"
replicas = 3

[[trigger.http]]
route = "/..."
component = "{name}"

[component.{name}]
source = "app.wasm"
"""


def write(root: Path, rel: str, text: str | bytes) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(textwrap.dedent(text))
    return path


def project(root: Path, rel_dir: str, name: str, toml: str = SPIN_TOML) -> None:
    write(root, f"{rel_dir}/spin.toml", toml.format(name=name))
    write(root, f"{rel_dir}/app.wasm", b"\0asm\x01\0\0\0")


def test_classifies_every_kind(tmp_path: Path) -> None:
    write(tmp_path, "apps/hello.yaml", SPINAPP.format(name="hello") + "---\n" + SPINAPP.format(name="bye"))
    write(tmp_path, "platform/executor.yml", EXECUTOR)
    write(tmp_path, "platform/shim.yaml", SHIM)
    write(tmp_path, "platform/ns.yaml", "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: spin-apps\n")
    write(
        tmp_path,
        "platform/list.json",
        '{"apiVersion": "v1", "kind": "List", "items": [\n'
        '  {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "one"}},\n'
        '  {"apiVersion": "v1", "kind": "ConfigMap",\n   "metadata": {"name": "two"}}\n]}\n',
    )
    tree = discover(tmp_path)
    assert tree.errors == []
    assert [d.subject for d in tree.spinapps] == ["SpinApp/spin-apps/hello", "SpinApp/spin-apps/bye"]
    assert [d.location.path for d in tree.spinapps] == ["apps/hello.yaml"] * 2
    assert [d.location.line for d in tree.spinapps] == [1, 11]
    assert tree.spinapps[1].at("spec.replicas").line == 19
    assert [d.subject for d in tree.executors] == ["SpinAppExecutor/spin-apps/containerd-shim-spin"]
    assert [d.subject for d in tree.shims] == ["Shim/spin-v2"]
    assert sorted(d.subject for d in tree.others) == ["ConfigMap/one", "ConfigMap/two", "Namespace/spin-apps"]
    two = next(d for d in tree.others if d.name == "two")
    assert two.location == two.location.__class__("platform/list.json", 3)
    assert two.lines["metadata.name"] == 4


def test_bad_documents_are_reported_and_good_ones_kept(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", SPINAPP.format(name="good"))
    write(tmp_path, "b.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  labels: {}\n")
    write(tmp_path, "c.yaml", "metadata:\n  name: x\n")
    write(tmp_path, "d.yaml", "- just\n- a list\n")
    write(tmp_path, "e.yaml", "apiVersion: v1\nkind: [\n")
    write(tmp_path, "f.json", '{"apiVersion": "v1", "kind": ')
    tree = discover(tmp_path)
    assert [d.name for d in tree.spinapps] == ["good"]
    got = sorted((e.location.path, e.location.line, type(e).__name__) for e in tree.errors)
    assert got == [
        ("b.yaml", 3, "DocumentError"),
        ("c.yaml", 1, "DocumentError"),
        ("d.yaml", 1, "DocumentError"),
        ("e.yaml", 3, "DocumentError"),
        ("f.json", 1, "DocumentError"),
    ]
    messages = {e.location.path: e.message for e in tree.errors}
    assert "metadata.name" in messages["b.yaml"]
    assert "no apiVersion and no kind" in messages["c.yaml"]
    assert "not a mapping" in messages["d.yaml"]


@pytest.mark.parametrize(
    ("api_version", "kind", "needle"),
    [
        ("core.spinoperator.dev/v1alpha1", "SpinApp", "old API group core.spinoperator.dev"),
        ("runtime.kwasm.sh/v1alpha1", "Shim", "old API group runtime.kwasm.sh"),
        ("core.spinkube.dev/v1beta1", "SpinApp", "must have apiVersion core.spinkube.dev/v1alpha1"),
        ("v1", "SpinAppExecutor", "must have apiVersion core.spinkube.dev/v1alpha1"),
        ("core.spinkube.dev/v1alpha1", "SpinApps", "unknown kind 'SpinApps'"),
        ("runtime.spinkube.dev/v1alpha1", "RuntimeClass", "unknown kind 'RuntimeClass'"),
        ("runtime.spinkube.dev/v1", "Widget", "not a served version"),
        ("core.spinoperator.dev/v1alpha1", "Widget", "old API group core.spinoperator.dev"),
        ("apps.spinkube.dev/v1", "Widget", "not a served version"),
    ],
)
def test_spinkube_kinds_under_wrong_groups_are_errors(
    tmp_path: Path, api_version: str, kind: str, needle: str
) -> None:
    write(tmp_path, "a.yaml", f"# c\napiVersion: {api_version}\nkind: {kind}\nmetadata:\n  name: x\n")
    tree = discover(tmp_path)
    assert (tree.spinapps, tree.executors, tree.shims, tree.others) == ([], [], [], [])
    [error] = tree.errors
    assert (error.location.path, error.location.line, error.location.field) == ("a.yaml", 2, "apiVersion")
    assert needle in error.message


def test_json_files_that_are_not_manifests_are_skipped(tmp_path: Path) -> None:
    write(tmp_path, "web/package.json", '{"name": "web", "version": "1.0.0"}')
    write(tmp_path, "web/tsconfig.json", "[1, 2]")
    write(tmp_path, "web/broken.json", "{nope")
    tree = discover(tmp_path)
    assert (tree.others, tree.errors) == ([], [])


def test_spindleignore_and_git_are_skipped(tmp_path: Path) -> None:
    write(tmp_path, ".spindleignore", "drafts/\n*.local.yaml\n!keep.local.yaml\n")
    write(tmp_path, ".git/config.yaml", "broken: [\n")
    write(tmp_path, "drafts/wip.yaml", "broken: [\n")
    write(tmp_path, "nested/drafts/wip.yaml", "broken: [\n")
    write(tmp_path, "apps/x.local.yaml", "broken: [\n")
    write(tmp_path, "apps/keep.local.yaml", SPINAPP.format(name="kept"))
    project(tmp_path, "drafts/proj", "ignored")
    tree = discover(tmp_path)
    assert tree.errors == []
    assert [d.name for d in tree.spinapps] == ["kept"]
    assert tree.projects == [] and tree.scaffolded == []


def test_hidden_paths_are_never_manifests(tmp_path: Path) -> None:
    write(tmp_path, ".github/workflows/ci.yml", "on: push\njobs: {}\n")
    write(tmp_path, ".gitlab-ci.yml", "stages: [test]\n")
    write(tmp_path, "apps/.draft.yaml", "broken: [\n")
    write(tmp_path, "apps/a.yaml", SPINAPP.format(name="a"))
    tree = discover(tmp_path)
    assert (tree.errors, [d.name for d in tree.spinapps]) == ([], ["a"])


def test_symlinks_out_of_the_checkout_are_refused(tmp_path: Path) -> None:
    repo, outside = tmp_path / "repo", tmp_path / "outside"
    write(outside, "secret.yaml", SPINAPP.format(name="stolen"))
    write(repo, "apps/a.yaml", SPINAPP.format(name="a"))
    (repo / "apps" / "link.yaml").symlink_to(outside / "secret.yaml")
    (repo / "apps" / "inner.yaml").symlink_to(repo / "apps" / "a.yaml")
    (repo / "linked-dir").symlink_to(outside, target_is_directory=True)
    tree = discover(repo)
    assert [d.location.path for d in tree.spinapps] == ["apps/a.yaml", "apps/inner.yaml"]
    [error] = tree.errors
    assert error.location.path == "apps/link.yaml" and "leads out of the checkout" in error.message


def test_subpath_limits_the_walk_but_paths_stay_repo_relative(tmp_path: Path) -> None:
    write(tmp_path, "staging/a.yaml", SPINAPP.format(name="a"))
    write(tmp_path, "prod/b.yaml", SPINAPP.format(name="b"))
    write(tmp_path, ".spindleignore", "prod/skip/\n")
    write(tmp_path, "prod/skip/c.yaml", "broken: [\n")
    tree = discover(tmp_path, "prod")
    assert [(d.name, d.location.path) for d in tree.spinapps] == [("b", "prod/b.yaml")]
    assert tree.errors == []


@pytest.mark.parametrize("subpath", ["missing", "../elsewhere", "staging/a.yaml"])
def test_bad_subpath_is_a_usage_error(tmp_path: Path, subpath: str) -> None:
    write(tmp_path, "staging/a.yaml", SPINAPP.format(name="a"))
    (tmp_path.parent / "elsewhere").mkdir(exist_ok=True)
    with pytest.raises(FileNotFoundError):
        discover(tmp_path, subpath)


def test_spin_projects_are_scaffolded_with_lines_pointing_at_the_tool_table(tmp_path: Path) -> None:
    project(tmp_path, "apps/hello", "hello")
    write(
        tmp_path,
        "apps/plain/spin.toml",
        SPIN_TOML.format(name="plain").replace("[application.tool.spindle]", "[application.tool.other]"),
    )
    write(tmp_path, "apps/plain/app.wasm", b"\0asm")
    tree = discover(tmp_path)
    assert tree.errors == []
    assert [p.location.path for p in tree.projects] == ["apps/hello/spin.toml", "apps/plain/spin.toml"]
    assert [p.app.name for p in tree.projects] == ["hello", "plain"]
    assert tree.projects[1].scaffolded == ()
    [doc] = tree.scaffolded
    assert doc.subject == "SpinApp/spin-apps/hello"
    assert doc.body["spec"] == {
        "image": "ghcr.io/acme/hello:v2",
        "executor": "containerd-shim-spin",
        "replicas": 3,
    }
    assert doc.location.path == "apps/hello/spin.toml" and doc.location.line == 6
    assert doc.at("spec.replicas").line == 9
    assert doc.at("spec.image").line == 7


def test_a_broken_project_does_not_block_the_others(tmp_path: Path) -> None:
    project(tmp_path, "good", "good")
    project(tmp_path, "bad", "bad", SPIN_TOML.replace('source = "app.wasm"', 'source = "missing.wasm"'))
    write(tmp_path, "worse/spin.toml", "spin_manifest_version = 2\n[application\n")
    write(tmp_path, "app.yaml", SPINAPP.format(name="yaml-app"))
    tree = discover(tmp_path)
    assert [d.name for d in tree.scaffolded] == ["good"]
    assert [d.name for d in tree.spinapps] == ["yaml-app"]
    errors = sorted(tree.errors, key=lambda e: e.location.path)
    assert [(type(e), e.location.path, e.location.line) for e in errors] == [
        (ManifestError, "bad/spin.toml", 16),
        (ManifestError, "worse/spin.toml", 2),
    ]
    assert errors[0].location.field == "component.bad.source"
    assert "missing.wasm" in errors[0].message


def test_runtime_config_file_must_stay_inside_the_checkout(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    write(tmp_path, "host-secrets.toml", "[key_value_store.default]\ntype = 'redis'\n")
    write(repo, "shared/rc.toml", "[key_value_store.default]\ntype = 'spin'\n")
    inside = SPIN_TOML.replace("replicas = 3", 'replicas = 3\nruntime_config_file = "../../shared/rc.toml"')
    outside = SPIN_TOML.replace(
        "replicas = 3", 'replicas = 3\nruntime_config_file = "../../../host-secrets.toml"'
    )
    project(repo, "apps/ok", "ok", inside)
    project(repo, "apps/sneaky", "sneaky", outside)
    tree = discover(repo)
    assert sorted(d.subject for d in tree.scaffolded) == [
        "Secret/spin-apps/ok-runtime-config",
        "SpinApp/spin-apps/ok",
    ]
    [error] = tree.errors
    assert (error.location.path, error.location.line) == ("apps/sneaky/spin.toml", 10)
    assert error.location.field == "application.tool.spindle.runtime_config_file"
    assert "outside the checkout" in error.message


def test_unreadable_ignore_file_is_reported(tmp_path: Path) -> None:
    write(tmp_path, ".spindleignore", b"\xff\xfe\n")
    write(tmp_path, "a.yaml", SPINAPP.format(name="a"))
    tree = discover(tmp_path)
    assert [d.name for d in tree.spinapps] == ["a"]
    assert [type(e) for e in tree.errors] == [DocumentError]


# --- example-repo ------------------------------------------------------------------------------

EXAMPLE = Path(__file__).resolve().parents[2] / "example-repo"


def test_example_repo_is_clean_and_complete() -> None:
    tree = discover(EXAMPLE)
    assert tree.errors == []
    assert sorted(d.name for d in tree.spinapps) == ["echo-burst", "greeter"]
    assert [d.subject for d in tree.executors] == ["SpinAppExecutor/spin-apps/containerd-shim-spin"]
    assert tree.executors[0].body["spec"]["deploymentConfig"] == {
        "runtimeClassName": "wasmtime-spin-v2",
        "installDefaultCACerts": True,
    }
    [shim] = tree.shims
    assert shim.body["spec"]["runtimeClass"] == {"name": "wasmtime-spin-v2", "handler": "spin-v2"}
    assert [p["arch"] for p in shim.body["spec"]["fetchStrategy"]["platforms"]] == ["x86_64", "aarch64"]
    assert {d.kind for d in tree.others} == {"Namespace", "ConfigMap", "HorizontalPodAutoscaler"}
    assert sorted(p.app.name for p in tree.projects) == ["echo", "hello"]
    assert sorted(d.subject for d in tree.scaffolded) == [
        "HorizontalPodAutoscaler/spin-apps/echo-autoscaler",
        "Secret/spin-apps/echo-runtime-config",
        "SpinApp/spin-apps/echo",
        "SpinApp/spin-apps/hello",
    ]
    greeter = next(d for d in tree.spinapps if d.name == "greeter").body["spec"]
    sources = {v["name"]: next(iter(v.get("valueFrom", {"value": None}))) for v in greeter["variables"]}
    assert sources == {"greeting": "value", "log_level": "configMapKeyRef", "api_token": "secretKeyRef"}
    assert greeter["runtimeConfig"]["keyValueStores"][0]["name"] == "default"
    assert {"checks", "resources", "podLabels"} <= set(greeter)


def _run_wagi(wasm: Path, stdin: bytes, tmp_path: Path) -> bytes:
    wasmtime = pytest.importorskip("wasmtime")
    engine = wasmtime.Engine()
    linker = wasmtime.Linker(engine)
    linker.define_wasi()
    store = wasmtime.Store(engine)
    config = wasmtime.WasiConfig()
    (tmp_path / "stdin").write_bytes(stdin)
    config.stdin_file = str(tmp_path / "stdin")
    config.stdout_file = str(tmp_path / "stdout")
    store.set_wasi(config)
    instance = linker.instantiate(store, wasmtime.Module.from_file(engine, str(wasm)))
    instance.exports(store)["_start"](store)
    return (tmp_path / "stdout").read_bytes()


@pytest.mark.parametrize("name", ["hello", "echo"])
def test_example_projects_build_command_reproduces_the_committed_wasm(name: str, tmp_path: Path) -> None:
    work = tmp_path / name
    shutil.copytree(EXAMPLE / "apps" / name, work)
    (work / f"{name}.wasm").unlink()
    loaded = spintoml.load((work / "spin.toml").read_bytes(), "spin.toml", None)
    assert loaded.app is not None
    build = loaded.app.components[name].build
    assert build is not None
    for command in build.commands:
        subprocess.run(command, shell=True, cwd=work / (build.workdir or "."), check=True)
    assert (work / f"{name}.wasm").read_bytes() == (EXAMPLE / "apps" / name / f"{name}.wasm").read_bytes()


def test_example_wagi_modules_answer_like_cgi(tmp_path: Path) -> None:
    hello = _run_wagi(EXAMPLE / "apps/hello/hello.wasm", b"", tmp_path)
    assert hello.startswith(b"content-type: text/plain\n\nHello from a WAGI module")
    body = b"ping " * 2000  # more than one 4 KiB read
    echo = _run_wagi(EXAMPLE / "apps/echo/echo.wasm", body, tmp_path)
    assert echo == b"content-type: text/plain\n\n" + body


@pytest.mark.parametrize("odd", ["1", "[]", "{}", "true", "null", "[a, b]", "{a: 1}", "'x'", "2024-01-01"])
@pytest.mark.parametrize("field", ["apiVersion", "kind", "metadata", "metadata.name", "metadata.namespace"])
def test_odd_values_in_identity_fields_give_errors_not_exceptions(
    tmp_path: Path, field: str, odd: str
) -> None:
    doc = yaml.safe_load(SPINAPP.format(name="app"))
    *parents, last = field.split(".")
    target = doc
    for key in parents:
        target = target[key]
    target[last] = yaml.safe_load(odd)
    write(tmp_path, "a.yaml", yaml.safe_dump(doc))
    tree = discover(tmp_path)
    kept = tree.spinapps + tree.others
    assert len(kept) + len(tree.errors) == 1
    usable = ("'x'", "2024-01-01") + (("null",) if field == "metadata.namespace" else ())
    if field in ("metadata", "metadata.name", "metadata.namespace") and odd not in usable:
        assert tree.errors, "an unusable name or namespace must be an error"
    for error in tree.errors:
        assert error.location.path == "a.yaml"
        str(error)


@pytest.mark.parametrize(
    ("api_version", "kind", "needle"),
    [
        ("v1", "Sekret", "unknown kind 'Sekret' in v1 (did you mean 'Secret'?)"),
        ("v1", "Configmap", "unknown kind 'Configmap' in v1 (did you mean 'ConfigMap'?)"),
        ("apps/v1", "Deploymnet", "unknown kind 'Deploymnet' in apps/v1 (did you mean 'Deployment'?)"),
        ("apps/v1", "ConfigMap", "ConfigMap is served by apiVersion v1, not apps/v1"),
        ("v1", "Deployment", "Deployment is served by apiVersion apps/v1, not v1"),
        ("batch/v1", "Cronjob", "unknown kind 'Cronjob' in batch/v1 (did you mean 'CronJob'?)"),
    ],
)
def test_typos_in_builtin_kinds_are_errors(tmp_path: Path, api_version: str, kind: str, needle: str) -> None:
    write(tmp_path, "k8s/x.yaml", f"apiVersion: v1\nkind: Namespace\nmetadata: {{name: ok}}\n---\n"
                                  f"apiVersion: {api_version}\nkind: {kind}\nmetadata: {{name: x}}\n")
    tree = discover(tmp_path)
    assert [d.kind for d in tree.others] == ["Namespace"]
    (error,) = tree.errors
    assert isinstance(error, DocumentError) and needle in error.message
    field, line = ("kind", 6) if "unknown kind" in needle else ("apiVersion", 5)
    assert (error.location.path, error.location.line, error.location.field) == ("k8s/x.yaml", line, field)


@pytest.mark.parametrize(
    ("api_version", "kind"),
    [("v1", "ConfigMapList"), ("apps/v1", "StatefulSet"), ("example.com/v1", "Widget"),
     ("networking.k8s.io/v1", "Ingress"), ("v1", "PersistentVolumeClaim"), ("batch/v1", "Job"),
     ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"), ("autoscaling/v2", "HorizontalPodAutoscaler")],
)
def test_builtin_and_custom_kinds_pass_through(tmp_path: Path, api_version: str, kind: str) -> None:
    write(tmp_path, "k8s/x.yaml", f"apiVersion: {api_version}\nkind: {kind}\nmetadata: {{name: x}}\n")
    tree = discover(tmp_path)
    assert tree.errors == [] and [d.kind for d in tree.others] == [kind]


def test_a_misspelt_metadata_key_is_named_when_the_name_is_missing(tmp_path: Path) -> None:
    write(tmp_path, "k8s/x.yaml", "apiVersion: v1\nkind: ConfigMap\nmetdata:\n  name: x\n")
    (error,) = discover(tmp_path).errors
    assert error.message == "ConfigMap has no metadata.name (found 'metdata': did you mean 'metadata'?)"
    assert (error.location.path, error.location.line) == ("k8s/x.yaml", 3)
