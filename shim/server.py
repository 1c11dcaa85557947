"""The HTTP trigger: a threaded HTTP/1.1 server in front of the loaded app.

Each request is routed (Spin rules), given Spin's headers, and run in a fresh instance; the
response streams back (chunked unless the guest set content-length). A guest failure before the
response started is a 500; after, the connection is closed. `serve_forever` returns after a
graceful stop: no new connections, in-flight requests finish (the SIGTERM path).
"""

from __future__ import annotations

import contextlib
import logging
import selectors
import socket
import sys
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from shim.app import LoadedApp
from shim.errors import GuestError
from shim.executors import InboundHttpExecutor, SimpleResponse, WagiExecutor, WagiRequest, WasiHttpExecutor
from shim.manifest import HttpTrigger
from shim.routing import Match, spin_headers
from shim.wasi_http import InboundRequest

log = logging.getLogger("shim.http")
access_log = logging.getLogger("shim.access")


class _BodyTooLarge(Exception):
    """A request body that must be buffered (WAGI, inbound-http) is over the server's limit."""


def parse_listen(addr: str) -> tuple[str, int]:
    host, sep, port = addr.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"listen address {addr!r} must be HOST:PORT")
    return host.strip("[]") or "0.0.0.0", int(port)


class _Body:
    """The request body as a reader: Content-Length or chunked, never past the end.

    A read returns what has arrived, up to n bytes and across chunk boundaries, and waits only
    when nothing has: the guest reads in its own sizes, not in the client's chunk or segment
    sizes (a 16 KiB-chunked upload cost 40% more guest round trips than one in 64 KiB pieces)."""

    def __init__(self, rfile: Any, sock: socket.socket, length: int | None, chunked: bool) -> None:
        self.rfile, self.sock, self.left, self.chunked = rfile, sock, length or 0, chunked
        self.chunk_left = 0
        self.crlf_left = False  # the CRLF after a chunk's data, read with the next chunk's size
        self.done = not chunked and not length

    def read(self, n: int) -> bytes:
        if self.done or n <= 0:
            return b""
        data = self._piece(n, wait=True)
        if len(data) >= n or not data:
            return data
        parts, got = [data], len(data)
        while got < n and not self.done and (more := self._piece(n - got, wait=False)):
            parts.append(more)
            got += len(more)
        return b"".join(parts) if len(parts) > 1 else data

    def _piece(self, n: int, wait: bool) -> bytes:
        """Up to n bytes of one chunk (or of a Content-Length body); with wait=False, only what is
        here already, and b"" rather than block."""
        if not self.chunked:
            data = self._read1(min(n, self.left), wait)
            self.left -= len(data)
            if self.left <= 0 or (wait and not data):
                self.done = True
            return data
        if self.chunk_left == 0:
            if not wait and self._here().count(b"\n") < 1 + self.crlf_left:
                return b""  # the next chunk's size line is not complete yet: do not wait for it
            if self.crlf_left:
                self.rfile.readline(8)
                self.crlf_left = False
            line = self.rfile.readline(1024)
            size = int(line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass
                self.done = True
                return b""
            self.chunk_left = size
        data = self._read1(min(n, self.chunk_left), wait)
        self.chunk_left -= len(data)
        self.crlf_left = self.chunk_left == 0
        return data

    def _read1(self, n: int, wait: bool) -> bytes:
        if wait:
            data: bytes = self.rfile.read1(n)
            return data
        return self._now(lambda: self.rfile.read1(n))

    def _here(self) -> bytes:
        """The bytes buffered or already in the socket, without consuming them."""
        return self._now(lambda: self.rfile.peek(1))

    def _now(self, read: Callable[[], bytes]) -> bytes:
        timeout = self.sock.gettimeout()
        self.sock.settimeout(0)  # a read that would wait returns b"" instead
        try:
            return read()
        finally:
            self.sock.settimeout(timeout)

    def drain(self) -> None:
        while not self.done:
            if not self.read(65536) and not self.chunked:
                break


class _Sink:
    """Writes the guest's response as it comes, coalescing small writes: bytes leave when 64 KiB
    are pending, when the guest waits (`flush`), and at the end, so a small response is one
    segment and a streamed one is not held back."""

    FLUSH_AT = 65536

    def __init__(self, handler: BaseHTTPRequestHandler, head: bool) -> None:
        self.h, self.head = handler, head
        self.started = False
        self.chunked = False
        self.buf = bytearray()

    def _out(self, data: bytes) -> None:
        self.buf += data
        if len(self.buf) >= self.FLUSH_AT:
            self.flush()

    def start(self, status: int, headers: list[tuple[str, bytes]]) -> None:
        self.started = True
        h = self.h
        h.send_response_only(status)
        has_len = False
        for k, v in headers:
            if k.lower() in ("transfer-encoding", "connection"):
                continue
            if not k or any(c in k for c in "\r\n: ") or b"\r" in v or b"\n" in v:
                log.warning("dropping invalid response header %r from the guest", k)
                continue
            if k.lower() == "content-length":
                has_len = True
            h.send_header(k, v.decode("latin-1"))
        if not has_len and not self.head:
            self.chunked = True
            h.send_header("transfer-encoding", "chunked")
        h.send_header("date", h.date_time_string())
        self._out(b"".join(h._headers_buffer) + b"\r\n")  # type: ignore[attr-defined]
        h._headers_buffer = []  # type: ignore[attr-defined]

    def write(self, data: bytes) -> None:
        if self.head or not data:
            return
        if self.chunked:  # framed in place: formatting the chunk first would copy it twice
            self.buf += b"%x\r\n" % len(data)
            self.buf += data
            self._out(b"\r\n")
        else:
            self._out(data)

    def flush(self) -> None:
        if self.buf:
            self.h.wfile.write(self.buf)
            self.buf.clear()

    def finish(self) -> None:
        if self.chunked:
            self.buf += b"0\r\n\r\n"
        self.flush()
        self.h.wfile.flush()


class SpinServer(ThreadingHTTPServer):
    daemon_threads = False
    block_on_close = True
    allow_reuse_address = True
    request_queue_size = 128
    timeout = 0.2  # handle_request() returns this often so the accept loop can see a stop
    max_buffered_body = 64 << 20  # WAGI and inbound-http get the whole body at once; more is a 413

    def __init__(self, app: LoadedApp, addr: tuple[str, int], *, sock: socket.socket | None = None) -> None:
        self.app = app
        self.active = 0
        self.active_lock = threading.Lock()
        self.connections: set[_Handler] = set()
        self.stopping = False
        if sock is None:
            super().__init__(addr, _Handler)
        else:
            super().__init__(addr, _Handler, bind_and_activate=False)
            self.socket.close()
            self.socket = sock
            self.server_address = sock.getsockname()
        # several processes wait on one listening socket: a blocking accept() in the process that
        # lost the race would hang it (and its shutdown) until the next connection
        self.socket.setblocking(False)
        self._accept_wait = selectors.DefaultSelector()
        self._accept_wait.register(self.socket, selectors.EVENT_READ)

    def handle_request(self) -> None:
        """Wait up to `timeout` seconds for a connection and serve it. socketserver's version
        waits for the smaller of `timeout` and the socket's timeout, which is 0 here (non-blocking,
        above): the accept loop would spin and hold the GIL against the requests it serves."""
        if not self._accept_wait.select(self.timeout):
            return
        try:
            conn, client = self.get_request()
        except OSError:  # another process took it (BlockingIOError), or the client went away
            return
        try:
            self.process_request(conn, client)
        except Exception:
            self.handle_error(conn, client)
            self.shutdown_request(conn)

    def server_close(self) -> None:
        super().server_close()
        self._accept_wait.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A connection that failed outside a guest (client went away, bad framing): one line,
        not a traceback per dropped client."""
        exc = sys.exc_info()[1]
        log.warning("connection from %s:%s failed: %r", client_address[0], client_address[1], exc)

    def stop_idle_connections(self) -> None:
        """Close keep-alive connections waiting for a request; busy ones close after their
        response (handlers check `stopping`)."""
        self.stopping = True
        with self.active_lock:
            idle = [h for h in self.connections if not h.busy]
        for h in idle:
            with contextlib.suppress(OSError):
                h.connection.shutdown(socket.SHUT_RDWR)

    @property
    def port(self) -> int:
        port: int = self.server_address[1]
        return port


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    timeout = 120  # idle keep-alive connections are dropped after this many seconds
    server_version = "spindle-shim"
    server: SpinServer
    busy = False
    _status = 0

    def setup(self) -> None:
        super().setup()
        with self.server.active_lock:
            self.server.connections.add(self)

    def finish(self) -> None:
        with self.server.active_lock:
            self.server.connections.discard(self)
        super().finish()

    def log_message(self, fmt: str, *args: Any) -> None:
        # access lines: DEBUG for `shim up`; the container mode turns the logger up to show them
        access_log.debug("%s " + fmt, self.client_address[0], *args)

    def send_response_only(self, code: int, message: str | None = None) -> None:
        self._status = code  # for the access line
        super().send_response_only(code, message)

    def _any(self) -> None:
        with self.server.active_lock:
            self.server.active += 1
            self.busy = True
        self._status = 0
        try:
            self._serve()
        finally:
            if access_log.isEnabledFor(logging.DEBUG):
                self.log_request(self._status or "-")
            with self.server.active_lock:
                self.server.active -= 1
                self.busy = False
            if self.server.stopping:
                self.close_connection = True

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _any

    def _serve(self) -> None:
        app = self.server.app
        self._started = False  # per request: the handler lives as long as the connection
        split = urlsplit(self.path)
        path = split.path or "/"
        te = (self.headers.get("transfer-encoding") or "").lower()
        try:
            length = int(self.headers.get("content-length") or 0)
            if length < 0:
                raise ValueError(length)
        except ValueError:
            self.close_connection = True
            self._plain(400, b"Bad Request\n")
            return
        body = _Body(self.rfile, self.connection, length, "chunked" in te)
        match = app.router.match(path)
        if match is None:
            body.drain()
            self._plain(404, b"Not Found\n")
            return
        trig = match.trigger
        if trig.static_response is not None:
            body.drain()
            sr = trig.static_response
            self._simple(SimpleResponse(sr.status, [(k, v.encode()) for k, v in sr.headers], sr.body))
            return
        executor = app.executor_for(trig)
        host = self.headers.get("host") or "localhost"  # what Spin assumes without a Host header
        client = f"{self.client_address[0]}:{self.client_address[1]}"
        query = f"?{split.query}" if split.query else ""
        pq = self.path if self.path.startswith("/") else split.path + query
        extra = spin_headers(match, scheme="http", host=host, path_with_query=pq, client_addr=client)
        try:
            if isinstance(executor, WasiHttpExecutor):
                self._wasi_http(executor, trig, match, body, pq, host, extra)
            elif isinstance(executor, WagiExecutor):
                self._wagi(executor, match, body, split.query, host, extra)
            else:
                self._inbound(executor, body, pq, extra)
        except _BodyTooLarge:
            self.close_connection = True
            self._plain(413, b"Payload Too Large\n")
        except GuestError as exc:
            log.error("%s %s: %s", self.command, path, exc)
            body.drain()
            if self._started:
                self.close_connection = True
            else:
                self._plain(500, b"Internal Server Error\n")
        finally:
            if not body.done:
                self.close_connection = True

    def _wasi_http(self, ex: WasiHttpExecutor, trig: HttpTrigger, match: Match, body: _Body, pq: str,
                   host: str, extra: list[tuple[str, str]]) -> None:
        headers = [(k.lower(), v.encode("latin-1")) for k, v in self.headers.items()]
        headers += [(k, v.encode()) for k, v in extra]
        req = InboundRequest(self.command, pq, "http", host, headers, body.read)
        sink = _Sink(self, self.command == "HEAD")
        try:
            ex.serve(req, sink, self.server.app.limits)
        finally:
            self._started = sink.started

    def _read_all(self, body: _Body) -> bytes:
        chunks = []
        total = 0
        while True:
            data = body.read(65536)
            if not data:
                break
            total += len(data)
            if total > self.server.max_buffered_body:
                raise _BodyTooLarge
            chunks.append(data)
        return b"".join(chunks)

    def _wagi(self, ex: WagiExecutor, match: Match, body: _Body, query: str, host: str,
              extra: list[tuple[str, str]]) -> None:
        data = self._read_all(body)
        route = match.trigger.route
        hname, _, hport = host.partition(":")
        env = {
            "REQUEST_METHOD": self.command, "PATH_INFO": match.path_info, "PATH_TRANSLATED": match.path_info,
            "QUERY_STRING": query, "SCRIPT_NAME": route.based_prefix,
            "SERVER_PROTOCOL": self.request_version, "GATEWAY_INTERFACE": "CGI/1.1",
            "SERVER_SOFTWARE": "spindle-shim", "SERVER_NAME": hname, "SERVER_PORT": hport or "80",
            "REMOTE_ADDR": self.client_address[0], "REMOTE_HOST": self.client_address[0],
            "CONTENT_LENGTH": str(len(data)), "CONTENT_TYPE": self.headers.get("content-type", ""),
            "AUTH_TYPE": "", "REMOTE_USER": "",
        }
        # Spin's headers become X_* variables for WAGI (spin-full-url -> X_FULL_URL, ...)
        for k, v in extra:
            if k != "spin-path-info":
                env["X_" + k.removeprefix("spin-").upper().replace("-", "_")] = v
        env["X_RAW_PATH_INFO"] = match.path_info
        for k, v in self.headers.items():
            env["HTTP_" + k.upper().replace("-", "_")] = v
        path = self.path.split("?", 1)[0]
        resp = ex.serve(WagiRequest(self.command, path, query, list(self.headers.items()), data, env),
                        self.server.app.limits)
        self._simple(resp)

    def _inbound(self, ex: InboundHttpExecutor, body: _Body, pq: str, extra: list[tuple[str, str]]) -> None:
        data = self._read_all(body)
        headers = [(k.lower(), v) for k, v in self.headers.items()] + extra
        resp = ex.serve(self.command, pq, headers, [], data, self.server.app.limits)
        self._simple(resp)

    def _simple(self, resp: SimpleResponse) -> None:
        self._started = True
        sink = _Sink(self, self.command == "HEAD")
        headers = [(k, v) for k, v in resp.headers
                   if k.lower() not in ("content-length", "transfer-encoding", "connection")]
        sink.start(resp.status, [*headers, ("content-length", str(len(resp.body)).encode())])
        sink.write(resp.body)
        sink.finish()

    def _plain(self, status: int, text: bytes) -> None:
        self._simple(SimpleResponse(status, [("content-type", b"text/plain")], text))


def stop_gracefully(server: SpinServer) -> None:
    """Stop accepting, then wait for the requests in flight (ThreadingHTTPServer joins them)."""
    def drain() -> None:
        server.shutdown()
        server.stop_idle_connections()
    threading.Thread(target=drain, name="shim-drain", daemon=True).start()
