"""`spin kube scaffold` (spin-plugin-kube v0.4.0) as a pure function.

`scaffold(options)` validates the options exactly as spin-plugin-kube v0.4.0 does (same order,
same messages) and returns the SpinApp, plus the runtime-config Secret and the HPA or KEDA
ScaledObject when asked, both as objects and as the plugin's YAML text, byte for byte.

The text mirrors the plugin's Go template: the image is double-quoted and variable values are
written raw, so `--variable n=007` prints `value: 007` (which YAML reads back as the integer 7,
as with the plugin). The objects keep what the user meant: variable values are strings.

Spin projects' `[application.tool.spindle]` tables map to the same options in
`renderers.tooltable`.
"""

from __future__ import annotations

import base64
import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from renderers.errors import ScaffoldError
from renderers.model import Obj

DEFAULT_EXECUTOR = "containerd-shim-spin"


class Autoscaler(enum.Enum):
    HPA = "hpa"
    KEDA = "keda"


@dataclass(frozen=True)
class ScaffoldOptions:
    """The flags of `spin kube scaffold`, with the plugin's defaults."""

    from_image: str
    replicas: int = 2
    max_replicas: int = 3
    autoscaler: str = ""  # "", "hpa" or "keda"; kept as text so a bad value gets the plugin's message
    target_cpu_utilization: int = 60
    target_memory_utilization: int = 60
    executor: str = DEFAULT_EXECUTOR
    cpu_limit: str = ""
    memory_limit: str = ""
    cpu_request: str = ""
    memory_request: str = ""
    runtime_config: bytes | None = None  # the runtime-config file's content (read at the edge)
    variables: Mapping[str, str] = field(default_factory=dict)
    components: tuple[str, ...] = ()
    image_pull_secrets: tuple[str, ...] = ()
    service_account_name: str = ""
    azure_identity: bool = False
    # spindle extensions for Spin projects; the plugin has neither.
    namespace: str | None = None
    name: str | None = None


@dataclass(frozen=True)
class Scaffolded:
    objects: list[Obj]
    text: str


# The image reference grammar of distribution/reference (what the plugin's parser accepts).
_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?"
_REPOSITORY_PATH = re.compile(rf"^{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*$")
_REFERENCE = re.compile(
    rf"^(?:(?P<domain>{_DOMAIN})/)?(?P<path>{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*)"
    r"(?::(?P<tag>[\w][\w.-]{0,127}))?"
    r"(?:@(?P<digest>[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}))?$"
)


def _split_reference(ref: str) -> tuple[str | None, str] | None:
    """(domain, repository path) of an image reference, or None when it is invalid."""
    match = _REFERENCE.match(ref)
    if match is None:
        return None
    domain, path = match.group("domain"), match.group("path")
    if domain is not None and not ("." in domain or ":" in domain or domain == "localhost"):
        # "foo/bar": the first component is a Docker Hub namespace, not a registry.
        path, domain = f"{domain}/{path}", None
        if not _REPOSITORY_PATH.match(path):
            return None
    if len(path) + len(domain or "") > 255:
        return None
    return domain, path


def valid_image_reference(ref: str) -> bool:
    return _split_reference(ref) is not None


def name_from_image(ref: str) -> str:
    """`metadata.name`: the last path segment of the repository, without tag or digest."""
    parts = _split_reference(ref)
    if parts is None:
        raise ScaffoldError(f"invalid image reference provided: '{ref}'")
    return parts[1].rsplit("/", 1)[-1]


