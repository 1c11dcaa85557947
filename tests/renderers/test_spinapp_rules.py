"""Table tests for the pure pieces behind SpinApp rendering: quantities, go-toml bytes, the
admission-webhook rules (including the mutating webhook's executor default) and reference
resolution."""

from __future__ import annotations

import base64
import zlib
from fractions import Fraction

import pytest
from spindle_renderlib import tree_from_yaml

from renderers.errors import UnresolvedReferenceError, WebhookRuleError
from renderers.quantity import QuantityError, canonical_quantity, parse_quantity, quantity_value
from renderers.render import render
from renderers.settings import RenderSettings
from renderers.spinapp import gotoml

SETTINGS = RenderSettings(include_crds=False, include_sources=False)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("128Mi", 134217728), ("1Gi", 2**30), ("1G", 10**9), ("1.5Gi", 3 * 2**29), ("500m", 1),
        ("100k", 100_000), ("1e3", 1000), ("1E-3", 1), ("0.1", 1), (".5Ki", 512), ("+2", 2),
        ("-1", -1), ("12345", 12345), (64, 64), ("2Ei", 2 * 2**60), ("1n", 1),
    ],
)
def test_quantity_value_rounds_up_like_apimachinery(text: str | int, value: int) -> None:
    assert quantity_value(text) == value


def test_quantities_are_exact() -> None:
    assert parse_quantity("500m") == Fraction(1, 2)
    assert parse_quantity("1.1") == Fraction(11, 10)


@pytest.mark.parametrize("text", ["", "Mi", "1.2.3", "1 Mi", "12mi", "1KB", "lots", "1e", " 1"])
def test_bad_quantities(text: str) -> None:
    with pytest.raises(QuantityError):
        parse_quantity(text)


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        ("plain", "'plain'"),
        ("", "''"),
        ("it's", '"it\'s"'),
        ("a\nb", '"a\\nb"'),
        ("tab\there", "'tab\there'"),  # a tab stays in a literal string
        ("back\\slash", "'back\\slash'"),  # literal: no escaping needed
        ("quote's and \\", '"quote\'s and \\\\"'),
        ("bell\x07", '"bell\\u0007"'),
        ("del\x7f", '"del\\u007F"'),
        ("ünïcode", "'ünïcode'"),
        ('dq"', "'dq\"'"),
    ],
)
def test_go_toml_strings(value: str, encoded: str) -> None:
    assert gotoml.encode_string(value) == encoded


@pytest.mark.parametrize(
    ("key", "encoded"),
    [("default", "default"), ("my-store_1", "my-store_1"), ("my.store", "'my.store'"), ("", "''"),
     ("it's", '"it\'s"'), ("a b", "'a b'")],
)
def test_go_toml_keys(key: str, encoded: str) -> None:
    assert gotoml.encode_key(key) == encoded


def test_go_toml_tables_and_arrays() -> None:
    root = gotoml.Table(tables=[
        ("config_provider", [gotoml.Table(kvs=[("type", "env")]), gotoml.Table(kvs=[("type", "vault")])]),
        ("key_value_store",
         gotoml.Table.of_maps({"b": {"type": "spin"}, "a.b": {"url": "u", "type": "redis"}})),
    ])
    assert gotoml.marshal(root).decode() == (
        "[[config_provider]]\ntype = 'env'\n\n[[config_provider]]\ntype = 'vault'\n\n"
        "[key_value_store]\n[key_value_store.'a.b']\ntype = 'redis'\nurl = 'u'\n\n"
        "[key_value_store.b]\ntype = 'spin'\n"
    )


EXECUTORS = """
apiVersion: core.spinkube.dev/v1alpha1
kind: SpinAppExecutor
metadata: {name: zeta, namespace: apps}
spec: {createDeployment: true, deploymentConfig: {runtimeClassName: rc}}
---
apiVersion: core.spinkube.dev/v1alpha1
kind: SpinAppExecutor
metadata: {name: alpha, namespace: elsewhere}
spec: {createDeployment: true, deploymentConfig: {runtimeClassName: rc}}
"""


def _app(namespace: str, executor: str = "", extra: str = "") -> str:
    line = f"  executor: {executor}\n" if executor else ""
    return f"""
---
apiVersion: core.spinkube.dev/v1alpha1
kind: SpinApp
metadata: {{name: web, namespace: {namespace}}}
spec:
  image: img
  replicas: 1
{line}{extra}"""


def test_mutating_webhook_defaults_to_smallest_name_across_namespaces_then_validator_rejects() -> None:
    # `alpha` (namespace elsewhere) sorts first, so an app in `apps` is defaulted to it and rejected.
    result = render(tree_from_yaml(EXECUTORS + _app("apps")), settings=SETTINGS)
    (error,) = result.errors
    assert isinstance(error, WebhookRuleError)
    assert error.location.field == "spec.executor"
    assert "apps/alpha" in error.message and "defaulted" in error.message


