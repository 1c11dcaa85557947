"""Server-side field validation (unknown and duplicate fields), ported as tables from kubernetes'
``test/integration/apiserver/field_validation_test.go`` (TestFieldValidation: Post, Put,
PatchTyped, SMP, ApplyCreate, ApplyUpdate, PostCRD). Bodies and expected texts are the upstream
ones; like upstream, an error is matched by its suffix and the warnings exactly, in order.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubesim_fixtures import Raw, crd_manifest

from kubesim.bodies import APPLY, JSON_PATCH, MERGE, STRATEGIC

DEPLOYMENTS = "/apis/apps/v1/namespaces/default/deployments"

INVALID_JSON = """
{
	"apiVersion": "apps/v1",
	"kind": "Deployment",
	"metadata": {
		"name": "dupename",
		"name": "%s",
		"labels": {"app": "nginx"},
		"unknownMeta": "metaVal"
	},
	"spec": {
		"unknown1": "val1",
		"unknownDupe": "valDupe",
		"unknownDupe": "valDupe2",
		"paused": true,
		"paused": false,
		"selector": {
			"matchLabels": {
				"app": "nginx"
			}
		},
		"template": {
			"metadata": {
				"labels": {
					"app": "nginx"
				}
			},
			"spec": {
				"containers": [{
					"name":  "nginx",
					"image": "nginx:latest",
					"unknownNested": "val1",
					"imagePullPolicy": "Always",
					"imagePullPolicy": "Never"
				}]
			}
		}
	}
}
	"""

VALID_JSON = """
{
	"apiVersion": "apps/v1",
	"kind": "Deployment",
	"metadata": {
		"name": "%s",
		"labels": {"app": "nginx"},
		"annotations": {"a1": "foo", "a2": "bar"}
	},
	"spec": {
		"selector": {
			"matchLabels": {
				"app": "nginx"
			}
		},
		"template": {
			"metadata": {
				"labels": {
					"app": "nginx"
				}
			},
			"spec": {
				"containers": [{
					"name":  "nginx",
					"image": "nginx:latest",
					"imagePullPolicy": "Always"
				}]
			}
		},
		"replicas": 2
	}
}"""

INVALID_YAML = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: dupename
  name: %s
  unknownMeta: metaVal
  labels:
    app: nginx
spec:
  unknown1: val1
  unknownDupe: valDupe
  unknownDupe: valDupe2
  paused: true
  paused: false
  selector:
    matchLabels:
      app: nginx
  template:
    metadata:
      labels:
        app: nginx
    spec:
      containers:
      - name: nginx
        image: nginx:latest
        unknownNested: val1
        imagePullPolicy: Always
        imagePullPolicy: Never"""

APPLY_INVALID = """{
		"apiVersion": "apps/v1",
		"kind": "Deployment",
		"metadata": {
			"name": "%s",
			"labels": {"app": "nginx"}
		},
		"spec": {
			"paused": false,
			"paused": true,
			"selector": {
				"matchLabels": {
					"app": "nginx"
				}
			},
			"template": {
				"metadata": {
					"labels": {
						"app": "nginx"
					}
				},
				"spec": {
					"containers": [{
						"name":  "nginx",
						"image": "nginx:latest",
						"imagePullPolicy": "Never",
						"imagePullPolicy": "Always"
					}]
				}
			}
		}
	}"""

JSON_PROBLEMS = [
    'duplicate field "metadata.name"',
    'unknown field "metadata.unknownMeta"',
    'unknown field "spec.unknown1"',
    'unknown field "spec.unknownDupe"',
    'duplicate field "spec.paused"',
    'unknown field "spec.template.spec.containers[0].unknownNested"',
    'duplicate field "spec.template.spec.containers[0].imagePullPolicy"',
]
YAML_LINES = [
    'line 5: key "name" already set in map',
    'line 12: key "unknownDupe" already set in map',
    'line 14: key "paused" already set in map',
    'line 28: key "imagePullPolicy" already set in map',
]
YAML_UNKNOWN = [
    'unknown field "metadata.unknownMeta"',
    'unknown field "spec.template.spec.containers[0].unknownNested"',
    'unknown field "spec.unknown1"',
    'unknown field "spec.unknownDupe"',
]
YAML_ERROR = (
    "strict decoding error: yaml: unmarshal errors:\n  "
    + "\n  ".join(YAML_LINES)
    + ", "
    + ", ".join(YAML_UNKNOWN)
)


