"""Executors: how one HTTP request runs in one fresh instance of a compiled component.

- `WasiHttpExecutor`: components exporting wasi:http/incoming-handler@0.2.x (Python wasi:io and
  wasi:http, native WASI for interfaces without io resources).
- `InboundHttpExecutor`: components exporting fermyon:spin/inbound-http (records only).
- `WagiExecutor`: WASI preview 1 core modules run CGI-style.
- `InboundRedisExecutor`: one Redis message to fermyon:spin/inbound-redis `handle-message`.
- `MqttExecutor`: one MQTT message to spin-trigger-mqtt's root `handle-message` export.
- `CommandExecutor`: `wasi:cli/run` once, output to the process's stdout/stderr (command trigger).

Every executor makes a new Store per request with the memory limit and epoch deadline set.
"""

from __future__ import annotations

import ctypes
import logging
import os
import sys
import tempfile
from collections.abc import Callable, Mapping
from ctypes import byref
from dataclasses import dataclass, field
from typing import Any

from wasmtime import (
    Engine,
    ExitTrap,
    Linker,
    Module,
    Store,
    Trap,
    WasiConfig,
    WasmtimeError,
)
from wasmtime import _ffi as ffi
from wasmtime.component import Component, ComponentInstanceType, FuncType

from shim import codec, hostlink, wasi_http
from shim.errors import ComponentLoadError, GuestError

log = logging.getLogger("shim.guest")

SUPPORTED_HTTP = "wasi:http/incoming-handler@0.2.x, fermyon:spin/inbound-http, or WAGI (wasi preview 1)"
INBOUND_HTTP = "fermyon:spin/inbound-http"
WASI_HTTP_02 = "wasi:http/incoming-handler@0.2"

# Interfaces that hand out no wasi:io resources can stay with wasmtime's native WASI.
NATIVE_WASI = frozenset({
    "wasi:cli/environment", "wasi:cli/exit", "wasi:random/random", "wasi:random/insecure",
    "wasi:random/insecure-seed", "wasi:clocks/wall-clock", "wasi:cli/terminal-input",
    "wasi:cli/terminal-output", "wasi:cli/terminal-stdin", "wasi:cli/terminal-stdout",
    "wasi:cli/terminal-stderr",
})


@dataclass(frozen=True)
class Limits:
    max_memory: int | None = None  # bytes per instance
    timeout_ticks: int = 3000  # epoch ticks (engine ticks every 10 ms): 30 s
    concurrency: int = 32  # requests running in guests at once, per process

    @property
    def timeout(self) -> float:
        """The request deadline in seconds."""
        return self.timeout_ticks * TICK_SECONDS


TICK_SECONDS = 0.01  # the engine's epoch tick (engine.new_engine)


@dataclass
class GuestContext:
    """What a component sees of the app: its id, environment, and the host APIs wired for it."""
    component_id: str
    environment: Mapping[str, str] = field(default_factory=dict)
    host_impls: hostlink.Implementations = field(default_factory=dict)
    outbound: wasi_http.Outbound | None = None
    setup: Callable[[wasi_http.RequestState], None] | None = None  # per-request state for host APIs


class GuestLog:
    """Guest stdout/stderr to the shim's log, one record per line, prefixed with the component id.
    Partial lines wait for their newline (or the end of the request: `flush`)."""

    MAX_LINE = 16 * 1024

    def __init__(self, component_id: str) -> None:
        self.component_id = component_id
        self.partial: dict[str, bytes] = {}

    def __call__(self, stream: str, data: bytes) -> None:
        buf = self.partial.pop(stream, b"") + data
        *lines, rest = buf.split(b"\n")
        for line in lines:
            self._emit(stream, line)
        if len(rest) > self.MAX_LINE:
            self._emit(stream, rest)
        elif rest:
            self.partial[stream] = rest

    def flush(self) -> None:
        for stream, rest in list(self.partial.items()):
            self._emit(stream, rest)
        self.partial.clear()

    def _emit(self, stream: str, line: bytes) -> None:
        text = line.decode("utf-8", "replace").rstrip("\r")
        if text.strip():
            log.info("[%s] %s: %s", self.component_id, stream, text)


def guest_logger(component_id: str) -> wasi_http.LogLine:
    """A logger for whole outputs (WAGI, inbound-http): every line, nothing held back."""
    def emit(stream: str, data: bytes) -> None:
        g = GuestLog(component_id)
        g(stream, data)
        g.flush()
    return emit


