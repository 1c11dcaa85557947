"""A table of broken repos run through the real CLI (`spindle validate`, `spindle render`).

Every repo holds one good app (`good-app`, with its executor) next to one broken thing: each
must exit 1 with a message naming the broken file and the field, and `render` must still print
the good app's Deployment."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from spindle_renderlib import write_files

from reconciler.cli import cli

GOOD = """\
apiVersion: core.spinkube.dev/v1alpha1
kind: SpinAppExecutor
metadata: {name: shim}
spec:
  createDeployment: true
  deploymentConfig: {runtimeClassName: wasmtime-spin-v2}
---
apiVersion: core.spinkube.dev/v1alpha1
kind: SpinAppExecutor
metadata: {name: external}
spec:
  createDeployment: false
---
apiVersion: core.spinkube.dev/v1alpha1
kind: SpinApp
metadata: {name: good-app}
spec:
  image: ghcr.io/example/good:v1
  executor: shim
  replicas: 1
"""

SPIN_TOML = """\
spin_manifest_version = 2

[application]
name = "hello"

[[trigger.http]]
route = "/..."
component = "hello"

[component.hello]
source = "hello.wasm"
"""


def app(spec: str, name: str = "bad-app", extra_meta: str = "") -> str:
    body = "\n".join("  " + line for line in spec.strip("\n").splitlines())
    return f"""\