def _cases(
    prefix: str,
    body: str,
    content_type: str,
    problems: list[str],
    strict: str,
) -> list[tuple[str, str, str, str | None, str | None, list[str]]]:
    """(name, body, content type, fieldValidation, strict error, warnings): the four modes."""
    return [
        (f"{prefix}-strict-validation", body, content_type, "Strict", strict, []),
        (f"{prefix}-warn-validation", body, content_type, "Warn", None, problems),
        (f"{prefix}-ignore-validation", body, content_type, "Ignore", None, []),
        (f"{prefix}-no-validation", body, content_type, None, None, problems),
    ]


WRITE_CASES = [
    *_cases(
        "json",
        INVALID_JSON,
        "application/json",
        JSON_PROBLEMS,
        "strict decoding error: " + ", ".join(JSON_PROBLEMS),
    ),
    *_cases("yaml", INVALID_YAML, "application/yaml", YAML_LINES + YAML_UNKNOWN, YAML_ERROR),
]


def _query(mode: str | None, manager: str | None = None) -> str:
    params = [f"fieldValidation={mode}"] if mode else []
    if manager:
        params.append(f"fieldManager={manager}")
    return "?" + "&".join(params) if params else ""


def _check(result: tuple[int, Any, list[str]], strict: str | None, warnings: list[str]) -> None:
    code, body, got = result
    if strict is not None:
        assert code == 400 and body["message"].endswith(strict), body
        assert body["reason"] == "BadRequest"
    else:
        assert code in (200, 201), body
    assert got == warnings


def _send(raw: Raw, method: str, url: str, body: str, content_type: str) -> tuple[int, Any, list[str]]:
    code, answer = raw.request(method, url, body, content_type)
    return code, answer, raw.warnings


@pytest.mark.parametrize(
    ("name", "body", "ctype", "mode", "strict", "warnings"), WRITE_CASES, ids=[c[0] for c in WRITE_CASES]
)
def test_post(
    raw: Raw, name: str, body: str, ctype: str, mode: str | None, strict: str | None, warnings: list[str]
) -> None:
    """testFieldValidationPost."""
    _check(
        _send(raw, "POST", DEPLOYMENTS + _query(mode), body % f"test-deployment-post-{name}", ctype),
        strict,
        warnings,
    )


@pytest.mark.parametrize(
    ("name", "body", "ctype", "mode", "strict", "warnings"), WRITE_CASES, ids=[c[0] for c in WRITE_CASES]
)
def test_put(
    raw: Raw, name: str, body: str, ctype: str, mode: str | None, strict: str | None, warnings: list[str]
) -> None:
    """testFieldValidationPut."""
    deploy = f"test-deployment-put-{name}"
    assert raw.request("POST", DEPLOYMENTS, VALID_JSON % deploy)[0] == 201
    _check(
        _send(raw, "PUT", f"{DEPLOYMENTS}/{deploy}" + _query(mode), body % deploy, ctype), strict, warnings
    )


MERGE_PATCH = """
{
	"spec": {
		"unknown1": "val1",
		"unknownDupe": "valDupe",
		"unknownDupe": "valDupe2",
		"paused": true,
		"paused": false,
		"template": {
			"spec": {
				"containers": [{
					"name": "nginx",
					"image": "nginx:latest",
					"unknownNested": "val1",
					"imagePullPolicy": "Always",
					"imagePullPolicy": "Never"
				}]
			}
		}
	}
}
	"""
JSON_PATCH_BODY = """
			[
				{"op": "add", "path": "/spec/unknown1", "value": "val1", "foo":"bar"},
				{"op": "add", "path": "/spec/unknown2", "path": "/spec/unknown3", "value": "val1"},
				{"op": "add", "path": "/spec/unknownDupe", "value": "valDupe"},
				{"op": "add", "path": "/spec/unknownDupe", "value": "valDupe2"},
				{"op": "add", "path": "/spec/paused", "value": true},
				{"op": "add", "path": "/spec/paused", "value": false},
				{"op": "add", "path": "/spec/template/spec/containers/0/unknownNested", "value": "val1"},
				{"op": "add", "path": "/spec/template/spec/containers/0/imagePullPolicy", "value": "Always"},
				{"op": "add", "path": "/spec/template/spec/containers/0/imagePullPolicy", "value": "Never"}
			]
			"""
NONCONFLICTING_MERGE = """
{
	"spec": {
		"paused": true,
		"paused": false,
		"template": {
			"spec": {
				"containers": [{
					"name": "nginx",
					"image": "nginx:latest",
					"imagePullPolicy": "Always",
					"imagePullPolicy": "Never"
				}]
			}
		}
	}
}
			"""