def _new_store(engine: Engine, limits: Limits) -> Store:
    store = Store(engine)
    store.set_epoch_deadline(limits.timeout_ticks)
    if limits.max_memory is not None:
        store.set_limits(memory_size=limits.max_memory)
    return store


def _guest_failure(component_id: str, exc: BaseException) -> GuestError:
    text = str(exc)
    cause = hostlink.CURRENT.error
    if isinstance(cause, TimeoutError):
        return GuestError(component_id, str(cause), timeout=True)
    if isinstance(cause, hostlink.Unsupported):  # a trap the host raised on purpose: its reason
        return GuestError(component_id, f"trap: {cause}")
    if cause is not None:
        return GuestError(component_id, f"trap: host: {cause!r}")
    timeout = "interrupt" in text
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    key = [ln for ln in lines if "trap" in ln or "interrupt" in ln]
    first = (key[-1] if key else lines[0]) if lines else type(exc).__name__
    return GuestError(component_id, ("request timed out: " if timeout else "trap: ") + first,
                      timeout=timeout)


def export_names(engine: Engine, component: Component) -> list[str]:
    return list(component.type.exports(engine).keys())


class WasiHttpExecutor:
    def __init__(self, engine: Engine, component: Component, ctx: GuestContext, export: str,
                 hex_functions: Mapping[str, str] | None = None) -> None:
        """`hex_functions`: the host functions `bytestrings` added (see `build_linker`)."""
        self.engine, self.component, self.ctx = engine, component, ctx
        self.adapted = tuple(sorted(hex_functions or ()))  # through the stream adapter
        impls = {**wasi_http.IMPLS, **ctx.host_impls}
        self.linker, self.groups, self.report = hostlink.build_linker(
            engine, component, impls, native=NATIVE_WASI.__contains__, dtor=_drop_current,
            hex_functions=hex_functions)
        self.needs_wasi = any(hostlink.unversioned(n) in NATIVE_WASI
                              for n in hostlink.imported_interfaces(component, engine))
        handle = component.get_export_index("handle", component.get_export_index(export))
        if handle is None:
            raise ComponentLoadError(ctx.component_id, f"{export} has no 'handle' function")
        self.handle = handle
        base = hostlink.unversioned(export).replace("incoming-handler", "types")
        self.req_type = self.groups.by_name[f"{base}/incoming-request"]
        self.out_type = self.groups.by_name[f"{base}/response-outparam"]
        self.handle_params: list[codec.Codec] = [codec.Resource(self.req_type, True),
                                                 codec.Resource(self.out_type, True)]

    def serve(self, request: wasi_http.InboundRequest, sink: wasi_http.ResponseSink,
              limits: Limits) -> wasi_http.RequestState:
        store = _new_store(self.engine, limits)
        if self.needs_wasi:
            wc = WasiConfig()
            wc.env = list(self.ctx.environment.items())
            store.set_wasi(wc)
        guest_log = GuestLog(self.ctx.component_id)
        state = _enter(self.ctx, wasi_http.RequestState(request, sink, guest_log, self.ctx.outbound))
        try:
            inst = self.linker.instantiate(store, self.component)
            func = inst.get_func(store, self.handle)
            if func is None:
                raise GuestError(self.ctx.component_id, "export 'handle' is not a function")
            req = state.new("incoming-request", None)
            out = state.new("response-outparam", None)
            _call(store, func, self.handle_params, None, [req, out])
            func.post_return(store)
        except (Trap, WasmtimeError) as exc:
            raise _guest_failure(self.ctx.component_id, exc) from exc
        finally:
            hostlink.CURRENT.state = None
            state.objs.clear()
            store.close()
            guest_log.flush()
        if not state.response_set:
            raise GuestError(self.ctx.component_id, "the guest returned without setting a response")
        if state.guest_error is not None:  # already answered 500; the operator needs the reason
            log.error("[%s] %s", self.ctx.component_id, state.guest_error)
        if not state.finished:
            state.finished = True
            state.sink_call(sink.finish)
        return state


def _enter(ctx: GuestContext, state: wasi_http.RequestState) -> wasi_http.RequestState:
    """Make `state` the one this thread's host calls see, with the component's host APIs set up."""
    if ctx.setup is not None:
        ctx.setup(state)
    hostlink.CURRENT.state, hostlink.CURRENT.error = state, None
    return state


def _drop_current(rep: int) -> None:
    s = hostlink.CURRENT.state
    if s is not None:
        s.drop(rep)


# ---------------------------------------------------------------- fermyon:spin/inbound-http


