"""A Spin project's `[application.tool.spindle]` table → the SpinApp it deploys as.

Spin ignores `tool` tables, so a project keeps its deployment settings next to its manifest. The
keys are `spin kube scaffold`'s options in snake_case (`image`, `replicas`, `autoscaler`,
`cpu_limit`, ..., see `TOOL_KEYS`) plus `namespace` and `name`; `scaffold_project` turns them into
the same objects as the flags would (`renderers.scaffold`), with the namespace set on each.
The image is required, and every problem names the spin.toml, the line and the key.
"""

from __future__ import annotations

import posixpath
import re
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from renderers.errors import Location, ManifestError, RenderError, ScaffoldError
from renderers.model import SourceDoc
from renderers.scaffold import ScaffoldOptions, name_from_image, scaffold, valid_image_reference, validate
from renderers.spintoml.lines import TomlLines
from renderers.spintoml.model import App
from renderers.spintoml.rules import unknown_key_hint

TOOL_TABLE = ("application", "tool", "spindle")

# tool-table key → (ScaffoldOptions field, expected type, the SpinApp field it lands in, if any)
TOOL_KEYS: dict[str, tuple[str, type, str]] = {
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
# Publishing keys: the project is pushed as an OCI artifact by `spindle apply`/`reconcile`/`publish` and
# the SpinApp's image pinned to its digest (`reconciler.publish`); `publish` replaces `image`.
PUBLISH_KEYS: dict[str, type] = {"publish": str, "publish_format": str}
PUBLISH_FORMATS = ("spin", "rootfs")
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


def publish_target(app: App) -> tuple[str, str] | None:
    """(`publish` repository, `publish_format`) of a project that asks to be published, else None."""
    table = app.spindle or {}
    ref, fmt = table.get("publish"), table.get("publish_format", "spin")
    if not isinstance(ref, str) or not isinstance(fmt, str):
        return None
    return ref, fmt


def project_options(
    app: App,
    rel: str,
    lines: TomlLines,
    project_dir: Path,
    errors: list[RenderError],
    root: Path | None = None,
    pinned: str | None = None,
) -> tuple[ScaffoldOptions | None, Mapping[str, int]]:
    """The scaffold options of a project's tool table (None when it has none or is invalid), and
    the line of each SpinApp field that came from a key, for pointing schema errors at the TOML.

    When `root` (the checkout) is given, `runtime_config_file` must stay inside it: its content
    goes into a Secret, so a repo must not be able to pull in files from elsewhere.
    A project with `publish` gets `pinned` (the published `REG/REPO@sha256:…`) as its image, or the
    unpinned repository when it has not been published (`spindle render`)."""
    if app.spindle is None:
        return None, {}
    reader = _TableReader(app, app.spindle, rel, lines, errors)
    values, field_keys = reader.typed_values()
    reader.check_publish(values, pinned)
    reader.check_references(values)
    reader.check_dropped_keys()
    reader.check_namespace(values)
    reader.load_runtime_config(values, project_dir, root)
    field_lines = FieldLines(lines, field_keys)
    return reader.options(values), field_lines


class _TableReader:
    """Reads one `[application.tool.spindle]` table, appending every problem to `errors`."""

    def __init__(
        self, app: App, table: Mapping[str, Any], rel: str, lines: TomlLines, errors: list[RenderError]
    ) -> None:
        self.app, self.table, self.rel, self.lines, self.errors = app, table, rel, lines, errors
        self.start = len(errors)

    def fail(self, key: str | None, message: str) -> None:
        path = (*TOOL_TABLE, key) if key else TOOL_TABLE
        line = self.lines.line_of(path)
        if key in ("cpu_limit", "memory_limit") and key not in self.table:
            line = self.lines.line_of((*TOOL_TABLE, "autoscaler"))  # missing because of the autoscaler
        field = ".".join(str(p) for p in path)
        self.errors.append(
            ManifestError(message, Location(self.rel, line, field), f"Spin app {self.app.name}")
        )

    def typed_values(self) -> tuple[dict[str, Any], dict[str, str]]:
        """ScaffoldOptions field → value for every known key of the right type, and SpinApp
        field → the key it came from."""
        values: dict[str, Any] = {}
        field_keys: dict[str, str] = {}
        for key, value in self.table.items():
            if key in PUBLISH_KEYS:
                if not isinstance(value, PUBLISH_KEYS[key]):
                    expected = _TYPE_NAMES[PUBLISH_KEYS[key]]
                    self.fail(key, f"{key} must be {expected}, not {type(value).__name__}")
                elif key == "publish":
                    field_keys["spec.image"] = key
                continue
            spec = TOOL_KEYS.get(key)
            if spec is None:
                hint = unknown_key_hint(key, TOOL_KEYS)
                self.fail(key, f"unknown key {key!r} in [application.tool.spindle] ({hint})")
                continue
            attr, kind, target = spec
            if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
                self.fail(key, f"{key} must be {_TYPE_NAMES[kind]}, not {type(value).__name__}")
                continue
            if target:
                field_keys[target] = key
            values[attr] = value
        return values, field_keys

    def check_publish(self, values: dict[str, Any], pinned: str | None) -> None:
        """`publish` (a repository, optionally tagged; never with `image`) and `publish_format`."""
        ref, fmt = self.table.get("publish"), self.table.get("publish_format")
        if fmt is not None and ref is None:
            self.fail("publish_format", "publish_format needs publish (the repository to push to)")
        if isinstance(fmt, str) and fmt not in PUBLISH_FORMATS:
            self.fail("publish_format", f"publish_format {fmt!r} must be one of {', '.join(PUBLISH_FORMATS)}")
        if not isinstance(ref, str):
            return
        if "image" in self.table:
            self.fail("publish", "give either image or publish: publish pins the image to what it pushes")
            return
        if not valid_image_reference(ref) or "@" in ref:
            self.fail("publish", f"publish {ref!r} must be a repository like registry.example.com/team/app")
            return
        values["from_image"] = pinned or ref

    def check_references(self, values: dict[str, Any]) -> None:
        """Variables must be declared by the app, components defined; lists hold strings."""
        for name, value in values.get("variables", {}).items():
            if not isinstance(value, str):
                self.fail("variables", f"variables.{name} must be a string, not {type(value).__name__}")
            elif name not in self.app.variables:
                self.fail(
                    "variables", f"variables.{name}: the app declares no variable {name!r} in [variables]"
                )
        for key in ("components", "image_pull_secrets"):
            if key in values:
                if not all(isinstance(item, str) for item in values[key]):
                    self.fail(key, f"{key} must be an array of strings")
                    del values[key]
                else:
                    values[key] = tuple(values[key])
        for component in values.get("components", ()):
            if component not in self.app.components:
                self.fail("components", f"component {component!r} is not defined in the spin.toml")

    def check_dropped_keys(self) -> None:
        """Keys the plugin's template would silently drop: say so instead of deploying without."""
        if not self.table.get("autoscaler"):
            for key in (
                "max_replicas",
                "autoscaler_target_cpu_utilization",
                "autoscaler_target_memory_utilization",
            ):
                if key in self.table:
                    self.fail(
                        key, f'{key} has no effect without an autoscaler (autoscaler = "hpa" or "keda")'
                    )
        if not self.table.get("cpu_limit") and not self.table.get("memory_limit"):
            for key in ("cpu_request", "memory_request"):
                if key in self.table:
                    self.fail(
                        key, f"{key} is only used with a cpu_limit or memory_limit (as in spin kube scaffold)"
                    )

    def check_namespace(self, values: Mapping[str, Any]) -> None:
        namespace = values.get("namespace")
        if namespace is not None and not _DNS_LABEL.match(namespace):
            self.fail("namespace", f"namespace {namespace!r} is not a valid DNS label")

    def load_runtime_config(self, values: dict[str, Any], project_dir: Path, root: Path | None) -> None:
        """Replace the runtime config path by the file's content, and check the store labels
        the components use against it."""
        config_path = values.get("runtime_config")
        if config_path is not None:
            config_file = (project_dir / config_path).resolve()
            if root is not None and root.resolve() not in config_file.parents:
                self.fail(
                    "runtime_config_file", f"runtime config file {config_path!r} is outside the checkout"
                )
            else:
                try:
                    values["runtime_config"] = config_file.read_bytes()
                except OSError as exc:
                    message = f"cannot read runtime config file {config_path!r}: {exc.strerror}"
                    self.fail("runtime_config_file", message)
        runtime_config = _runtime_config_tables(
            values.get("runtime_config"), self.rel, config_path, self.errors
        )
        if config_path is None or runtime_config is not None:  # else: the file's problem is reported
            components = values.get("components", ())
            _check_store_labels(self.app, components, runtime_config or {}, self.rel, self.lines, self.errors)

    def options(self, values: dict[str, Any]) -> ScaffoldOptions | None:
        """The options, when the table is valid (including the plugin's own validation)."""
        if "from_image" not in values:
            if "image" not in self.table and "publish" not in self.table:
                self.fail(
                    None,
                    "[application.tool.spindle] needs an 'image' (the OCI reference of the app) or 'publish' "
                    "(a repository spindle pushes the project to)",
                )
            return None
        if len(self.errors) > self.start:
            return None
        opts = ScaffoldOptions(**values)
        try:
            validate(opts)
        except ScaffoldError as exc:
            self.fail(_blame(opts, str(exc)), str(exc))
            return None
        name = opts.name or name_from_image(opts.from_image)
        if not _DNS_LABEL.match(name) or len(name) > 63:
            # It names the Deployment and Service too: a DNS label (the plugin would print it anyway).
            hint = "" if opts.name else ' (it comes from the image; set name = "...")'
            self.fail("name" if opts.name else "image", f"app name {name!r} is not a valid DNS label{hint}")
            return None
        return opts


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
    pinned: str | None = None,
) -> list[SourceDoc]:
    """The SourceDocs a project's `[application.tool.spindle]` table scaffolds to; problems are
    appended to `errors` (and then nothing is scaffolded). `root`, `pinned`: see `project_options`."""
    opts, field_lines = project_options(app, rel, lines, project_dir, errors, root, pinned)
    if opts is None:
        return []
    result = scaffold(opts)
    table_line = lines.table_line(TOOL_TABLE)
    location = Location(rel, table_line)
    docs = [SourceDoc(result.objects[0], location, field_lines)]
    docs += [SourceDoc(obj, location, {}) for obj in result.objects[1:]]
    return docs