PATCH_PROBLEMS = [
    'duplicate field "spec.unknownDupe"',
    'duplicate field "spec.paused"',
    'duplicate field "spec.template.spec.containers[0].imagePullPolicy"',
    'unknown field "spec.template.spec.containers[0].unknownNested"',
    'unknown field "spec.unknown1"',
    'unknown field "spec.unknownDupe"',
]
JSON_PATCH_PROBLEMS = [
    'json patch unknown field "[0].foo"',
    'json patch duplicate field "[1].path"',
    'unknown field "spec.template.spec.containers[0].unknownNested"',
    'unknown field "spec.unknown1"',
    'unknown field "spec.unknown3"',
    'unknown field "spec.unknownDupe"',
]
NONCONFLICTING_PROBLEMS = [
    'duplicate field "spec.paused"',
    'duplicate field "spec.template.spec.containers[0].imagePullPolicy"',
]


def _strict(problems: list[str]) -> str:
    return "strict decoding error: " + ", ".join(problems)


PATCH_CASES = [
    *_cases("merge-patch", MERGE_PATCH, MERGE, PATCH_PROBLEMS, _strict(PATCH_PROBLEMS)),
    *_cases("json-patch", JSON_PATCH_BODY, JSON_PATCH, JSON_PATCH_PROBLEMS, _strict(JSON_PATCH_PROBLEMS)),
    *_cases(
        "nonconflicting-merge-patch",
        NONCONFLICTING_MERGE,
        MERGE,
        NONCONFLICTING_PROBLEMS,
        _strict(NONCONFLICTING_PROBLEMS),
    ),
]


@pytest.mark.parametrize(
    ("name", "body", "ctype", "mode", "strict", "warnings"), PATCH_CASES, ids=[c[0] for c in PATCH_CASES]
)
def test_patch_typed(
    raw: Raw, name: str, body: str, ctype: str, mode: str | None, strict: str | None, warnings: list[str]
) -> None:
    """testFieldValidationPatchTyped."""
    deploy = f"test-deployment-patch-{name}"
    assert raw.request("POST", DEPLOYMENTS, VALID_JSON % deploy)[0] == 201
    _check(_send(raw, "PATCH", f"{DEPLOYMENTS}/{deploy}" + _query(mode), body, ctype), strict, warnings)


SMP_BODY = """
	{
		"spec": {
			"unknown1": "val1",
			"unknownDupe": "valDupe",
			"unknownDupe": "valDupe2",
			"paused": true,
			"paused": false,
			"selector": {
				"matchLabels": {
					"app": "nginx"
				}
			},
			"template": {
				"metadata": {
					"labels": {
						"app": "nginx"
					}
				},
				"spec": {
					"containers": [{
						"name": "nginx",
						"unknownNested": "val1",
						"imagePullPolicy": "Always",
						"imagePullPolicy": "Never"
					}]
				}
			}
		}
	}
	"""
NONCONFLICTING_SMP = """
	{
		"spec": {
			"paused": true,
			"paused": false,
			"selector": {
				"matchLabels": {
					"app": "nginx"
				}
			},
			"template": {
				"metadata": {
					"labels": {
						"app": "nginx"
					}
				},
				"spec": {
					"containers": [{
						"name": "nginx",
						"imagePullPolicy": "Always",
						"imagePullPolicy": "Never"
					}]
				}
			}
		}
	}
	"""
SMP_CASES = [
    *_cases("smp", SMP_BODY, STRATEGIC, PATCH_PROBLEMS, _strict(PATCH_PROBLEMS)),
    *_cases(
        "nonconflicting-smp",
        NONCONFLICTING_SMP,
        STRATEGIC,
        NONCONFLICTING_PROBLEMS,
        _strict(NONCONFLICTING_PROBLEMS),
    ),
]


@pytest.mark.parametrize(
    ("name", "body", "ctype", "mode", "strict", "warnings"), SMP_CASES, ids=[c[0] for c in SMP_CASES]
)
def test_smp(
    raw: Raw, name: str, body: str, ctype: str, mode: str | None, strict: str | None, warnings: list[str]
) -> None:
    """testFieldValidationSMP: the object is created by an apply first."""
    url = f"{DEPLOYMENTS}/{name}"
    assert raw.request("PATCH", url + "?fieldManager=apply_test", VALID_JSON % name, APPLY)[0] == 201
    _check(_send(raw, "PATCH", url + _query(mode), body, ctype), strict, warnings)