@pytest.mark.parametrize(
    ("executor", "hint"),
    [
        ("alpha", "the repo defines alpha only in namespace elsewhere"),  # the wrong namespace
        ("zeat", "did you mean 'zeta'?"),  # a typo of the one in the app's namespace
        ("nothing-like-it", None),
    ],
)
def test_missing_executor_says_where_one_is(executor: str, hint: str | None) -> None:
    result = render(tree_from_yaml(EXECUTORS + _app("apps", executor)), settings=SETTINGS)
    (error,) = result.errors
    assert isinstance(error, WebhookRuleError) and error.location.field == "spec.executor"
    assert f"SpinAppExecutor apps/{executor} does not exist in the app's namespace" in error.message
    if hint is None:
        assert "did you mean" not in error.message and "the repo defines" not in error.message
    else:
        assert hint in error.message


def test_defaulted_executor_in_the_same_namespace_renders() -> None:
    result = render(tree_from_yaml(EXECUTORS + _app("elsewhere")), settings=SETTINGS)
    assert result.errors == []
    deployment = next(o for o in result.objects if o["kind"] == "Deployment")
    assert deployment["spec"]["template"]["spec"]["runtimeClassName"] == "rc"


def test_no_executor_at_all() -> None:
    result = render(tree_from_yaml(_app("apps")), settings=SETTINGS)
    (error,) = result.errors
    assert "executor must be set" in error.message


def test_invocation_memory_equal_to_limit_is_allowed() -> None:
    extra = "  invocationLimits: {memory: 128Mi}\n  resources: {limits: {memory: 134217728}}\n"
    result = render(tree_from_yaml(EXECUTORS + _app("apps", "zeta", extra)), settings=SETTINGS)
    assert result.errors == []


def test_references_resolve_from_repo_secrets_data_and_string_data() -> None:
    url = base64.b64encode(b"redis://r").decode()
    refs = f"""
---
apiVersion: v1
kind: Secret
metadata: {{name: s, namespace: apps}}
data: {{url: {url}}}
stringData: {{token: t0k}}
"""
    extra = """  runtimeConfig:
    keyValueStores:
    - name: default
      type: redis
      options:
      - {name: url, valueFrom: {secretKeyRef: {name: s, key: url}}}
      - {name: token, valueFrom: {secretKeyRef: {name: s, key: token}}}
"""
    result = render(tree_from_yaml(EXECUTORS + refs + _app("apps", "zeta", extra)), settings=SETTINGS)
    assert result.errors == []
    toml = ("[[config_provider]]\ntype = 'env'\nprefix = 'SPIN_VARIABLE_'\n\n"
            "[key_value_store]\n[key_value_store.default]\ntoken = 't0k'\ntype = 'redis'\nurl = 'redis://r'\n")
    secret = next(o for o in result.objects if o["kind"] == "Secret" and o["metadata"]["name"] != "s")
    assert secret["metadata"]["name"] == f"web-{zlib.adler32(toml.encode()):x}"
    assert base64.b64decode(secret["data"]["runtime-config.toml"]).decode() == toml


def test_reference_in_another_namespace_is_not_used() -> None:
    refs = "\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: other}\ndata: {k: v}\n"
    extra = ("  runtimeConfig:\n    llmCompute:\n      type: remote_http\n      options:\n"
             "      - {name: url, valueFrom: {configMapKeyRef: {name: c, key: k}}}\n")
    result = render(tree_from_yaml(EXECUTORS + refs + _app("apps", "zeta", extra)), settings=SETTINGS)
    (error,) = result.errors
    assert isinstance(error, UnresolvedReferenceError)
    assert "ConfigMap apps/c" in error.message
    assert error.location.field == "spec.runtimeConfig.llmCompute.options[0].valueFrom.configMapKeyRef.name"
    assert [o["kind"] for o in result.objects] == ["ConfigMap"]  # the app's objects are left out


def test_a_committed_spin_ca_wins_over_the_generated_one() -> None:
    executor = EXECUTORS.replace("rc}}", "rc, installDefaultCACerts: true}}", 1)
    own_ca = "\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: spin-ca, namespace: apps}\ndata: {}\n"
    with_own = render(tree_from_yaml(executor + own_ca + _app("apps", "zeta")), settings=SETTINGS)
    without = render(tree_from_yaml(executor + _app("apps", "zeta")), settings=SETTINGS)
    cas = [o for o in with_own.objects if o["metadata"]["name"] == "spin-ca"]
    assert len(cas) == 1 and cas[0]["data"] == {}
    generated = [o for o in without.objects if o["metadata"]["name"] == "spin-ca"]
    assert len(generated) == 1 and generated[0]["data"]["ca-certificates.crt"]


