"""kubectl's typed generators send protobuf: kubesim reads their objects exactly as it reads the
same objects in JSON; malformed or unknown protobuf is a clear error, never a crash."""

from __future__ import annotations

import contextlib
import json
import random
from pathlib import Path
from typing import Any

import pytest
from kubesim_fixtures import Raw, kubectl

from kubesim import protobuf
from kubesim import server as kserver

pytestmark = pytest.mark.slow


def test_kubectl_create_generators(kubeconfig: Path) -> None:
    kubectl(kubeconfig, "create", "namespace", "proto-ns")
    kubectl(
        kubeconfig,
        "create",
        "configmap",
        "c1",
        "--from-literal=a=1",
        "--from-literal=b=two",
        "-n",
        "proto-ns",
    )
    kubectl(kubeconfig, "create", "secret", "generic", "s1", "--from-literal=pw=hunter2", "-n", "proto-ns")
    kubectl(kubeconfig, "create", "serviceaccount", "robot", "-n", "proto-ns")
    ns = json.loads(kubectl(kubeconfig, "get", "ns", "proto-ns", "-o", "json").stdout)
    assert "generateName" not in ns["metadata"] and ns["status"]["phase"] == "Active"
    cm = json.loads(kubectl(kubeconfig, "get", "cm", "c1", "-n", "proto-ns", "-o", "json").stdout)
    assert cm["data"] == {"a": "1", "b": "two"}
    secret = json.loads(kubectl(kubeconfig, "get", "secret", "s1", "-n", "proto-ns", "-o", "json").stdout)
    assert secret["data"] == {"pw": "aHVudGVyMg=="} and secret["type"] == "Opaque"
    assert (
        kubectl(kubeconfig, "get", "sa", "robot", "-n", "proto-ns", "-o", "name").stdout.strip()
        == "serviceaccount/robot"
    )


# kubectl's typed generators send protobuf (POST ... Content-Type: application/vnd.kubernetes.protobuf);
# `--dry-run=client -o json` prints the very object they send, which `kubectl create -f` then sends
# as JSON. Both must end up the same object.
GENERATORS = [
    (
        "deployment",
        ["create", "deployment", "NAME", "--image=nginx", "--image=redis", "--port=80", "--replicas=3"],
    ),
    ("deployment", ["create", "deployment", "NAME", "--image=nginx", "--replicas=0"]),
    ("service", ["create", "service", "clusterip", "NAME", "--tcp=80:8080", "--tcp=443:https"]),
    ("service", ["create", "service", "nodeport", "NAME", "--tcp=80:8080"]),
    ("job", ["create", "job", "NAME", "--image=busybox", "--", "echo", "hi"]),
    (
        "role",
        [
            "create",
            "role",
            "NAME",
            "--verb=get,list",
            "--resource=pods,deployments.apps",
            "--resource-name=a",
        ],
    ),
    ("clusterrole", ["create", "clusterrole", "NAME", "--verb=get", "--non-resource-url=/logs"]),
    ("clusterrole", ["create", "clusterrole", "NAME", "--aggregation-rule=a=b"]),
    ("rolebinding", ["create", "rolebinding", "NAME", "--role=r", "--user=u", "--serviceaccount=default:sa"]),
    ("clusterrolebinding", ["create", "clusterrolebinding", "NAME", "--clusterrole=cr", "--group=g"]),
]


def _content(obj: dict[str, Any], name: str) -> dict[str, Any]:
    """What the two creates must agree on: everything but identity, times and allocations."""
    out: dict[str, Any] = json.loads(json.dumps(obj).replace(name, "NAME"))
    out["metadata"] = {"labels": out["metadata"].get("labels")}
    out.pop("status", None)
    spec = out.get("spec") or {}
    for allocated in ("clusterIP", "clusterIPs"):
        spec.pop(allocated, None)
    for port in spec.get("ports") or []:
        port.pop("nodePort", None)
    if obj["kind"] == "Job":  # the controller-uid selector and labels differ per object
        spec.pop("selector", None)
        spec["template"]["metadata"].pop("labels", None)
    return out


@pytest.mark.parametrize("resource, argv", GENERATORS, ids=[" ".join(a[:3]) for _, a in GENERATORS])
def test_kubectl_generators_send_protobuf_that_reads_as_their_json(
    kubeconfig: Path, resource: str, argv: list[str]
) -> None:
    tag = GENERATORS.index((resource, argv))
    proto_name, json_name = f"pb-{tag}", f"js-{tag}"
    kubectl(kubeconfig, *[proto_name if a == "NAME" else a for a in argv])
    json_argv = [json_name if a == "NAME" else a for a in argv]
    cut = json_argv.index("--") if "--" in json_argv else len(json_argv)
    printed = kubectl(kubeconfig, *json_argv[:cut], "--dry-run=client", "-o", "json", *json_argv[cut:])
    kubectl(kubeconfig, "create", "-f", "-", stdin=printed.stdout)
    from_proto = json.loads(
        kubectl(kubeconfig, "get", resource, proto_name, "-o", "json", "--show-managed-fields").stdout
    )
    from_json = json.loads(kubectl(kubeconfig, "get", resource, json_name, "-o", "json").stdout)
    assert _content(from_proto, proto_name) == _content(from_json, json_name)
    managers = {e["manager"] for e in from_proto["metadata"]["managedFields"]}
    assert managers == {"kubectl-create"}