APPLY_LINES = [
    'line 10: key "paused" already set in map',
    'line 27: key "imagePullPolicy" already set in map',
]
APPLY_CASES = _cases(
    "apply",
    APPLY_INVALID,
    APPLY,
    APPLY_LINES,
    "error strict decoding YAML: error converting YAML to JSON: yaml: unmarshal errors:\n  "
    + "\n  ".join(APPLY_LINES),
)


@pytest.mark.parametrize(
    ("name", "body", "ctype", "mode", "strict", "warnings"), APPLY_CASES, ids=[c[0] for c in APPLY_CASES]
)
@pytest.mark.parametrize("existing", [False, True], ids=["create", "update"])
def test_apply(
    raw: Raw,
    existing: bool,
    name: str,
    body: str,
    ctype: str,
    mode: str | None,
    strict: str | None,
    warnings: list[str],
) -> None:
    """testFieldValidationApplyCreate / testFieldValidationApplyUpdate."""
    deploy = f"apply-{'update' if existing else 'create'}-deployment-{name}"
    url = f"{DEPLOYMENTS}/{deploy}" + _query(mode, "mgr")
    if existing:
        assert raw.request("PATCH", url, VALID_JSON % deploy, APPLY)[0] == 201
    _check(_send(raw, "PATCH", url, body % deploy, ctype), strict, warnings)


CRD_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "properties": {
                "cronSpec": {"type": "string"},
                "knownField1": {"type": "string"},
                "ports": {
                    "type": "array",
                    "x-kubernetes-list-type": "map",
                    "x-kubernetes-list-map-keys": ["containerPort", "protocol"],
                    "items": {
                        "type": "object",
                        "required": ["containerPort", "protocol"],
                        "properties": {
                            "containerPort": {"type": "integer", "format": "int32"},
                            "hostIP": {"type": "string"},
                            "hostPort": {"type": "integer", "format": "int32"},
                            "name": {"type": "string"},
                            "protocol": {"type": "string"},
                        },
                    },
                },
            },
        }
    },
}
CRD_INVALID = """
{
	"apiVersion": "%s",
	"kind": "%s",
	"metadata": {
		"name": "dupename",
		"name": "%s",
		"unknownMeta": "metaVal"
	},
	"spec": {
		"unknown1": "val1",
		"unknownDupe": "valDupe",
		"unknownDupe": "valDupe2",
		"knownField1": "val1",
		"knownField1": "val2",
			"ports": [{
				"name": "portName",
				"containerPort": 8080,
				"protocol": "TCP",
				"hostPort": 8081,
				"hostPort": 8082,
				"unknownNested": "val"
			}]
	}
}"""


@pytest.mark.parametrize("mode", ["Strict", "Warn", "Ignore", None])
def test_post_crd(raw: Raw, mode: str | None) -> None:
    """testFieldValidationPostCRD (without the embedded object): duplicates in document order, then
    the unknown fields (upstream's order of those is its pruning walk's; compared as a set here)."""
    group = "fieldvalidation.example.com"
    crd = crd_manifest(group, "Noxu", "noxus", CRD_SCHEMA)
    if raw.request("GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/noxus.{group}")[0] == 404:
        assert raw.request("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)[0] == 201
    name = f"crd-post-{mode or 'none'}".lower()
    body = CRD_INVALID % (f"{group}/v1", "Noxu", name)
    code, answer, warnings = _send(
        raw, "POST", f"/apis/{group}/v1/namespaces/default/noxus" + _query(mode), body, "application/json"
    )
    dups = [
        'duplicate field "metadata.name"',
        'duplicate field "spec.unknownDupe"',
        'duplicate field "spec.knownField1"',
        'duplicate field "spec.ports[0].hostPort"',
    ]
    unknown = {
        'unknown field "metadata.unknownMeta"',
        'unknown field "spec.ports[0].unknownNested"',
        'unknown field "spec.unknown1"',
        'unknown field "spec.unknownDupe"',
    }
    if mode == "Strict":
        assert code == 400, answer
        text = answer["message"].split("strict decoding error: ", 1)[1]
        assert text.split(", ")[:4] == dups and set(text.split(", ")[4:]) == unknown
    elif mode == "Ignore":
        assert code == 201 and warnings == []
    else:
        assert code == 201, answer
        assert warnings[:4] == dups and set(warnings[4:]) == unknown
    json.dumps(answer)
