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
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from wasmtime import Engine, WasmtimeError

from shim import bytestrings, filesystem, keyvalue, variables
from shim.engine import ArtifactCache
from shim.errors import ComponentLoadError, ManifestError
from shim.executors import (
    INBOUND_HTTP,
    SUPPORTED_HTTP,
    WASI_HTTP_02,
    GuestContext,
    InboundHttpExecutor,
    Limits,
    WagiExecutor,
    WasiHttpExecutor,
    classify,
)
from shim.manifest import (
    AppManifest,
    ComponentSpec,
    ExecutorKind,
    HttpTrigger,
    WagiSettings,
    load_manifest,
    retain_components,
)
from shim.outbound import Outbound
from shim.routing import Router
from shim.runtime_config import RuntimeConfig, load_runtime_config

log = logging.getLogger("shim.app")

Executor = WasiHttpExecutor | InboundHttpExecutor | WagiExecutor


@dataclass(frozen=True)
class LoadOptions:
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    runtime_config: Path | None = None
    state_dir: Path | None = None  # key-value databases; default <app>/.spin
    cache_dir: Path | None = None  # precompiled artifacts; None disables the cache


@dataclass
class LoadedApp:
    manifest: AppManifest
    router: Router
    executors: dict[str, Executor]  # by component id: the executor of its first trigger
    limits: Limits
    files_dirs: list[str]
    # Executor settings belong to the trigger in Spin: one component behind two routes may run
    # with different WAGI argv/entrypoints. Keyed by (component, executor kind, WAGI settings).
    variants: dict[tuple[str, ExecutorKind, WagiSettings], Executor] = field(default_factory=dict)

    def executor_for(self, trig: HttpTrigger) -> Executor:
        """The executor that serves `trig` (a trigger with a component)."""
        assert trig.component is not None
        return self.variants.get((trig.component, trig.executor, trig.wagi)) or self.executors[trig.component]

    def close(self) -> None:
        for d in self.files_dirs:
            shutil.rmtree(d, ignore_errors=True)


def resolve_manifest_path(target: Path) -> Path:
    return target / "spin.toml" if target.is_dir() else target


