"""kubectl's typed generators send protobuf: the kinds kubesim reads that way, and a 415 for others."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from kubesim_fixtures import kubectl

from kubesim import protobuf

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
    other = kubectl(kubeconfig, "create", "deployment", "d", "--image=nginx", "-n", "proto-ns", check=False)
    assert other.returncode != 0 and "application/json" in other.stderr


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
