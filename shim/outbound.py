"""Outgoing HTTP for guests: allowed only to the component's `allowed_outbound_hosts`.

A denied request gets `HTTP-request-denied` and no connection is ever opened.
"""

from __future__ import annotations

import http.client
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from shim.codec import Err, Ok, V
from shim.wasi_http import IncomingResponse, OutgoingRequest, RequestState

_DEFAULT_PORT = {"http": 80, "https": 443}


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


class Outbound:
    def __init__(self, allowed: Sequence[str], timeout: float = 30.0) -> None:
        self.patterns = [HostPattern.parse(a) for a in allowed]
        self.timeout = timeout

    def allows(self, scheme: str, host: str, port: int) -> bool:
        return any(p.allows(scheme, host, port) for p in self.patterns)

    def __call__(self, state: RequestState, req: OutgoingRequest) -> Any:
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
        conn: http.client.HTTPConnection
        if scheme == "https":
            conn = http.client.HTTPSConnection(host, port, timeout=self.timeout,
                                               context=ssl.create_default_context())
        else:
            conn = http.client.HTTPConnection(host, port, timeout=self.timeout)
        method = req.method.tag if isinstance(req.method, V) else str(req.method)
        if method == "other" and isinstance(req.method, V):
            method = str(req.method.value)
        try:
            conn.request(method.upper(), req.path_with_query or "/", body=bytes(req.body) or None,
                         headers={k: v.decode("latin-1") for k, v in req.headers.entries})
            resp = conn.getresponse()
            data = resp.read()
        except (OSError, http.client.HTTPException) as exc:
            return Err(V("internal-error", str(exc)))
        finally:
            conn.close()
        body = memoryview(data)
        pos = 0

        def read(n: int) -> bytes:
            nonlocal pos
            chunk = bytes(body[pos:pos + n])
            pos += len(chunk)
            return chunk

        headers = [(k.lower(), v.encode("latin-1")) for k, v in resp.getheaders()]
        return Ok(IncomingResponse(resp.status, headers, read))


def _scheme(s: Any) -> str:
    if isinstance(s, V):
        return "https" if s.tag == "HTTPS" else ("http" if s.tag == "HTTP" else str(s.value).lower())
    return "https" if s is None else str(s).lower()
