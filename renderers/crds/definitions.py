"""The CustomResourceDefinitions spindle installs: SpinApp and SpinAppExecutor
(`core.spinkube.dev/v1alpha1`, spin-operator) and Shim (`runtime.spinkube.dev/v1alpha1`,
runtime-class-manager), with structural schemas following the upstream Go types: the same
required fields, defaults, list/map types, scopes, status subresources and printer columns.

One deliberate simplification: `SpinApp.spec.volumes[]` (a full `corev1.Volume`, thousands of
schema lines upstream) keeps only `name` typed and required and preserves the other fields; the
API server validates them again when the Deployment is applied.
"""

from __future__ import annotations

from typing import Any

from renderers.meta import SHIM_GROUP, SPINAPP_GROUP

Schema = dict[str, Any]

_QUANTITY_PATTERN = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)


def _str() -> Schema:
    return {"type": "string"}


def _bool() -> Schema:
    return {"type": "boolean"}


def _int32(default: int | None = None) -> Schema:
    schema: Schema = {"type": "integer", "format": "int32"}
    if default is not None:
        schema["default"] = default
    return schema


def _obj(properties: dict[str, Schema], required: list[str] | None = None, **extra: Any) -> Schema:
    schema: Schema = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    schema.update(extra)
    return schema


def _array(items: Schema, **extra: Any) -> Schema:
    return {"type": "array", "items": items, **extra}


def _string_map() -> Schema:
    return {"type": "object", "additionalProperties": {"type": "string"}}


def _quantity() -> Schema:
    return {
        "anyOf": [{"type": "integer"}, {"type": "string"}],
        "pattern": _QUANTITY_PATTERN,
        "x-kubernetes-int-or-string": True,
    }


def _key_ref() -> Schema:
    return _obj(
        {"key": _str(), "name": {"type": "string", "default": ""}, "optional": _bool()},
        ["key"],
        **{"x-kubernetes-map-type": "atomic"},
    )


def _env_var_source() -> Schema:
    return _obj(
        {
            "configMapKeyRef": _key_ref(),
            "fieldRef": _obj(
                {"apiVersion": _str(), "fieldPath": _str()},
                ["fieldPath"],
                **{"x-kubernetes-map-type": "atomic"},
            ),
            "resourceFieldRef": _obj(
                {"containerName": _str(), "divisor": _quantity(), "resource": _str()},
                ["resource"],
                **{"x-kubernetes-map-type": "atomic"},
            ),
            "secretKeyRef": _key_ref(),
        }
    )


def _runtime_config_option() -> Schema:
    return _obj(
        {
            "name": _str(),
            "value": _str(),
            "valueFrom": _obj({"configMapKeyRef": _key_ref(), "secretKeyRef": _key_ref()}),
        },
        ["name"],
    )


def _health_probe() -> Schema:
    return _obj(
        {
            "httpGet": _obj(
                {
                    "path": _str(),
                    "httpHeaders": _array(_obj({"name": _str(), "value": _str()}, ["name", "value"])),
                },
                ["path"],
            ),
            "initialDelaySeconds": _int32(10),
            "timeoutSeconds": _int32(1),
            "periodSeconds": _int32(10),
            "successThreshold": _int32(1),
            "failureThreshold": _int32(3),
        }
    )


def _volume_mount() -> Schema:
    return _obj(
        {
            "mountPath": _str(),
            "mountPropagation": _str(),
            "name": _str(),
            "readOnly": _bool(),
            "recursiveReadOnly": _str(),
            "subPath": _str(),
            "subPathExpr": _str(),
        },
        ["mountPath", "name"],
    )


def spinapp_spec_schema() -> Schema:
    options = _array(_runtime_config_option())
    return _obj(
        {
            "checks": _obj({"liveness": _health_probe(), "readiness": _health_probe()}),
            "components": _array(_str(), minItems=1),
            "deploymentAnnotations": _string_map(),
            "enableAutoscaling": {"type": "boolean", "default": False},
            "executor": _str(),
            "image": _str(),
            "imagePullSecrets": _array(
                _obj({"name": {"type": "string", "default": ""}}, None, **{"x-kubernetes-map-type": "atomic"})
            ),
            "invocationLimits": _string_map(),
            "podAnnotations": _string_map(),
            "podLabels": _string_map(),
            "replicas": _int32(),
            "resources": _obj(
                {
                    "limits": {"type": "object", "additionalProperties": _quantity()},
                    "requests": {"type": "object", "additionalProperties": _quantity()},
                }
            ),
            "runtimeConfig": _obj(
                {
                    "keyValueStores": _array(
                        _obj({"name": _str(), "type": _str(), "options": options}, ["name", "type"])
                    ),
                    "llmCompute": _obj({"type": _str(), "options": options}, ["type"]),
                    "loadFromSecret": _str(),
                    "sqliteDatabases": _array(
                        _obj({"name": _str(), "type": _str(), "options": options}, ["name", "type"])
                    ),
                }
            ),
            "serviceAccountName": _str(),
            "serviceAnnotations": _string_map(),
            "variables": _array(
                _obj({"name": _str(), "value": _str(), "valueFrom": _env_var_source()}, ["name"])
            ),
            "volumeMounts": _array(_volume_mount()),
            "volumes": _array(
                _obj({"name": _str()}, ["name"], **{"x-kubernetes-preserve-unknown-fields": True})
            ),
        },
        ["image"],
    )


