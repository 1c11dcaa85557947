"""Ownership through a running kubesim where it used to differ from the real server: what a manager
stops applying leaves its entry, what an apply sets empty or keys by map key is owned, and a scale
write never takes managedFields from its body. (The engine-level cases are the ported SMD tables
in `test_smd_merge`.)"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from kubesim_fixtures import Raw, crd_manifest, deployment

from kubesim.bodies import APPLY

URL = "/apis/owners.example.com/v1/namespaces/default/things"
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "properties": {
                "struct": {
                    "type": "object",
                    "properties": {"name": {"type": "string"}, "value": {"type": "integer"}},
                },
                "lists": {
                    "type": "object",
                    "additionalProperties": {
                        "type": "array",
                        "x-kubernetes-list-type": "set",
                        "items": {"type": "string"},
                    },
                },
                "empty": {"type": "object", "properties": {"inner": {"type": "string"}}},
                "other": {"type": "string"},
            },
        }
    },
}


@pytest.fixture(scope="module")
def things(raw_module: Raw) -> Iterator[Raw]:
    crd = crd_manifest("owners.example.com", "Thing", "things", SCHEMA)
    assert (
        raw_module.request("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)[0] == 201
    )
    yield raw_module


@pytest.fixture(scope="module")
def raw_module(running: Any) -> Iterator[Raw]:
    client = Raw(running)
    yield client
    client.close()


def _apply(raw: Raw, name: str, spec: dict[str, Any] | None, manager: str = "a") -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "owners.example.com/v1",
        "kind": "Thing",
        "metadata": {"name": name},
    }
    if spec is not None:
        body["spec"] = spec
    code, obj = raw.request("PATCH", f"{URL}/{name}?fieldManager={manager}", json.dumps(body), APPLY)
    assert code in (200, 201), obj
    return dict(obj)


def _owned(obj: dict[str, Any], manager: str = "a") -> Any:
    for e in obj["metadata"].get("managedFields") or []:
        if e["manager"] == manager:
            return e["fieldsV1"]
    return None


def test_whole_spec_dropped_leaves_no_ownership(things: Raw) -> None:
    _apply(things, "drop-spec", {"struct": {"name": "x", "value": 1}, "other": "o"})
    obj = _apply(things, "drop-spec", None)
    assert "spec" not in obj and _owned(obj) is None


def test_struct_children_removed_leave_no_ownership(things: Raw) -> None:
    _apply(things, "drop-children", {"struct": {"name": "x", "value": 1}, "other": "o"})
    obj = _apply(things, "drop-children", {"other": "o"})
    assert obj["spec"] == {"other": "o"}
    assert _owned(obj) == {"f:spec": {"f:other": {}}}


def test_entries_of_a_removed_map_key_go_with_it(things: Raw) -> None:
    first = _apply(things, "map-key", {"lists": {"a": ["1", "2"]}})
    assert _owned(first) == {"f:spec": {"f:lists": {"f:a": {".": {}, 'v:"1"': {}, 'v:"2"': {}}}}}
    obj = _apply(things, "map-key", {"lists": {"b": ["3"]}})
    assert obj["spec"]["lists"] == {"b": ["3"]}  # not {"a": [], "b": [...]}
    assert _owned(obj) == {"f:spec": {"f:lists": {"f:b": {".": {}, 'v:"3"': {}}}}}


def test_empty_struct_is_owned_and_dropping_it_removes_it(things: Raw) -> None:
    obj = _apply(things, "empty-struct", {"empty": {}, "other": "o"})
    assert obj["spec"]["empty"] == {}
    assert _owned(obj) == {"f:spec": {"f:empty": {}, "f:other": {}}}
    obj = _apply(things, "empty-struct", {"other": "o"})
    assert "empty" not in obj["spec"]


def test_scale_put_ignores_managed_fields_in_its_body(things: Raw) -> None:
    url = "/apis/apps/v1/namespaces/default/deployments/scale-mf"
    code, live = things.request("PATCH", url + "?fieldManager=a", json.dumps(deployment("scale-mf")), APPLY)
    assert code == 201
    scale = {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": "scale-mf",
            "namespace": "default",
            "managedFields": [
                {
                    "manager": "intruder",
                    "operation": "Update",
                    "apiVersion": "apps/v1",
                    "fieldsType": "FieldsV1",
                    "fieldsV1": {"f:spec": {"f:paused": {}}},
                }
            ],
        },
        "spec": {"replicas": 4},
    }
    assert things.request("PUT", url + "/scale?fieldManager=scaler", scale)[0] == 200
    got = things.request("GET", url)[1]
    entries = got["metadata"]["managedFields"]
    assert [(e["manager"], e.get("subresource", "")) for e in entries] == [("a", ""), ("scaler", "scale")]
    assert entries[1]["fieldsV1"] == {"f:spec": {"f:replicas": {}}}
    assert "f:replicas" not in entries[0]["fieldsV1"]["f:spec"]
    assert live["metadata"]["managedFields"][0]["manager"] == "a"
