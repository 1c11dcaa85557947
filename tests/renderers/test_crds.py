"""The CRDs spindle renders, their schema validation and defaulting."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from renderers.crds import all_crds, apply_defaults, validate
from renderers.crds.validation import _validator, fast_check
from renderers.errors import Location
from renderers.model import SourceDoc

APP = yaml.safe_load("""
apiVersion: core.spinkube.dev/v1alpha1
kind: SpinApp
metadata: {name: a, namespace: n}
spec:
  image: x
  executor: e
  replicas: 1
  checks: {liveness: {httpGet: {path: /, httpHeaders: [{name: a, value: b}]}}}
  variables: [{name: v, valueFrom: {secretKeyRef: {name: s, key: k}}}]
  resources: {limits: {cpu: 1, memory: 1Gi}}
  volumes: [{name: d, emptyDir: {}}]
  volumeMounts: [{name: d, mountPath: /d}]
  runtimeConfig:
    keyValueStores: [{name: default, type: spin, options: [{name: path, value: /x}]}]
    llmCompute: {type: remote_http, options: [{name: url, value: http://x}]}
""")


def _crd(kind: str) -> dict[str, Any]:
    return next(c for c in all_crds() if c["spec"]["names"]["kind"] == kind)


def test_crd_identities() -> None:
    identities = {
        (c["metadata"]["name"], c["spec"]["group"], c["spec"]["scope"], c["spec"]["names"]["plural"])
        for c in all_crds()
    }
    assert identities == {
        ("spinapps.core.spinkube.dev", "core.spinkube.dev", "Namespaced", "spinapps"),
        ("spinappexecutors.core.spinkube.dev", "core.spinkube.dev", "Namespaced", "spinappexecutors"),
        ("shims.runtime.spinkube.dev", "runtime.spinkube.dev", "Cluster", "shims"),
    }
    assert _crd("SpinApp")["spec"]["versions"][0]["subresources"] == {"status": {}}
    assert _crd("SpinAppExecutor")["spec"]["versions"][0]["subresources"] == {"status": {}}
    assert _crd("Shim")["spec"]["versions"][0]["subresources"] == {}  # RCM: no status subresource


def test_printer_columns() -> None:
    def columns(kind: str) -> list[tuple[str, str]]:
        version = _crd(kind)["spec"]["versions"][0]
        return [(c["name"], c["jsonPath"]) for c in version["additionalPrinterColumns"]]

    app_cols = columns("SpinApp")
    assert app_cols[:3] == [("Ready", ".status.readyReplicas"), ("Desired", ".spec.replicas"),
                            ("Executor", ".spec.executor")]
    shim_cols = columns("Shim")
    assert shim_cols == [("RuntimeClass", ".spec.runtimeClass.name"), ("Ready", ".status.nodesReady"),
                         ("Nodes", ".status.nodes")]


def test_required_fields() -> None:
    def spec(kind: str) -> dict[str, Any]:
        schema: dict[str, Any] = _crd(kind)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        return schema["properties"]["spec"]  # type: ignore[no-any-return]

    assert spec("SpinApp")["required"] == ["image"]
    assert spec("SpinAppExecutor")["required"] == ["createDeployment"]
    assert spec("Shim")["required"] == ["fetchStrategy", "rolloutStrategy", "runtimeClass"]


def test_defaults_are_applied_without_touching_the_input() -> None:
    body = copy.deepcopy(APP)
    body["spec"]["imagePullSecrets"] = [{}]
    defaulted = apply_defaults(body)
    assert "enableAutoscaling" not in body["spec"]
    spec = defaulted["spec"]
    assert spec["enableAutoscaling"] is False
    assert spec["imagePullSecrets"] == [{"name": ""}]
    probe = spec["checks"]["liveness"]
    assert (probe["initialDelaySeconds"], probe["timeoutSeconds"], probe["periodSeconds"],
            probe["successThreshold"], probe["failureThreshold"]) == (10, 1, 10, 1, 3)
    assert spec["variables"][0]["valueFrom"]["secretKeyRef"] == {"name": "s", "key": "k"}


def _mutations() -> list[tuple[str, Any]]:
    return [
        ("spec.image", None), ("spec.replicas", "1"), ("spec.replicas", 2**31), ("spec.replicas", True),
        ("spec.replicas", 1.0), ("spec.enableAutoscaling", "yes"), ("spec.components", []),
        ("spec.components", ["a", 1]), ("spec.podLabels", {"a": 1}), ("spec.resources.limits.cpu", "1x"),
        ("spec.resources.limits.cpu", 0.5), ("spec.resources.limits.cpu", True), ("spec.bogus", 1),
        ("spec.checks.liveness.httpGet.path", None), ("spec.checks.liveness.httpGet.httpHeaders", [{}]),
        ("spec.variables", [{"value": "x"}]), ("spec.volumes", [{"emptyDir": {}}]),
        ("spec.volumes", [{"name": "x", "anything": {"goes": 1}}]), ("spec.volumeMounts", [{"name": "d"}]),
        ("spec.runtimeConfig.llmCompute.type", None), ("spec.runtimeConfig.keyValueStores", [{"name": "x"}]),
        ("spec.runtimeConfig.loadFromSecret", 3), ("metadata.whatever", 1),
        ("status", {"readyReplicas": "x"}),
        ("spec", []), ("spec.invocationLimits", {"memory": 128}),
    ]


def _set(body: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    body = copy.deepcopy(body)
    *parents, last = path.split(".")
    node = body
    for part in parents:
        node = node.setdefault(part, {})
    if value is None:
        node.pop(last, None)
    else:
        node[last] = value
    return body


@pytest.mark.parametrize(("path", "value"), _mutations())
def test_fast_check_agrees_with_jsonschema(path: str, value: Any) -> None:
    body = _set(APP, path, value)
    quick = fast_check("core.spinkube.dev/v1alpha1", "SpinApp")
    full = _validator("core.spinkube.dev/v1alpha1", "SpinApp")
    assert quick is not None and full is not None
    assert quick(body) == (not list(full.iter_errors(body)))


def test_errors_name_the_line_of_the_field() -> None:
    body = _set(APP, "spec.replicas", "two")
    doc = SourceDoc(body, Location("apps/a.yaml", 1), {"spec": 5, "spec.replicas": 8})
    (error,) = validate(doc)
    location = error.location
    assert (location.path, location.line, location.field) == ("apps/a.yaml", 8, "spec.replicas")
    assert error.obj == "SpinApp/n/a"


def test_every_error_is_reported_at_once() -> None:
    body = _set(_set(_set(APP, "spec.image", None), "spec.replicas", "x"), "spec.typo", 1)
    fields = sorted(e.location.field or "" for e in validate(SourceDoc(body, Location("a.yaml"))))
    assert fields == ["spec.image", "spec.replicas", "spec.typo"]


def test_map_keys_with_dots_keep_the_discovery_path_form() -> None:
    body = _set(APP, "spec.podLabels", {"app.kubernetes.io/name": 3})
    doc = SourceDoc(body, Location("a.yaml", 1), {"spec.podLabels.app.kubernetes.io/name": 12})
    (error,) = validate(doc)
    assert (error.location.field, error.location.line) == ("spec.podLabels.app.kubernetes.io/name", 12)


@pytest.mark.parametrize(
    "path, value, expected",
    [
        ("spec.exector", "e", "unknown field(s): exector (did you mean 'executor'?)"),
        ("spec.replica", 2, "unknown field(s): replica (did you mean 'replicas'?)"),
        ("spec.zzz", 1, "unknown field(s): zzz"),
        # `executor:` written at column 0: it belongs under spec.
        ("executor", "e", "unknown field(s): executor (a field of spec: check the indentation)"),
        ("spec.checks.liveness.httpGet.paht", "/", "unknown field(s): paht (did you mean 'path'?)"),
    ],
)
def test_unknown_fields_suggest_the_likely_one(path: str, value: Any, expected: str) -> None:
    (error,) = validate(SourceDoc(_set(APP, path, value), Location("a.yaml")))
    assert error.message == expected and error.location.field == path


@pytest.mark.parametrize(
    "value, expected",
    [
        (8080, "must be string, got integer (quote it: \"8080\")"),
        (True,
         "must be string, got boolean (quote it: YAML reads unquoted true/false/yes/no/on/off as booleans)"),
        (1.5, "must be string, got number (quote it: \"1.5\")"),
        ([1], "must be string, got list"),
    ],
)
def test_a_scalar_where_a_string_belongs_says_to_quote_it(value: Any, expected: str) -> None:
    body = copy.deepcopy(APP)
    body["spec"]["variables"] = [{"name": "port", "value": value}]
    (error,) = validate(SourceDoc(body, Location("a.yaml")))
    assert (error.location.field, error.message) == ("spec.variables[0].value", expected)


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        ("spec.variables", {"greeting": "hi"}, "must be list, got mapping"),
        ("spec.podLabels", ["a"], "must be mapping, got list"),
        ("spec.checks.liveness.httpGet", "/health", "must be mapping, got string"),
        ("spec.replicas", None, None),  # removed: not an error
        ("spec.replicas", "2", "must be integer, got string"),
    ],
)
def test_type_errors_use_yaml_words(path: str, value: Any, expected: str | None) -> None:
    errors = validate(SourceDoc(_set(APP, path, value), Location("a.yaml")))
    assert [e.message for e in errors] == ([expected] if expected else [])