@pytest.mark.parametrize(
    ("config", "mounted", "created"),
    [
        ("", None, None),
        (", installDefaultCACerts: true", "spin-ca", "spin-ca"),
        (", caCertSecret: corp-ca", "corp-ca", None),  # the user's Secret, mounted only
        (", caCertSecret: corp-ca, installDefaultCACerts: true", "corp-ca", "corp-ca"),
    ],
)
def test_ca_secret_mounted_and_created_as_the_operator_does(
    config: str, mounted: str | None, created: str | None
) -> None:
    executor = EXECUTORS.replace("rc}}", "rc" + config + "}}", 1)
    result = render(tree_from_yaml(executor + _app("apps", "zeta")), settings=SETTINGS)
    assert result.errors == []
    (deployment,) = (o for o in result.objects if o["kind"] == "Deployment")
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    assert (volumes["spin-ca"]["secret"]["secretName"] if "spin-ca" in volumes else None) == mounted
    bundles = [o["metadata"]["name"] for o in result.objects if "ca-certificates.crt" in o.get("data", {})]
    assert bundles == ([created] if created else [])


def test_one_spin_ca_per_namespace_for_many_apps() -> None:
    executor = EXECUTORS.replace("rc}}", "rc, installDefaultCACerts: true}}", 1)
    apps = _app("apps", "zeta") + _app("apps", "zeta").replace("name: web", "name: api")
    result = render(tree_from_yaml(executor + apps), settings=SETTINGS)
    assert result.errors == []
    assert sum(o["metadata"]["name"] == "spin-ca" for o in result.objects) == 1


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("0.5", "500m"), ("1000", "1k"), ("1.5Gi", "1536Mi"), ("1536", "1536"), ("128Mi", "128Mi"),
        ("1024Mi", "1Gi"), ("0.5Ki", "512"), ("1000M", "1G"), ("1.5e3", "1500"), ("12e6", "12e6"),
        ("500000m", "500"), ("0.1n", "1n"), ("0", "0"), ("0Mi", "0"), (2, "2"), ("-1k", "-1k"),
    ],
)
def test_canonical_quantities_like_the_api_server(text: str | int, canonical: str) -> None:
    assert canonical_quantity(text) == canonical


@pytest.mark.parametrize(
    ("api_version", "kind", "needle"),
    [
        ("core.spinkube.dev/v1alpha1", "SpinAppz", "unknown kind 'SpinAppz'"),
        ("core.spinoperator.dev/v1alpha1", "SpinApp", "old API group core.spinoperator.dev"),
        ("runtime.kwasm.sh/v1alpha1", "Widget", "old API group runtime.kwasm.sh"),
        ("extras.spinkube.dev/v1", "Widget", "not a served version"),
    ],
)
def test_spinkube_objects_spindle_cannot_render_are_not_passed_through(
    api_version: str, kind: str, needle: str
) -> None:
    # A tree built without discovery (as other callers may) gets the same check as discovery.
    doc = f"apiVersion: {api_version}\nkind: {kind}\nmetadata: {{name: x, namespace: apps}}\n"
    tree = tree_from_yaml(doc)
    tree.spinapps, tree.others = [], [*tree.spinapps, *tree.others]
    result = render(tree, settings=SETTINGS)
    assert result.objects == []
    (error,) = result.errors
    assert needle in error.message and error.location.field == "apiVersion"


@pytest.mark.parametrize(
    ("data", "renders"),
    [
        ("data: {k: cmVkaXM6Ly94}", True),  # base64 of redis://x
        ("stringData: {k: redis://x}", True),
        ("data: {k: /w==}", False),  # base64 of the byte 0xff: not UTF-8
        ("data: {k: not-base64!}", False),
        ("data: {other: cmVkaXM6Ly94}", False),
    ],
)
def test_runtime_config_values_from_secrets_must_be_utf8_text(data: str, renders: bool) -> None:
    secret = f"\n---\napiVersion: v1\nkind: Secret\nmetadata: {{name: s, namespace: apps}}\n{data}\n"
    extra = ("  runtimeConfig:\n    keyValueStores:\n    - name: default\n      type: redis\n"
             "      options:\n      - {name: url, valueFrom: {secretKeyRef: {name: s, key: k}}}\n")
    result = render(tree_from_yaml(EXECUTORS + secret + _app("apps", "zeta", extra)), settings=SETTINGS)
    if renders:
        assert result.errors == []
        (toml,) = (o["data"]["runtime-config.toml"] for o in result.objects if o["metadata"]["name"] != "s"
                   and o["kind"] == "Secret")
        assert "url = 'redis://x'" in base64.b64decode(toml).decode()
    else:
        (error,) = result.errors
        assert isinstance(error, UnresolvedReferenceError)
        assert "Secret apps/s has no key 'k' holding UTF-8 text" in error.message
        option = "spec.runtimeConfig.keyValueStores[0].options[0]"
        assert error.location.field == option + ".valueFrom.secretKeyRef.key"