def validate(opts: ScaffoldOptions) -> None:
    """The plugin's flag validation, in its order; raises ScaffoldError with its message."""
    if opts.replicas < 0:
        raise ScaffoldError(f"the minimum replica count ({opts.replicas}) must be greater than 0")
    if not valid_image_reference(opts.from_image):
        raise ScaffoldError(f"invalid image reference provided: '{opts.from_image}'")
    if opts.autoscaler == "":
        return
    if opts.autoscaler not in ("hpa", "keda"):
        raise ScaffoldError(
            f"invalid autoscaler type '{opts.autoscaler}'; the autoscaler type must be either 'hpa' or 'keda'"
        )
    if opts.max_replicas < 0:
        raise ScaffoldError(
            f"the maximum replica count ({opts.max_replicas}) must be equal to or greater than 0"
        )
    if opts.replicas > opts.max_replicas:
        raise ScaffoldError(
            f"the minimum replica count ({opts.replicas}) must be less than or equal to the maximum "
            f"replica count ({opts.max_replicas})"
        )
    if opts.cpu_limit == "":
        raise ScaffoldError("cpu limits must be set when autoscaling is enabled")
    if opts.memory_limit == "":
        raise ScaffoldError("memory limits must be set when autoscaling is enabled")
    for what, value in (("cpu", opts.target_cpu_utilization), ("memory", opts.target_memory_utilization)):
        if value < 1 or value > 100:
            raise ScaffoldError(f"target {what} utilization percentage ({value}) must be between 1 and 100")


def scaffold(opts: ScaffoldOptions) -> Scaffolded:
    """The SpinApp (+ runtime-config Secret, + autoscaler object) for `opts`."""
    validate(opts)
    name = opts.name or name_from_image(opts.from_image)
    runtime_config = base64.b64encode(opts.runtime_config).decode() if opts.runtime_config is not None else ""
    objects = [_spinapp(opts, name)]
    if runtime_config:
        objects.append(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": _metadata(f"{name}-runtime-config", opts.namespace),
                "type": "Opaque",
                "data": {"runtime-config.toml": runtime_config},
            }
        )
    if opts.autoscaler:
        objects.append(_autoscaler(opts, name))
    return Scaffolded(objects, _text(opts, name, runtime_config))


def _metadata(name: str, namespace: str | None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    return meta


def _spinapp(opts: ScaffoldOptions, name: str) -> Obj:
    spec: dict[str, Any] = {"image": opts.from_image, "executor": opts.executor}
    if opts.autoscaler:
        spec["enableAutoscaling"] = True
    else:
        spec["replicas"] = opts.replicas
    if opts.azure_identity:
        spec["podLabels"] = {"azure.workload.identity/use": "true"}
    if opts.service_account_name:
        spec["serviceAccountName"] = opts.service_account_name
    if opts.variables:
        spec["variables"] = [{"name": key, "value": opts.variables[key]} for key in sorted(opts.variables)]
    if opts.components:
        spec["components"] = list(opts.components)
    if opts.cpu_limit or opts.memory_limit:
        limits = {k: v for k, v in (("cpu", opts.cpu_limit), ("memory", opts.memory_limit)) if v}
        resources: dict[str, Any] = {"limits": limits}
        requests = {k: v for k, v in (("cpu", opts.cpu_request), ("memory", opts.memory_request)) if v}
        if requests:
            resources["requests"] = requests
        spec["resources"] = resources
    if opts.image_pull_secrets:
        spec["imagePullSecrets"] = [{"name": secret} for secret in opts.image_pull_secrets]
    if opts.runtime_config is not None and opts.runtime_config != b"":
        spec["runtimeConfig"] = {"loadFromSecret": f"{name}-runtime-config"}
    return {
        "apiVersion": "core.spinkube.dev/v1alpha1",
        "kind": "SpinApp",
        "metadata": _metadata(name, opts.namespace),
        "spec": spec,
    }


def _autoscaler(opts: ScaffoldOptions, name: str) -> Obj:
    target = {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}
    meta = _metadata(f"{name}-autoscaler", opts.namespace)
    if opts.autoscaler == Autoscaler.HPA.value:
        return {
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": meta,
            "spec": {
                "scaleTargetRef": target,
                "minReplicas": opts.replicas,
                "maxReplicas": opts.max_replicas,
                "metrics": [
                    {
                        "type": "Resource",
                        "resource": {
                            "name": resource,
                            "target": {"type": "Utilization", "averageUtilization": value},
                        },
                    }
                    for resource, value in (
                        ("cpu", opts.target_cpu_utilization),
                        ("memory", opts.target_memory_utilization),
                    )
                ],
            },
        }
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": meta,
        "spec": {
            "scaleTargetRef": target,
            "minReplicaCount": opts.replicas,
            "maxReplicaCount": opts.max_replicas,
            "triggers": [
                {"type": resource, "metricType": "Utilization", "metadata": {"value": str(value)}}
                for resource, value in (
                    ("cpu", opts.target_cpu_utilization),
                    ("memory", opts.target_memory_utilization),
                )
            ],
        },
    }


