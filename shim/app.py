"""Loading an app: manifest → variables → compiled components → one executor per component.

Every problem is found here, before the server listens: malformed manifests, missing required
variables, unreadable or unsupported wasm (including WASI 0.3 exports), each named.
"""

from __future__ import annotations

import glob
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from wasmtime import Engine, Module, WasmtimeError
from wasmtime.component import Component

from shim import (
    bytestrings,
    chaining,
    filesystem,
    http1,
    keyvalue,
    outbound_rdbms,
    outbound_redis,
    sqlite,
    variables,
)
from shim.engine import FAST_START_BYTES, ArtifactCache
from shim.errors import ComponentLoadError, ManifestError
from shim.executors import (
    INBOUND_HTTP,
    SUPPORTED_HTTP,
    WASI_HTTP_02,
    CommandExecutor,
    GuestContext,
    InboundHttpExecutor,
    InboundRedisExecutor,
    Limits,
    MqttExecutor,
    WagiExecutor,
    WasiHttpExecutor,
    classify,
)
from shim.manifest import (
    AppManifest,
    CommandTrigger,
    ComponentSpec,
    ExecutorKind,
    HttpTrigger,
    MqttTrigger,
    RedisTrigger,
    WagiSettings,
    load_manifest,
    retain_components,
)
from shim.outbound import Outbound
from shim.routing import Router
from shim.runtime_config import RuntimeConfig, load_runtime_config

log = logging.getLogger("shim.app")

Executor = WasiHttpExecutor | InboundHttpExecutor | WagiExecutor

# `spindle shim up`'s cap on one instance's linear memory (SPIN_MAX_INSTANCE_MEMORY overrides it).
# The container mode has none: the pod's cgroup limit is the bound there, as on containerd-shim-spin.
DEFAULT_MAX_INSTANCE_MEMORY = 256 << 20
# per process, the linear memory that the instances running at once may hold between them
# (SPINDLE_SHIM_MEMORY_BUDGET; in a memory-limited cgroup, never more than that limit)
DEFAULT_MEMORY_BUDGET = 4 << 30
DEFAULT_CONCURRENCY = 32  # requests running in guests at once per process (SPINDLE_SHIM_MAX_CONCURRENCY)


@dataclass(frozen=True)
class LoadOptions:
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    runtime_config: Path | None = None
    state_dir: Path | None = None  # key-value databases; default <app>/.spin
    cache_dir: Path | None = None  # precompiled artifacts; None disables the cache
    # containerd-shim-spin also reads a variable from the bare `<NAME>` environment variable;
    # `spin up` (and `spindle shim up`) read only SPIN_VARIABLE_<NAME> and configured providers
    env_names_as_variables: bool = False
    # the cap on an instance's linear memory when SPIN_MAX_INSTANCE_MEMORY is not set (None: none)
    max_instance_memory: int | None = DEFAULT_MAX_INSTANCE_MEMORY
    # a wasm at least this large, without an optimized artifact, starts on the baseline compiler
    # and is optimized in the background (None: always compile optimized first; see `shim.engine`)
    fast_start_bytes: int | None = FAST_START_BYTES


VariantKey = tuple[str, ExecutorKind, WagiSettings]


@dataclass
class CommandBinding:
    """A `[[trigger.command]]` ready to run once."""
    trigger: CommandTrigger
    executor: CommandExecutor


@dataclass
class MqttBinding:
    """A `[[trigger.mqtt]]` ready to run: broker settings and topic rendered, its executor."""
    trigger: MqttTrigger
    address: str
    username: str
    password: str
    topic: str
    executor: MqttExecutor


@dataclass
class RedisBinding:
    """A `[[trigger.redis]]` ready to run: its address rendered, its component's executor."""
    trigger: RedisTrigger
    address: str
    executor: InboundRedisExecutor