apiVersion: core.spinkube.dev/v1alpha1
kind: SpinApp
metadata:
  name: {name}
{extra_meta}spec:
{body}
"""


BASE = "image: ghcr.io/example/bad:v1\nexecutor: shim\nreplicas: 1\n"

# id → (files, broken file, the field (or text) the error must name besides the file; "" for
# files that do not parse, whose errors must name the line)
CASES: dict[str, tuple[dict[str, str], str, str]] = {
    "malformed-yaml": ({"apps/bad.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [x\n"},
                       "apps/bad.yaml", ""),
    "malformed-toml": ({"web/spin.toml": "spin_manifest_version = 2\n[application\nname = 'x'\n",
                        "web/hello.wasm": ""}, "web/spin.toml", ""),
    "unknown-spinkube-kind": ({"apps/bad.yaml": "apiVersion: core.spinkube.dev/v1alpha1\n"
                               "kind: SpinApplication\nmetadata: {name: x}\n"}, "apps/bad.yaml", "kind"),
    "obsolete-api-group": ({"apps/bad.yaml": "apiVersion: core.spinoperator.dev/v1alpha1\n"
                            "kind: SpinApp\nmetadata: {name: x}\nspec: {image: x}\n"},
                           "apps/bad.yaml", "apiVersion"),
    "unknown-spinkube-version": ({"apps/bad.yaml": "apiVersion: core.spinkube.dev/v2\n"
                                  "kind: SpinApp\nmetadata: {name: x}\n"}, "apps/bad.yaml", "apiVersion"),
    "document-without-kind": ({"apps/bad.yaml": "apiVersion: v1\nmetadata: {name: x}\n"},
                              "apps/bad.yaml", "kind"),
    "missing-image": ({"apps/bad.yaml": app("executor: shim\nreplicas: 1")}, "apps/bad.yaml", "spec.image"),
    "unknown-field": ({"apps/bad.yaml": app(BASE + "replica: 2")}, "apps/bad.yaml", "spec.replica"),
    "replicas-not-int": ({"apps/bad.yaml": app("image: x\nexecutor: shim\nreplicas: two")},
                         "apps/bad.yaml", "spec.replicas"),
    "replicas-zero": ({"apps/bad.yaml": app("image: x\nexecutor: shim\nreplicas: 0")},
                      "apps/bad.yaml", "spec.replicas"),
    "replicas-with-autoscaling": ({"apps/bad.yaml": app(BASE + "enableAutoscaling: true")},
                                  "apps/bad.yaml", "spec.replicas"),
    "executor-missing": ({"apps/bad.yaml": app("image: x\nexecutor: nope\nreplicas: 1")},
                         "apps/bad.yaml", "spec.executor"),
    "executor-in-other-namespace": ({"apps/bad.yaml": app(BASE, extra_meta="  namespace: other\n")},
                                    "apps/bad.yaml", "spec.executor"),
    "deployment-annotations-without-deployment": (
        {"apps/bad.yaml": app("image: x\nexecutor: external\nreplicas: 1\n"
                              "deploymentAnnotations: {a: b}")},
        "apps/bad.yaml", "spec.deploymentAnnotations"),
    "pod-annotations-without-deployment": (
        {"apps/bad.yaml": app("image: x\nexecutor: external\nreplicas: 1\npodAnnotations: {a: b}")},
        "apps/bad.yaml", "spec.podAnnotations"),
    "memory-limit-above-container-limit": (
        {"apps/bad.yaml": app(BASE + "invocationLimits: {memory: 1Gi}\n"
                              "resources: {limits: {memory: 128Mi}}")},
        "apps/bad.yaml", "spec.invocationLimits.memory"),
    "memory-limit-above-request": (
        {"apps/bad.yaml": app(BASE + "invocationLimits: {memory: 200Mi}\n"
                              "resources: {requests: {memory: 100M}}")},
        "apps/bad.yaml", "spec.invocationLimits.memory"),
    "memory-limit-not-a-quantity": ({"apps/bad.yaml": app(BASE + "invocationLimits: {memory: lots}")},
                                    "apps/bad.yaml", "spec.invocationLimits.memory"),
    "resource-not-a-quantity": ({"apps/bad.yaml": app(BASE + "resources: {limits: {cpu: fast}}")},
                                "apps/bad.yaml", "spec.resources.limits.cpu"),
    "executor-both-class-and-image": (
        {"ops/exec.yaml": "apiVersion: core.spinkube.dev/v1alpha1\nkind: SpinAppExecutor\n"
         "metadata: {name: both}\nspec:\n  createDeployment: true\n"
         "  deploymentConfig: {runtimeClassName: a, spinImage: b}\n"},
        "ops/exec.yaml", "spec.deploymentConfig.runtimeClassName"),
    "executor-empty-runtime-class": (
        {"ops/exec.yaml": "apiVersion: core.spinkube.dev/v1alpha1\nkind: SpinAppExecutor\n"
         "metadata: {name: blank}\nspec:\n  createDeployment: true\n"
         "  deploymentConfig: {runtimeClassName: \"\"}\n"},
        "ops/exec.yaml", "spec.deploymentConfig.runtimeClassName"),
    "executor-without-create-deployment": (
        {"ops/exec.yaml": "apiVersion: core.spinkube.dev/v1alpha1\nkind: SpinAppExecutor\n"
         "metadata: {name: half}\nspec:\n  deploymentConfig: {runtimeClassName: a}\n"},
        "ops/exec.yaml", "spec.createDeployment"),
    "runtime-config-secret-not-in-repo": (
        {"apps/bad.yaml": app(BASE + "runtimeConfig:\n  keyValueStores:\n  - name: default\n    type: redis\n"
                              "    options:\n    - name: url\n      valueFrom:\n"
                              "        secretKeyRef: {name: redis-creds, key: url}")},
        "apps/bad.yaml", "spec.runtimeConfig.keyValueStores[0].options[0].valueFrom.secretKeyRef.name"),
    "runtime-config-configmap-key-missing": (
        {"apps/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: db}\ndata: {other: x}\n",
         "apps/bad.yaml": app(BASE + "runtimeConfig:\n  sqliteDatabases:\n  - name: default\n"
                              "    type: libsql\n    options:\n    - name: url\n      valueFrom:\n"
                              "        configMapKeyRef: {name: db, key: url}")},
        "apps/bad.yaml", "configMapKeyRef.key"),
    "duplicate-key-value-store": (
        {"apps/bad.yaml": app(BASE + "runtimeConfig:\n  keyValueStores:\n  - {name: default, type: spin}\n"
                              "  - {name: default, type: redis}")},
        "apps/bad.yaml", "spec.runtimeConfig.keyValueStores[1].name"),
    "duplicate-objects-in-two-files": (
        {"a/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: dup}\n",
         "b/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: dup, namespace: default}\n"},
        "b/cm.yaml", "a/cm.yaml"),
    "duplicate-spinapp": ({"zz/dup.yaml": app(BASE, name="good-app")}, "zz/dup.yaml", "good.yaml"),
    "duplicate-spinapp-in-one-file": ({"apps/bad.yaml": app(BASE) + "---\n" + app(BASE)},
                                      "apps/bad.yaml", "defined twice"),
    "duplicate-executor": ({"zz/exec.yaml": GOOD.split("---")[0]}, "zz/exec.yaml", "good.yaml"),
    "duplicate-shim": (
        {f"infra/{n}.yaml": "apiVersion: runtime.spinkube.dev/v1alpha1\nkind: Shim\nmetadata: {name: s}\n"
         "spec:\n  fetchStrategy: {anonHttp: {location: x}}\n  runtimeClass: {name: s, handler: s}\n"
         "  rolloutStrategy: {type: recreate}\n" for n in ("a", "b")},
        "infra/b.yaml", "infra/a.yaml"),
    "label-value-not-a-string": ({"apps/cm.yaml": "apiVersion: v1\nkind: ConfigMap\n"
                                  "metadata: {name: c, labels: {spin: true}}\n"},
                                 "apps/cm.yaml", "metadata.labels.spin"),
    "labels-not-a-mapping": ({"apps/bad.yaml": app(BASE, extra_meta="  labels: [a, b]\n")},
                             "apps/bad.yaml", "metadata.labels"),
    "namespace-not-a-string": ({"apps/bad.yaml": app(BASE, extra_meta="  namespace: 7\n")},
                               "apps/bad.yaml", "metadata.namespace"),
    "service-clashes-with-app": (
        {"apps/svc.yaml": "apiVersion: v1\nkind: Service\nmetadata: {name: good-app}\nspec: {}\n"},
        "apps/svc.yaml", "good.yaml"),
    "app-name-not-dns-label": ({"apps/bad.yaml": app(BASE, name="Bad_App")}, "apps/bad.yaml",
                               "metadata.name"),
    "app-name-too-long": ({"apps/bad.yaml": app(BASE, name="a" * 53)}, "apps/bad.yaml", "metadata.name"),
    "probe-without-path": ({"apps/bad.yaml": app(BASE + "checks: {readiness: {httpGet: {}}}")},
                           "apps/bad.yaml", "spec.checks.readiness.httpGet.path"),
    "components-empty": ({"apps/bad.yaml": app(BASE + "components: []")}, "apps/bad.yaml", "spec.components"),
    "variable-without-name": ({"apps/bad.yaml": app(BASE + "variables: [{value: x}]")},
                              "apps/bad.yaml", "spec.variables[0].name"),
    "shim-bad-arch": (
        {"infra/shim.yaml": "apiVersion: runtime.spinkube.dev/v1alpha1\nkind: Shim\nmetadata: {name: s}\n"
         "spec:\n  fetchStrategy:\n    platforms: [{os: linux, arch: sparc, location: x}]\n"
         "  runtimeClass: {name: s, handler: s}\n  rolloutStrategy: {type: recreate}\n"},
        "infra/shim.yaml", "spec.fetchStrategy.platforms[0].arch"),
    "shim-without-runtime-class": (
        {"infra/shim.yaml": "apiVersion: runtime.spinkube.dev/v1alpha1\nkind: Shim\nmetadata: {name: s}\n"
         "spec:\n  fetchStrategy: {anonHttp: {location: x}}\n  rolloutStrategy: {type: recreate}\n"},
        "infra/shim.yaml", "spec.runtimeClass"),
    "shim-rolling-rollout": (
        {"infra/shim.yaml": "apiVersion: runtime.spinkube.dev/v1alpha1\nkind: Shim\nmetadata: {name: s}\n"
         "spec:\n  fetchStrategy: {anonHttp: {location: x}}\n  runtimeClass: {name: s, handler: s}\n"
         "  rolloutStrategy: {type: rolling, rolling: {maxUpdate: 1}}\n"},
        "infra/shim.yaml", "spec.rolloutStrategy.type"),
    "spin-project-tool-table-typo": (
        {"web/spin.toml": SPIN_TOML.replace("[[trigger.http]]", '[application.tool.spindle]\n'
                                            'image = "ghcr.io/example/web:v1"\nreplica = 2\n\n'
                                            "[[trigger.http]]"),
         "web/hello.wasm": ""},
        "web/spin.toml", "application.tool.spindle.replica"),
    "spin-project-missing-wasm": ({"web/spin.toml": SPIN_TOML}, "web/spin.toml", "source"),
    "spin-project-bad-route": ({"web/spin.toml": SPIN_TOML.replace('"/..."', '"/api/.../x"'),
                                "web/hello.wasm": ""}, "web/spin.toml", "route"),
}


@pytest.fixture(scope="module")
def runner() -> CliRunner:
    return CliRunner()


def _repo(tmp_path: Path, files: dict[str, str]) -> Path:
    return write_files(tmp_path, {"good.yaml": GOOD, **files})


def test_the_table_has_at_least_25_cases() -> None:
    assert len(CASES) >= 25


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input(case: str, tmp_path: Path, runner: CliRunner) -> None:
    files, broken, must_mention = CASES[case]
    repo = _repo(tmp_path, files)

    result = runner.invoke(cli, ["validate", str(repo), "-o", "json"])
    assert result.exit_code == 1, result.output
    report = json.loads(result.output)
    assert report["valid"] is False
    mine = [e for e in report["errors"] if e["path"] == broken]
    assert mine, f"no error names {broken}: {report['errors']}"
    if must_mention:
        text = " ".join(f"{e['field']} {e['message']} {e['object']}" for e in mine)
        assert must_mention in text, mine
    else:  # a file that does not parse has no fields yet: the line must be named instead
        assert all(e["line"] for e in mine), mine
    assert not [e for e in report["errors"]
                if e["path"] == "good.yaml" and e["kind"] != "DuplicateObjectError"]

    result = runner.invoke(cli, ["validate", str(repo)])
    assert result.exit_code == 1
    assert broken in result.output

    result = runner.invoke(cli, ["render", str(repo)])
    assert result.exit_code == 1
    assert broken in result.stderr
    docs = result.stdout
    assert "kind: Deployment\nmetadata:\n  name: good-app\n" in docs, "the good app must still render"