def _text(opts: ScaffoldOptions, name: str, runtime_config: str) -> str:
    """The plugin's template output, line for line."""
    ns = [f"  namespace: {opts.namespace}"] if opts.namespace else []
    out = ["apiVersion: core.spinkube.dev/v1alpha1", "kind: SpinApp", "metadata:", f"  name: {name}", *ns]
    out += ["spec:", f'  image: "{opts.from_image}"', f"  executor: {opts.executor}"]
    out.append("  enableAutoscaling: true" if opts.autoscaler else f"  replicas: {opts.replicas}")
    if opts.azure_identity:
        out += ["  podLabels:", '    azure.workload.identity/use: "true"']
    if opts.service_account_name:
        out.append(f"  serviceAccountName: {opts.service_account_name}")
    if opts.variables:
        out.append("  variables:")
        for key in sorted(opts.variables):
            out += [f"  - name: {key}", f"    value: {opts.variables[key]}"]
    if opts.components:
        out.append("  components:")
        out += [f"  - {component}" for component in opts.components]
    if opts.cpu_limit or opts.memory_limit:
        out += ["  resources:", "    limits:"]
        out += [f"      cpu: {opts.cpu_limit}"] if opts.cpu_limit else []
        out += [f"      memory: {opts.memory_limit}"] if opts.memory_limit else []
        if opts.cpu_request or opts.memory_request:
            out.append("    requests:")
            out += [f"      cpu: {opts.cpu_request}"] if opts.cpu_request else []
            out += [f"      memory: {opts.memory_request}"] if opts.memory_request else []
    if opts.image_pull_secrets:
        out.append("  imagePullSecrets:")
        out += [f"    - name: {secret}" for secret in opts.image_pull_secrets]
    if runtime_config:
        out += ["  runtimeConfig:", f"    loadFromSecret: {name}-runtime-config"]
        out += ["---", "apiVersion: v1", "kind: Secret", "metadata:", f"  name: {name}-runtime-config", *ns]
        out += ["type: Opaque", "data:", f"  runtime-config.toml: {runtime_config}"]
    if opts.autoscaler:
        out.append("---")
        meta = ["metadata:", f"  name: {name}-autoscaler", *ns]
        target = ["  scaleTargetRef:", "    apiVersion: apps/v1", "    kind: Deployment", f"    name: {name}"]
        cpu, memory = opts.target_cpu_utilization, opts.target_memory_utilization
        if opts.autoscaler == Autoscaler.HPA.value:
            out += ["apiVersion: autoscaling/v2", "kind: HorizontalPodAutoscaler", *meta, "spec:", *target]
            out += [f"  minReplicas: {opts.replicas}", f"  maxReplicas: {opts.max_replicas}", "  metrics:"]
            for resource, value in (("cpu", cpu), ("memory", memory)):
                out += ["  - type: Resource", "    resource:", f"      name: {resource}", "      target:"]
                out += ["        type: Utilization", f"        averageUtilization: {value}"]
        else:
            out += ["apiVersion: keda.sh/v1alpha1", "kind: ScaledObject", *meta, "spec:", *target]
            out += [f"  minReplicaCount: {opts.replicas}", f"  maxReplicaCount: {opts.max_replicas}"]
            out.append("  triggers:")
            for resource, value in (("cpu", cpu), ("memory", memory)):
                out += [f"  - type: {resource}", "    metricType: Utilization", "    metadata:"]
                out.append(f'      value: "{value}"')
    return "\n".join(out) + "\n"
