"""Golden tests: one per scenario of spinkube.md section 2. Each `testdata/golden/<scenario>/`
holds the repo input and the objects spin-operator would create, written by hand from the
reference facts; the rendered objects must equal them field for field (after removing spindle's
own managed-by label and source annotation, which are checked to be present)."""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import Any

import certifi
import pytest
import yaml
from spindle_renderlib import decode_secret_data, strip_spindle_marks, tree_from_yaml

from renderers.render import render
from renderers.settings import RenderSettings

GOLDEN = Path(__file__).parent / "testdata" / "golden"
SCENARIOS = sorted(p.name for p in GOLDEN.iterdir() if (p / "expected.yaml").exists())
SETTINGS = RenderSettings(include_crds=False, include_sources=False)


def _expected(scenario: str) -> list[dict[str, Any]]:
    docs = [d for d in yaml.safe_load_all((GOLDEN / scenario / "expected.yaml").read_text()) if d]
    bundle = Path(certifi.where()).read_text()
    for doc in docs:
        if doc["kind"] == "Secret" and doc["data"].get("ca-certificates.crt") == "$CERTIFI_BUNDLE":
            doc["data"]["ca-certificates.crt"] = bundle
    return docs


def _rendered(scenario: str) -> list[dict[str, Any]]:
    text = (GOLDEN / scenario / "input.yaml").read_text()
    tree = tree_from_yaml(text, f"{scenario}/input.yaml")
    result = render(tree, settings=SETTINGS)
    assert result.errors == []
    inputs = {(o.kind, o.name) for o in tree.others}
    return [
        decode_secret_data(strip_spindle_marks(obj))
        for obj in result.objects
        if (obj["kind"], obj["metadata"]["name"]) not in inputs
    ]


def test_every_scenario_of_section_2_has_a_golden_file() -> None:
    wanted = {
        "plain", "variables", "runtime_config", "load_from_secret", "checks", "resources",
        "pod_labels_annotations", "components", "invocation_limits", "service_account",
        "image_pull_secrets", "volumes", "spintainer", "create_deployment_false", "autoscaling",
        "otel", "ca_cert_secret",
    }
    assert wanted <= set(SCENARIOS)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_golden(scenario: str) -> None:
    assert _rendered(scenario) == _expected(scenario)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_runtime_config_secret_name_is_adler32_of_the_toml(scenario: str) -> None:
    for obj in _expected(scenario):
        toml = obj.get("data", {}).get("runtime-config.toml")
        if toml is not None:
            app = obj["metadata"]["labels"]["core.spinkube.dev/app-name"]
            assert obj["metadata"]["name"] == f"{app}-{zlib.adler32(toml.encode()):x}"


def test_app_without_runtime_config_gets_760b133c() -> None:
    objects = _rendered("plain")
    secret = next(o for o in objects if o["metadata"]["name"].startswith("hello-"))
    assert secret["metadata"]["name"] == "hello-760b133c"