@dataclass
class SimpleResponse:
    status: int
    headers: list[tuple[str, bytes]]
    body: bytes


_METHOD_ENUM = ["get", "post", "put", "delete", "patch", "head", "options"]


class InboundHttpExecutor:
    """Records in, records out; calls the export through our codecs (no per-byte conversion)."""

    def __init__(self, engine: Engine, component: Component, ctx: GuestContext, export: str) -> None:
        self.engine, self.component, self.ctx = engine, component, ctx
        self.linker, self.groups, _ = hostlink.build_linker(
            engine, component, ctx.host_impls,
            native=lambda i: i.startswith("wasi:") and not i.startswith(("wasi:http", "wasi:keyvalue",
                                                                            "wasi:config")),
            dtor=_drop_current)
        ext = component.type.exports(engine)[export].ty
        assert isinstance(ext, ComponentInstanceType)
        fty = ext.exports(engine)["handle-request"].ty
        assert isinstance(fty, FuncType)
        self.params = [codec.build(t, self.groups.id_of) for _, t in fty.params]
        rty = fty.result
        if rty is None:
            raise ComponentLoadError(ctx.component_id, "inbound-http handle-request returns nothing")
        self.result = codec.build(rty, self.groups.id_of)
        index = component.get_export_index("handle-request", component.get_export_index(export))
        if index is None:
            raise ComponentLoadError(ctx.component_id, f"{export} has no 'handle-request' function")
        self.index = index
        self.log = guest_logger(ctx.component_id)

    def serve(self, method: str, uri: str, headers: list[tuple[str, str]], params: list[tuple[str, str]],
              body: bytes, limits: Limits) -> SimpleResponse:
        if method.lower() not in _METHOD_ENUM:
            return SimpleResponse(405, [], b"")
        store = _new_store(self.engine, limits)
        out_fd, out_path = tempfile.mkstemp(prefix="shim-stdout-", dir=_shm())
        os.close(out_fd)
        wc = WasiConfig()
        wc.env = list(self.ctx.environment.items())
        wc.stdout_file = out_path
        wc.stderr_file = out_path
        store.set_wasi(wc)
        _enter(self.ctx, wasi_http.RequestState(
            wasi_http.InboundRequest(method, uri, "http", "", [], lambda n: b""),
            _NullSink(), self.log, self.ctx.outbound))
        try:
            inst = self.linker.instantiate(store, self.component)
            func = inst.get_func(store, self.index)
            assert func is not None
            req = {"method": method.lower(), "uri": uri, "headers": headers, "params": params,
                   "body": body or None}
            resp = _call(store, func, self.params, self.result, [req])
            func.post_return(store)
        except (Trap, WasmtimeError) as exc:
            raise _guest_failure(self.ctx.component_id, exc) from exc
        finally:
            hostlink.CURRENT.state = None
            store.close()
            _flush_file(out_path, self.log)
        hdrs = [(k, v.encode()) for k, v in (resp["headers"] or [])]
        return SimpleResponse(resp["status"], hdrs, resp["body"] or b"")


class _NullSink:
    def start(self, status: int, headers: list[tuple[str, bytes]]) -> None: ...
    def write(self, data: bytes) -> None: ...
    def flush(self) -> None: ...
    def finish(self) -> None: ...


def _call(store: Store, func: Any, params: list[codec.Codec], result: codec.Codec | None,
          args: list[Any]) -> Any:
    """Call an export through prebuilt codecs (Func.__call__ reflects the type on every call)."""
    ctx = store._context()
    n = len(params)
    cparams = (ffi.wasmtime_component_val_t * max(n, 1))()
    for i, (c, a) in enumerate(zip(params, args, strict=True)):
        c.lower(ctx, a, cparams[i])
    cres = ffi.wasmtime_component_val_t()
    try:
        err = ffi.wasmtime_component_func_call(byref(func._func), ctx, cparams, n,
                                               None if result is None else byref(cres),
                                               0 if result is None else 1)
        if err:
            raise WasmtimeError._from_ptr(err)
        return None if result is None else result.lift(ctx, cres)
    finally:
        for i in range(n):
            ffi.wasmtime_component_val_delete(byref(cparams[i]))


def _shm() -> str | None:
    return "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None


def _flush_file(path: str, emit: wasi_http.LogLine) -> None:
    try:
        with open(path, "rb") as f:
            data = f.read()
        if data:
            emit("output", data)
    finally:
        os.unlink(path)


# ---------------------------------------------------------------- fermyon:spin/inbound-redis