def spinapp_status_schema() -> Schema:
    condition = _obj(
        {
            "lastTransitionTime": {"type": "string", "format": "date-time"},
            "message": {"type": "string", "maxLength": 32768},
            "observedGeneration": {"type": "integer", "format": "int64", "minimum": 0},
            "reason": {
                "type": "string",
                "maxLength": 1024,
                "minLength": 1,
                "pattern": r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$",
            },
            "status": {"type": "string", "enum": ["True", "False", "Unknown"]},
            "type": {
                "type": "string",
                "maxLength": 316,
                "pattern": (
                    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
                    r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$"
                ),
            },
        },
        ["lastTransitionTime", "message", "reason", "status", "type"],
    )
    return _obj(
        {
            "activeScheduler": _str(),
            "conditions": _array(condition),
            "deploymentName": _str(),
            "readyReplicas": _int32(),
            "serviceName": _str(),
        },
        ["readyReplicas"],
    )


def executor_spec_schema() -> Schema:
    return _obj(
        {
            "createDeployment": _bool(),
            "deploymentConfig": _obj(
                {
                    "caCertSecret": _str(),
                    "installDefaultCACerts": _bool(),
                    "otel": _obj(
                        {
                            "exporter_otlp_endpoint": _str(),
                            "exporter_otlp_logs_endpoint": _str(),
                            "exporter_otlp_metrics_endpoint": _str(),
                            "exporter_otlp_traces_endpoint": _str(),
                        }
                    ),
                    "runtimeClassName": _str(),
                    "spinImage": _str(),
                }
            ),
        },
        ["createDeployment"],
    )


def shim_spec_schema() -> Schema:
    return _obj(
        {
            "containerdRuntimeOptions": _string_map(),
            "fetchStrategy": _obj(
                {
                    "anonHttp": _obj({"location": _str()}, ["location"]),
                    "platforms": _array(
                        _obj(
                            {
                                "arch": {"type": "string", "enum": ["amd64", "arm64", "x86_64", "aarch64"]},
                                "location": _str(),
                                "os": {"type": "string", "enum": ["linux"]},
                                "sha256": _str(),
                            },
                            ["arch", "location", "os"],
                        )
                    ),
                    "type": _str(),
                }
            ),
            "nodeSelector": _string_map(),
            "rolloutStrategy": _obj(
                {
                    "rolling": _obj({"maxUpdate": {"type": "integer"}}, ["maxUpdate"]),
                    "type": {"type": "string", "enum": ["rolling", "recreate"]},
                },
                ["type"],
            ),
            "runtimeClass": _obj({"handler": _str(), "name": _str()}, ["handler", "name"]),
        },
        ["fetchStrategy", "rolloutStrategy", "runtimeClass"],
    )


def shim_status_schema() -> Schema:
    return _obj(
        {
            "conditions": _array(_obj({"type": _str(), "status": _str()}, ["status", "type"],
                                      **{"x-kubernetes-preserve-unknown-fields": True})),
            "nodes": {"type": "integer"},
            "nodesReady": {"type": "integer"},
        },
        ["nodes", "nodesReady"],
    )


def _root(kind: str, spec: Schema, status: Schema, spec_required: bool) -> Schema:
    root = _obj(
        {
            "apiVersion": _str(),
            "kind": _str(),
            "metadata": {"type": "object"},
            "spec": spec,
            "status": status,
        }
    )
    root["description"] = f"{kind} (rendered by spindle)"
    if spec_required:
        root["required"] = ["spec"]
    return root


def _crd(
    group: str,
    kind: str,
    plural: str,
    scope: str,
    schema: Schema,
    columns: list[dict[str, Any]],
    status_subresource: bool,
) -> dict[str, Any]:
    version: dict[str, Any] = {
        "name": "v1alpha1",
        "served": True,
        "storage": True,
        "schema": {"openAPIV3Schema": schema},
        "subresources": {"status": {}} if status_subresource else {},
    }
    if columns:
        version["additionalPrinterColumns"] = columns
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {
            "group": group,
            "names": {
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": plural,
                "singular": kind.lower(),
            },
            "scope": scope,
            "versions": [version],
        },
    }


def spinapp_crd() -> dict[str, Any]:
    columns: list[dict[str, Any]] = [
        {"jsonPath": ".status.readyReplicas", "name": "Ready", "type": "integer"},
        {"jsonPath": ".spec.replicas", "name": "Desired", "type": "integer"},
        {"jsonPath": ".spec.executor", "name": "Executor", "type": "string"},
        {"jsonPath": ".status.deploymentName", "name": "Deployment", "priority": 1, "type": "string"},
        {"jsonPath": ".status.serviceName", "name": "Service", "priority": 1, "type": "string"},
    ]
    schema = _root("SpinApp", spinapp_spec_schema(), spinapp_status_schema(), spec_required=False)
    return _crd(SPINAPP_GROUP, "SpinApp", "spinapps", "Namespaced", schema, columns, True)


def executor_crd() -> dict[str, Any]:
    schema = _root("SpinAppExecutor", executor_spec_schema(), {"type": "object"}, spec_required=False)
    return _crd(SPINAPP_GROUP, "SpinAppExecutor", "spinappexecutors", "Namespaced", schema, [], True)


def shim_crd() -> dict[str, Any]:
    columns: list[dict[str, Any]] = [
        {"jsonPath": ".spec.runtimeClass.name", "name": "RuntimeClass", "type": "string"},
        {"jsonPath": ".status.nodesReady", "name": "Ready", "type": "integer"},
        {"jsonPath": ".status.nodes", "name": "Nodes", "type": "integer"},
    ]
    schema = _root("Shim", shim_spec_schema(), shim_status_schema(), spec_required=False)
    return _crd(SHIM_GROUP, "Shim", "shims", "Cluster", schema, columns, False)


def all_crds() -> list[dict[str, Any]]:
    return [spinapp_crd(), executor_crd(), shim_crd()]
