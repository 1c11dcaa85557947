"""`spin kube scaffold` as a pure function, and Spin projects' `[application.tool.spindle]` tables.

`scaffold(options)` validates the options exactly as spin-plugin-kube v0.4.0 does (same order,
same messages) and returns the SpinApp, plus the runtime-config Secret and the HPA or KEDA
ScaledObject when asked, both as objects and as the plugin's YAML text, byte for byte.

The text mirrors the plugin's Go template: the image is double-quoted and variable values are
written raw, so `--variable n=007` prints `value: 007` (which YAML reads back as the integer 7,
as with the plugin). The objects keep what the user meant: variable values are strings.

`scaffold_project(...)` maps a project's tool table to the same options; the image is required,
`namespace` (a spindle extension) is set on every generated object, and every problem names the
spin.toml, the line and the key.
"""

from __future__ import annotations

import base64
import enum
import posixpath
import re
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from renderers.errors import Location, ManifestError, RenderError, ScaffoldError
from renderers.model import Obj, SourceDoc
from renderers.spintoml.lines import TomlLines
from renderers.spintoml.model import App
from renderers.spintoml.rules import unknown_key_hint

DEFAULT_EXECUTOR = "containerd-shim-spin"
TOOL_TABLE = ("application", "tool", "spindle")


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


# --- Spin projects: [application.tool.spindle] ------------------------------------------------

# tool-table key → (ScaffoldOptions field, expected type, the SpinApp field it lands in, if any)
_TOOL_KEYS: dict[str, tuple[str, type, str]] = {
    "image": ("from_image", str, "spec.image"),
    "name": ("name", str, "metadata.name"),
    "namespace": ("namespace", str, "metadata.namespace"),
    "replicas": ("replicas", int, "spec.replicas"),
    "max_replicas": ("max_replicas", int, ""),
    "executor": ("executor", str, "spec.executor"),
    "autoscaler": ("autoscaler", str, "spec.enableAutoscaling"),
    "autoscaler_target_cpu_utilization": ("target_cpu_utilization", int, ""),
    "autoscaler_target_memory_utilization": ("target_memory_utilization", int, ""),
    "cpu_limit": ("cpu_limit", str, "spec.resources.limits.cpu"),
    "memory_limit": ("memory_limit", str, "spec.resources.limits.memory"),
    "cpu_request": ("cpu_request", str, "spec.resources.requests.cpu"),
    "memory_request": ("memory_request", str, "spec.resources.requests.memory"),
    "variables": ("variables", dict, "spec.variables"),
    "components": ("components", list, "spec.components"),
    "image_pull_secrets": ("image_pull_secrets", list, "spec.imagePullSecrets"),
    "service_account": ("service_account_name", str, "spec.serviceAccountName"),
    "azure_identity": ("azure_identity", bool, "spec.podLabels"),
    "runtime_config_file": ("runtime_config", str, "spec.runtimeConfig"),
}
_TYPE_NAMES = {str: "a string", int: "an integer", bool: "a boolean", dict: "a table", list: "an array"}
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


class FieldLines(Mapping[str, int]):
    """SpinApp field path → the line of the tool-table key it came from, looked up only when
    asked (finding TOML lines means scanning the file, which a valid project never needs)."""

    def __init__(self, lines: TomlLines, keys: Mapping[str, str]) -> None:
        self._lines = lines
        self._keys = dict(keys)  # SpinApp field → tool-table key

    def __getitem__(self, field_path: str) -> int:
        key = self._keys[field_path]
        line = self._lines.line_of((*TOOL_TABLE, key))
        if line is None:  # pragma: no cover - the key was read from this very file
            raise KeyError(field_path)
        return line

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)