def test_zero_replicas_survive_protobuf(kubeconfig: Path) -> None:
    # replicas is a pointer in Go: an explicit 0 is sent and must not read as "unset" (default 1)
    kubectl(kubeconfig, "create", "deployment", "zero", "--image=nginx", "--replicas=0")
    got = json.loads(kubectl(kubeconfig, "get", "deployment", "zero", "-o", "json").stdout)
    assert got["spec"]["replicas"] == 0


def _field(number: int, payload: bytes) -> bytes:
    return bytes([number << 3 | 2, len(payload)]) + payload


def _envelope(api_version: str, kind: str, raw: bytes) -> bytes:
    type_meta = _field(1, api_version.encode()) + _field(2, kind.encode())
    return protobuf.MAGIC + _field(1, type_meta) + _field(2, raw)


def test_unknown_fields_are_an_error_unless_empty() -> None:
    meta = _field(1, b"cm")
    assert protobuf.decode(_envelope("v1", "ConfigMap", _field(1, meta) + _field(9, b""))) == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "cm"},
    }
    with pytest.raises(protobuf.NotRead, match="field 9 of ConfigMap"):
        protobuf.decode(_envelope("v1", "ConfigMap", _field(1, meta) + _field(9, b"x")))


def test_kinds_not_read_are_named() -> None:
    with pytest.raises(protobuf.NotRead, match="'Lease'"):
        protobuf.decode(_envelope("coordination.k8s.io/v1", "Lease", _field(1, _field(1, b"l"))))


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"k8s\x00",
        b"k8s\x00\x0a\x05\x0a\x02v1",
        b"k8s\x00\x12\xff",
        b"\x00" * 8,
        b"k8s\x00\x0a\x0c\x0a\x02v1\x12\x06Secret\x12\x03\x0a\x80\x80",
    ],
)
def test_malformed_protobuf_is_an_error_not_a_crash(body: bytes) -> None:
    with pytest.raises(protobuf.ProtobufError):
        protobuf.decode(body)


def test_out_of_range_timestamp_is_an_error() -> None:
    # ConfigMap whose metadata.creationTimestamp.seconds is 2**62
    seconds = bytes([0x08]) + bytes([0x80] * 8 + [0x40])
    meta = b"\x42" + bytes([len(seconds)]) + seconds
    raw = b"\x0a" + bytes([len(meta)]) + meta
    type_meta = b"\x0a\x02v1\x12\x09ConfigMap"
    body = b"k8s\x00" + b"\x0a" + bytes([len(type_meta)]) + type_meta + b"\x12" + bytes([len(raw)]) + raw
    with pytest.raises(protobuf.ProtobufError):
        protobuf.decode(body)


def _varint(n: int) -> bytes:
    out = b""
    while True:
        low, n = n & 0x7F, n >> 7
        if not n:
            return out + bytes([low])
        out += bytes([low | 0x80])


def _number(number: int, value: int) -> bytes:
    return _varint(number << 3) + _varint(value)


def _message(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _labels(number: int, **labels: str) -> bytes:
    return b"".join(
        _message(number, _message(1, k.encode()) + _message(2, v.encode())) for k, v in labels.items()
    )


# A Deployment as kubectl's typed client would encode it (field numbers of k8s.io/api generated.proto).
_CONTAINER = _message(1, b"web") + _message(2, b"nginx") + _message(6, _number(3, 80))
_POD_TEMPLATE = _message(1, _labels(11, app="fz")) + _message(2, _message(2, _CONTAINER))
_DEPLOYMENT = _envelope(
    "apps/v1",
    "Deployment",
    _message(1, _message(1, b"fz-pb") + _labels(11, app="fz"))
    + _message(2, _number(1, 2) + _message(2, _labels(1, app="fz")) + _message(3, _POD_TEMPLATE)),
)


def test_hand_encoded_deployment_decodes() -> None:
    assert protobuf.decode(_DEPLOYMENT) == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "fz-pb", "labels": {"app": "fz"}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "fz"}},
            "template": {
                "metadata": {"labels": {"app": "fz"}},
                "spec": {"containers": [{"name": "web", "image": "nginx", "ports": [{"containerPort": 80}]}]},
            },
        },
    }


def test_fuzzed_protobuf_bodies_never_get_a_500(running: kserver.RunningServer) -> None:
    rng = random.Random(7)
    client = Raw(running)
    path = "/apis/apps/v1/namespaces/default/deployments"
    codes: dict[int, int] = {}
    try:
        for i in range(300):
            body = bytearray(_DEPLOYMENT)
            for _ in range(rng.randint(1, 4)):
                at = rng.randrange(len(body) or 1)
                choice = rng.random()
                if choice < 0.5:
                    body[at] = rng.randrange(256)
                elif choice < 0.75:
                    del body[at:]
                else:
                    body[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 3)))
            with contextlib.suppress(protobuf.ProtobufError):  # anything else is a bug
                protobuf.decode(bytes(body))
            status, doc = client.request(
                "POST", f"{path}?fieldManager=f{i}", bytes(body), protobuf.MEDIA_TYPE
            )
            codes[status] = codes.get(status, 0) + 1
            assert status < 500, (bytes(body), doc)
            if status == 201:
                client.request("DELETE", f"{path}/{doc['metadata']['name']}")
    finally:
        client.close()
    assert codes.get(400, 0) > 50 and codes.get(201, 0) + codes.get(422, 0) + codes.get(415, 0) > 0, codes