def parse_limits(env: Mapping[str, str]) -> Limits:
    """SPIN_MAX_INSTANCE_MEMORY (bytes) and SPINDLE_SHIM_REQUEST_TIMEOUT_MS; unset means the default."""
    memory = _positive_int(env, "SPIN_MAX_INSTANCE_MEMORY", "a number of bytes")
    timeout_ms = _positive_int(env, "SPINDLE_SHIM_REQUEST_TIMEOUT_MS", "a number of milliseconds")
    ticks = Limits.timeout_ticks if timeout_ms is None else max(1, timeout_ms // 10)  # 10 ms ticks
    return Limits(memory, ticks)


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
    if manifest.other_triggers:
        log.warning("app %s: trigger types %s are not served by this runtime (http only)",
                    manifest.name, ", ".join(manifest.other_triggers))
    app_values = variables.resolve_app_variables(manifest.variables, opts.env, rc.env_providers,
                                                 manifest.root)
    limits = parse_limits(opts.env)
    cache = ArtifactCache(engine, opts.cache_dir)
    state_dir = opts.state_dir or manifest.root / ".spin"
    stores = keyvalue.Stores(state_dir, rc.kv_stores)
    executors: dict[str, Executor] = {}
    variants: dict[tuple[str, ExecutorKind, WagiSettings], Executor] = {}
    files_dirs: list[str] = []
    try:
        for trig in manifest.http_triggers:
            if trig.component is None:
                continue
            key = (trig.component, trig.executor, trig.wagi)
            if key in variants:
                continue
            spec = manifest.components[trig.component]
            variants[key] = _load_component(engine, cache, manifest, spec, trig, app_values, rc,
                                            stores, files_dirs)
            executors.setdefault(spec.id, variants[key])
    except BaseException:
        for d in files_dirs:
            shutil.rmtree(d, ignore_errors=True)
        raise
    return LoadedApp(manifest, Router(manifest.http_triggers), executors, limits, files_dirs, variants)


def _load_component(engine: Engine, cache: ArtifactCache, app: AppManifest, spec: ComponentSpec,
                    trig: HttpTrigger, app_values: Mapping[str, str], rc: RuntimeConfig,
                    stores: keyvalue.Stores, files_dirs: list[str]) -> Executor:
    values = variables.component_variables(app, spec.id, app_values)
    allowed_hosts = [variables.render(h, app_values, f"component {spec.id!r} allowed_outbound_hosts")
                     for h in spec.allowed_outbound_hosts]
    labels = set(spec.key_value_stores)
    for label in labels:
        if label != "default" and label not in rc.kv_stores:
            raise ComponentLoadError(spec.id, f"key-value store {label!r} is not defined in the runtime "
                                     "config ([key_value_store." + label + "])")
    impls = {**variables.host_impls(values), **keyvalue.host_impls(stores, labels)}
    ctx = GuestContext(spec.id, dict(spec.environment), impls,
                       Outbound(allowed_hosts) if allowed_hosts else None)
    wasm_path = app.root / spec.source
    try:
        wasm = wasm_path.read_bytes()
    except OSError as exc:
        raise ComponentLoadError(spec.id, f"cannot read source {str(wasm_path)!r}: {exc.strerror}") from exc
    if trig.executor is ExecutorKind.WASIP3:
        raise ComponentLoadError(spec.id, "executor wasip3-unstable (WASI 0.3) is not supported by this "
                                 f"runtime; supported: {SUPPORTED_HTTP}")
    files_dir = _materialise_files(app, spec, files_dirs)
    if trig.executor is ExecutorKind.WAGI:
        return _wagi_executor(engine, cache, ctx, wasm, wasm_path.name, trig, files_dir)
    return _component_executor(engine, cache, ctx, wasm, wasm_path.name, files_dir)


_WASM_MAGIC = b"\0asm"
_CORE_VERSION = b"\x01\x00\x00\x00"  # a component has a different version/layer word


def _wagi_executor(engine: Engine, cache: ArtifactCache, ctx: GuestContext, wasm: bytes, name: str,
                   trig: HttpTrigger, files_dir: str | None) -> WagiExecutor:
    if wasm[:4] == _WASM_MAGIC and wasm[4:8] != _CORE_VERSION:
        raise ComponentLoadError(ctx.component_id, f"{name} is a component; the wagi executor needs a "
                                 "WASI preview 1 core module")
    try:
        module = cache.load_module(wasm)
    except WasmtimeError as exc:
        raise ComponentLoadError(ctx.component_id, f"{name} is not a valid wasm module: "
                                 f"{_first_line(exc)}") from exc
    preopens = [(files_dir, "/")] if files_dir else []
    return WagiExecutor(engine, module, ctx, trig.wagi.entrypoint, trig.wagi.argv, preopens)


def _component_executor(engine: Engine, cache: ArtifactCache, ctx: GuestContext, wasm: bytes, name: str,
                        files_dir: str | None, wrap: bool = True,
                        ) -> WasiHttpExecutor | InboundHttpExecutor:
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
        component = (cache.load_component(wasm, plan.variant, plan.apply) if plan
                     else cache.load_component(wasm))
    except WasmtimeError as exc:
        if plan:
            log.warning("component %s: the stream adapter does not compile (%s); using it as it is",
                        ctx.component_id, _first_line(exc))
            return _component_executor(engine, cache, ctx, wasm, name, files_dir, wrap=False)
        raise ComponentLoadError(ctx.component_id, f"{name} is not a valid component: "
                                 f"{_first_line(exc)}") from exc
    export = classify(engine, ctx.component_id, component)
    if files_dir:
        ctx.host_impls.update(filesystem.IMPLS)
        ctx.setup = filesystem.setup_for(files_dir)
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
