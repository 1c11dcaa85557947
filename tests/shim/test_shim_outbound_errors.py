"""Outbound failures reach the guest as the wasi:http `error-code` wasmtime gives them.

wasmtime-wasi-http `crates/wasi-http/src/p2/mod.rs`, `default_send_request_handler`: a connect
timeout is `connection-timeout`; EADDRNOTAVAIL or a failed name lookup `DNS-error` with rcode
"address not available" and info-code 0; any other connect error `connection-refused`; a host
name rustls refuses `DNS-error` "invalid dns name"; a failed handshake `TLS-protocol-error`;
no response within the first-byte timeout `connection-read-timeout`. Those come out of the
future `handle` returned; only a denied request fails `handle` itself.
All traffic stays on loopback; the name lookup failures are raised by an injected connect.
"""

from __future__ import annotations

import errno
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from shim.codec import Err, Ok, V
from shim.outbound import Outbound
from shim.wasi_http import Fields, InboundRequest, OutgoingRequest, RequestState


def _state() -> RequestState:
    return RequestState(InboundRequest("GET", "/", "http", "x", [], lambda n: b""), _NoSink(),
                        lambda stream, data: None)


class _NoSink:
    def start(self, status: int, headers: list[tuple[str, bytes]]) -> None: ...
    def write(self, data: bytes) -> None: ...
    def flush(self) -> None: ...
    def finish(self) -> None: ...


def send(out: Outbound, authority: str, scheme: str = "HTTP") -> Any:
    req = OutgoingRequest(Fields([]), V("get"), "/", V(scheme), authority)
    return out(_state(), req)


@pytest.fixture
def silent_server() -> Iterator[int]:
    """Accepts, reads, never answers."""
    srv = socket.create_server(("127.0.0.1", 0))
    conns: list[socket.socket] = []

    def run() -> None:
        while True:
            try:
                c, _ = srv.accept()
            except OSError:
                return
            conns.append(c)

    threading.Thread(target=run, daemon=True).start()
    yield srv.getsockname()[1]
    srv.close()
    for c in conns:
        c.close()


def test_connection_refused() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nobody listens there once closed
    assert send(Outbound(["*://*:*"]), f"127.0.0.1:{port}") == Ok(Err(V("connection-refused")))


def test_connect_timeout() -> None:
    with socket.socket() as full:
        full.bind(("127.0.0.1", 0))
        full.listen(0)
        port = full.getsockname()[1]
        held = [socket.create_connection(("127.0.0.1", port), timeout=1)]  # fills the backlog
        try:
            result = send(Outbound(["*://*:*"], timeout=0.3), f"127.0.0.1:{port}")
        finally:
            for h in held:
                h.close()
    assert result == Ok(Err(V("connection-timeout")))


@pytest.mark.parametrize("exc", [socket.gaierror(socket.EAI_NONAME, "Name or service not known"),
                                 OSError(errno.EADDRNOTAVAIL, "Cannot assign requested address")])
def test_dns_errors(exc: OSError) -> None:
    def connect(addr: tuple[str, int], timeout: float) -> socket.socket:
        raise exc

    result = send(Outbound(["*://*:*"], connect=connect), "no-such-host.invalid:80")
    assert result == Ok(Err(V("DNS-error", {"rcode": "address not available", "info-code": 0})))


def test_read_timeout(silent_server: int) -> None:
    result = send(Outbound(["*://*:*"], timeout=0.3), f"127.0.0.1:{silent_server}")
    assert result == Ok(Err(V("connection-read-timeout")))


def test_tls_handshake_failure() -> None:
    """An https request to a plain-HTTP server: the handshake fails."""
    srv = socket.create_server(("127.0.0.1", 0))

    def answer_in_plain_http() -> None:
        c, _ = srv.accept()
        c.recv(4096)
        c.sendall(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
        c.close()

    t = threading.Thread(target=answer_in_plain_http, daemon=True)
    t.start()
    try:
        result = send(Outbound(["*://*:*"], timeout=5), f"127.0.0.1:{srv.getsockname()[1]}", "HTTPS")
    finally:
        t.join(5)
        srv.close()
    assert result == Ok(Err(V("TLS-protocol-error")))


def test_invalid_dns_name_for_tls(silent_server: int) -> None:
    def connect(addr: tuple[str, int], timeout: float) -> socket.socket:
        return socket.create_connection(("127.0.0.1", silent_server), timeout=timeout)

    result = send(Outbound(["*://*:*"], connect=connect), "a..b:443", "HTTPS")
    assert result == Ok(Err(_dns("invalid dns name")))


def test_denied_request_fails_handle_itself() -> None:
    assert send(Outbound(["http://127.0.0.1:1"]), "127.0.0.1:2") == Err(V("HTTP-request-denied"))


def _dns(rcode: str) -> V:
    return V("DNS-error", {"rcode": rcode, "info-code": 0})
