"""Bad input gets the API server's status codes in a Status envelope, never a 500; a fuzz run of
mutated bodies finds no 500 and no crash."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from kubesim_fixtures import PORTS_BY_NAME, PRESERVE_UNKNOWN, Raw, crd_manifest, deployment

from kubesim import server as kserver

DEPLOYS = "/apis/apps/v1/namespaces/default/deployments"
CMS = "/api/v1/namespaces/default/configmaps"
APPLY = "application/apply-patch+yaml"


def _is_status(body: Any, code: int) -> bool:
    return (
        isinstance(body, dict)
        and body.get("kind") == "Status"
        and body.get("status") == "Failure"
        and body.get("code") == code
        and isinstance(body.get("reason"), str)
        and isinstance(body.get("message"), str)
    )


@pytest.mark.parametrize(
    ("method", "path", "body", "ctype", "code", "reason"),
    [
        ("POST", CMS, b'{"apiVersion": "v1", "kind": ', "application/json", 400, "BadRequest"),
        ("POST", CMS, b"[1, 2, 3]", "application/json", 400, "BadRequest"),
        ("POST", CMS, b"", "application/json", 400, "BadRequest"),
        ("PATCH", CMS + "/x", b"kind: [unclosed", APPLY, 400, "BadRequest"),
        ("PATCH", CMS + "/x", b"\x00\x01\x02", APPLY, 400, "BadRequest"),
        (
            "POST",
            CMS,
            b'{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "n"}, "x": NaN}',
            "application/json",
            400,
            "BadRequest",
        ),
        (
            "PATCH",
            CMS + "/y",
            b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: y}\nn: .nan\n",
            APPLY,
            400,
            "BadRequest",
        ),
        (
            "PATCH",
            CMS + "/y",
            b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: y}\ndata: !!set {a}\n",
            APPLY,
            422,
            "Invalid",
        ),
        ("POST", CMS, b"[" * 5000 + b"]" * 5000, "application/json", 400, "BadRequest"),
        ("POST", CMS, b'{"metadata": ' * 3000 + b"{}" + b"}" * 3000, "application/json", 400, "BadRequest"),
        (
            "POST",
            CMS,
            {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "k"}},
            "application/json",
            400,
            "BadRequest",
        ),
        (
            "POST",
            CMS,
            {"apiVersion": "apps/v1", "kind": "ConfigMap", "metadata": {"name": "k"}},
            "application/json",
            400,
            "BadRequest",
        ),
        (
            "PATCH",
            CMS + "/k",
            {"apiVersion": "v2", "kind": "ConfigMap", "metadata": {"name": "k"}},
            APPLY,
            400,
            "BadRequest",
        ),
        (
            "PATCH",
            CMS + "/k",
            {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "k"}},
            APPLY,
            400,
            "BadRequest",
        ),
        (
            "PATCH",
            CMS + "/k",
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "k", "managedFields": [{"manager": "x"}]},
            },
            APPLY,
            400,
            "BadRequest",
        ),
        (
            "POST",
            CMS,
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "Bad_Name"}},
            "application/json",
            422,
            "Invalid",
        ),
        (
            "POST",
            CMS,
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}},
            "application/json",
            422,
            "Invalid",
        ),
        (
            "POST",
            DEPLOYS,
            {**deployment("neg"), "spec": {**deployment("neg")["spec"], "replicas": -1}},
            "application/json",
            422,
            "Invalid",
        ),
        (
            "POST",
            "/api/v1/namespaces/nowhere/configmaps",
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}},
            "application/json",
            404,
            "NotFound",
        ),
        (  # Secret data is base64 (Go decodes it into []byte)
            "POST",
            "/api/v1/namespaces/default/secrets",
            {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "b"}, "data": {"pw": "not base64!"}},
            "application/json",
            400,
            "BadRequest",
        ),
        (
            "PATCH",
            "/api/v1/namespaces/default/secrets/b",
            {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "b"}, "data": {"pw": "abc"}},
            APPLY,
            400,
            "BadRequest",
        ),
        (
            "PATCH",
            CMS + "/bin",
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "bin"}, "binaryData": {"b": "%%"}},
            APPLY,
            400,
            "BadRequest",
        ),
        (  # a typed Secret must carry its type's keys (here tls.key)
            "PATCH",
            "/api/v1/namespaces/default/secrets/tls",
            {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "tls"}, "type": "kubernetes.io/tls",
             "stringData": {"tls.crt": "pem"}},
            APPLY,
            422,
            "Invalid",
        ),
        ("GET", "/apis/nope.example.com/v1/things", None, "application/json", 404, "NotFound"),
        ("PATCH", CMS + "/missing", {"data": {"a": "b"}}, "application/merge-patch+json", 404, "NotFound"),
        ("PATCH", CMS + "/k", {"data": {}}, "application/x-unknown", 415, "UnsupportedMediaType"),
        ("GET", CMS + "?labelSelector=a%20in%20(", None, "application/json", 400, "BadRequest"),
        ("GET", CMS + "?fieldSelector=spec.foo%3Dbar", None, "application/json", 400, "BadRequest"),
        ("GET", CMS + "?limit=1&continue=garbage", None, "application/json", 400, "BadRequest"),
    ],
)
def test_client_mistakes_get_their_status(
    raw: Raw, method: str, path: str, body: Any, ctype: str, code: int, reason: str
) -> None:
    status, doc = raw.request(
        method, path + ("" if "?" in path or method != "PATCH" else "?fieldManager=t"), body, ctype
    )
    assert status == code, doc
    assert _is_status(doc, code) and doc["reason"] == reason, doc


def test_yaml_values_become_json(raw: Raw) -> None:
    body = (
        b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: yamly\n  annotations: {when: 2024-05-01}\n"
        b"data: {2: two, on: 'yes'}\nbinaryData: {b: !!binary aGVsbG8=}\n"
    )
    status, doc = raw.request("PATCH", CMS + "/yamly?fieldManager=t", body, APPLY)
    assert status == 201, doc
    assert doc["metadata"]["annotations"] == {"when": "2024-05-01T00:00:00Z"}
    assert doc["data"] == {"2": "two", "true": "yes"}  # YAML 1.1: on is true


def test_schema_violation_names_the_fields(raw: Raw) -> None:
    bad = deployment("broken")
    del bad["spec"]["selector"]
    bad["spec"]["template"]["spec"]["containers"][0].pop("image")
    status, doc = raw.request("POST", DEPLOYS, bad)
    assert status == 422
    fields = {c["field"] for c in doc["details"]["causes"]}
    assert {"spec.selector", "spec.template.spec.containers[0].image"} <= fields
    assert doc["details"]["kind"] == "Deployment" and doc["details"]["name"] == "broken"
    assert doc["message"].startswith('Deployment.apps "broken" is invalid: ')


def test_apply_needs_a_field_manager(raw: Raw) -> None:
    status, doc = raw.request(
        "PATCH", CMS + "/fm", {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "fm"}}, APPLY
    )
    assert status == 422
    assert (
        doc["message"] == 'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required '
        "for apply patch"
    )
    status, doc = raw.request("PATCH", CMS + "/fm?force=true", {"data": {}}, "application/merge-patch+json")
    assert status == 422 and "force" in doc["message"]


def test_strategic_merge_patch_is_415_for_custom_resources(raw: Raw) -> None:
    crd = crd_manifest("example.com", "Bolt", "bolts", PRESERVE_UNKNOWN)
    assert raw.request("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)[0] == 201
    path = "/apis/example.com/v1/namespaces/default/bolts"
    assert (
        raw.request(
            "POST",
            path,
            {"apiVersion": "example.com/v1", "kind": "Bolt", "metadata": {"name": "b"}, "spec": {"x": 1}},
        )[0]
        == 201
    )
    status, doc = raw.request(
        "PATCH", path + "/b", {"spec": {"x": 2}}, "application/strategic-merge-patch+json"
    )
    assert status == 415 and doc["reason"] == "UnsupportedMediaType"
    assert raw.request("PATCH", path + "/b", {"spec": {"x": 2}}, "application/merge-patch+json")[0] == 200


def test_stale_resource_version_is_409_with_the_exact_message(raw: Raw) -> None:
    status, made = raw.request(
        "POST", CMS, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "occ"}}
    )
    assert status == 201
    made["data"] = {"a": "1"}
    assert raw.request("PUT", CMS + "/occ", made)[0] == 200
    status, doc = raw.request("PUT", CMS + "/occ", made)
    assert status == 409 and doc["reason"] == "Conflict"
    assert doc["message"] == (
        'Operation cannot be fulfilled on configmaps "occ": the object has been modified; '
        "please apply your changes to the latest version and try again"
    )


def test_missing_or_wrong_token_is_401(running: kserver.RunningServer) -> None:
    for token in (None, "wrong"):
        client = Raw(running, token=token)
        status, doc = client.request("GET", "/api/v1/namespaces")
        client.close()
        assert status == 401 and _is_status(doc, 401) and doc["reason"] == "Unauthorized"


def test_body_over_3_mib_is_413(raw: Raw) -> None:
    big = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "big"},
        "data": {"a": "x" * (3 * 2**20)},
    }
    status, doc = raw.request("POST", CMS, big)
    assert status == 413 and doc["reason"] == "RequestEntityTooLarge"
    assert raw.request("GET", CMS + "/big")[0] == 404  # nothing stored, and the server still answers


def _mutate(rng: random.Random, value: Any, depth: int = 0) -> Any:
    choice = rng.random()
    if choice < 0.08:
        return rng.choice(
            [None, True, 0, -1, 2**70, 1.5, "", "x" * rng.randint(0, 300), [], {}, [None], {"": ""}]
        )
    if isinstance(value, dict):
        out = {k: _mutate(rng, v, depth + 1) for k, v in value.items() if rng.random() > 0.1}
        if rng.random() < 0.2:
            out[
                rng.choice(["metadata", "spec", "status", "kind", "apiVersion", "items", "$patch", "f:x"])
            ] = rng.choice([None, 1, "s", [], {}, {"name": 1}])
        return out
    if isinstance(value, list):
        out_list = [_mutate(rng, v, depth + 1) for v in value]
        if rng.random() < 0.3 and out_list:
            out_list.append(rng.choice(out_list))  # duplicate list-map keys
        return out_list
    return value


def test_fuzzed_bodies_never_get_a_500(running: kserver.RunningServer) -> None:
    rng = random.Random(20261121)
    client = Raw(running)
    seeds: list[tuple[str, str, str, Any]] = [
        ("POST", DEPLOYS, "application/json", deployment("fz")),
        ("PATCH", DEPLOYS + "/fz?fieldManager=fuzz", APPLY, deployment("fz")),
        ("PATCH", DEPLOYS + "/fz?fieldManager=fuzz&force=true", APPLY, deployment("fz")),
        ("PATCH", DEPLOYS + "/fz", "application/strategic-merge-patch+json", deployment("fz")),
        ("PATCH", DEPLOYS + "/fz", "application/merge-patch+json", {"spec": {"replicas": 3}}),
        (
            "PATCH",
            DEPLOYS + "/fz",
            "application/json-patch+json",
            [{"op": "replace", "path": "/spec/replicas", "value": 2}],
        ),
        ("PUT", DEPLOYS + "/fz", "application/json", deployment("fz")),
        (
            "POST",
            CMS,
            "application/json",
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"generateName": "f-"}, "data": {"a": "b"}},
        ),
        ("DELETE", CMS + "/nothing", "application/json", {"propagationPolicy": "Foreground"}),
        (
            "PATCH",
            DEPLOYS + "/fz/status?fieldManager=ctl",
            APPLY,
            {**deployment("fz"), "status": {"replicas": 1}},
        ),
        ("PATCH", DEPLOYS + "/fz/scale", "application/merge-patch+json", {"spec": {"replicas": 2}}),
        (
            "PUT",
            DEPLOYS + "/fz/scale",
            "application/json",
            {
                "apiVersion": "autoscaling/v1",
                "kind": "Scale",
                "metadata": {"name": "fz"},
                "spec": {"replicas": 1},
            },
        ),
        (
            "POST",
            CMS,
            "application/vnd.kubernetes.protobuf",
            b"k8s\x00\n\x0f\n\x02v1\x12\tConfigMap\x12\x0c\n\x05\n\x03pbx\x12\x03\n\x01a",
        ),
    ]
    crd = crd_manifest(
        "example.com",
        "Fuzz",
        "fuzzes",
        {
            "type": "object",
            "properties": {
                "spec": {
                    "type": "object",
                    "properties": {
                        "n": {"type": "integer", "minimum": 0},
                        "tags": {
                            "type": "array",
                            "items": {"type": "string"},
                            "x-kubernetes-list-type": "set",
                        },
                        "ports": PORTS_BY_NAME,
                        "free": PRESERVE_UNKNOWN,
                        "ios": {"x-kubernetes-int-or-string": True},
                    },
                },
                "status": {"type": "object", "properties": {"ok": {"type": "boolean"}}},
            },
        },
        subresources={"status": {}},
    )
    assert client.request("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)[0] == 201
    fuzzes = "/apis/example.com/v1/namespaces/default/fuzzes"
    cr = {
        "apiVersion": "example.com/v1",
        "kind": "Fuzz",
        "metadata": {"name": "f1"},
        "spec": {
            "n": 1,
            "tags": ["a", "b"],
            "ports": [{"name": "http", "port": 80}],
            "free": {"x": [1]},
            "ios": "50%",
        },
    }
    seeds += [
        ("PATCH", fuzzes + "/f1?fieldManager=fuzz", APPLY, cr),
        ("PATCH", fuzzes + "/f1?fieldManager=other&force=true", APPLY, cr),
        ("PATCH", fuzzes + "/f1", "application/merge-patch+json", {"spec": {"n": 2, "tags": ["c"]}}),
        ("PATCH", fuzzes + "/f1/status?fieldManager=ctl", APPLY, {**cr, "status": {"ok": True}}),
        ("POST", fuzzes, "application/json", {**cr, "metadata": {"generateName": "g-"}}),
    ]
    client.request("PATCH", fuzzes + "/f1?fieldManager=fuzz", cr, APPLY)
    client.request("PATCH", DEPLOYS + "/fz?fieldManager=fuzz", deployment("fz"), APPLY)
    codes: dict[int, int] = {}
    for i in range(500):
        method, path, ctype, seed = seeds[i % len(seeds)]
        if isinstance(seed, bytes):  # protobuf: flip and cut bytes
            raw_body = bytearray(seed)
            for _ in range(rng.randint(0, 4)):
                raw_body[rng.randrange(len(raw_body))] = rng.randrange(256)
            body_bytes = bytes(raw_body[: rng.randint(0, len(raw_body))])
            status, doc = client.request(method, path, body_bytes, ctype)
            codes[status] = codes.get(status, 0) + 1
            assert status < 500, (method, path, body_bytes, doc)
            continue
        mutated = _mutate(rng, seed)
        if rng.random() < 0.15:
            text = json.dumps(mutated)
            cut = rng.randint(0, len(text))
            body: Any = (text[:cut] + rng.choice(["", "}", "]", '"', "\x00", "\\u12"]) + text[cut:]).encode()
        else:
            body = mutated
        status, doc = client.request(method, path, body, ctype)
        codes[status] = codes.get(status, 0) + 1
        assert status < 500, (method, path, body, doc)
        if status >= 400:
            assert _is_status(doc, status), doc
    client.close()
    assert codes.get(400, 0) + codes.get(422, 0) > 50  # the fuzzer did reach the error paths
    assert Raw(running).request("GET", "/version")[0] == 200


def test_create_with_resource_version_and_update_with_foreign_uid(raw: Raw) -> None:
    status, doc = raw.request(
        "POST",
        CMS,
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "rvset", "resourceVersion": "12"}},
    )
    assert status == 400 and "resourceVersion should not be set" in doc["message"]
    _, made = raw.request(
        "POST", CMS, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "uidy"}}
    )
    made["metadata"]["uid"] = "00000000-0000-0000-0000-000000000000"
    del made["metadata"]["resourceVersion"]
    status, doc = raw.request("PUT", CMS + "/uidy", made)
    assert status == 409 and doc["message"].startswith("Precondition failed: UID in precondition")


def test_crd_in_a_protected_group_needs_approval(raw: Raw) -> None:
    crd = crd_manifest("node.k8s.io", "Deployment", "deployments")
    status, doc = raw.request("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)
    assert status == 422
    assert doc["details"]["causes"][0]["field"] == "metadata.annotations[api-approved.kubernetes.io]"


@pytest.mark.parametrize(
    ("path", "kind", "api_version", "name", "ok"),
    [
        ("/api/v1/namespaces/default/services", "Service", "v1", "1web", False),
        ("/api/v1/namespaces/default/services", "Service", "v1", "web.x", False),
        ("/api/v1/namespaces/default/services", "Service", "v1", "web-1", True),
        ("/api/v1/namespaces", "Namespace", "v1", "a.b", False),
        ("/api/v1/namespaces/default/configmaps", "ConfigMap", "v1", "1.config.map", True),
        ("/api/v1/namespaces/default/configmaps", "ConfigMap", "v1", "x" * 254, False),
    ],
)
def test_name_rules_per_kind(raw: Raw, path: str, kind: str, api_version: str, name: str, ok: bool) -> None:
    body: dict[str, Any] = {"apiVersion": api_version, "kind": kind, "metadata": {"name": name}}
    if kind == "Service":
        body["spec"] = {"ports": [{"port": 80}]}
    status, doc = raw.request("POST", path, body)
    assert (status == 201) is ok, doc
    if not ok:
        assert status == 422 and doc["details"]["causes"][0]["field"] == "metadata.name"


def test_immutable_fields_are_422_naming_the_field(raw: Raw) -> None:
    assert raw.request("PATCH", DEPLOYS + "/imm?fieldManager=t", deployment("imm"), APPLY)[0] == 201
    moved = deployment("imm")
    moved["spec"]["selector"] = {"matchLabels": {"app": "imm", "v": "2"}}
    moved["spec"]["template"]["metadata"]["labels"]["v"] = "2"
    status, doc = raw.request("PATCH", DEPLOYS + "/imm?fieldManager=t", moved, APPLY)
    assert status == 422 and doc["details"]["causes"][0]["field"] == "spec.selector"
    assert "field is immutable" in doc["message"]

    frozen = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "frozen"},
        "data": {"a": "1"},
        "immutable": True,
    }
    assert raw.request("POST", CMS, frozen)[0] == 201
    status, doc = raw.request("PATCH", CMS + "/frozen", {"data": {"a": "2"}}, "application/merge-patch+json")
    assert status == 422 and {c["field"] for c in doc["details"]["causes"]} == {"data"}
    status, _ = raw.request(
        "PATCH", CMS + "/frozen", {"metadata": {"labels": {"ok": "yes"}}}, "application/merge-patch+json"
    )
    assert status == 200  # metadata stays writable