INBOUND_REDIS = "fermyon:spin/inbound-redis"


class InboundRedisExecutor:
    """A message in, `result<_, error>` out, in a fresh instance (Python wasi:io and wasi:http as
    for wasi:http guests: the same component usually serves HTTP too)."""

    def __init__(self, engine: Engine, component: Component, ctx: GuestContext) -> None:
        self.engine, self.component, self.ctx = engine, component, ctx
        export = next((n for n in export_names(engine, component)
                       if n == INBOUND_REDIS or n.startswith(INBOUND_REDIS + "@")), None)
        if export is None:
            raise ComponentLoadError(ctx.component_id, f"a redis trigger needs a component exporting "
                                     f"{INBOUND_REDIS} (found: {', '.join(export_names(engine, component))})")
        self.linker, self.groups, self.report = hostlink.build_linker(
            engine, component, {**wasi_http.IMPLS, **ctx.host_impls}, native=NATIVE_WASI.__contains__,
            dtor=_drop_current)
        ext = component.type.exports(engine)[export].ty
        assert isinstance(ext, ComponentInstanceType)
        fty = ext.exports(engine)["handle-message"].ty
        assert isinstance(fty, FuncType)
        self.params = [codec.build(t, self.groups.id_of) for _, t in fty.params]
        self.result = None if fty.result is None else codec.build(fty.result, self.groups.id_of)
        index = component.get_export_index("handle-message", component.get_export_index(export))
        if index is None:
            raise ComponentLoadError(ctx.component_id, f"{export} has no 'handle-message' function")
        self.index = index

    def handle(self, channel: str, message: bytes, limits: Limits) -> None:
        """Run the handler; a GuestError if it traps or returns its error value."""
        store = _new_store(self.engine, limits)
        wc = WasiConfig()
        wc.env = list(self.ctx.environment.items())
        store.set_wasi(wc)
        guest_log = GuestLog(self.ctx.component_id)
        state = _enter(self.ctx, wasi_http.RequestState(
            wasi_http.InboundRequest("POST", f"/{channel}", "redis", "", [], lambda n: b""),
            _NullSink(), guest_log, self.ctx.outbound))
        try:
            inst = self.linker.instantiate(store, self.component)
            func = inst.get_func(store, self.index)
            assert func is not None
            outcome = _call(store, func, self.params, self.result, [message])
            func.post_return(store)
        except (Trap, WasmtimeError) as exc:
            raise _guest_failure(self.ctx.component_id, exc) from exc
        finally:
            hostlink.CURRENT.state = None
            state.objs.clear()
            store.close()
            guest_log.flush()
        if isinstance(outcome, codec.Err):
            err = outcome.value
            detail = (err.tag if err.value is None else f"{err.tag}: {err.value}") \
                if isinstance(err, codec.V) else str(err)
            raise GuestError(self.ctx.component_id, f"handle-message returned error {detail}")


# ---------------------------------------------------------------- spin-trigger-mqtt


class MqttExecutor:
    """spin-trigger-mqtt's world `spin-mqtt`: a root `handle-message(message, metadata)` export
    (earlier versions: `handle-message(message)`), `result<_, error>` out, fresh instance each."""

    def __init__(self, engine: Engine, component: Component, ctx: GuestContext) -> None:
        self.engine, self.component, self.ctx = engine, component, ctx
        fty = component.type.exports(engine).get("handle-message")
        if fty is None or not isinstance(fty.ty, FuncType):
            raise ComponentLoadError(ctx.component_id, "an mqtt trigger needs a component exporting "
                                     "spin-trigger-mqtt's `handle-message` function (found: "
                                     f"{', '.join(export_names(engine, component)) or 'nothing'})")
        self.linker, self.groups, self.report = hostlink.build_linker(
            engine, component, {**wasi_http.IMPLS, **ctx.host_impls}, native=NATIVE_WASI.__contains__,
            dtor=_drop_current)
        self.params = [codec.build(t, self.groups.id_of) for _, t in fty.ty.params]
        self.result = None if fty.ty.result is None else codec.build(fty.ty.result, self.groups.id_of)
        index = component.get_export_index("handle-message")
        assert index is not None
        self.index = index

    def handle(self, topic: str, message: bytes, limits: Limits) -> None:
        """Run the handler; a GuestError if it traps or returns its error value."""
        store = _new_store(self.engine, limits)
        wc = WasiConfig()
        wc.env = list(self.ctx.environment.items())
        store.set_wasi(wc)
        guest_log = GuestLog(self.ctx.component_id)
        state = _enter(self.ctx, wasi_http.RequestState(
            wasi_http.InboundRequest("POST", f"/{topic}", "mqtt", "", [], lambda n: b""),
            _NullSink(), guest_log, self.ctx.outbound))
        args: list[Any] = [message, {"topic": topic}][: len(self.params)]
        try:
            inst = self.linker.instantiate(store, self.component)
            func = inst.get_func(store, self.index)
            assert func is not None
            outcome = _call(store, func, self.params, self.result, args)
            func.post_return(store)
        except (Trap, WasmtimeError) as exc:
            raise _guest_failure(self.ctx.component_id, exc) from exc
        finally:
            hostlink.CURRENT.state = None
            state.objs.clear()
            store.close()
            guest_log.flush()
        _raise_error_value(self.ctx.component_id, outcome)


