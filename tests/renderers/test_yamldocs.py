"""renderers.yamldocs: multi-document YAML with the line of every field."""

from __future__ import annotations

import json

import pytest
import yaml

from renderers.yamldocs import load_documents

SPINAPP = """\
# a comment
apiVersion: core.spinkube.dev/v1alpha1
kind: SpinApp
metadata:
  name: hello
  labels: {tier: web}
spec:
  image: "ghcr.io/acme/hello:v1"
  replicas: 2
  enableAutoscaling: false
  variables:
  - name: greeting
    value: "007"
  - name: token
    valueFrom:
      secretKeyRef:
        name: creds
        key: token
"""


def test_lines_of_fields_and_list_items() -> None:
    docs, errors = load_documents(SPINAPP, "apps/hello.yaml")
    assert errors == []
    [doc] = docs
    assert doc.line == 2
    assert doc.lines["spec.replicas"] == 9
    assert doc.lines["metadata.labels.tier"] == 6
    assert doc.lines["spec.variables[0]"] == 12
    assert doc.lines["spec.variables[0].name"] == 12
    assert doc.lines["spec.variables[1].valueFrom.secretKeyRef.key"] == 18


def test_values_are_typed_like_safe_load() -> None:
    [doc], _ = load_documents(SPINAPP, "a.yaml")
    assert doc.body == yaml.safe_load(SPINAPP)
    assert doc.body["spec"]["variables"][0]["value"] == "007"
    assert doc.body["spec"]["enableAutoscaling"] is False


def test_multi_document_stream_skips_empty_documents() -> None:
    text = "a: 1\n---\n# only a comment\n---\n---\nb: 2\n"
    docs, errors = load_documents(text, "x.yaml")
    assert errors == []
    assert [(d.body, d.index, d.line) for d in docs] == [({"a": 1}, 0, 1), ({"b": 2}, 3, 6)]


@pytest.mark.parametrize(
    ("text", "line", "needle"),
    [
        ("a: [1, 2\nb: 3\n", 2, "flow sequence"),
        ("a: 1\n  b: 2\n", 2, "mapping values are not allowed"),
        ("a: 'open\n", 2, "quoted scalar"),
        ("key: value\n\tbad: tab\n", 2, "tab character"),
    ],
)
def test_malformed_yaml_names_file_and_line(text: str, line: int, needle: str) -> None:
    docs, errors = load_documents(text, "dir/bad.yaml")
    assert docs == []
    [error] = errors
    assert error.location.path == "dir/bad.yaml"
    assert error.location.line == line
    assert needle in error.message
    assert str(error).startswith(f"dir/bad.yaml:{line}: malformed YAML")


def test_documents_before_a_broken_one_are_kept() -> None:
    text = "a: 1\n---\nb: 2\n---\nc: [\n"
    docs, errors = load_documents(text, "x.yaml")
    assert [d.body for d in docs] == [{"a": 1}, {"b": 2}]
    assert len(errors) == 1 and errors[0].location.line == 6


def test_a_document_with_stray_content_is_dropped() -> None:
    docs, errors = load_documents("a: 1\n---\n a: b\nc\n", "x.yaml")
    assert [d.body for d in docs] == [{"a": 1}]
    assert errors[0].location.line == 4


def test_duplicate_keys_are_errors_with_both_lines() -> None:
    _docs, errors = load_documents("metadata:\n  name: a\n  name: b\n", "d.yaml")
    [error] = errors
    assert (error.location.line, error.location.field) == (3, "metadata.name")
    assert "first at line 2" in error.message


def test_json_is_read_with_lines() -> None:
    text = '{\n  "apiVersion": "v1",\n  "kind": "ConfigMap",\n  "metadata": {"name": "c"}\n}\n'
    [doc], errors = load_documents(text, "c.json")
    assert errors == [] and doc.lines["kind"] == 3 and doc.body["metadata"]["name"] == "c"


def test_merge_keys_are_resolved() -> None:
    [doc], errors = load_documents("base: &b {x: 1}\nmore:\n  <<: *b\n  y: 2\n  t: 2024-01-02\n", "m.yaml")
    assert errors == [] and doc.body["more"] == {"x": 1, "y": 2, "t": "2024-01-02"}
    assert doc.lines["more"] == 2


def test_bytes_that_are_not_utf8() -> None:
    docs, errors = load_documents(b"a: \xff\xfe\n", "bin.yaml")
    assert docs == [] and len(errors) == 1 and errors[0].location.path == "bin.yaml"


@pytest.mark.parametrize(
    "data, line, byte",
    [
        (b'apiVersion: v1\nkind: ConfigMap\ndata:\n  k: "caf\xe9"\n', 4, "0xe9"),  # Latin-1 text
        (b"a: 1\n# caf\xe9 in a comment\nb: 2\n", 2, "0xe9"),
        (b"a: 1\nb: \xff\n", 2, "0xff"),
    ],
)
def test_non_utf8_bytes_are_named_with_their_line(data: bytes, line: int, byte: str) -> None:
    docs, errors = load_documents(data, "k8s/latin1.yaml")
    assert docs == [] and len(errors) == 1
    assert errors[0].location.path == "k8s/latin1.yaml" and errors[0].location.line == line
    assert "not UTF-8" in errors[0].message and byte in errors[0].message


def test_aliases_are_shared_not_expanded() -> None:
    # 9 levels of 9 aliases: 387 million leaves if expanded.
    rows = ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    for i in range(1, 10):
        prev = f"*a{i - 1}"
        rows.append(f"a{i}: &a{i} [{', '.join([prev] * 9)}]")
    [doc], errors = load_documents("\n".join(rows) + "\n", "bomb.yaml")
    assert errors == []
    assert doc.body["a9"][0] is doc.body["a9"][1]


def test_self_referencing_anchor_is_an_error_not_a_hang() -> None:
    # Such an object has no JSON form, so it could never be applied.
    docs, errors = load_documents("a: &x\n  - 1\n  - *x\n", "loop.yaml")
    assert docs == []
    [error] = errors
    assert error.location.path == "loop.yaml" and "recursive" in error.message


def test_objects_are_plain_json_like_kubernetes_makes_them() -> None:
    text = "data:\n  released: 2024-01-02\n  at: 2024-01-02T03:04:05Z\n  80: http\n  true: yes\n  n: 0x1f\n"
    [doc], errors = load_documents(text, "cm.yaml")
    assert errors == []
    assert doc.body["data"] == {
        "released": "2024-01-02",
        "at": "2024-01-02T03:04:05Z",
        "80": "http",
        "true": True,
        "n": 31,
    }
    assert doc.lines["data.80"] == 4
    json.dumps(doc.body)
