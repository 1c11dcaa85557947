"""Linking a component's imports to Python host functions through wasmtime's C API.

Every import of the component is defined, so instantiation never fails at link time:
implemented functions call Python; anything else returns the interface's error value (or, when
the function has no error value to give, raises a trap that names the function when called).

Host functions are registered with our own C callback and per-function codecs reflected once at
link time (see `codec`), instead of `LinkerInstance.add_func`, which reflects the function type on
every call. The request a call belongs to is found through a thread-local (`CURRENT`).
"""

from __future__ import annotations

import ctypes
import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from wasmtime import Engine, WasmtimeError
from wasmtime import _ffi as ffi
from wasmtime.component import (
    Component,
    ComponentInstanceType,
    FuncType,
    Linker,
    LinkerInstance,
    ResourceType,
)

from shim import codec

log = logging.getLogger("shim.host")

HostFn = Callable[..., Any]


class Unsupported(Exception):
    """Raised by a host function that has no well-typed way to refuse; becomes a trap."""


@dataclass(slots=True)
class _Entry:
    name: str
    fn: HostFn
    params: list[codec.Codec]
    result: codec.Codec | None


_ENTRIES: list[_Entry] = []
_ENTRIES_LOCK = threading.Lock()


class _Local(threading.local):
    state: Any = None
    error: BaseException | None = None


CURRENT = _Local()


def current() -> Any:
    return CURRENT.state


@ffi.wasmtime_component_func_callback_t  # type: ignore[untyped-decorator]
def _trampoline(idx: Any, context: Any, ty_raw: Any, args: Any, nargs: int, results: Any,
                nresults: int) -> Any:
    entry = _ENTRIES[idx or 0]
    try:
        pyargs = [c.lift(context, args[i]) for i, c in enumerate(entry.params)]
        value = entry.fn(*pyargs)
        if entry.result is not None:
            entry.result.lower(context, value, results[0])
        return 0
    except BaseException as exc:  # every failure becomes a trap, never unwinds through C
        if CURRENT.error is None:
            CURRENT.error = exc
        err = WasmtimeError(f"host function {entry.name}: {exc}")
        return ctypes.cast(err._consume(), ctypes.c_void_p).value


@ctypes.CFUNCTYPE(None, ctypes.c_void_p)  # type: ignore[untyped-decorator]
def _finalize(idx: Any) -> None:
    return None  # entries live as long as the process: linkers are built once per component


def _register(li: LinkerInstance, name: str, entry: _Entry) -> None:
    with _ENTRIES_LOCK:
        _ENTRIES.append(entry)
        idx = len(_ENTRIES) - 1
    raw = name.encode()
    err = ffi.wasmtime_component_linker_instance_add_func(
        li.ptr(), ctypes.create_string_buffer(raw), len(raw), _trampoline, idx, _finalize)
    if err:
        raise WasmtimeError._from_ptr(err)


def unversioned(iface: str) -> str:
    return iface.split("@", 1)[0]


class ResourceGroups:
    """Resources re-exported under several names (pollable, streams, fields = headers = trailers,
    and the same interface at several patch versions) are one type: give each group one id."""

    def __init__(self) -> None:
        self._groups: list[tuple[ResourceType, int]] = []
        self.by_name: dict[str, int] = {}

    def id_of(self, ty: ResourceType) -> int:
        for known, gid in self._groups:
            if known == ty:
                return gid
        gid = len(self._groups) + 1
        self._groups.append((ty, gid))
        return gid


@dataclass(frozen=True)
class LinkReport:
    implemented: int
    stubbed: tuple[str, ...]


Implementations = dict[str, HostFn]  # "wasi:io/streams#[method]input-stream.read" -> fn
Dtor = Callable[[int], None]