def _raise_error_value(component_id: str, outcome: Any) -> None:
    if isinstance(outcome, codec.Err):
        err = outcome.value
        detail = (err.tag if err.value is None else f"{err.tag}: {err.value}") \
            if isinstance(err, codec.V) else str(err)
        raise GuestError(component_id, f"handle-message returned error {detail}")


# ---------------------------------------------------------------- wasi:cli/run (command trigger)

WASI_CLI_RUN = "wasi:cli/run@0.2"


class CommandExecutor:
    """`run` once with the given arguments; the guest's stdout and stderr are the process's."""

    def __init__(self, engine: Engine, component: Component, ctx: GuestContext) -> None:
        self.engine, self.component, self.ctx = engine, component, ctx
        export = next((n for n in export_names(engine, component) if n.startswith(WASI_CLI_RUN)), None)
        if export is None:
            found = ", ".join(export_names(engine, component)) or "nothing"
            raise ComponentLoadError(ctx.component_id, "a command trigger needs a component exporting "
                                     f"wasi:cli/run@0.2.x (found: {found})")
        self.linker, self.groups, self.report = hostlink.build_linker(
            engine, component, {**wasi_http.IMPLS, **ctx.host_impls}, native=NATIVE_WASI.__contains__,
            dtor=_drop_current)
        index = component.get_export_index("run", component.get_export_index(export))
        if index is None:
            raise ComponentLoadError(ctx.component_id, f"{export} has no 'run' function")
        self.index = index
        self.result = codec.Result(None, None)

    def run(self, args: list[str], limits: Limits) -> int:
        """The exit status: 0 when `run` returns ok, 1 when it returns its error or traps, the
        code of `exit` otherwise."""
        store = Store(self.engine)
        store.set_epoch_deadline(1 << 40)  # no request deadline: a command runs as long as it needs
        if limits.max_memory is not None:
            store.set_limits(memory_size=limits.max_memory)
        wc = WasiConfig()
        wc.env = list(self.ctx.environment.items())
        wc.argv = args
        store.set_wasi(wc)
        state = _enter(self.ctx, wasi_http.RequestState(
            wasi_http.InboundRequest("RUN", "/", "command", "", [], lambda n: b""),
            _NullSink(), _to_process, self.ctx.outbound))
        try:
            inst = self.linker.instantiate(store, self.component)
            func = inst.get_func(store, self.index)
            assert func is not None
            outcome = _call(store, func, [], self.result, [])
            func.post_return(store)
        except ExitTrap as exc:
            return exc.code
        except (Trap, WasmtimeError) as exc:
            log.error("[%s] %s", self.ctx.component_id, _guest_failure(self.ctx.component_id, exc))
            return 1
        finally:
            hostlink.CURRENT.state = None
            state.objs.clear()
            store.close()
        return 1 if isinstance(outcome, codec.Err) else 0


def _to_process(stream: str, data: bytes) -> None:
    out = sys.stderr if stream == "stderr" else sys.stdout
    out.buffer.write(data)
    out.flush()


# ---------------------------------------------------------------- WAGI


@dataclass(frozen=True)
class WagiRequest:
    method: str
    path: str  # without query
    query: str
    headers: list[tuple[str, str]]
    body: bytes
    env: Mapping[str, str]  # CGI variables computed by the server


