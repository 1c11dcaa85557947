"""A small spin.toml loader (manifest v1 and v2): only what the runtime needs to serve HTTP.

The result is one normalised `AppManifest` whatever the version; paths stay relative to the
manifest's directory (the app image's root).
"""

from __future__ import annotations

import enum
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shim.errors import ManifestError

_KEBAB = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
_SNAKE = re.compile(r"^[a-z][a-z0-9_]*$")


class ExecutorKind(enum.Enum):
    SPIN = "spin"  # wasi:http/incoming-handler or fermyon:spin/inbound-http
    WAGI = "wagi"
    WASIP3 = "wasip3-unstable"


class RouteKind(enum.Enum):
    EXACT = "exact"
    WILDCARD = "wildcard"
    PRIVATE = "private"


@dataclass(frozen=True)
class Route:
    kind: RouteKind
    raw: str  # as written, e.g. "/api/..."; "" for private routes
    base: str = ""  # manifest v1's application base ("" for "/"); v2 has none

    @property
    def prefix(self) -> str:
        """The route without its `/...` tail (Spin's `spin-component-route`)."""
        if self.kind is RouteKind.WILDCARD:
            return self.raw[: -len("/...")]
        return self.raw

    @property
    def based(self) -> str:
        """The route the server matches: base + route (Spin's `spin-matched-route`)."""
        return self.base + self.raw if self.raw != "/" or not self.base else self.base

    @property
    def based_prefix(self) -> str:
        return self.base + self.prefix


@dataclass(frozen=True)
class FileMount:
    source: str  # a glob (pattern form) or a directory/file path (mapping form)
    destination: str  # absolute path inside the guest
    is_glob: bool


@dataclass(frozen=True)
class VariableSpec:
    name: str
    default: str | None = None
    required: bool = False
    secret: bool = False


@dataclass(frozen=True)
class ComponentSpec:
    id: str
    source: str
    files: tuple[FileMount, ...] = ()
    allowed_outbound_hosts: tuple[str, ...] = ()
    key_value_stores: tuple[str, ...] = ()
    sqlite_databases: tuple[str, ...] = ()
    variables: Mapping[str, str] = field(default_factory=dict)
    environment: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class WagiSettings:
    argv: str = "${SCRIPT_NAME} ${ARGS}"
    entrypoint: str = "_start"


@dataclass(frozen=True)
class StaticResponse:
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes


@dataclass(frozen=True)
class HttpTrigger:
    id: str
    route: Route
    component: str | None
    executor: ExecutorKind = ExecutorKind.SPIN
    wagi: WagiSettings = WagiSettings()
    static_response: StaticResponse | None = None


@dataclass(frozen=True)
class RedisTrigger:
    """`[[trigger.redis]]`: messages on `channel` at `address` (the trigger's own, else the app's
    `[application.trigger.redis] address`) go to `component`'s fermyon:spin/inbound-redis."""
    id: str
    channel: str
    component: str
    address: str


@dataclass(frozen=True)
class MqttTrigger:
    """`[[trigger.mqtt]]` (spin-trigger-mqtt): messages on `topic` at the app's broker go to
    `component`'s `handle-message`. Broker settings come from `[application.trigger.mqtt]`."""
    id: str
    component: str
    topic: str
    qos: int
    address: str
    username: str = ""
    password: str = ""
    keep_alive: int = 30


@dataclass(frozen=True)
class CommandTrigger:
    """`[[trigger.command]]` (spin-trigger-command): `component`'s `wasi:cli/run`, run once."""
    id: str
    component: str


@dataclass(frozen=True)
class AppManifest:
    path: Path  # the spin.toml file
    name: str
    variables: Mapping[str, VariableSpec]
    components: Mapping[str, ComponentSpec]
    http_triggers: tuple[HttpTrigger, ...]
    other_triggers: tuple[str, ...] = ()
    version: str | None = None  # [application] version (v1: top-level version)
    redis_triggers: tuple[RedisTrigger, ...] = ()
    command_triggers: tuple[CommandTrigger, ...] = ()
    mqtt_triggers: tuple[MqttTrigger, ...] = ()

    @property
    def root(self) -> Path:
        return self.path.parent


