"""SpinApp → Deployment, Service and Secrets, field for field as spin-operator builds them.

spin-operator sets a controller ownerReference from every child to its SpinApp. spindle does
not: it applies these objects itself, without the operator, and the SpinApp's uid is unknown
when rendering (and the SpinApp may not be in the cluster at all), so an ownerReference would
either be invalid or make the garbage collector delete the workloads. Ownership is tracked by
spindle's labels and inventory instead.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

from renderers.meta import (
    SPIN_OPERATOR_MANAGED_BY,
    SPINAPP_NAME_LABEL,
    SPINAPP_STATUS_READY,
    status_label,
)
from renderers.model import Obj
from renderers.quantity import quantity_value
from renderers.spinapp import gotypes
from renderers.spinapp.runtimeconfig import RUNTIME_CONFIG_KEY

HTTP_PORT = 80
HTTP_PORT_NAME = "http-app"
LISTEN_ADDR = f"0.0.0.0:{HTTP_PORT}"
CA_SECRET_NAME = "spin-ca"
CA_KEY = "ca-certificates.crt"
RUNTIME_CONFIG_VOLUME = "spin-runtime-config"
RUNTIME_CONFIG_PATH = "/runtime-config.toml"
CA_MOUNT_PATH = "/etc/ssl/certs/ca-certificates.crt"
OTEL_ENV = (
    ("exporter_otlp_endpoint", "OTEL_EXPORTER_OTLP_ENDPOINT"),
    ("exporter_otlp_traces_endpoint", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"),
    ("exporter_otlp_metrics_endpoint", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"),
    ("exporter_otlp_logs_endpoint", "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT"),
)
_PROBE_FIELDS = (
    "initialDelaySeconds",
    "timeoutSeconds",
    "periodSeconds",
    "successThreshold",
    "failureThreshold",
)


def _secret_volume(volume: str, secret: str, key: str, mount_path: str) -> tuple[Obj, Obj]:
    return (
        {
            "name": volume,
            "secret": {"secretName": secret, "optional": True, "items": [{"key": key, "path": key}]},
        },
        {"name": volume, "readOnly": True, "mountPath": mount_path, "subPath": key},
    )


def app_labels(app: str) -> dict[str, str]:
    return {SPINAPP_NAME_LABEL: app}


def ready_labels(app: str) -> dict[str, str]:
    return {SPINAPP_NAME_LABEL: app, status_label(app): SPINAPP_STATUS_READY}


def env_vars(spec: Mapping[str, Any], deployment_config: Mapping[str, Any]) -> list[Obj]:
    """The container env in the operator's order: variables, listen address, OTEL, memory
    limit, components (spinkube.md 2.4)."""
    env: list[Obj] = []
    for variable in spec.get("variables") or []:
        entry: Obj = {"name": "SPIN_VARIABLE_" + str(variable.get("name", "")).upper()}
        if variable.get("value"):
            entry["value"] = variable["value"]
        if variable.get("valueFrom"):
            entry["valueFrom"] = gotypes.env_var_source(variable["valueFrom"])
        env.append(entry)
    env.append({"name": "SPIN_HTTP_LISTEN_ADDR", "value": LISTEN_ADDR})
    otel = deployment_config.get("otel") or {}
    env.extend({"name": name, "value": otel[key]} for key, name in OTEL_ENV if otel.get(key))
    memory = (spec.get("invocationLimits") or {}).get("memory")
    if memory is not None:
        env.append({"name": "SPIN_MAX_INSTANCE_MEMORY", "value": str(quantity_value(memory))})
    components = spec.get("components")
    if components:
        env.append({"name": "SPIN_COMPONENTS_TO_RETAIN", "value": ",".join(components)})
    return env


def probe(check: Mapping[str, Any] | None) -> Obj | None:
    """A SpinApp HealthProbe (CRD defaults already applied) as a corev1 Probe on port 80."""
    if not check:
        return None
    http_get = check.get("httpGet") or {}
    action: Obj = {"path": http_get.get("path", ""), "port": HTTP_PORT}
    if http_get.get("httpHeaders"):
        action["httpHeaders"] = [{"name": h["name"], "value": h["value"]} for h in http_get["httpHeaders"]]
    result: Obj = {"httpGet": action}
    # corev1.Probe's integer fields are omitempty: zero values disappear.
    result.update({f: check[f] for f in _PROBE_FIELDS if check.get(f)})
    return result


def volumes(
    spec: Mapping[str, Any], runtime_secret: str | None, ca_secret: str | None
) -> tuple[list[Obj], list[Obj]]:
    """Volumes and mounts in the operator's order: runtime config, the user's, then the CA."""
    vols: list[Obj] = []
    mounts: list[Obj] = []
    if runtime_secret:
        vol, mount = _secret_volume(
            RUNTIME_CONFIG_VOLUME, runtime_secret, RUNTIME_CONFIG_KEY, RUNTIME_CONFIG_PATH
        )
        vols.append(vol)
        mounts.append(mount)
    vols.extend(gotypes.volume(v) for v in spec.get("volumes") or [])
    mounts.extend(gotypes.volume_mount(m) for m in spec.get("volumeMounts") or [])
    if ca_secret:
        vol, mount = _secret_volume(CA_SECRET_NAME, ca_secret, CA_KEY, CA_MOUNT_PATH)
        vols.append(vol)
        mounts.append(mount)
    return vols, mounts


def _container(
    app: str, spec: Mapping[str, Any], deployment_config: Mapping[str, Any], mounts: list[Obj]
) -> Obj:
    """The app's only container: the app image run by the shim (`command: ["/"]`), or, with a
    spintainer executor, `spin up` in the `spinImage` pulling the app image itself."""
    container: Obj = {"name": app}
    spin_image = deployment_config.get("spinImage")
    if spin_image:
        container["image"] = spin_image
        args = ["up", "--listen", LISTEN_ADDR, "-f", spec["image"]]
        args += ["--runtime-config-file", RUNTIME_CONFIG_PATH]
        for component in spec.get("components") or []:
            args += ["--component-id", component]
        container["args"] = args
    else:
        container["image"] = spec["image"]
        container["command"] = ["/"]
    container["ports"] = [{"name": HTTP_PORT_NAME, "containerPort": HTTP_PORT}]
    container["env"] = env_vars(spec, deployment_config)
    if mounts:
        container["volumeMounts"] = mounts
    container["resources"] = gotypes.resources(spec.get("resources") or {})
    checks = spec.get("checks") or {}
    liveness, readiness = probe(checks.get("liveness")), probe(checks.get("readiness"))
    if liveness:
        container["livenessProbe"] = liveness
    if readiness:
        container["readinessProbe"] = readiness
    return container


def deployment(
    app: str,
    namespace: str,
    spec: Mapping[str, Any],
    deployment_config: Mapping[str, Any],
    runtime_secret: str | None,
    ca_secret: str | None,
) -> Obj:
    """The Deployment of spinkube.md 2.3 (2.7 for spintainer executors)."""
    vols, mounts = volumes(spec, runtime_secret, ca_secret)
    pod_spec: Obj = {}
    if not deployment_config.get("spinImage") and deployment_config.get("runtimeClassName"):
        pod_spec["runtimeClassName"] = deployment_config["runtimeClassName"]
    pod_spec["serviceAccountName"] = spec.get("serviceAccountName") or "default"
    pod_spec["containers"] = [_container(app, spec, deployment_config, mounts)]
    if spec.get("imagePullSecrets"):
        pod_spec["imagePullSecrets"] = [gotypes.local_object_reference(r) for r in spec["imagePullSecrets"]]
    if vols:
        pod_spec["volumes"] = vols

    selector = ready_labels(app)
    # podLabels first, the operator's selector labels win on a collision.
    template_labels = {**(spec.get("podLabels") or {}), **selector}
    deploy_spec: Obj = {}
    if not spec.get("enableAutoscaling"):  # else an HPA / KEDA owns the replica count
        deploy_spec["replicas"] = spec.get("replicas", 0)
    deploy_spec["selector"] = {"matchLabels": selector}
    deploy_spec["template"] = {
        "metadata": {"labels": template_labels, "annotations": dict(spec.get("podAnnotations") or {})},
        "spec": pod_spec,
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": app,
            "namespace": namespace,
            "labels": app_labels(app),
            "annotations": dict(spec.get("deploymentAnnotations") or {}),
        },
        "spec": deploy_spec,
    }


def service(app: str, namespace: str, spec: Mapping[str, Any]) -> Obj:
    """The Service of spinkube.md 2.6, applied whether or not the executor creates Deployments."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": app,
            "namespace": namespace,
            "labels": app_labels(app),
            "annotations": dict(spec.get("serviceAnnotations") or {}),
        },
        "spec": {
            "type": "ClusterIP",
            "ports": [{"protocol": "TCP", "port": HTTP_PORT, "targetPort": HTTP_PORT_NAME}],
            "selector": {status_label(app): SPINAPP_STATUS_READY},
        },
    }


def runtime_config_secret(app: str, namespace: str, name: str, toml: bytes) -> Obj:
    # `type` is left unset, as by the operator (the API server stores Opaque).
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace, "labels": app_labels(app)},
        "data": {RUNTIME_CONFIG_KEY: base64.b64encode(toml).decode()},
    }


def ca_secret(namespace: str, name: str, bundle_b64: str) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "annotations": {"app.kubernetes.io/managed-by": SPIN_OPERATOR_MANAGED_BY},
        },
        "data": {CA_KEY: bundle_b64},
    }