class WagiExecutor:
    def __init__(self, engine: Engine, module: Module, ctx: GuestContext, entrypoint: str,
                 argv_template: str, preopens: list[tuple[str, str]]) -> None:
        self.engine, self.module, self.ctx = engine, module, ctx
        self.entrypoint, self.argv_template, self.preopens = entrypoint, argv_template, preopens
        names = {e.name for e in module.exports}
        if entrypoint not in names:
            raise ComponentLoadError(ctx.component_id, f"WAGI module has no export {entrypoint!r}")
        self.linker = Linker(engine)
        self.linker.define_wasi()
        self.log = guest_logger(ctx.component_id)

    def serve(self, req: WagiRequest, limits: Limits) -> SimpleResponse:
        out_fd, out_path = tempfile.mkstemp(prefix="shim-wagi-out-", dir=_shm())
        err_fd, err_path = tempfile.mkstemp(prefix="shim-wagi-err-", dir=_shm())
        os.close(out_fd)
        os.close(err_fd)
        wc = WasiConfig()
        args = " ".join(a for a in req.query.split("&") if a)
        argv = self.argv_template.replace("${SCRIPT_NAME}", req.env.get("SCRIPT_NAME", req.path)) \
            .replace("${ARGS}", args)
        wc.argv = argv.split()
        wc.env = list({**self.ctx.environment, **req.env}.items())
        vec = ffi.wasm_byte_vec_t()
        body = req.body
        ffi.wasm_byte_vec_new(byref(vec), len(body), (ctypes.c_uint8 * len(body)).from_buffer_copy(body))
        ffi.wasi_config_set_stdin_bytes(wc.ptr(), byref(vec))
        wc.stdout_file = out_path
        wc.stderr_file = err_path
        for host, guest in self.preopens:
            wc.preopen_dir(host, guest, False)
        store = _new_store(self.engine, limits)
        store.set_wasi(wc)
        try:
            inst = self.linker.instantiate(store, self.module)
            start = inst.exports(store)[self.entrypoint]
            try:
                start(store)  # type: ignore[operator]
            except ExitTrap as e:
                if e.code != 0:
                    raise GuestError(self.ctx.component_id, f"WAGI module exited with status {e.code}") \
                        from e
            with open(out_path, "rb") as f:
                out = f.read()
        except (Trap, WasmtimeError) as exc:
            raise _guest_failure(self.ctx.component_id, exc) from exc
        finally:
            store.close()
            os.unlink(out_path)
            _flush_file(err_path, self.log)
        return parse_cgi(self.ctx.component_id, out)


def parse_cgi(component_id: str, out: bytes) -> SimpleResponse:
    sep = min((i for i in (out.find(b"\r\n\r\n"), out.find(b"\n\n")) if i >= 0), default=-1)
    if sep < 0:
        raise GuestError(component_id, "WAGI output has no header block (expected headers, a blank "
                         "line, then the body)")
    head = out[:sep]
    body = out[sep + 4:] if out[sep:sep + 4] == b"\r\n\r\n" else out[sep + 2:]  # the body's own newlines stay
    status = 200
    headers: list[tuple[str, bytes]] = []
    for line in head.decode("latin-1").splitlines():
        if not line.strip():
            continue
        k, sep2, v = line.partition(":")
        if not sep2:
            raise GuestError(component_id, f"malformed WAGI header line {line!r}")
        k, v = k.strip(), v.strip()
        if k.lower() == "status":
            try:
                status = int(v.split()[0])
            except (ValueError, IndexError):
                raise GuestError(component_id, f"malformed WAGI status {v!r}") from None
        else:
            if k.lower() == "location" and status == 200:
                status = 302
            headers.append((k.lower(), v.encode("latin-1")))
    return SimpleResponse(status, headers, body)


def classify(engine: Engine, component_id: str, component: Component) -> str:
    """The export that decides the executor (its full name, version included), or a
    ComponentLoadError naming what was found."""
    exports = export_names(engine, component)
    for name in exports:
        if name.startswith(WASI_HTTP_02):
            return name
    for name in exports:
        if name == INBOUND_HTTP or name.startswith(INBOUND_HTTP + "@"):
            return name
    p3 = [e for e in exports if e.startswith("wasi:http/handler@0.3")]
    if p3:
        raise ComponentLoadError(component_id, f"exports {p3[0]} (WASI 0.3), which this runtime cannot "
                                 f"run; supported: {SUPPORTED_HTTP}")
    raise ComponentLoadError(component_id, f"exports none of {SUPPORTED_HTTP} "
                             f"(found: {', '.join(exports) or 'nothing'})")


__all__ = ["CommandExecutor", "GuestContext", "InboundHttpExecutor", "InboundRedisExecutor", "Limits",
           "MqttExecutor", "WagiExecutor", "WasiHttpExecutor", "classify"]