# ---------------------------------------------------------------- reading


def load_manifest(path: Path) -> AppManifest:
    """Read `path` (a spin.toml, or a directory holding one; or a locked app `spin.json` that
    `shim.ociapp` materialized from a pulled Spin artifact)."""
    if path.is_dir():
        path = path / "spin.json" if (path / "spin.json").is_file() and not (path / "spin.toml").exists() \
            else path / "spin.toml"
    if path.suffix == ".json":
        from shim.locked import load_locked

        return load_locked(path)
    where = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ManifestError(where, "no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(where, f"cannot read: {exc}") from exc
    return parse_manifest(text, path)


def parse_manifest(text: str, path: Path) -> AppManifest:
    where = str(path)
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ManifestError(where, f"invalid TOML: {exc}") from exc
    version = doc.get("spin_manifest_version", doc.get("spin_version"))
    if version == 2:
        return _parse_v2(doc, path)
    if version in ("1", 1):
        return _parse_v1(doc, path)
    raise ManifestError(where, f"unsupported manifest version {version!r} (expected 2 or \"1\")",
                        "spin_manifest_version")


class _Reader:
    """Typed access to one TOML table with errors that name the file and field."""

    def __init__(self, where: str, prefix: str, table: Any) -> None:
        if not isinstance(table, dict):
            raise ManifestError(where, f"expected a table, got {type(table).__name__}", prefix or None)
        self.where, self.prefix, self.table = where, prefix, table

    def field(self, key: str) -> str:
        return f"{self.prefix}.{key}" if self.prefix else key

    def error(self, key: str, message: str) -> ManifestError:
        return ManifestError(self.where, message, self.field(key))

    def str_(self, key: str, default: str | None = None) -> str | None:
        v = self.table.get(key, default)
        if v is not None and not isinstance(v, str):
            raise self.error(key, f"expected a string, got {type(v).__name__}")
        return v

    def req_str(self, key: str) -> str:
        v = self.str_(key)
        if v is None:
            raise self.error(key, "is required")
        return v

    def str_list(self, key: str) -> tuple[str, ...]:
        v = self.table.get(key, [])
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            raise self.error(key, "expected a list of strings")
        return tuple(v)

    def str_map(self, key: str) -> dict[str, str]:
        v = self.table.get(key, {})
        if not isinstance(v, dict) or not all(isinstance(x, str) for x in v.values()):
            raise self.error(key, "expected a table of strings")
        return dict(v)

    def sub(self, key: str) -> _Reader:
        return _Reader(self.where, self.field(key), self.table.get(key, {}))


def _variables(where: str, table: Any) -> dict[str, VariableSpec]:
    r = _Reader(where, "variables", table)
    out: dict[str, VariableSpec] = {}
    for name in r.table:
        if not _SNAKE.match(name):
            raise r.error(name, "variable names must be lower_snake_case")
        s = r.sub(name)
        unknown = set(s.table) - {"default", "required", "secret", "description"}
        if unknown:
            raise s.error(sorted(unknown)[0], "unknown key")
        required = s.table.get("required", False)
        secret = s.table.get("secret", False)
        if not isinstance(required, bool) or not isinstance(secret, bool):
            raise s.error("required", "required and secret must be booleans")
        default = s.str_("default")
        if required and default is not None:
            raise s.error("default", "a required variable cannot have a default")
        out[name] = VariableSpec(name, default, required, secret)
    return out


def _files(r: _Reader) -> tuple[FileMount, ...]:
    raw = r.table.get("files", [])
    if not isinstance(raw, list):
        raise r.error("files", "expected a list")
    out: list[FileMount] = []
    for i, item in enumerate(raw):
        if isinstance(item, str):
            out.append(FileMount(item, "/", True))
        elif isinstance(item, dict) and isinstance(item.get("source"), str) \
                and isinstance(item.get("destination"), str):
            out.append(FileMount(item["source"], item["destination"], False))
        else:
            raise r.error(f"files[{i}]", "expected a glob string or { source, destination }")
    return tuple(out)


def _component(where: str, prefix: str, cid: str, table: Any, config_key: str) -> ComponentSpec:
    r = _Reader(where, prefix, table)
    if not _KEBAB.match(cid):
        raise ManifestError(where, "component ids must be kebab-case", prefix)
    src = r.table.get("source")
    if isinstance(src, dict):
        raise r.error("source", "only local file sources are supported by this runtime (url/registry "
                      "sources must be resolved before the app is packaged)")
    source = r.req_str("source")
    hosts = r.str_list("allowed_outbound_hosts") + r.str_list("allowed_http_hosts")
    return ComponentSpec(
        id=cid,
        source=source,
        files=_files(r),
        allowed_outbound_hosts=hosts,
        key_value_stores=r.str_list("key_value_stores"),
        sqlite_databases=r.str_list("sqlite_databases"),
        variables=r.str_map(config_key),
        environment=r.str_map("environment"),
    )


def _route(r: _Reader, value: Any) -> Route:
    if isinstance(value, dict):
        if value.get("private") is True:
            return Route(RouteKind.PRIVATE, "")
        raise r.error("route", "a table route must be { private = true }")
    if not isinstance(value, str):
        raise r.error("route", "is required (a string such as \"/...\")")
    if not value.startswith("/"):
        raise r.error("route", f"route {value!r} must start with '/'")
    if value == "/..." or value.endswith("/..."):
        return Route(RouteKind.WILDCARD, value)
    if "..." in value:
        raise r.error("route", f"route {value!r}: '...' is only allowed as the last segment")
    return Route(RouteKind.EXACT, value.rstrip("/") or "/")


def _executor(r: _Reader) -> tuple[ExecutorKind, WagiSettings]:
    raw = r.table.get("executor")
    if raw is None:
        return ExecutorKind.SPIN, WagiSettings()
    ex = r.sub("executor")
    kind = ex.req_str("type")
    if kind in ("spin", "http"):
        return ExecutorKind.SPIN, WagiSettings()
    if kind == "wagi":
        return ExecutorKind.WAGI, WagiSettings(
            argv=ex.str_("argv") or WagiSettings.argv,
            entrypoint=ex.str_("entrypoint") or WagiSettings.entrypoint,
        )
    if kind == "wasip3-unstable":
        return ExecutorKind.WASIP3, WagiSettings()
    raise ex.error("type", f"unknown executor {kind!r} (expected spin, http, wagi)")


def _static_response(r: _Reader) -> StaticResponse:
    s = r.sub("static_response")
    status = s.table.get("status_code", 200)
    if not isinstance(status, int) or not 100 <= status <= 599:
        raise s.error("status_code", "expected an HTTP status code")
    headers = s.str_map("headers")
    body = s.str_("body") or ""
    return StaticResponse(status, tuple(headers.items()), body.encode())


def _parse_v2(doc: dict[str, Any], path: Path) -> AppManifest:
    where = str(path)
    unknown = set(doc) - {"spin_manifest_version", "application", "variables", "trigger", "component"}
    if unknown:
        raise ManifestError(where, "unknown key", sorted(unknown)[0])
    app = _Reader(where, "application", doc.get("application", {}))
    unknown_app = set(app.table) - {"name", "version", "description", "authors", "targets", "trigger", "tool"}
    if unknown_app:
        raise app.error(sorted(unknown_app)[0], "unknown key")
    base = app.sub("trigger").sub("http").str_("base")
    if base not in (None, "/"):
        raise app.error("trigger.http.base", "a base other than \"/\" is not supported in manifest v2")
    name = app.req_str("name")
    variables = _variables(where, doc.get("variables", {}))
    comps_raw = _Reader(where, "component", doc.get("component", {}))
    components: dict[str, ComponentSpec] = {
        cid: _component(where, f"component.{cid}", cid, table, "variables")
        for cid, table in comps_raw.table.items()
    }
    triggers = _Reader(where, "trigger", doc.get("trigger", {}))
    http: list[HttpTrigger] = []
    redis: list[RedisTrigger] = []
    commands: list[CommandTrigger] = []
    mqtt: list[MqttTrigger] = []
    other: list[str] = []
    for ttype, entries in triggers.table.items():
        if not isinstance(entries, list):
            raise triggers.error(ttype, f"expected an array of tables ([[trigger.{ttype}]])")
        if ttype == "redis":
            app_address = app.sub("trigger").sub("redis").str_("address")
            redis.extend(_redis_trigger(_Reader(where, f"trigger.redis[{i}]", entry), i, app_address,
                                        components) for i, entry in enumerate(entries))
            continue
        if ttype == "mqtt":
            settings = app.sub("trigger").sub("mqtt")
            mqtt.extend(_mqtt_trigger(_Reader(where, f"trigger.mqtt[{i}]", entry), i, settings, components)
                        for i, entry in enumerate(entries))
            continue
        if ttype == "command":
            for i, entry in enumerate(entries):
                r = _Reader(where, f"trigger.command[{i}]", entry)
                target = r.req_str("component")
                if target not in components:
                    raise r.error("component", f"no component {target!r} is defined")
                commands.append(CommandTrigger(r.str_("id") or f"command-trigger-{i}", target))
            continue
        if ttype != "http":
            other.append(ttype)
            continue
        for i, entry in enumerate(entries):
            r = _Reader(where, f"trigger.http[{i}]", entry)
            tid = r.str_("id") or f"trigger-{i}"
            comp = r.table.get("component")
            static = "static_response" in r.table
            if (comp is None) == (not static):
                raise r.error("component", "exactly one of component and static_response must be given")
            if isinstance(comp, dict):  # inline component
                cid = f"inline-component-{i}"
                components[cid] = _component(where, r.field("component"), cid, comp, "variables")
                comp = cid
            elif comp is not None and not isinstance(comp, str):
                raise r.error("component", "expected a component id or an inline component table")
            if comp is not None and comp not in components:
                raise r.error("component", f"no component {comp!r} is defined")
            kind, wagi = _executor(r)
            http.append(HttpTrigger(
                id=tid, route=_route(r, r.table.get("route")), component=comp, executor=kind, wagi=wagi,
                static_response=_static_response(r) if static else None,
            ))
    return AppManifest(path, name, variables, components, tuple(http), tuple(other), app.str_("version"),
                       tuple(redis), tuple(commands), tuple(mqtt))


def _redis_trigger(r: _Reader, i: int, app_address: str | None,
                   components: dict[str, ComponentSpec]) -> RedisTrigger:
    comp = r.table.get("component")
    if isinstance(comp, dict):  # inline component
        cid = f"inline-redis-component-{i}"
        components[cid] = _component(r.where, r.field("component"), cid, comp, "variables")
        comp = cid
    if not isinstance(comp, str):
        raise r.error("component", "is required (a component id or an inline component table)")
    if comp not in components:
        raise r.error("component", f"no component {comp!r} is defined")
    address = r.str_("address") or app_address
    if not address:
        raise r.error("address", "no Redis address: give one here or in [application.trigger.redis] address")
    return RedisTrigger(r.str_("id") or f"redis-trigger-{i}", r.req_str("channel"), comp, address)


def _int_str(r: _Reader, key: str, default: int, allowed: range) -> int:
    """spin-trigger-mqtt's numbers are strings ("1"); a TOML integer is taken too."""
    raw = r.table.get(key, str(default))
    try:
        value = int(raw) if isinstance(raw, int | str) and not isinstance(raw, bool) else None
    except ValueError:
        value = None
    if value is None or value not in allowed:
        raise r.error(key, f"expected a number in {allowed.start}..{allowed.stop - 1}, got {raw!r}")
    return value


def _mqtt_trigger(r: _Reader, i: int, settings: _Reader, components: dict[str, ComponentSpec]) -> MqttTrigger:
    comp = r.req_str("component")
    if comp not in components:
        raise r.error("component", f"no component {comp!r} is defined")
    address = settings.str_("address")
    if not address:
        raise settings.error("address", "is required for mqtt triggers (e.g. \"mqtt://localhost:1883\")")
    return MqttTrigger(r.str_("id") or f"mqtt-trigger-{i}", comp, r.req_str("topic"),
                       _int_str(r, "qos", 0, range(3)), address, settings.str_("username") or "",
                       settings.str_("password") or "",
                       _int_str(settings, "keep_alive_interval", 30, range(0, 65536)))


def chaining_target(allowed_host: str) -> str | None:
    """The component an `allowed_outbound_hosts` entry chains to (`*` for `*.spin.internal`), or
    None: not service chaining, or a template not resolved yet (ignored, as Spin does)."""
    if "{{" in allowed_host:
        return None
    _, sep, rest = allowed_host.partition("://")
    host = (rest if sep else allowed_host).split("/", 1)[0].rsplit(":", 1)[0].lower()
    return host[: -len(".spin.internal")] if host.endswith(".spin.internal") and host != ".spin.internal" \
        else None


def _validate_chaining(app: AppManifest, keep: set[str]) -> None:
    """As containerd-shim-spin does with SPIN_COMPONENTS_TO_RETAIN: a retained component may not
    chain to a component that is not retained, nor to `*.spin.internal`."""
    for cid in sorted(keep):
        for host in app.components[cid].allowed_outbound_hosts:
            target = chaining_target(host)
            if target is None or target in keep:
                continue
            if target == "*":
                raise ManifestError(str(app.path), f"Selected component {cid!r} cannot use wildcard service "
                                    'chaining: allowed_outbound_hosts = ["http://*.spin.internal"]',
                                    "SPIN_COMPONENTS_TO_RETAIN")
            raise ManifestError(str(app.path), f"Selected component {cid!r} cannot use service chaining to "
                                f"unselected component: allowed_outbound_hosts = "
                                f'["http://{target}.spin.internal"]', "SPIN_COMPONENTS_TO_RETAIN")


def _parse_v1(doc: dict[str, Any], path: Path) -> AppManifest:
    where = str(path)
    top = _Reader(where, "", doc)
    name = top.req_str("name")
    trig = top.sub("trigger")
    ttype = trig.req_str("type")
    base = trig.str_("base") or "/"
    variables = _variables(where, doc.get("variables", {}))
    raw = doc.get("component", [])
    if not isinstance(raw, list):
        raise ManifestError(where, "expected an array of tables ([[component]])", "component")
    components: dict[str, ComponentSpec] = {}
    http: list[HttpTrigger] = []
    for i, table in enumerate(raw):
        r = _Reader(where, f"component[{i}]", table)
        cid = r.req_str("id")
        components[cid] = _component(where, f"component[{i}]", cid, table, "config")
        if ttype != "http":
            continue
        t = r.sub("trigger")
        route = _route(t, t.table.get("route"))
        if route.kind is not RouteKind.PRIVATE and base.rstrip("/"):
            route = Route(route.kind, route.raw, base.rstrip("/"))
        kind, wagi = _executor(t)
        http.append(HttpTrigger(id=f"{cid}-trigger", route=route, component=cid, executor=kind, wagi=wagi))
    other = () if ttype == "http" else (ttype,)
    return AppManifest(path, name, variables, components, tuple(http), other, top.str_("version"))


def retain_components(app: AppManifest, retain: str | None) -> AppManifest:
    """Apply SPIN_COMPONENTS_TO_RETAIN (comma-separated ids): drop the other components and
    the triggers that point at them."""
    if not retain:
        return app
    keep = {c.strip() for c in retain.split(",") if c.strip()}
    missing = keep - set(app.components)
    if missing:
        raise ManifestError(str(app.path), f"SPIN_COMPONENTS_TO_RETAIN names unknown component(s): "
                            f"{', '.join(sorted(missing))}")
    _validate_chaining(app, keep)
    comps = {k: v for k, v in app.components.items() if k in keep}
    triggers = tuple(t for t in app.http_triggers if t.component is None or t.component in keep)
    redis = tuple(t for t in app.redis_triggers if t.component in keep)
    commands = tuple(t for t in app.command_triggers if t.component in keep)
    mqtt = tuple(t for t in app.mqtt_triggers if t.component in keep)
    return AppManifest(app.path, app.name, app.variables, comps, triggers, app.other_triggers, app.version,
                       redis, commands, mqtt)