def build_linker(engine: Engine, component: Component, impls: Implementations,
                 native: Callable[[str], bool] = lambda iface: False,
                 dtor: Dtor = lambda rep: None,
                 hex_functions: Mapping[str, str] | None = None,
                 ) -> tuple[Linker, ResourceGroups, LinkReport]:
    """Define every import of `component`. Interfaces for which `native(iface)` holds are left
    to wasmtime's own WASI (added with `add_wasip2`), everything else is Python; `dtor(rep)` runs
    when the guest drops a host resource. `hex_functions` maps the functions `bytestrings`
    added ("import#name-hex") to the ones they stand for: their strings carry bytes in hex,
    which Python sees as bytes, and they run the same implementation."""
    imports = component.type.imports(engine)
    groups = _group_resources(engine, imports)
    linker = Linker(engine)
    if any(native(unversioned(n)) for n in imports):
        linker.add_wasip2()
        linker.allow_shadowing = True
    report = LinkReport(0, ())
    with linker.root() as root:
        for iname, ext in imports.items():
            if native(unversioned(iname)):
                continue
            if not isinstance(ext.ty, ComponentInstanceType):
                raise WasmtimeError(f"unsupported top-level import {iname} (only interfaces)")
            with root.add_instance(iname) as li:
                hexed = {k.split("#", 1)[1]: v.split("#", 1)[1] for k, v in (hex_functions or {}).items()
                         if k.startswith(iname + "#")}
                report = _define_instance(engine, li, iname, ext.ty, impls, groups, dtor, report, hexed)
    return linker, groups, report


def _group_resources(engine: Engine, imports: Mapping[str, Any]) -> ResourceGroups:
    groups = ResourceGroups()
    for iname, ext in imports.items():
        if isinstance(ext.ty, ComponentInstanceType):
            for n, item in ext.ty.exports(engine).items():
                if isinstance(item.ty, ResourceType):
                    gid = groups.id_of(item.ty)
                    groups.by_name[f"{unversioned(iname)}/{n}"] = gid
                    # two major versions of one interface (spin:postgres@3 and @4) have different
                    # types under one unversioned name: each instance defines its own
                    groups.by_name[f"{iname}/{n}"] = gid
    return groups


def _define_instance(engine: Engine, li: LinkerInstance, iname: str, ity: ComponentInstanceType,
                     impls: Implementations, groups: ResourceGroups, dtor: Dtor,
                     report: LinkReport, hexed: Mapping[str, str]) -> LinkReport:
    """Resources first (functions' types refer to them), then every function: implemented or a
    stub answering the interface's error value."""
    base = unversioned(iname)
    items = ity.exports(engine)
    for n, item in items.items():
        if isinstance(item.ty, ResourceType):
            li.add_resource(n, ResourceType.host(groups.by_name[f"{iname}/{n}"]),
                            lambda _store, rep: dtor(rep))
    implemented, stubbed = report.implemented, list(report.stubbed)
    for n, item in items.items():
        if not isinstance(item.ty, FuncType):
            continue
        key = f"{base}#{hexed.get(n, n)}"
        as_bytes = n in hexed
        params = [codec.build(t, groups.id_of, as_bytes) for _, t in item.ty.params]
        rty = item.ty.result
        result = None if rty is None else codec.build(rty, groups.id_of, as_bytes)
        fn = impls.get(key)
        if fn is None:
            fn = _stub(key, result)
            stubbed.append(key)
        else:
            implemented += 1
        _register(li, n, _Entry(key, fn, params, result))
    return LinkReport(implemented, tuple(stubbed))


def _stub(key: str, result: codec.Codec | None) -> HostFn:
    if isinstance(result, codec.Resource) and result.owned:
        # a constructor with no error case (e.g. instance-network): hand out an inert handle
        # whose methods, stubbed too, return their interface's errors
        def inert(*_args: Any) -> Any:
            return CURRENT.state.new("unsupported", None)
        return inert
    try:
        value = codec.default_error(result)
    except TypeError:
        def trap(*_args: Any) -> Any:
            raise Unsupported(f"{key} is not supported by this runtime")
        return trap

    def refuse(*_args: Any) -> Any:
        return value
    return refuse


def imported_interfaces(component: Component, engine: Engine) -> Iterable[str]:
    return component.type.imports(engine).keys()