@dataclass
class LoadedApp:
    manifest: AppManifest
    router: Router
    executors: dict[str, Executor]  # by component id: the executor of its first trigger
    limits: Limits
    files_dirs: list[str]
    # Executor settings belong to the trigger in Spin: one component behind two routes may run
    # with different WAGI argv/entrypoints. Keyed by (component, executor kind, WAGI settings).
    variants: dict[VariantKey, Executor] = field(default_factory=dict)
    front_end: http1.Settings = field(default_factory=http1.Settings)
    cache: ArtifactCache | None = None  # holds the baseline engine of executors not yet upgraded
    upgrading: threading.Thread | None = None
    upgraded: threading.Event = field(default_factory=threading.Event)  # set when all are optimized
    redis: list[RedisBinding] = field(default_factory=list)
    commands: list[CommandBinding] = field(default_factory=list)
    mqtt: list[MqttBinding] = field(default_factory=list)

    def executor_for(self, trig: HttpTrigger) -> Executor:
        """The executor that serves `trig` (a trigger with a component)."""
        assert trig.component is not None
        return self.variants.get((trig.component, trig.executor, trig.wagi)) or self.executors[trig.component]

    def start_upgrades(self, upgrades: list[tuple[VariantKey, Upgrade]],
                       redis_upgrades: list[tuple[RedisBinding, RedisUpgrade]] | None = None) -> None:
        """Swap executors that run baseline code for optimized ones, in the background: requests
        in flight finish on the executor they started with."""
        def run() -> None:
            for key, upgrade in upgrades:
                try:
                    executor = upgrade()
                except Exception as exc:  # the baseline code keeps serving
                    log.warning("component %s: keeping the baseline compile: %s", key[0], exc)
                    continue
                old = self.variants[key]
                self.variants[key] = executor
                for cid, ex in self.executors.items():
                    if ex is old:
                        self.executors[cid] = executor
                log.info("component %s: now serving optimized code", key[0])
            for binding, redis_upgrade in redis_upgrades or ():
                try:
                    binding.executor = redis_upgrade()
                except Exception as exc:
                    log.warning("component %s: keeping the baseline compile: %s",
                                binding.trigger.component, exc)
            self.upgraded.set()

        self.upgrading = threading.Thread(target=run, name="shim-optimize", daemon=True)
        self.upgrading.start()

    def close(self) -> None:
        for d in self.files_dirs:
            shutil.rmtree(d, ignore_errors=True)


def resolve_manifest_path(target: Path) -> Path:
    return target / "spin.toml" if target.is_dir() else target


