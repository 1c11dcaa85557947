"""What the API server would reject in any object's metadata (unknown fields) or in ConfigMap
and Secret data (over 1 MiB, values that are not strings) is an error at render time, naming
the file, field and object, instead of failing at apply; the other objects still render."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from spindle_renderlib import tree_from_docs

from renderers.errors import DocumentError
from renderers.render import render
from renderers.settings import RenderSettings

SETTINGS = RenderSettings(include_crds=False, include_sources=False)
MIB = 1024 * 1024


def _obj(kind: str, **fields: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": kind, "metadata": {"name": "big", "namespace": "n"}, **fields}


@pytest.mark.parametrize(
    ("obj", "too_big"),
    [
        (_obj("ConfigMap", data={"k": "x" * (MIB - 1)}), False),  # key + value = exactly 1 MiB
        (_obj("ConfigMap", data={"k": "x" * MIB}), True),
        (_obj("ConfigMap", data={"a": "x" * (MIB // 2)},
              binaryData={"b": base64.b64encode(b"y" * (MIB // 2)).decode()}), True),
        (_obj("Secret", data={"k": base64.b64encode(b"x" * MIB).decode()}), False),  # values only
        (_obj("Secret", data={"k": base64.b64encode(b"x" * (MIB + 1)).decode()}), True),
        (_obj("Secret", stringData={"k": "x" * (MIB + 1)}), True),
        (_obj("Secret", data={"k": base64.b64encode(b"x" * MIB).decode()}, stringData={"s": "y"}), True),
        (_obj("Secret", data={"k": "not base64!"}), False),  # its encoding is the API server's to judge
    ],
)
def test_oversized_config_maps_and_secrets(obj: dict[str, Any], too_big: bool) -> None:
    small = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "small", "namespace": "n"}}
    result = render(tree_from_docs([obj, small], "k8s/big.yaml"), settings=SETTINGS)
    names = sorted(o["metadata"]["name"] for o in result.objects)
    if not too_big:
        assert result.errors == [] and names == ["big", "small"]
        return
    assert names == ["small"]
    (error,) = result.errors
    assert isinstance(error, DocumentError)
    assert error.location.path == "k8s/big.yaml" and error.obj == f"{obj['kind']}/n/big"
    assert "at most 1048576 bytes (1 MiB)" in error.message


def test_unquoted_numbers_and_booleans_in_data_are_all_named() -> None:
    # `PORT: 8080` in a ConfigMap is the classic: kubectl rejects the whole object at apply.
    docs = [
        _obj("ConfigMap", data={"PORT": 8080, "DEBUG": True, "name": "x", "RATIO": 0.5}),
        {**_obj("Secret", stringData={"pin": 1234, "ok": "y"}), "metadata": {"name": "s", "namespace": "n"}},
        {**_obj("ConfigMap", data={"a": "1", "empty": None}), "metadata": {"name": "fine", "namespace": "n"}},
    ]
    result = render(tree_from_docs(docs, "k8s/cm.yaml"), settings=SETTINGS)
    assert [o["metadata"]["name"] for o in result.objects] == ["fine"]
    got = sorted((e.obj, e.location.field, e.message) for e in result.errors)
    assert got == [
        ("ConfigMap/n/big", "data.DEBUG", 'ConfigMap data values must be strings: quote true as "true"'),
        ("ConfigMap/n/big", "data.PORT", 'ConfigMap data values must be strings: quote 8080 as "8080"'),
        ("ConfigMap/n/big", "data.RATIO", 'ConfigMap data values must be strings: quote 0.5 as "0.5"'),
        ("Secret/n/s", "stringData.pin", 'Secret stringData values must be strings: quote 1234 as "1234"'),
    ]


@pytest.mark.parametrize(
    ("kind", "api_version"),
    [("ConfigMap", "v1"), ("SpinApp", "core.spinkube.dev/v1alpha1"), ("Widget", "example.com/v1")],
)
def test_a_misspelt_metadata_field_is_an_error_not_a_silent_default(kind: str, api_version: str) -> None:
    # `namespce: prod` would otherwise put the object in the default namespace.
    doc = {"apiVersion": api_version, "kind": kind, "metadata": {"name": "m", "namespce": "prod"},
           "spec": {"image": "x", "executor": "e", "replicas": 1}}
    result = render(tree_from_docs([doc], "k8s/m.yaml"), settings=SETTINGS)
    assert result.objects == []
    (error,) = result.errors
    assert error.location.field == "metadata.namespce"
    assert error.message == "unknown field metadata.namespce (did you mean 'namespace'?)"
