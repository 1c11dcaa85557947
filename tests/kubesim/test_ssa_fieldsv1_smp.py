"""FieldsV1 encoding/decoding and strategic merge patch of the SSA engine (kubesim.ssa)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from kubesim import ssa
from kubesim.schema import schema_for
from kubesim.ssa import fieldpath as fp

DEPLOY = schema_for("apps/v1", "Deployment")
assert DEPLOY is not None

# A kubectl-create entry as a real API server writes it (key order included).
REAL = (
    '{"f:metadata":{"f:labels":{".":{},"f:app":{}}},"f:spec":{"f:progressDeadlineSeconds":{},'
    '"f:replicas":{},"f:revisionHistoryLimit":{},"f:selector":{},"f:strategy":{"f:rollingUpdate":'
    '{".":{},"f:maxSurge":{},"f:maxUnavailable":{}},"f:type":{}},"f:template":{"f:metadata":'
    '{"f:labels":{".":{},"f:app":{}}},"f:spec":{"f:containers":{"k:{\\"name\\":\\"nginx\\"}":'
    '{".":{},"f:image":{},"f:imagePullPolicy":{},"f:name":{},"f:ports":{".":{},'
    '"k:{\\"containerPort\\":80,\\"protocol\\":\\"TCP\\"}":{".":{},"f:containerPort":{},'
    '"f:protocol":{}}},"f:resources":{},"f:terminationMessagePath":{},"f:terminationMessagePolicy":{}}},'
    '"f:dnsPolicy":{},"f:restartPolicy":{},"f:schedulerName":{},"f:securityContext":{},'
    '"f:terminationGracePeriodSeconds":{}}}}}'
)


def compact(v: Any) -> str:
    return json.dumps(v, separators=(",", ":"), ensure_ascii=False)


def test_real_fieldsv1_round_trips_byte_for_byte() -> None:
    fs = ssa.decode_fields_v1(json.loads(REAL))
    assert compact(ssa.encode_fields_v1(fs)) == REAL


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        # key fields are re-sorted by name; '.' comes first
        ({'k:{"protocol":"TCP","containerPort":80}': {}}, ['k:{"containerPort":80,"protocol":"TCP"}']),
        # numbers order numerically, before strings (SMD value.Compare)
        (
            {'k:{"port":443}': {}, 'k:{"port":80}': {}, 'k:{"port":"x"}': {}},
            ['k:{"port":80}', 'k:{"port":443}', 'k:{"port":"x"}'],
        ),
        # field names before keys before values before indices
        ({"i:0": {}, 'v:"a"': {}, 'k:{"a":1}': {}, "f:z": {}}, ["f:z", 'k:{"a":1}', 'v:"a"', "i:0"]),
        ({"f:b": {}, "f:B": {}, "f:a": {}}, ["f:B", "f:a", "f:b"]),
        ({"v:true": {}, "v:false": {}, "v:2": {}}, ["v:2", "v:false", "v:true"]),
    ],
)
def test_encode_orders_like_the_api_server(given: dict[str, Any], expected: list[str]) -> None:
    assert list(ssa.encode_fields_v1(ssa.decode_fields_v1(given))) == expected


@pytest.mark.parametrize(
    ("value", "pe"),
    [
        ({"name": "a<b>&c"}, 'k:{"name":"a\\u003cb\\u003e\\u0026c"}'),
        ({"name": "é"}, 'k:{"name":"é"}'),
        ({"b": True, "a": 1}, 'k:{"a":1,"b":true}'),
    ],
)
def test_key_json_is_go_encoding(value: dict[str, Any], pe: str) -> None:
    assert fp.key_pe(value) == pe


@pytest.mark.parametrize(
    ("path", "text"),
    [
        (("f:spec", "f:replicas"), ".spec.replicas"),
        (("f:spec", 'k:{"containerPort":80,"protocol":"TCP"}'), '.spec[containerPort=80,protocol="TCP"]'),
        (("f:metadata", "f:finalizers", 'v:"a/b"'), '.metadata.finalizers[="a/b"]'),
        (("f:items", "i:3"), ".items[3]"),
    ],
)
def test_path_strings_match_fieldpath_string(path: tuple[str, ...], text: str) -> None:
    assert fp.path_string(path) == text


def test_member_with_children_keeps_dot_and_leaf_is_empty_object() -> None:
    fs: fp.FieldSet = {}
    fp.insert(fs, ("f:a",))
    fp.insert(fs, ("f:a", "f:b"))
    fp.insert(fs, ("f:c",))
    assert ssa.encode_fields_v1(fs) == {"f:a": {".": {}, "f:b": {}}, "f:c": {}}


@pytest.mark.parametrize("bad", [[], {"x:foo": {}}, {"f:a": 1}, {'k:{"a":': {}}, {"k:[]": {}}])
def test_decode_rejects_malformed(bad: Any) -> None:
    with pytest.raises(fp.FieldsV1Error):
        ssa.decode_fields_v1(bad)


def test_set_algebra() -> None:
    a = ssa.decode_fields_v1({"f:a": {".": {}, "f:b": {}}, "f:c": {}})
    b = ssa.decode_fields_v1({"f:a": {}, "f:d": {}})
    assert ssa.encode_fields_v1(fp.union(a, b)) == {"f:a": {".": {}, "f:b": {}}, "f:c": {}, "f:d": {}}
    assert ssa.encode_fields_v1(fp.intersection(a, b)) == {"f:a": {}}
    assert ssa.encode_fields_v1(fp.difference(a, b)) == {"f:a": {"f:b": {}}, "f:c": {}}
    assert ssa.encode_fields_v1(fp.recursive_difference(a, b)) == {"f:c": {}}
    assert list(fp.iter_paths(a)) == [("f:a",), ("f:c",), ("f:a", "f:b")]


# --- strategic merge patch ------------------------------------------------------------------------

LIVE: dict[str, Any] = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web", "labels": {"a": "1", "b": "2"}, "finalizers": ["x"]},
    "spec": {
        "replicas": 1,
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}},
        "template": {
            "spec": {
                "containers": [
                    {
                        "name": "web",
                        "image": "nginx:1",
                        "args": ["a", "b"],
                        "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                        "ports": [{"containerPort": 80, "protocol": "TCP"}],
                    },
                    {"name": "side", "image": "busybox"},
                ],
            }
        },
    },
}


def containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    return list(obj["spec"]["template"]["spec"]["containers"])


def smp(patch: dict[str, Any]) -> dict[str, Any]:
    before = json.dumps(LIVE)
    out = ssa.apply_strategic_merge_patch(LIVE, patch, DEPLOY)
    assert json.dumps(LIVE) == before, "the patch must not modify its input"
    return out


def tpl(spec: dict[str, Any]) -> dict[str, Any]:
    return {"spec": {"template": {"spec": spec}}}


def test_smp_merges_containers_by_name() -> None:
    out = smp(tpl({"containers": [{"name": "web", "image": "nginx:2"}]}))
    assert [(c["name"], c["image"]) for c in containers(out)] == [("web", "nginx:2"), ("side", "busybox")]
    assert containers(out)[0]["args"] == ["a", "b"]


def test_smp_appends_new_item() -> None:
    out = smp(tpl({"containers": [{"name": "new", "image": "x"}]}))
    assert [c["name"] for c in containers(out)] == ["web", "side", "new"]


def test_smp_delete_item_directive() -> None:
    out = smp(tpl({"containers": [{"name": "side", "$patch": "delete"}]}))
    assert [c["name"] for c in containers(out)] == ["web"]


def test_smp_replace_list_directive() -> None:
    out = smp(tpl({"containers": [{"name": "only", "image": "x"}, {"$patch": "replace"}]}))
    assert containers(out) == [{"name": "only", "image": "x"}]


def test_smp_atomic_list_is_replaced() -> None:
    out = smp(tpl({"containers": [{"name": "web", "args": ["c"]}]}))
    assert containers(out)[0]["args"] == ["c"]


def test_smp_nested_merge_key_lists() -> None:
    out = smp(
        tpl(
            {
                "containers": [
                    {
                        "name": "web",
                        "env": [{"name": "B", "value": "3"}, {"name": "C", "value": "4"}],
                        "ports": [{"containerPort": 443}],
                    }
                ]
            }
        )
    )
    web = containers(out)[0]
    assert web["env"] == [
        {"name": "A", "value": "1"},
        {"name": "B", "value": "3"},
        {"name": "C", "value": "4"},
    ]
    assert [p["containerPort"] for p in web["ports"]] == [80, 443]


def test_smp_null_deletes_field_and_map_key() -> None:
    out = smp({"metadata": {"labels": {"a": None}}, "spec": {"replicas": None}})
    assert out["metadata"]["labels"] == {"b": "2"} and "replicas" not in out["spec"]


def test_smp_merge_strategy_without_key_is_a_union() -> None:
    out = smp({"metadata": {"finalizers": ["y", "x"]}})
    assert out["metadata"]["finalizers"] == ["x", "y"]


def test_smp_delete_from_primitive_list() -> None:
    out = smp({"metadata": {"$deleteFromPrimitiveList/finalizers": ["x"]}})
    assert out["metadata"]["finalizers"] == []


def test_smp_map_replace_directive() -> None:
    out = smp({"spec": {"strategy": {"type": "Recreate", "$patch": "replace"}}})
    assert out["spec"]["strategy"] == {"type": "Recreate"}


def test_smp_retain_keys_drops_others() -> None:
    out = smp({"spec": {"strategy": {"type": "Recreate", "$retainKeys": ["type"]}}})
    assert out["spec"]["strategy"] == {"type": "Recreate"}


def test_smp_set_element_order() -> None:
    out = smp(
        tpl(
            {
                "$setElementOrder/containers": [{"name": "side"}, {"name": "web"}],
                "containers": [{"name": "web", "image": "nginx:3"}],
            }
        )
    )
    assert [c["name"] for c in containers(out)] == ["side", "web"]


@pytest.mark.parametrize(
    "patch",
    [
        tpl({"containers": [{"image": "no-name"}]}),
        {"spec": {"strategy": {"$patch": "explode"}}},
        {"metadata": {"$unknownDirective": 1}},
    ],
)
def test_smp_bad_patches_are_400(patch: dict[str, Any]) -> None:
    with pytest.raises(ssa.PatchError) as err:
        smp(patch)
    assert err.value.code == 400
