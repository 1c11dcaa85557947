"""Service chaining: an outbound request to `http://<component>.spin.internal` runs that component
in-process, as Spin does, instead of going to the network.

`Outbound` allows it only when the caller's `allowed_outbound_hosts` covers the name
(`http://<component>.spin.internal` or `http://*.spin.internal`). The target gets the request as
if routed to a synthetic `/...` route (Spin's `spin-*` headers with the whole path as path info).
A target that is not a wasi:http component is `destination-not-found` (unknown id) or
`internal-error`; a target that fails answers 500, as it would to a client.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from shim import hostlink
from shim.codec import Err, Ok, V
from shim.errors import GuestError
from shim.executors import Limits, WasiHttpExecutor
from shim.wasi_http import InboundRequest, IncomingResponse, RequestState

SUFFIX = ".spin.internal"


class _Collect:
    """A response sink that keeps the whole response."""

    def __init__(self) -> None:
        self.status = 500
        self.headers: list[tuple[str, bytes]] = []
        self.body = bytearray()

    def start(self, status: int, headers: list[tuple[str, bytes]]) -> None:
        self.status, self.headers = status, headers

    def write(self, data: bytes) -> None:
        self.body += data

    def flush(self) -> None:
        return None

    def finish(self) -> None:
        return None


def _reader(data: bytes) -> Callable[[int], bytes]:
    view = memoryview(data)
    pos = 0

    def read(n: int) -> bytes:
        nonlocal pos
        chunk = bytes(view[pos:pos + n])
        pos += len(chunk)
        return chunk
    return read


class ServiceChain:
    """Set `executors` (component id → executor lookup) and `limits` once the app is loaded."""

    def __init__(self) -> None:
        self.executors: Callable[[str], Any] = lambda cid: None
        self.limits = Limits()

    def __call__(self, state: RequestState, component: str, method: str, path_with_query: str,
                 headers: list[tuple[str, bytes]], body: bytes) -> Any:
        """Ok(IncomingResponse) or Err(error-code), as `Outbound` answers."""
        executor = self.executors(component)
        if executor is None:
            return Err(V("destination-not-found"))
        if not isinstance(executor, WasiHttpExecutor):
            return Err(V("internal-error", f"component {component!r} is not a wasi:http component"))
        path = path_with_query.split("?", 1)[0] or "/"
        authority = f"{component}{SUFFIX}"
        spin = [("spin-full-url", f"http://{authority}{path_with_query}"), ("spin-path-info", path),
                ("spin-matched-route", "/..."), ("spin-base-path", "/"), ("spin-raw-component-route", "/..."),
                ("spin-component-route", ""), ("spin-client-addr", "127.0.0.1:0")]
        request = InboundRequest(method.upper(), path_with_query, "http", authority,
                                 [*headers, *((k, v.encode()) for k, v in spin)], _reader(body),
                                 state.request.deadline)
        sink = _Collect()
        saved = hostlink.CURRENT.state, hostlink.CURRENT.error  # the caller's request goes on after
        try:
            executor.serve(request, sink, self.limits)
        except GuestError as exc:
            state.log("outbound", f"service chaining to {component}: {exc}".encode())
            sink = _Collect()
            sink.body += b"Internal Server Error\n"
        finally:
            hostlink.CURRENT.state, hostlink.CURRENT.error = saved
        return Ok(IncomingResponse(sink.status, sink.headers, _reader(bytes(sink.body))))