def parse_limits(env: Mapping[str, str], default_memory: int | None = DEFAULT_MAX_INSTANCE_MEMORY) -> Limits:
    """SPIN_MAX_INSTANCE_MEMORY (bytes; else `default_memory`), SPINDLE_SHIM_REQUEST_TIMEOUT_MS,
    SPINDLE_SHIM_MAX_CONCURRENCY and SPINDLE_SHIM_MEMORY_BUDGET (bytes per process).

    wasmtime-py has no resource-limiter callback, so the total is bounded by admission: with a cap
    per instance, no more than budget // cap requests run at once, and so no more than the budget
    of linear memory is ever held; a request that needs more than its cap fails alone (500)."""
    memory = _positive_int(env, "SPIN_MAX_INSTANCE_MEMORY", "a number of bytes") or default_memory
    timeout_ms = _positive_int(env, "SPINDLE_SHIM_REQUEST_TIMEOUT_MS", "a number of milliseconds")
    ticks = Limits.timeout_ticks if timeout_ms is None else max(1, timeout_ms // 10)  # 10 ms ticks
    concurrency = _positive_int(env, "SPINDLE_SHIM_MAX_CONCURRENCY", "a number of requests") \
        or DEFAULT_CONCURRENCY
    budget = _positive_int(env, "SPINDLE_SHIM_MEMORY_BUDGET", "a number of bytes")
    if budget is None:
        cgroup = cgroup_memory_limit()
        budget = min(DEFAULT_MEMORY_BUDGET, cgroup) if cgroup else DEFAULT_MEMORY_BUDGET
    if memory is not None:
        concurrency = max(1, min(concurrency, budget // memory))
    return Limits(memory, ticks, concurrency)


def front_end_settings(env: Mapping[str, str]) -> http1.Settings:
    """SPINDLE_SHIM_HEADER_TIMEOUT_MS and SPINDLE_SHIM_IDLE_TIMEOUT_MS (see `shim.http1`)."""
    defaults = http1.Settings()
    head = _positive_int(env, "SPINDLE_SHIM_HEADER_TIMEOUT_MS", "a number of milliseconds")
    idle = _positive_int(env, "SPINDLE_SHIM_IDLE_TIMEOUT_MS", "a number of milliseconds")
    return http1.Settings(header_timeout=head / 1000 if head else defaults.header_timeout,
                          idle_timeout=idle / 1000 if idle else defaults.idle_timeout)


def outbound_timeout(env: Mapping[str, str]) -> float:
    """SPINDLE_SHIM_OUTBOUND_TIMEOUT_MS: connecting, and waiting for a response, each (default 30 s;
    never past the request deadline)."""
    ms = _positive_int(env, "SPINDLE_SHIM_OUTBOUND_TIMEOUT_MS", "a number of milliseconds")
    return ms / 1000 if ms else 30.0


def cgroup_memory_limit() -> int | None:
    """The memory limit of this process's cgroup (v2 `memory.max`, v1 `memory.limit_in_bytes`)."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, rel = line.split(":", 2)
        if controllers == "":
            candidates = [Path("/sys/fs/cgroup") / rel.lstrip("/") / "memory.max"]
        elif "memory" in controllers.split(","):
            candidates = [Path("/sys/fs/cgroup/memory") / rel.lstrip("/") / "memory.limit_in_bytes"]
        else:
            continue
        for c in candidates:
            try:
                raw = c.read_text().strip()
            except OSError:
                continue
            if raw.isdigit() and int(raw) < 1 << 60:  # v1 says "no limit" with a huge number
                return int(raw)
    return None


def _positive_int(env: Mapping[str, str], name: str, what: str) -> int | None:
    raw = env.get(name)
    if not raw:
        return None
    if not raw.isdigit() or int(raw) == 0:
        raise ManifestError("environment", f"{raw!r} is not {what}", name)
    return int(raw)


def load_app(target: Path, engine: Engine, opts: LoadOptions) -> LoadedApp:
    path = resolve_manifest_path(target)
    manifest = retain_components(load_manifest(path), opts.env.get("SPIN_COMPONENTS_TO_RETAIN"))
    rc = load_runtime_config(opts.runtime_config)
    if "sqs" in manifest.other_triggers:
        raise ManifestError(str(manifest.path), "sqs triggers are not supported by this runtime (it has no "
                            "AWS SQS endpoint to receive from)", "trigger.sqs")
    if manifest.other_triggers:
        log.warning("app %s: trigger types %s are not served by this runtime (http, redis, mqtt and "
                    "command only)", manifest.name, ", ".join(manifest.other_triggers))
    app_values = variables.resolve_app_variables(manifest.variables, opts.env, rc.env_providers,
                                                 manifest.root, env_names=opts.env_names_as_variables)
    limits = parse_limits(opts.env, opts.max_instance_memory)
    front_end = front_end_settings(opts.env)
    out_timeout = outbound_timeout(opts.env)
    cache = ArtifactCache(engine, opts.cache_dir, opts.fast_start_bytes)
    state_dir = opts.state_dir or manifest.root / ".spin"
    stores = keyvalue.Stores(state_dir, rc.kv_stores)
    dbs = sqlite.Databases(state_dir, rc.sqlite_databases)
    redis_clients = outbound_redis.Clients(out_timeout)
    chain = chaining.ServiceChain()
    executors: dict[str, Executor] = {}
    variants: dict[tuple[str, ExecutorKind, WagiSettings], Executor] = {}
    upgrades: list[tuple[VariantKey, Upgrade]] = []
    files_dirs: list[str] = []
    try:
        for trig in manifest.http_triggers:
            if trig.component is None:
                continue
            key = (trig.component, trig.executor, trig.wagi)
            if key in variants:
                continue
            spec = manifest.components[trig.component]
            variants[key], upgrade = _load_component(cache, manifest, spec, trig, app_values, rc,
                                                     (stores, dbs, redis_clients, chain), files_dirs,
                                                     out_timeout)
            executors.setdefault(spec.id, variants[key])
            if upgrade is not None:
                upgrades.append((key, upgrade))
        data = (stores, dbs, redis_clients, chain)
        redis_bindings, redis_upgrades = _load_redis(cache, manifest, app_values, rc, data, files_dirs,
                                                     out_timeout)
        commands = [_load_command(cache, manifest, trig, app_values, rc, data, files_dirs, out_timeout)
                    for trig in manifest.command_triggers]
        mqtt = _load_mqtt(cache, manifest, app_values, rc, data, files_dirs, out_timeout)
    except BaseException:
        for d in files_dirs:
            shutil.rmtree(d, ignore_errors=True)
        raise
    app = LoadedApp(manifest, Router(manifest.http_triggers), executors, limits, files_dirs, variants,
                    front_end, cache, redis=redis_bindings, commands=commands,
                    mqtt=mqtt)
    chain.executors, chain.limits = app.executors.get, limits
    if upgrades or redis_upgrades:
        app.start_upgrades(upgrades, redis_upgrades)
    else:
        app.upgraded.set()
    return app


# the app's key-value stores, SQLite databases, outbound Redis pools and service chaining, shared by
# its components
DataServices = tuple[keyvalue.Stores, sqlite.Databases, outbound_redis.Clients, chaining.ServiceChain]
Upgrade = Callable[[], Executor]  # builds the executor again on the optimized artifact (slow: compiles)
RedisUpgrade = Callable[[], InboundRedisExecutor]


def _load_redis(cache: ArtifactCache, manifest: AppManifest, app_values: Mapping[str, str], rc: RuntimeConfig,
                data: DataServices, files_dirs: list[str], out_timeout: float,
                ) -> tuple[list[RedisBinding], list[tuple[RedisBinding, RedisUpgrade]]]:
    """One executor per component behind `[[trigger.redis]]`s, shared by its triggers."""
    built: dict[str, tuple[InboundRedisExecutor, RedisUpgrade | None]] = {}
    bindings: list[RedisBinding] = []
    upgrades: list[tuple[RedisBinding, RedisUpgrade]] = []
    for trig in manifest.redis_triggers:
        if trig.component not in built:
            spec = manifest.components[trig.component]
            ctx, wasm, name, files_dir = _prepare(manifest, spec, app_values, rc, data, files_dirs,
                                                  out_timeout)
            built[trig.component] = _redis_executor(cache, ctx, wasm, name, files_dir)
        executor, upgrade = built[trig.component]
        address = variables.render(trig.address, app_values, f"redis trigger {trig.id!r} address")
        binding = RedisBinding(trig, address, executor)
        bindings.append(binding)
        if upgrade is not None:
            upgrades.append((binding, upgrade))
    return bindings, upgrades


def _load_component(cache: ArtifactCache, app: AppManifest, spec: ComponentSpec,
                    trig: HttpTrigger, app_values: Mapping[str, str], rc: RuntimeConfig,
                    data: DataServices, files_dirs: list[str], out_timeout: float,
                    ) -> tuple[Executor, Upgrade | None]:
    ctx, wasm, name, files_dir = _prepare(app, spec, app_values, rc, data, files_dirs, out_timeout)
    if trig.executor is ExecutorKind.WASIP3:
        raise ComponentLoadError(spec.id, "executor wasip3-unstable (WASI 0.3) is not supported by this "
                                 f"runtime; supported: {SUPPORTED_HTTP}")
    if trig.executor is ExecutorKind.WAGI:
        return _wagi_executor(cache, ctx, wasm, name, trig, files_dir)
    return _component_executor(cache, ctx, wasm, name, files_dir)


def _prepare(app: AppManifest, spec: ComponentSpec, app_values: Mapping[str, str], rc: RuntimeConfig,
             data: DataServices, files_dirs: list[str], out_timeout: float,
             ) -> tuple[GuestContext, bytes, str, str | None]:
    """The component's host APIs (checked against the runtime config), its wasm and its files."""
    values = variables.component_variables(app, spec.id, app_values)
    allowed_hosts = [variables.render(h, app_values, f"component {spec.id!r} allowed_outbound_hosts")
                     for h in spec.allowed_outbound_hosts]
    labels = set(spec.key_value_stores)
    for label in labels:
        if label != "default" and label not in rc.kv_stores:
            raise ComponentLoadError(spec.id, f"key-value store {label!r} is not defined in the runtime "
                                     "config ([key_value_store." + label + "])")
    databases = set(spec.sqlite_databases)
    for label in databases:
        if label != "default" and label not in rc.sqlite_databases:
            raise ComponentLoadError(spec.id, f"sqlite database {label!r} is not defined in the runtime "
                                     "config ([sqlite_database." + label + "])")
    stores, dbs, redis_clients, chain = data
    impls = {**variables.host_impls(values), **keyvalue.host_impls(stores, labels),
             **sqlite.host_impls(dbs, databases), **outbound_redis.host_impls(redis_clients, allowed_hosts),
             **outbound_rdbms.host_impls(allowed_hosts)}
    ctx = GuestContext(spec.id, dict(spec.environment), impls,
                       Outbound(allowed_hosts, out_timeout, chain=chain) if allowed_hosts else None)
    wasm_path = app.root / spec.source
    try:
        wasm = wasm_path.read_bytes()
    except OSError as exc:
        raise ComponentLoadError(spec.id, f"cannot read source {str(wasm_path)!r}: {exc.strerror}") from exc
    return ctx, wasm, wasm_path.name, _materialise_files(app, spec, files_dirs)


def _load_mqtt(cache: ArtifactCache, manifest: AppManifest, app_values: Mapping[str, str], rc: RuntimeConfig,
               data: DataServices, files_dirs: list[str], out_timeout: float) -> list[MqttBinding]:
    """One executor per component behind `[[trigger.mqtt]]`s (baseline code is not upgraded)."""
    built: dict[str, MqttExecutor] = {}
    bindings: list[MqttBinding] = []
    for trig in manifest.mqtt_triggers:
        if trig.component not in built:
            spec = manifest.components[trig.component]
            ctx, wasm, name, files_dir = _prepare(manifest, spec, app_values, rc, data, files_dirs,
                                                  out_timeout)
            built[trig.component] = _trigger_executor(cache, ctx, wasm, name, files_dir, MqttExecutor)
        where = f"mqtt trigger {trig.id!r}"
        address, user, password, topic = (variables.render(v, app_values, where) for v in
                                           (trig.address, trig.username, trig.password, trig.topic))
        bindings.append(MqttBinding(trig, address, user, password, topic, built[trig.component]))
    return bindings


def _trigger_executor(cache: ArtifactCache, ctx: GuestContext, wasm: bytes, name: str, files_dir: str | None,
                      build: Callable[[Engine, Component, GuestContext], MqttExecutor]) -> MqttExecutor:
    try:
        art = cache.load_component(wasm)
    except WasmtimeError as exc:
        raise ComponentLoadError(ctx.component_id, f"{name} is not a valid component: "
                                 f"{_first_line(exc)}") from exc
    if files_dir:
        ctx.host_impls.update(filesystem.IMPLS)
        ctx.setup = filesystem.setup_for(files_dir)
    try:
        return build(art.engine, art.compiled, ctx)
    except (WasmtimeError, TypeError) as exc:
        raise ComponentLoadError(ctx.component_id, f"cannot link: {_first_line(exc)}") from exc


def _load_command(cache: ArtifactCache, manifest: AppManifest, trig: CommandTrigger,
                  app_values: Mapping[str, str], rc: RuntimeConfig, data: DataServices, files_dirs: list[str],
                  out_timeout: float) -> CommandBinding:
    spec = manifest.components[trig.component]
    ctx, wasm, name, files_dir = _prepare(manifest, spec, app_values, rc, data, files_dirs, out_timeout)
    try:
        art = cache.load_component(wasm)
    except WasmtimeError as exc:
        raise ComponentLoadError(spec.id, f"{name} is not a valid component: {_first_line(exc)}") from exc
    if files_dir:
        ctx.host_impls.update(filesystem.IMPLS)
        ctx.setup = filesystem.setup_for(files_dir)
    try:
        return CommandBinding(trig, CommandExecutor(art.engine, art.compiled, ctx))
    except (WasmtimeError, TypeError) as exc:
        raise ComponentLoadError(spec.id, f"cannot link: {_first_line(exc)}") from exc


def _redis_executor(cache: ArtifactCache, ctx: GuestContext, wasm: bytes, name: str,
                    files_dir: str | None) -> tuple[InboundRedisExecutor, RedisUpgrade | None]:
    try:
        art = cache.load_component(wasm)
    except WasmtimeError as exc:
        raise ComponentLoadError(ctx.component_id, f"{name} is not a valid component: "
                                 f"{_first_line(exc)}") from exc
    if files_dir:
        ctx.host_impls.update(filesystem.IMPLS)
        ctx.setup = filesystem.setup_for(files_dir)

    def build(engine: Engine, component: Component) -> InboundRedisExecutor:
        try:
            return InboundRedisExecutor(engine, component, ctx)
        except (WasmtimeError, TypeError) as exc:
            raise ComponentLoadError(ctx.component_id, f"cannot link: {_first_line(exc)}") from exc

    upgrade = art.upgrade
    return build(art.engine, art.compiled), (
        None if upgrade is None else lambda: build(cache.engine, upgrade()))


_WASM_MAGIC = b"\0asm"
_CORE_VERSION = b"\x01\x00\x00\x00"  # a component has a different version/layer word


def _wagi_executor(cache: ArtifactCache, ctx: GuestContext, wasm: bytes, name: str,
                   trig: HttpTrigger, files_dir: str | None) -> tuple[Executor, Upgrade | None]:
    if wasm[:4] == _WASM_MAGIC and wasm[4:8] != _CORE_VERSION:
        raise ComponentLoadError(ctx.component_id, f"{name} is a component; the wagi executor needs a "
                                 "WASI preview 1 core module")
    try:
        art = cache.load_module(wasm)
    except WasmtimeError as exc:
        raise ComponentLoadError(ctx.component_id, f"{name} is not a valid wasm module: "
                                 f"{_first_line(exc)}") from exc
    preopens = [(files_dir, "/")] if files_dir else []

    def build(engine: Engine, module: Module) -> WagiExecutor:
        return WagiExecutor(engine, module, ctx, trig.wagi.entrypoint, trig.wagi.argv, preopens)

    upgrade = art.upgrade
    return build(art.engine, art.compiled), (
        None if upgrade is None else lambda: build(cache.engine, upgrade()))


def _component_executor(cache: ArtifactCache, ctx: GuestContext, wasm: bytes, name: str,
                        files_dir: str | None, wrap: bool = True,
                        ) -> tuple[Executor, Upgrade | None]:
    if wasm[:4] == _WASM_MAGIC and wasm[4:8] == _CORE_VERSION:
        raise ComponentLoadError(ctx.component_id, f"{name} is a core wasm module, not a component (use "
                                 'executor = { type = "wagi" } for WASI preview 1 modules)')
    # a wasi:http component's stream bytes come from our Python wasi:io: wrap it so they cross
    # the C API in bulk (bytestrings); an inbound-http one uses wasmtime's native wasi:io
    plan = bytestrings.analyse(wasm) if wrap else None
    if plan is None or not plan.functions or not any(e.startswith(WASI_HTTP_02) for e in plan.exports):
        plan = None
    hex_functions = plan.functions if plan else {}
    try:
        art = (cache.load_component(wasm, plan.variant, plan.apply) if plan
               else cache.load_component(wasm))
    except WasmtimeError as exc:
        if plan:
            log.warning("component %s: the stream adapter does not compile (%s); using it as it is",
                        ctx.component_id, _first_line(exc))
            return _component_executor(cache, ctx, wasm, name, files_dir, wrap=False)
        raise ComponentLoadError(ctx.component_id, f"{name} is not a valid component: "
                                 f"{_first_line(exc)}") from exc
    if files_dir:
        ctx.host_impls.update(filesystem.IMPLS)
        ctx.setup = filesystem.setup_for(files_dir)

    def build(engine: Engine, component: Component) -> WasiHttpExecutor | InboundHttpExecutor:
        export = classify(engine, ctx.component_id, component)
        try:
            if export.startswith(INBOUND_HTTP):
                return InboundHttpExecutor(engine, component, ctx, export)
            executor = WasiHttpExecutor(engine, component, ctx, export, hex_functions)
        except (WasmtimeError, TypeError) as exc:  # TypeError: an import type this host cannot express
            raise ComponentLoadError(ctx.component_id, f"cannot link: {_first_line(exc)}") from exc
        report = executor.report
        log.debug("component %s: %d imports implemented, %d answered with their error values (%s)",
                  ctx.component_id, report.implemented, len(report.stubbed),
                  ", ".join(sorted({k.split("#")[0] for k in report.stubbed})) or "none")
        return executor

    upgrade = art.upgrade
    return build(art.engine, art.compiled), (
        None if upgrade is None else lambda: build(cache.engine, upgrade()))


def _first_line(exc: BaseException) -> str:
    lines = [ln for ln in str(exc).splitlines() if ln.strip()]
    return " / ".join(lines[:3]) if lines else type(exc).__name__


def _materialise_files(app: AppManifest, spec: ComponentSpec, files_dirs: list[str]) -> str | None:
    """Copy the component's `files` into a private directory laid out as the guest sees it."""
    if not spec.files:
        return None
    root = tempfile.mkdtemp(prefix=f"shim-files-{spec.id}-")
    files_dirs.append(root)
    for mount in spec.files:
        dest_root = Path(root) / mount.destination.lstrip("/")
        if mount.is_glob:
            for match in glob.glob(mount.source, root_dir=app.root, recursive=True):
                src = app.root / match
                if src.is_file():
                    dst = dest_root / match
                    dst.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(src, dst)
        else:
            src = app.root / mount.source
            if src.is_dir():
                shutil.copytree(src, dest_root, dirs_exist_ok=True)
            elif src.is_file():
                dest_root.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, dest_root)
            else:
                raise ComponentLoadError(spec.id, f"files source {mount.source!r} does not exist")
    return root