def project_options(
    app: App,
    rel: str,
    lines: TomlLines,
    project_dir: Path,
    errors: list[RenderError],
    root: Path | None = None,
) -> tuple[ScaffoldOptions | None, Mapping[str, int]]:
    """The scaffold options of a project's tool table (None when it has none or is invalid), and
    the line of each SpinApp field that came from a key, for pointing schema errors at the TOML.

    When `root` (the checkout) is given, `runtime_config_file` must stay inside it: its content
    goes into a Secret, so a repo must not be able to pull in files from elsewhere."""
    table = app.spindle
    if table is None:
        return None, {}
    start = len(errors)

    def fail(key: str | None, message: str) -> None:
        path = (*TOOL_TABLE, key) if key else TOOL_TABLE
        line = lines.line_of(path)
        if key in ("cpu_limit", "memory_limit") and key not in table:
            line = lines.line_of((*TOOL_TABLE, "autoscaler"))  # missing because of the autoscaler
        field = ".".join(str(p) for p in path)
        errors.append(ManifestError(message, Location(rel, line, field), f"Spin app {app.name}"))

    values: dict[str, Any] = {}
    field_keys: dict[str, str] = {}
    for key, value in table.items():
        spec = _TOOL_KEYS.get(key)
        if spec is None:
            fail(
                key,
                f"unknown key {key!r} in [application.tool.spindle] ({unknown_key_hint(key, _TOOL_KEYS)})",
            )
            continue
        attr, kind, target = spec
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            fail(key, f"{key} must be {_TYPE_NAMES[kind]}, not {type(value).__name__}")
            continue
        if target:
            field_keys[target] = key
        values[attr] = value
    for key in ("variables",):
        if key in values:
            for name, value in values[key].items():
                if not isinstance(value, str):
                    fail(key, f"variables.{name} must be a string, not {type(value).__name__}")
                elif name not in app.variables:
                    fail(key, f"variables.{name}: the app declares no variable {name!r} in [variables]")
    for key in ("components", "image_pull_secrets"):
        if key in values:
            if not all(isinstance(item, str) for item in values[key]):
                fail(key, f"{key} must be an array of strings")
                del values[key]
            else:
                values[key] = tuple(values[key])
    for component in values.get("components", ()):
        if component not in app.components:
            fail("components", f"component {component!r} is not defined in the spin.toml")
    # Keys the plugin's template would silently drop: say so instead of deploying without them.
    if not table.get("autoscaler"):
        for key in (
            "max_replicas",
            "autoscaler_target_cpu_utilization",
            "autoscaler_target_memory_utilization",
        ):
            if key in table:
                fail(key, f'{key} has no effect without an autoscaler (autoscaler = "hpa" or "keda")')
    if not table.get("cpu_limit") and not table.get("memory_limit"):
        for key in ("cpu_request", "memory_request"):
            if key in table:
                fail(key, f"{key} is only used with a cpu_limit or memory_limit (as in spin kube scaffold)")
    namespace = values.get("namespace")
    if namespace is not None and not _DNS_LABEL.match(namespace):
        fail("namespace", f"namespace {namespace!r} is not a valid DNS label")
    config_path = values.get("runtime_config")
    if config_path is not None:
        config_file = (project_dir / config_path).resolve()
        if root is not None and root.resolve() not in config_file.parents:
            fail("runtime_config_file", f"runtime config file {config_path!r} is outside the checkout")
        else:
            try:
                values["runtime_config"] = config_file.read_bytes()
            except OSError as exc:
                fail(
                    "runtime_config_file", f"cannot read runtime config file {config_path!r}: {exc.strerror}"
                )
    runtime_config = _runtime_config_tables(values.get("runtime_config"), rel, config_path, errors)
    if config_path is None or runtime_config is not None:  # else: the file's problem is reported
        _check_store_labels(app, values.get("components", ()), runtime_config or {}, rel, lines, errors)
    field_lines = FieldLines(lines, field_keys)
    if "from_image" not in values:
        if "image" not in table:
            fail(None, "[application.tool.spindle] needs an 'image' (the OCI reference of the app)")
        return None, field_lines
    if len(errors) > start:
        return None, field_lines
    opts = ScaffoldOptions(**values)
    try:
        validate(opts)
    except ScaffoldError as exc:
        fail(_blame(opts, str(exc)), str(exc))
        return None, field_lines
    name = opts.name or name_from_image(opts.from_image)
    if not _DNS_LABEL.match(name) or len(name) > 63:
        # It names the Deployment and Service too: a DNS label (the plugin would print it anyway).
        hint = "" if opts.name else ' (it comes from the image; set name = "...")'
        fail("name" if opts.name else "image", f"app name {name!r} is not a valid DNS label{hint}")
        return None, field_lines
    return opts, field_lines


