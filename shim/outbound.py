"""Outgoing HTTP for guests: allowed only to the component's `allowed_outbound_hosts`.

A denied request gets `HTTP-request-denied` and no connection is ever opened. Failures reach the
guest as the `error-code` wasmtime gives them (wasmtime-wasi-http `p2/mod.rs`,
`default_send_request_handler`): no answer within the connect timeout is `connection-timeout`;
a name that does not resolve (or EADDRNOTAVAIL) is `DNS-error` with rcode "address not
available" and info-code 0; any other connect failure is `connection-refused`; a host name
rustls would not take is `DNS-error` "invalid dns name"; a failed TLS handshake (certificate
included) is `TLS-protocol-error`; no response in time is `connection-read-timeout`; a broken
response is `HTTP-protocol-error`. As in wasmtime, a denied or malformed request fails `handle`
itself; a failure on the way (connecting, TLS, the response) comes out of the future it returned.
"""

from __future__ import annotations

import errno
import http.client
import socket
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from shim.codec import Err, Ok, V
from shim.wasi_http import IncomingResponse, OutgoingRequest, RequestState

_DEFAULT_PORT = {"http": 80, "https": 443, "redis": 6379, "rediss": 6379, "postgres": 5432, "mysql": 3306}
_HANDLE_ERRORS = frozenset({"HTTP-request-denied", "HTTP-request-URI-invalid"})


@dataclass(frozen=True)
class HostPattern:
    scheme: str  # "*" for any
    host: str  # "*", "*.example.com", or a name
    port: str  # "*" or digits

    @classmethod
    def parse(cls, text: str) -> HostPattern:
        scheme, sep, rest = text.partition("://")
        if not sep:
            scheme, rest = "*", text
        rest = rest.rstrip("/")
        host, _, port = rest.rpartition(":") if rest.count(":") == 1 else (rest, "", "")
        if not host:
            host, port = port, ""
        if not port:
            port = str(_DEFAULT_PORT.get(scheme, "*")) if scheme != "*" else "*"
        return cls(scheme.lower(), host.lower(), port)

    def allows(self, scheme: str, host: str, port: int) -> bool:
        if self.scheme not in ("*", scheme):
            return False
        if self.port != "*" and self.port != str(port):
            return False
        if self.host == "*":
            return True
        if self.host.startswith("*."):
            return host.endswith(self.host[1:])
        return host == self.host


Connect = Callable[[tuple[str, int], float], socket.socket]
# (state, component, method, path_with_query, headers, body) -> Ok(IncomingResponse) | Err(code)
Chain = Callable[[RequestState, str, str, str, list[tuple[str, bytes]], bytes], Any]
_CHAIN_SUFFIX = ".spin.internal"


class Outbound:
    def __init__(self, allowed: Sequence[str], timeout: float = 30.0,
                 connect: Connect = socket.create_connection, chain: Chain | None = None) -> None:
        """`connect((host, port), timeout)` opens the TCP connection (resolving the name);
        `chain` runs requests to `<component>.spin.internal` in-process (`shim.chaining`)."""
        self.patterns = [HostPattern.parse(a) for a in allowed]
        self.timeout = timeout
        self.connect = connect
        self.chain = chain

    def allows(self, scheme: str, host: str, port: int) -> bool:
        return any(p.allows(scheme, host, port) for p in self.patterns)

    def __call__(self, state: RequestState, req: OutgoingRequest) -> Any:
        """Err(code): `handle` fails; Ok(Err(code)): its future resolves to the error;
        Ok(IncomingResponse): to the response."""
        result = self._send(state, req)
        if isinstance(result, Err) and not (isinstance(result.value, V)
                                            and result.value.tag in _HANDLE_ERRORS):
            return Ok(result)
        return result

    def _send(self, state: RequestState, req: OutgoingRequest) -> Any:
        scheme = _scheme(req.scheme)
        authority = req.authority or ""
        host, _, port_s = authority.rpartition(":") if ":" in authority else (authority, "", "")
        try:
            port = int(port_s) if port_s else _DEFAULT_PORT[scheme]
        except (ValueError, KeyError):
            return Err(V("HTTP-request-URI-invalid"))
        if not host or not self.allows(scheme, host.lower(), port):
            state.log("outbound", f"denied: {scheme}://{authority} is not in allowed_outbound_hosts".encode())
            return Err(V("HTTP-request-denied"))
        timeout = self.timeout
        deadline = state.request.deadline
        if deadline is not None:
            timeout = max(0.001, min(timeout, deadline - time.monotonic()))
        method = req.method.tag if isinstance(req.method, V) else str(req.method)
        if method == "other" and isinstance(req.method, V):
            method = str(req.method.value)
        lowered = host.lower()
        if self.chain is not None and lowered.endswith(_CHAIN_SUFFIX) and len(lowered) > len(_CHAIN_SUFFIX):
            return self.chain(state, lowered[: -len(_CHAIN_SUFFIX)], method, req.path_with_query or "/",
                              list(req.headers.entries), bytes(req.body))
        try:
            sock = self.connect((host.strip("[]"), port), timeout)
        except TimeoutError:
            return Err(V("connection-timeout"))
        except socket.gaierror:
            return Err(_dns_error("address not available"))
        except OSError as exc:
            if exc.errno == errno.EADDRNOTAVAIL:
                return Err(_dns_error("address not available"))
            return Err(V("connection-refused"))
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
        try:
            if scheme == "https":
                try:
                    sock = ssl.create_default_context().wrap_socket(sock, server_hostname=host.strip("[]"))
                except (ssl.SSLError, OSError):  # certificate errors are SSLErrors (and ValueErrors)
                    return Err(V("TLS-protocol-error"))
                except (ValueError, UnicodeError):
                    return Err(_dns_error("invalid dns name"))
            conn.sock = sock
            conn.request(method.upper(), req.path_with_query or "/", body=bytes(req.body) or None,
                         headers={k: v.decode("latin-1") for k, v in req.headers.entries})
            resp = conn.getresponse()
            data = resp.read()
        except TimeoutError:
            return Err(V("connection-read-timeout"))
        except (OSError, http.client.HTTPException):
            return Err(V("HTTP-protocol-error"))
        finally:
            conn.close()
            sock.close()
        body = memoryview(data)
        pos = 0

        def read(n: int) -> bytes:
            nonlocal pos
            chunk = bytes(body[pos:pos + n])
            pos += len(chunk)
            return chunk

        headers = [(k.lower(), v.encode("latin-1")) for k, v in resp.getheaders()]
        return Ok(IncomingResponse(resp.status, headers, read))


def _dns_error(rcode: str) -> V:
    return V("DNS-error", {"rcode": rcode, "info-code": 0})


def _scheme(s: Any) -> str:
    if isinstance(s, V):
        return "https" if s.tag == "HTTPS" else ("http" if s.tag == "HTTP" else str(s.value).lower())
    return "https" if s is None else str(s).lower()
