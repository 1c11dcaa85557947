"""The checks shared by manifest v2 (`renderers.spintoml.v2`) and v1 (`renderers.spintoml.v1`).

The `Checker` collects every problem of a file as a `ManifestError` naming the file, the line and
the dotted key ("component.hello.source", "trigger.http[1].route"), and keeps going: a problem in
one component never hides one in another. Checks follow Spin v3's manifest schema (unknown keys
rejected, id cases, routes, static responses, variables, templates, local paths, outbound hosts,
store labels, dependencies).
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from pathlib import Path as FsPath
from typing import Any

from renderers.errors import Location, ManifestError
from renderers.spintoml import rules
from renderers.spintoml.lines import Path, TomlLines
from renderers.spintoml.model import (
    BuildConfig,
    Component,
    ExecutorType,
    FileMount,
    HttpExecutor,
    LocalSource,
    RegistrySource,
    Source,
    StaticResponse,
    Trigger,
    UrlSource,
    Variable,
)

TOP_KEYS_V2 = frozenset({"spin_manifest_version", "application", "variables", "trigger", "component"})
APPLICATION_KEYS = frozenset({"name", "version", "description", "authors", "targets", "trigger", "tool"})
VARIABLE_KEYS = frozenset({"default", "required", "secret", "description"})
COMPONENT_KEYS_V2 = frozenset(
    {
        "source",
        "description",
        "variables",
        "environment",
        "files",
        "exclude_files",
        "allowed_http_hosts",
        "allowed_outbound_hosts",
        "key_value_stores",
        "sqlite_databases",
        "ai_models",
        "targets",
        "build",
        "tool",
        "dependencies_inherit_configuration",
        "dependencies",
    }
)
TRIGGER_COMMON_KEYS = frozenset({"id", "component", "components"})
TRIGGER_KEYS: dict[str, frozenset[str]] = {
    "http": TRIGGER_COMMON_KEYS | {"route", "executor", "static_response"},
    "redis": TRIGGER_COMMON_KEYS | {"channel", "address"},
}
BUILD_KEYS = frozenset({"command", "workdir", "watch"})
# dependency table shapes: the key that selects the shape → the keys it may have
DEPENDENCY_SHAPES = (
    ("path", frozenset({"path", "export"})),
    ("url", frozenset({"url", "digest", "export"})),
    ("component", frozenset({"component", "export"})),
    ("version", frozenset({"version", "registry", "package", "export"})),
)
FILE_MOUNT_KEYS = frozenset({"source", "destination"})
STATIC_RESPONSE_KEYS = frozenset({"status_code", "headers", "body"})
EXECUTOR_KEYS: dict[ExecutorType, frozenset[str]] = {
    ExecutorType.SPIN: frozenset({"type"}),
    ExecutorType.HTTP: frozenset({"type"}),
    ExecutorType.WAGI: frozenset({"type", "argv", "entrypoint"}),
    ExecutorType.WASIP3_UNSTABLE: frozenset({"type"}),
}


STORE_KEYS = ("key_value_stores", "sqlite_databases")


def dotted(path: Path) -> str:
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text


class Checker:
    """Collects the problems of one spin.toml."""

    def __init__(self, rel: str, lines: TomlLines, project_dir: FsPath | None) -> None:
        self.rel = rel
        self.lines = lines
        self.project_dir = project_dir
        self.errors: list[ManifestError] = []

    # --- reporting and typed access ------------------------------------------------------

    def error(self, path: Path, message: str) -> None:
        field = dotted(path) or None
        self.errors.append(ManifestError(message, Location(self.rel, self.lines.line_of(path), field)))

    def unknown_keys(self, table: Mapping[str, Any], allowed: frozenset[str], path: Path, what: str) -> None:
        for key in table:
            if key not in allowed:
                self.error(
                    (*path, key), f"unknown key {key!r} in {what} ({rules.unknown_key_hint(key, allowed)})"
                )

    def table(self, value: Any, path: Path, what: str) -> dict[str, Any] | None:
        if value is None:
            return None
        if not isinstance(value, dict):
            self.error(path, f"{what} must be a table, not {type_name(value)}")
            return None
        return value

    def string(self, value: Any, path: Path, required: bool = False) -> str | None:
        if value is None:
            if required:
                self.error(path, f"missing required key {path[-1]!r}")
            return None
        if not isinstance(value, str):
            self.error(path, f"must be a string, not {type_name(value)}")
            return None
        return value

    def boolean(self, value: Any, path: Path) -> bool:
        if value is None:
            return False
        if not isinstance(value, bool):
            self.error(path, f"must be a boolean, not {type_name(value)}")
            return False
        return value

    def strings(self, value: Any, path: Path) -> tuple[str, ...]:
        if value is None:
            return ()
        if not isinstance(value, list):
            self.error(path, f"must be a list of strings, not {type_name(value)}")
            return ()
        out = []
        for i, item in enumerate(value):
            if isinstance(item, str):
                out.append(item)
            else:
                self.error((*path, i), f"must be a string, not {type_name(item)}")
        return tuple(out)

    def string_map(self, value: Any, path: Path, what: str) -> dict[str, str]:
        table = self.table(value, path, what)
        if table is None:
            return {}
        out: dict[str, str] = {}
        for key, item in table.items():
            text = self.string(item, (*path, key))
            if text is not None:
                out[key] = text
        return out

    # --- application ---------------------------------------------------------------------

    def application(self, raw: Any, path: Path) -> dict[str, Any]:
        app = self.table(raw, path, "[application]")
        if app is None:
            if raw is None:
                self.error(path, "missing required table [application]")
            return {}
        self.unknown_keys(app, APPLICATION_KEYS, path, "[application]")
        triggers = self.table(app.get("trigger"), (*path, "trigger"), "[application.trigger]") or {}
        for ttype, settings in triggers.items():
            tpath = (*path, "trigger", ttype)
            table = self.table(settings, tpath, f"[application.trigger.{ttype}]")
            if ttype == "http" and table and "base" in table:
                base = table["base"]
                if base != "/":
                    self.error(
                        (*tpath, "base"),
                        f"the HTTP 'base' setting is no longer supported (got {base!r}); "
                        "only '/' is accepted: put the prefix in each route",
                    )
        tools = self.table(app.get("tool"), (*path, "tool"), "[application.tool]") or {}
        for name, tool in tools.items():
            self.table(tool, (*path, "tool", name), f"[application.tool.{name}]")
            if name != "spindle" and _looks_like_spindle(name):
                # Spin ignores every tool table, so a misspelt one would silently not deploy.
                self.error(
                    (*path, "tool", name),
                    f"[application.tool.{name}] is not read by spindle "
                    "(did you mean [application.tool.spindle]?)",
                )
        return app

    def variables(self, raw: Any, path: Path) -> dict[str, Variable]:
        table = self.table(raw, path, "[variables]") or {}
        out: dict[str, Variable] = {}
        for name, entry in table.items():
            vpath = (*path, name)
            problem = rules.lower_snake_problem(name)
            if problem:
                self.error(vpath, f"variable name {problem}")
            spec = self.table(entry, vpath, f"variable {name!r}")
            if spec is None:
                continue
            self.unknown_keys(spec, VARIABLE_KEYS, vpath, f"variable {name!r}")
            default = self.string(spec.get("default"), (*vpath, "default"))
            required = self.boolean(spec.get("required"), (*vpath, "required"))
            secret = self.boolean(spec.get("secret"), (*vpath, "secret"))
            description = self.string(spec.get("description"), (*vpath, "description")) or ""
            if required and default is not None:
                self.error(vpath, f"variable {name!r} is 'required' and has a 'default': choose one")
            elif not required and default is None:
                self.error(vpath, f"variable {name!r} must be 'required = true' or have a 'default'")
            out[name] = Variable(name, default, required, secret, description)
        return out

    # --- components ----------------------------------------------------------------------

    def component(
        self,
        cid: str,
        raw: Any,
        path: Path,
        app_vars: Mapping[str, Variable],
        allowed: frozenset[str] = COMPONENT_KEYS_V2,
        variables_key: str = "variables",
        database_access: bool = False,
    ) -> Component | None:
        """A component; `database_access` is manifest v1's implicit access to every Redis, MySQL
        and Postgres host when the component has no `allowed_outbound_hosts`."""
        table = self.table(raw, path, f"component {cid!r}")
        if table is None:
            return None
        self.unknown_keys(table, allowed, path, f"component {cid!r}")
        source = self.source(table.get("source"), (*path, "source"), built="build" in table)
        variables = self.component_variables(table.get(variables_key), (*path, variables_key), app_vars)
        outbound_key = "allowed_outbound_hosts"
        hosts = self.outbound_hosts(table.get(outbound_key), (*path, outbound_key), app_vars)
        http_hosts = self.strings(table.get("allowed_http_hosts"), (*path, "allowed_http_hosts"))
        converted, problems = rules.http_hosts_to_outbound(
            http_hosts, allow_database_access=database_access and "allowed_outbound_hosts" not in table
        )
        for i, problem in problems:
            self.error((*path, "allowed_http_hosts", i), f"invalid allowed HTTP host: {problem}")
        stores = {key: self.store_labels(table.get(key), (*path, key)) for key in STORE_KEYS}
        dependencies = self.dependencies(table.get("dependencies"), (*path, "dependencies"))
        self.targets(table.get("targets"), (*path, "targets"))
        self.table(table.get("tool"), (*path, "tool"), "tool")
        self.boolean(
            table.get("dependencies_inherit_configuration"), (*path, "dependencies_inherit_configuration")
        )
        extra: dict[str, Any] = {
            key: table[key]
            for key in ("targets", "tool", "dependencies_inherit_configuration")
            if key in table
        }
        if source is None:
            return None
        return Component(
            id=cid,
            source=source,
            description=self.string(table.get("description"), (*path, "description")) or "",
            variables=variables,
            environment=self.string_map(table.get("environment"), (*path, "environment"), "environment"),
            files=self.files(table.get("files"), (*path, "files")),
            exclude_files=self.strings(table.get("exclude_files"), (*path, "exclude_files")),
            allowed_outbound_hosts=(*hosts, *converted),
            allowed_http_hosts=http_hosts,
            key_value_stores=stores["key_value_stores"],
            sqlite_databases=stores["sqlite_databases"],
            ai_models=self.strings(table.get("ai_models"), (*path, "ai_models")),
            build=self.build(table.get("build"), (*path, "build")),
            dependencies=dependencies,
            extra=extra,
        )

    def component_variables(self, raw: Any, path: Path, app_vars: Mapping[str, Variable]) -> dict[str, str]:
        """A component's `variables` (v1: `config`): lower_snake names, templates of app variables."""
        variables = self.string_map(raw, path, str(path[-1]))
        for name, value in variables.items():
            problem = rules.lower_snake_problem(name)
            if problem:
                self.error((*path, name), f"component variable name {problem}")
            self.templates(value, (*path, name), app_vars)
        return variables

    def outbound_hosts(self, raw: Any, path: Path, app_vars: Mapping[str, Variable]) -> tuple[str, ...]:
        hosts = self.strings(raw, path)
        for i, host in enumerate(hosts):
            if self.templates(host, (*path, i), app_vars):
                problem = rules.outbound_host_problem(host)
                if problem:
                    self.error((*path, i), f"invalid allowed outbound host: {problem}")
        return hosts

    def store_labels(self, raw: Any, path: Path) -> tuple[str, ...]:
        labels = self.strings(raw, path)
        for i, label in enumerate(labels):
            problem = rules.store_label_problem(label)
            if problem:
                self.error((*path, i), problem)
        return labels

    def dependencies(self, raw: Any, path: Path) -> dict[str, Any]:
        """`dependencies`: WIT import → a version string, or one of the tables Spin accepts."""
        table = self.table(raw, path, "dependencies") or {}
        for name, spec in table.items():
            dpath = (*path, name)
            if isinstance(spec, str):
                continue
            dep = self.table(spec, dpath, f"dependency {name!r}")
            if dep is None:
                continue
            shape = next((keys for marker, keys in DEPENDENCY_SHAPES if marker in dep), None)
            if shape is None:
                self.error(dpath, "a dependency needs one of 'version', 'path', 'url' or 'component'")
                continue
            self.unknown_keys(dep, shape, dpath, f"dependency {name!r}")
            if isinstance(dep.get("path"), str):
                self.local_path(dep["path"], (*dpath, "path"), "dependency file")
            if "url" in dep and not isinstance(dep.get("digest"), str):
                self.error((*dpath, "digest"), "a URL dependency needs a 'digest' (\"sha256:...\")")
        return table

    def targets(self, raw: Any, path: Path) -> None:
        """`targets`: environment references, "name:version" or { registry, id } or { path }."""
        if raw is None:
            return
        if not isinstance(raw, list):
            self.error(path, f"targets must be a list, not {type_name(raw)}")
            return
        for i, item in enumerate(raw):
            if isinstance(item, str):
                continue
            ref = self.table(item, (*path, i), "a target")
            if ref is None:
                continue
            allowed = frozenset({"path"}) if "path" in ref else frozenset({"registry", "id"})
            self.unknown_keys(ref, allowed, (*path, i), "a target")

    def templates(self, text: str, path: Path, app_vars: Mapping[str, Variable]) -> bool:
        """Check the `{{ var }}` templates of `text`; True when they are all fine."""
        names, problem = rules.template_names(text)
        if problem:
            self.error(path, problem)
            return False
        ok = True
        for name in names:
            if name not in app_vars:
                self.error(path, f"template {{{{ {name} }}}} refers to an undeclared application variable")
                ok = False
        return ok

    def source(self, raw: Any, path: Path, built: bool = False) -> Source | None:
        if raw is None:
            self.error(path, "missing required key 'source'")
            return None
        if isinstance(raw, str):
            hint = "; run its build (`spin build`) and commit the .wasm" if built else ""
            self.local_path(raw, path, "source file", hint)
            return LocalSource(raw)
        table = self.table(raw, path, "source")
        if table is None:
            return None
        if "url" in table:
            self.unknown_keys(table, frozenset({"url", "digest"}), path, "a URL source")
            url = self.string(table.get("url"), (*path, "url"), required=True)
            digest = self.string(table.get("digest"), (*path, "digest"), required=True)
            if digest is not None and not digest.startswith("sha256:"):
                self.error((*path, "digest"), f"digest {digest!r} must start with 'sha256:'")
            return UrlSource(url, digest) if url and digest else None
        if "package" in table:
            self.unknown_keys(table, frozenset({"registry", "package", "version"}), path, "a registry source")
            package = self.string(table.get("package"), (*path, "package"), required=True)
            version = self.string(table.get("version"), (*path, "version"), required=True)
            registry = self.string(table.get("registry"), (*path, "registry"))
            return RegistrySource(package, version, registry) if package and version else None
        self.error(path, "source must be a local path, { url, digest } or { registry?, package, version }")
        return None

    def local_path(self, rel_path: str, path: Path, what: str, hint: str = "") -> None:
        if self.project_dir is None:
            return
        if FsPath(rel_path).is_absolute():
            self.error(path, f"{what} {rel_path!r} must be relative to the spin.toml")
        elif not (self.project_dir / rel_path).exists():
            self.error(path, f"{what} {rel_path!r} does not exist (relative to the spin.toml){hint}")

    def files(self, raw: Any, path: Path) -> tuple[FileMount, ...]:
        if raw is None:
            return ()
        if not isinstance(raw, list):
            self.error(path, f"files must be a list, not {type_name(raw)}")
            return ()
        out = []
        for i, item in enumerate(raw):
            ipath = (*path, i)
            if isinstance(item, str):
                out.append(FileMount(item))
                continue
            table = self.table(item, ipath, "a files entry")
            if table is None:
                continue
            self.unknown_keys(table, FILE_MOUNT_KEYS, ipath, "a files entry")
            source = self.string(table.get("source"), (*ipath, "source"), required=True)
            destination = self.string(table.get("destination"), (*ipath, "destination"), required=True)
            if source is not None:
                self.local_path(source, (*ipath, "source"), "files source")
            if destination is not None and not destination.startswith("/"):
                self.error((*ipath, "destination"), f"destination {destination!r} must be an absolute path")
            if source is not None and destination is not None:
                out.append(FileMount(source, destination))
        return tuple(out)

    def build(self, raw: Any, path: Path) -> BuildConfig | None:
        table = self.table(raw, path, "build")
        if table is None:
            return None
        self.unknown_keys(table, BUILD_KEYS, path, "build")
        command = table.get("command")
        commands: tuple[str, ...] = ()
        if isinstance(command, str):
            commands = (command,)
        elif isinstance(command, list):
            commands = self.strings(command, (*path, "command"))
        elif command is None:
            self.error((*path, "command"), "missing required key 'command'")
        else:
            self.error((*path, "command"), "command must be a string or a list of strings")
        return BuildConfig(
            commands,
            self.string(table.get("workdir"), (*path, "workdir")),
            self.strings(table.get("watch"), (*path, "watch")),
        )

    # --- triggers ------------------------------------------------------------------------

    def http_settings(self, trigger: dict[str, Any], path: Path) -> dict[str, Any]:
        out: dict[str, Any] = {}
        route = trigger.get("route")
        rpath = (*path, "route")
        if route is None:
            self.error(rpath, "missing required key 'route'")
        elif isinstance(route, str):
            problem = rules.route_problem(route)
            if problem:
                self.error(rpath, problem)
            out["route"] = route
        elif isinstance(route, dict):
            self.unknown_keys(route, frozenset({"private"}), rpath, "route")
            if route.get("private") is not True:
                self.error(rpath, "a route table must be { private = true }")
            out["private"] = True
        else:
            self.error(rpath, f"route must be a string or {{ private = true }}, not {type_name(route)}")
        executor = self.table(trigger.get("executor"), (*path, "executor"), "executor")
        if executor is not None:
            epath = (*path, "executor")
            kind = executor.get("type")
            try:
                etype = ExecutorType(kind)
            except ValueError:
                valid = ", ".join(repr(t.value) for t in ExecutorType)
                self.error((*epath, "type"), f"executor type {kind!r} is not one of {valid}")
            else:
                self.unknown_keys(executor, EXECUTOR_KEYS[etype], epath, f"a {etype.value!r} executor")
                out["executor"] = HttpExecutor(
                    etype,
                    self.string(executor.get("argv"), (*epath, "argv")),
                    self.string(executor.get("entrypoint"), (*epath, "entrypoint")),
                )
        static = self.table(trigger.get("static_response"), (*path, "static_response"), "static_response")
        if static is not None:
            spath = (*path, "static_response")
            self.unknown_keys(static, STATIC_RESPONSE_KEYS, spath, "static_response")
            status = static.get("status_code")
            if status is not None and (
                not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 999
            ):
                self.error(
                    (*spath, "status_code"), f"status_code must be an HTTP status (100-999), not {status!r}"
                )
                status = None
            out["static_response"] = StaticResponse(
                status,
                self.string_map(static.get("headers"), (*spath, "headers"), "headers"),
                self.string(static.get("body"), (*spath, "body")),
            )
        return out

    def check_routes(self, triggers: list[tuple[Trigger, Path]]) -> None:
        seen: dict[str, tuple[str, Path]] = {}
        for trigger, path in triggers:
            if trigger.type != "http" or trigger.route is None or rules.route_problem(trigger.route):
                continue
            key = rules.route_key(trigger.route)
            rpath = (*path, "route")
            if key in seen:
                first, first_path = seen[key]
                line = self.lines.line_of(first_path)
                self.error(
                    rpath, f"duplicate route {trigger.route!r} (already used by {first!r} at line {line})"
                )
            else:
                seen[key] = (trigger.route, rpath)


def type_name(value: Any) -> str:
    return {
        dict: "a table",
        list: "an array",
        str: "a string",
        bool: "a boolean",
        int: "an integer",
        float: "a float",
    }.get(type(value), type(value).__name__)


def _looks_like_spindle(name: str) -> bool:
    return difflib.SequenceMatcher(None, name.lower(), "spindle").ratio() >= 0.8