def _runtime_config_tables(
    data: Any, rel: str, config_path: str | None, errors: list[RenderError]
) -> dict[str, Any] | None:
    """The parsed runtime config file, or None (no file, or malformed: reported at its line)."""
    if not isinstance(data, bytes) or config_path is None:
        return None
    where = posixpath.normpath(posixpath.join(posixpath.dirname(rel), config_path))
    try:
        return tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        errors.append(ManifestError(f"runtime config is not UTF-8 text: {exc.reason}", Location(where)))
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"\(at line (\d+), column \d+\)", str(exc))
        line = int(match.group(1)) if match else None
        reason = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(exc))
        errors.append(ManifestError(f"malformed TOML in the runtime config: {reason}", Location(where, line)))
    return None


# component key → runtime config table that must define its non-default labels
_STORE_TABLES = {"key_value_stores": "key_value_store", "sqlite_databases": "sqlite_database"}


def _check_store_labels(
    app: App,
    components: tuple[str, ...],
    runtime_config: Mapping[str, Any],
    rel: str,
    lines: TomlLines,
    errors: list[RenderError],
) -> None:
    """Stores other than `default` exist only when the runtime config defines them; a scaffolded
    app's only runtime config is its `runtime_config_file`, so check the labels against it."""
    for cid, component in app.components.items():
        if components and cid not in components:
            continue  # not deployed (selective deployment)
        for key, section in _STORE_TABLES.items():
            defined = runtime_config.get(section) or {}
            for i, label in enumerate(getattr(component, key)):
                if label == "default" or label in defined:
                    continue
                path = ("component", cid, key, i)
                line = lines.line_of(path) or lines.table_line(TOOL_TABLE)
                field = f"component.{cid}.{key}[{i}]"
                errors.append(
                    ManifestError(
                        f"{section.replace('_', ' ')} {label!r} is not 'default', so the runtime config "
                        f"must define [{section}.{label}] (runtime_config_file in "
                        "[application.tool.spindle])",
                        Location(rel, line, field),
                        f"Spin app {app.name}",
                    )
                )


def _blame(opts: ScaffoldOptions, message: str) -> str | None:
    """The tool-table key a plugin validation message is about."""
    for needle, key in (
        ("image reference", "image"),
        ("minimum replica count", "replicas"),
        ("maximum replica count", "max_replicas"),
        ("autoscaler type", "autoscaler"),
        ("cpu limits", "cpu_limit"),
        ("memory limits", "memory_limit"),
        ("target cpu", "autoscaler_target_cpu_utilization"),
        ("target memory", "autoscaler_target_memory_utilization"),
    ):
        if needle in message:
            return key
    return None


def scaffold_project(
    app: App,
    rel: str,
    lines: TomlLines,
    project_dir: Path,
    errors: list[RenderError],
    root: Path | None = None,
) -> list[SourceDoc]:
    """The SourceDocs a project's `[application.tool.spindle]` table scaffolds to; problems are
    appended to `errors` (and then nothing is scaffolded). `root`: see `project_options`."""
    opts, field_lines = project_options(app, rel, lines, project_dir, errors, root)
    if opts is None:
        return []
    result = scaffold(opts)
    table_line = lines.table_line(TOOL_TABLE)
    location = Location(rel, table_line)
    docs = [SourceDoc(result.objects[0], location, field_lines)]
    docs += [SourceDoc(obj, location, {}) for obj in result.objects[1:]]
    return docs
