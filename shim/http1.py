"""The HTTP/1.1 front end: one event-loop thread holds every connection, guest threads serve
the requests it parses.

Why not `http.server`: it accepts what RFC 9112 says to reject (two different Content-Length
values, Content-Length with chunked, bad chunk framing after a response started, a header line
without a colon, a NUL in the target), its socket timeout restarts on every byte (a client that
trickles its headers is never cut off) and it spends a thread per connection (2,500 slow clients
made 1,250 threads per worker).

Why httptools (llhttp) and not h11: both are kept and strict; on the same 6-header GET httptools
parses in about 1 µs and h11 in about 52 µs (`bench/http_parsers.py`), which is a tenth of
what a WAT guest's whole request costs. llhttp already refuses duplicate Content-Length,
Content-Length with Transfer-Encoding, a non-final `chunked`, obs-fold, bad chunk sizes and
invalid bytes in the target or a header; `_Head.exchange` adds the rest of RFC 9112: the Host
rules (§3.2), transfer codings other than chunked (501, §6.1), Transfer-Encoding in HTTP/1.0
(§6.1), other versions (505), bounds on the target, header count and header bytes (414, 431).
A rejected request gets a status line, `Connection: close`, and the connection is closed.

Why our own selector loop and not asyncio: a guest thread writes its response straight to the
socket under the connection's lock, so a keep-alive request costs no loop wake-up (asyncio's
transports are not thread-safe); only what the socket does not take at once is left to the
loop. Timers are two per connection and need no heap: the loop sweeps them a few times a second.

Deadlines nobody can stretch: a request head must arrive within `header_timeout` of its first
byte, a keep-alive connection waiting for a request is closed after `idle_timeout`, a guest
waiting for body bytes gives up after `body_timeout` (408), a client that does not read the
response for `write_timeout` is dropped.

Threads: the loop thread owns the selector, the parser and the timers; a guest thread owns the
`Exchange` it serves. Anything that touches the selector from another thread goes through
`Server.call_soon`.
"""

from __future__ import annotations

import contextlib
import email.utils
import errno
import http
import logging
import re
import selectors
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import httptools

from shim.errors import BadRequestBody, ClientGone

log = logging.getLogger("shim.http")

_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_HOST = re.compile(rb"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~!$&'()*+,;=%]*)(:[0-9]*)?")
_BAD_VALUE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
# never passed on from a guest's response: they describe this connection, which is ours
_HOP_BY_HOP = frozenset({"connection", "transfer-encoding", "keep-alive", "upgrade", "proxy-connection",
                         "te", "trailer"})
_FLUSH_AT = 65536  # a response leaves in pieces of this size, or when the guest waits
_OUT_HIGH, _OUT_LOW = 1 << 20, 256 << 10  # a guest waits while this much output is unsent
_LINGER = 2.0  # seconds a closing connection keeps reading (so the client sees our response, not a RST)


@dataclass(frozen=True)
class Settings:
    header_timeout: float = 10.0
    idle_timeout: float = 60.0
    body_timeout: float = 60.0
    write_timeout: float = 60.0
    max_header_bytes: int = 64 << 10
    max_headers: int = 100
    max_target: int = 8 << 10
    max_pipelined: int = 16
    body_buffer: int = 1 << 20  # request body bytes held for a guest before the socket is not read
    max_connections: int = 10000


class ProtocolError(Exception):
    """A request this server refuses: answered with `status` and `Connection: close`."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def status_line(status: int) -> bytes:
    line = _STATUS_LINES.get(status)
    if line is None:
        try:
            phrase = http.HTTPStatus(status).phrase
        except ValueError:
            phrase = ""
        line = _STATUS_LINES[status] = f"HTTP/1.1 {status} {phrase}\r\n".encode()
    return line


_STATUS_LINES: dict[int, bytes] = {}
_date: tuple[int, bytes] = (0, b"")


def http_date() -> bytes:
    global _date
    now = int(time.time())
    if _date[0] != now:
        _date = (now, email.utils.formatdate(now, usegmt=True).encode())
    return _date[1]


# ---------------------------------------------------------------- the request body


class BodyPipe:
    """The request body between the loop (which feeds it) and a guest thread (which reads it).

    `read(n)` returns what has arrived, up to n bytes, and waits only when nothing has: the guest
    reads in its own sizes. Past `body_buffer` unread bytes the loop stops reading the socket
    until the guest catches up."""

    def __init__(self, conn: Connection, length: int | None, chunked: bool, expect_continue: bool) -> None:
        self.conn = conn
        self.length = length
        self._cond = threading.Condition(threading.Lock())
        self._chunks: deque[bytes] = deque()
        self._size = 0
        self.received = 0
        self.complete = not chunked and not length
        self.error: BadRequestBody | ClientGone | None = None
        self._expect_continue = expect_continue and not self.complete
        self.discard = False  # the exchange is over: what still arrives is dropped
        self.exchange: Exchange | None = None

    # loop thread
    def feed(self, data: bytes) -> None:
        with self._cond:
            self.received += len(data)
            if self.discard:
                return
            self._chunks.append(data)
            self._size += len(data)
            self._cond.notify()

    def end(self) -> None:
        with self._cond:
            self.complete = True
            self._cond.notify_all()

    def fail(self, exc: BadRequestBody | ClientGone) -> None:
        with self._cond:
            if not self.complete and self.error is None:
                self.error = exc
            self._cond.notify_all()

    @property
    def full(self) -> bool:
        return self._size >= self.conn.server.settings.body_buffer

    # guest thread
    def read(self, n: int, deadline: float | None = None) -> bytes:
        if self._expect_continue:
            self._expect_continue = False
            if not self.received and not (self.exchange is not None and self.exchange.flushed):
                self.conn.send(b"HTTP/1.1 100 Continue\r\n\r\n")
        settings = self.conn.server.settings
        with self._cond:
            while not self._chunks:
                if self.error is not None:
                    raise self.error
                if self.complete:
                    return b""
                wait = settings.body_timeout
                if deadline is not None:
                    wait = min(wait, deadline - time.monotonic())
                if wait <= 0 or not self._cond.wait(wait):
                    if self._chunks or self.complete or self.error is not None:
                        continue
                    if deadline is not None and time.monotonic() >= deadline:
                        raise TimeoutError("request deadline passed while waiting for the request body")
                    self.error = BadRequestBody(408, f"no request body bytes for {settings.body_timeout:g} s")
                    raise self.error
            was_full = self.full
            first = self._chunks[0]
            if len(first) > n:
                data, self._chunks[0] = first[:n], first[n:]
            else:
                parts, got = [self._chunks.popleft()], len(first)
                while self._chunks and got + len(self._chunks[0]) <= n:
                    parts.append(self._chunks.popleft())
                    got += len(parts[-1])
                data = parts[0] if len(parts) == 1 else b"".join(parts)
            self._size -= len(data)
            resume = was_full and not self.full
        if resume:
            self.conn.server.call_soon(self.conn.update_interest)
        return data

    def abandon(self) -> None:
        """The exchange is over: drop what is buffered and what still arrives."""
        with self._cond:
            self.discard = True
            self._chunks.clear()
            self._size = 0


# ---------------------------------------------------------------- one request and its response


class Exchange:
    """One request (what the parser saw) and the response written for it, from a guest thread.

    The response is framed here: Content-Length when the guest gave one (never more bytes than
    it declared: a longer body would be read as the next response), chunked otherwise (close-
    delimited for HTTP/1.0), no body for HEAD, 204 and 304."""

    def __init__(self, conn: Connection, method: str, target: str, version: str,
                 headers: list[tuple[str, bytes]], body: BodyPipe, keep_alive: bool,
                 error: ProtocolError | None = None) -> None:
        self.conn, self.method, self.target, self.version = conn, method, target, version
        self.headers, self.body, self.keep_alive, self.error = headers, body, keep_alive, error
        self.client = conn.client
        self.status = 0
        self.started = False
        self.finished = False
        self.close = not keep_alive or error is not None
        self.client_gone = False
        self._no_body = False
        self._chunked = False
        self._declared: int | None = None
        self._sent = 0
        self._suppress = False  # the guest's output is dropped (the request failed; we answered)
        self._buf = bytearray()  # head and framed body, not yet sent
        self._body = bytearray()  # body bytes not yet framed (one chunk per flush)
        self.flushed = False  # some of the response has been handed to the socket
        body.exchange = self

    @property
    def request_line(self) -> str:
        return f"{self.method} {self.target} HTTP/{self.version}"

    def header(self, name: str) -> bytes | None:
        return next((v for k, v in self.headers if k == name), None)

    # ResponseSink
    def start(self, status: int, headers: list[tuple[str, bytes]]) -> None:
        if self.started:
            return
        err = self.body.error
        if isinstance(err, BadRequestBody):  # the client's fault, whatever the guest answers
            self._instead(err.status, close=True)
        elif status < 200:  # an interim status cannot end an exchange: the client would wait on
            log.warning("%s: the guest answered with status %d; sending 500", self.request_line, status)
            self._instead(500)
        else:
            self._start(status, headers)

    def _instead(self, status: int, close: bool = False) -> None:
        """Answer `status` in place of the guest's response, whose bytes are then dropped."""
        body = f"{http.HTTPStatus(status).phrase}\n".encode()
        self._suppress = True
        self._start(status, [("content-type", b"text/plain"), ("content-length", str(len(body)).encode())],
                    close=close)
        self._buf += body

    def _start(self, status: int, headers: list[tuple[str, bytes]], close: bool = False) -> None:
        self.started = True
        self.status = status
        self.close = self.close or close or self.conn.server.stopping
        self._no_body = self.method == "HEAD" or status in (204, 304) or status < 200
        parts = [status_line(status)]
        has_date = False
        for name, value in headers:
            k = name.lower()
            if k in _HOP_BY_HOP:
                continue
            raw = name.encode("latin-1", "replace")
            if not _TOKEN.fullmatch(raw) or _BAD_VALUE.search(value):
                log.warning("dropping invalid response header %r", name)
                continue
            if k == "content-length":
                if self._declared is not None or not value.strip().isdigit() or status == 204 or status < 200:
                    continue
                self._declared = int(value.strip())
            elif k == "date":
                has_date = True
            parts.append(b"%s: %s\r\n" % (raw, value))
        if not self._no_body and self._declared is None:
            if self.version == "1.1":
                self._chunked = True
                parts.append(b"transfer-encoding: chunked\r\n")
            else:
                self.close = True  # an HTTP/1.0 body without a length ends with the connection
        if self.close:
            parts.append(b"connection: close\r\n")
        elif self.version == "1.0":
            parts.append(b"connection: keep-alive\r\n")
        if not has_date:
            parts.append(b"date: %s\r\n" % http_date())
        parts.append(b"\r\n")
        self._buf += b"".join(parts)

    def write(self, data: bytes) -> None:
        if self._suppress or self._no_body or not data:
            return
        if self._declared is not None:
            room = self._declared - self._sent
            if len(data) > room:
                log.warning("%s: the guest wrote more than its content-length %d; the rest is dropped",
                            self.request_line, self._declared)
                self.close = True
                data = data[:room]
                if not data:
                    return
        self._sent += len(data)
        self._body += data
        if len(self._body) >= _FLUSH_AT:
            self.flush()

    def _frame(self) -> None:
        """Move the body bytes written since the last flush into the output, as one chunk."""
        if self._body:
            if self._chunked:
                self._buf += b"%x\r\n" % len(self._body)
                self._buf += self._body
                self._buf += b"\r\n"
            else:
                self._buf += self._body
            self._body.clear()

    def flush(self) -> None:
        self._frame()
        if self._buf:
            data, self._buf = self._buf, bytearray()
            self.flushed = True
            try:
                self.conn.send(data)
            except ClientGone:
                self.client_gone = True
                raise

    def finish(self) -> None:
        if self.finished:
            return
        if self.started and not self._suppress and isinstance(self.body.error, (BadRequestBody, ClientGone)):
            self.abort()  # whatever the guest made of a broken request, the client must not take it as whole
            return
        if not self.started:
            self._start(500, [("content-type", b"text/plain")])
            self.write(b"Internal Server Error\n")
        self._frame()
        if self._chunked and not self._suppress:
            self._buf += b"0\r\n\r\n"
        if (self._declared is not None and self._sent < self._declared and not self._no_body
                and not self._suppress):
            log.warning("%s: the guest wrote %d of the %d bytes of its content-length", self.request_line,
                        self._sent, self._declared)
            self.close = True
        try:
            self.flush()
        finally:
            self.finished = True
            self.conn.exchange_done(self)

    def abort(self) -> None:
        """End the exchange without completing the response: the client sees it cut short."""
        if self.finished:
            return
        self.close = True
        with contextlib.suppress(ClientGone):
            self.flush()
        self.finished = True
        self.conn.exchange_done(self)

    def respond(self, status: int, body: bytes, headers: list[tuple[str, bytes]] | None = None,
                close: bool = False) -> None:
        """A complete small response (errors, static responses, the runtime's own routes)."""
        given = [("content-type", b"text/plain")] if headers is None else headers
        self._start(status, [*given, ("content-length", str(len(body)).encode())], close=close)
        self.write(body)
        self.finish()


# ---------------------------------------------------------------- connections


class _Head:
    """What the parser has seen of the request head being read."""

    __slots__ = ("headers", "size", "target")

    def __init__(self) -> None:
        self.target = bytearray()
        self.headers: list[tuple[bytes, bytes]] = []
        self.size = 0

    def exchange(self, conn: Connection, parser: httptools.HttpRequestParser) -> Exchange:
        """Check what llhttp leaves to the server (RFC 9112) and build the exchange."""
        method = parser.get_method().decode("ascii")
        version = parser.get_http_version()
        target = self.target.decode("ascii", "replace")
        if version not in ("1.1", "1.0"):
            raise ProtocolError(505, f"HTTP version {version} is not supported")
        headers = [(k.decode("latin-1").lower(), v) for k, v in self.headers]
        hosts = [v for k, v in headers if k == "host"]
        if len(hosts) > 1:
            raise ProtocolError(400, "more than one Host header")
        if not hosts and version == "1.1":
            raise ProtocolError(400, "an HTTP/1.1 request needs a Host header")
        if hosts and not _HOST.fullmatch(hosts[0]):
            raise ProtocolError(400, "invalid Host header")
        if method == "CONNECT":
            raise ProtocolError(501, "CONNECT is not supported")
        if not target.startswith("/") and not (target == "*" and method == "OPTIONS") \
                and not target.lower().startswith(("http://", "https://")):
            raise ProtocolError(400, "invalid request target")
        te = [t.strip().lower() for k, v in headers if k == "transfer-encoding" for t in v.split(b",")]
        chunked = bool(te)
        if te and version == "1.0":
            raise ProtocolError(400, "Transfer-Encoding in an HTTP/1.0 request")
        if te and te[-1] != b"chunked":  # no way to tell where the body ends (RFC 9112 6.3)
            raise ProtocolError(400, "chunked is not the final transfer coding")
        if te and te != [b"chunked"]:
            raise ProtocolError(501, "transfer codings other than chunked are not supported")
        length_raw = next((v for k, v in headers if k == "content-length"), None)
        length = int(length_raw) if length_raw is not None and not chunked else None
        expect = next((v for k, v in headers if k == "expect"), None)
        if expect is not None and (expect.strip().lower() != b"100-continue" or version == "1.0"):
            raise ProtocolError(417, "only Expect: 100-continue is understood")
        body = BodyPipe(conn, length, chunked, expect is not None)
        return Exchange(conn, method, target, version, headers, body, parser.should_keep_alive())


class Connection:
    """One client connection. Parser callbacks run on the loop thread; `send` and
    `exchange_done` on whichever thread serves the exchange."""

    def __init__(self, server: Server, sock: socket.socket, peer: tuple[str, int]) -> None:
        self.server, self.sock = server, sock
        self.fd = sock.fileno()
        self.client = f"{peer[0]}:{peer[1]}"
        self.host = peer[0]
        self.lock = threading.Lock()
        self._drained = threading.Condition(self.lock)
        self._outbuf = bytearray()
        self.dead = False  # the socket failed or is closed: nothing more is sent
        self.active: Exchange | None = None
        self.queue: deque[Exchange] = deque()
        self.parser = httptools.HttpRequestParser(self)
        self._head: _Head | None = None
        self._head_fed = 0
        self._reading: Exchange | None = None  # the exchange whose body the parser is reading
        self.head_started: float | None = None
        self.idle_since = time.monotonic()
        self.parse_stopped = False  # a parse error or an upgrade: nothing more is read as requests
        self.eof = False
        self.closing = False  # close once the output is sent (loop thread)
        self.linger_until: float | None = None
        self.interest = 0

    # ------------------------------------------------ parser callbacks (loop thread)

    def on_message_begin(self) -> None:
        self._head = _Head()
        if self.head_started is None:
            self.head_started = time.monotonic()

    def on_url(self, url: bytes) -> None:
        head = self._head
        assert head is not None
        head.target += url
        if len(head.target) > self.server.settings.max_target:
            raise ProtocolError(414, "request target too long")

    def on_header(self, name: bytes, value: bytes) -> None:
        head = self._head
        if head is None or self._reading is not None:  # trailers: bounded, then dropped
            return
        head.size += len(name) + len(value) + 4
        head.headers.append((name, value))
        s = self.server.settings
        if len(head.headers) > s.max_headers or head.size + len(head.target) > s.max_header_bytes:
            raise ProtocolError(431, "request header fields too large")

    def on_headers_complete(self) -> None:
        head = self._head
        assert head is not None
        ex = head.exchange(self, self.parser)
        self.head_started = None
        self._reading = ex
        self._submit(ex)

    def on_body(self, body: bytes) -> None:
        if self._reading is not None:
            self._reading.body.feed(body)

    def on_message_complete(self) -> None:
        if self._reading is not None:
            self._reading.body.end()
        self._reading = None
        self._head = None

    # ------------------------------------------------ loop thread

    def on_readable(self) -> None:
        try:
            data = self.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._on_eof()
            return
        if self.linger_until is not None or self.parse_stopped:
            return  # closing, or past a request we could not parse: dropped
        in_head = self._head is not None and self._reading is None
        try:
            self.parser.feed_data(data)
            if self._head is not None and self._reading is None:
                # httptools holds a header line until it ends: bound the bytes of an unfinished head
                self._head_fed = self._head_fed + len(data) if in_head else len(data)
                s = self.server.settings
                if self._head_fed > 2 * (s.max_header_bytes + s.max_target) + 65536:
                    raise ProtocolError(431, "request header fields too large")
        except httptools.HttpParserUpgrade:
            self.parse_stopped = True  # served as a plain request; the connection ends after it
            self._close_after_current()
        except (httptools.HttpParserError, ProtocolError) as exc:
            self._parse_failed(exc)
        self.update_interest()

    def _parse_failed(self, exc: Exception) -> None:
        self.parse_stopped = True
        cause = exc.__context__ if isinstance(exc, httptools.HttpParserCallbackError) else exc
        if isinstance(cause, ProtocolError):
            status, message = cause.status, str(cause)
        else:
            status, message = 400, str(exc) or type(exc).__name__
        if self._reading is not None:  # broken body framing: the guest's read fails, the client gets a 400
            self._reading.body.fail(BadRequestBody(400, f"malformed request body: {message}"))
            self._reading = None
            self._close_after_current()
            return
        log.info("bad request from %s: %s (%d)", self.client, message, status)
        body = BodyPipe(self, None, False, False)
        head = self._head
        target = head.target.decode("ascii", "replace") if head else ""
        method = self.parser.get_method().decode("ascii", "replace") if head else "-"
        err = ProtocolError(status, message)
        self._submit(Exchange(self, method, target or "-", "1.1", [], body, False, err))

    def _on_eof(self) -> None:
        self.eof = True
        if self.linger_until is not None:
            self.close_now()
            return
        if self._reading is not None:
            self._reading.body.fail(ClientGone("the client closed the connection before the body ended"))
            self._reading = None
        with self.lock:
            idle = self.active is None and not self.queue
        if idle:
            self.close_now()
        else:
            self.update_interest()

    def _close_after_current(self) -> None:
        with self.lock:
            idle = self.active is None and not self.queue
            if not idle:
                for ex in (self.active, *self.queue):
                    if ex is not None:
                        ex.close = True
        if idle:
            self.begin_close()

    def on_writable(self) -> None:
        with self.lock:
            self._send_buffered()
            closing = self.closing and not self._outbuf
        if closing:
            self._linger()
        self.update_interest()

    def update_interest(self) -> None:
        """(Re)register for what the connection waits for now."""
        if self.sock.fileno() < 0:
            return
        with self.lock:
            want_write = bool(self._outbuf) and not self.dead
            reading = self._reading
            backlog = len(self.queue) >= self.server.settings.max_pipelined
        want_read = not self.eof and not (reading is not None and reading.body.full) and not backlog
        events = (selectors.EVENT_READ if want_read else 0) | (selectors.EVENT_WRITE if want_write else 0)
        self.server.set_interest(self, events)

    def check_timers(self, now: float) -> None:
        if self.linger_until is not None:
            if now >= self.linger_until:
                self.close_now()
            return
        with self.lock:
            if self.active is not None or self.queue or self._outbuf:
                return
        s = self.server.settings
        if self.server.stopping:
            self.close_now()
        elif self.head_started is not None:
            if now - self.head_started > s.header_timeout:
                log.info("request head from %s not complete after %g s: 408", self.client, s.header_timeout)
                self.parse_stopped = True
                self.head_started = None
                body = BodyPipe(self, None, False, False)
                self._submit(Exchange(self, "-", "-", "1.1", [], body, False,
                                      ProtocolError(408, "request head not received in time")))
        elif now - self.idle_since > s.idle_timeout:
            self.close_now()

    def begin_close(self) -> None:
        """Close once the output is sent: shut our side, then read for a moment before closing,
        so the client reads our response instead of a reset."""
        if self.sock.fileno() < 0:
            return
        with self.lock:
            self.closing = True
            pending = bool(self._outbuf) and not self.dead
        if not pending:
            self._linger()
        self.update_interest()

    def _linger(self) -> None:
        if self.linger_until is not None or self.sock.fileno() < 0:
            return
        if self.dead:
            self.close_now()
            return
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            self.close_now()
            return
        self.linger_until = time.monotonic() + _LINGER
        self.parse_stopped = True
        self.server.set_interest(self, selectors.EVENT_READ)

    def close_now(self) -> None:
        with self.lock:
            self.dead = True
            self._outbuf.clear()
            self._drained.notify_all()
        if self._reading is not None:
            self._reading.body.fail(ClientGone("the connection was closed"))
            self._reading = None
        self.server.forget(self)
        with contextlib.suppress(OSError):
            self.sock.close()

    # ------------------------------------------------ any thread

    def _submit(self, ex: Exchange) -> None:
        with self.lock:
            if self.active is None:
                self.active = ex
            else:
                self.queue.append(ex)
                return
        self.server.dispatch(ex)

    def send(self, data: bytes | bytearray, wait: bool = True) -> None:
        """Send `data`: to the socket at once, and what it does not take through the loop. A guest
        thread waits while too much is unsent; the loop thread never does. Raises ClientGone once
        the client is gone."""
        wait = wait and threading.current_thread() is not self.server.loop_thread
        with self.lock:
            if self.dead:
                raise ClientGone("the client went away")
            queued = bool(self._outbuf)
            if not queued:
                try:
                    n = self.sock.send(data)
                except (BlockingIOError, InterruptedError):
                    n = 0
                except OSError as exc:
                    self._gone()
                    raise ClientGone(f"the client went away ({errno.errorcode.get(exc.errno or 0, exc)})") \
                        from exc
                if n == len(data):
                    return
                self._outbuf += memoryview(data)[n:]
            else:
                self._outbuf += data
        if not queued:
            self.server.call_soon(self.update_interest)
        if not wait:
            return
        with self.lock:
            deadline = time.monotonic() + self.server.settings.write_timeout
            while len(self._outbuf) > _OUT_HIGH and not self.dead:
                left = deadline - time.monotonic()
                if left <= 0:
                    self._gone()
                    raise ClientGone("the client did not read the response in time")
                self._drained.wait(left)
            if self.dead:
                raise ClientGone("the client went away")

    def _send_buffered(self) -> None:  # with the lock
        if not self._outbuf or self.dead:
            return
        try:
            n = self.sock.send(self._outbuf)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._gone()
            return
        del self._outbuf[:n]
        if len(self._outbuf) < _OUT_LOW:
            self._drained.notify_all()

    def _gone(self) -> None:  # with the lock
        self.dead = True
        self._outbuf.clear()
        self._drained.notify_all()
        self.server.call_soon(self.close_now)

    def exchange_done(self, ex: Exchange) -> None:
        ex.body.abandon()
        close = ex.close or not (ex.body.complete and ex.body.error is None)
        with self.lock:
            self.active = None
            nxt = None
            if close or self.dead:
                self.queue.clear()
            elif self.queue:
                nxt = self.active = self.queue.popleft()
            self.idle_since = time.monotonic()
            if self.head_started is not None:
                self.head_started = self.idle_since  # a pipelined head waited for us, not for the client
        if close or self.dead:
            self.server.call_soon(self.begin_close)
            return
        if nxt is not None:
            self.server.dispatch(nxt)
        self.server.call_soon_if_paused(self)


# ---------------------------------------------------------------- the loop


class Server:
    """The event loop: accepts on `sock`, parses, and hands each exchange to `dispatch`, which
    a subclass implements (run it on a guest thread, or answer it at once)."""

    def __init__(self, sock: socket.socket, settings: Settings | None = None) -> None:
        self.settings = settings or Settings()
        self.socket = sock
        sock.setblocking(False)
        self.server_address = sock.getsockname()
        self.selector = selectors.DefaultSelector()
        self.selector.register(sock, selectors.EVENT_READ, None)
        self._accepting = True
        self.connections: dict[int, Connection] = {}
        self._commands: deque[Callable[[], None]] = deque()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._wake_pending = False
        self._wake_lock = threading.Lock()
        self.selector.register(self._wake_r, selectors.EVENT_READ, self._wake_r)
        self.stopping = False
        self._accept_paused = False
        self.loop_thread: threading.Thread | None = None
        self._done = threading.Event()
        self._running = False

    @property
    def port(self) -> int:
        port: int = self.server_address[1]
        return port

    def dispatch(self, ex: Exchange) -> None:
        raise NotImplementedError

    # ------------------------------------------------ cross-thread

    def call_soon(self, fn: Callable[[], None]) -> None:
        """Run `fn` on the loop thread (after the current event when called from it)."""
        self._commands.append(fn)
        if threading.current_thread() is self.loop_thread:
            return
        with self._wake_lock:
            if self._wake_pending:
                return
            self._wake_pending = True
        with contextlib.suppress(OSError):
            self._wake_w.send(b"\0")

    def call_soon_if_paused(self, conn: Connection) -> None:
        if not conn.interest & selectors.EVENT_READ and not conn.eof:
            self.call_soon(conn.update_interest)

    def shutdown(self, wait: float = 60.0) -> None:
        """Stop accepting, close idle connections, let exchanges in flight finish; `serve_forever`
        returns when none is left. From another thread, waits (up to `wait` seconds) for that;
        from the loop thread (a signal handler) it only asks."""
        self.stopping = True
        with contextlib.suppress(OSError):
            self._wake_w.send(b"\0")
        if self._running and threading.current_thread() is not self.loop_thread:
            self._done.wait(wait)

    # ------------------------------------------------ loop thread

    def set_interest(self, conn: Connection, events: int) -> None:
        if conn.interest == events or conn.fd not in self.connections:
            return
        if conn.interest == 0:
            self.selector.register(conn.sock, events, conn)
        elif events == 0:
            self.selector.unregister(conn.sock)
        else:
            self.selector.modify(conn.sock, events, conn)
        conn.interest = events

    def forget(self, conn: Connection) -> None:
        if self.connections.get(conn.fd) is conn:
            if conn.interest:
                with contextlib.suppress(KeyError, ValueError, OSError):
                    self.selector.unregister(conn.sock)
                conn.interest = 0
            del self.connections[conn.fd]
            if self._accept_paused and not self.stopping:
                self._accept_paused = False
                self._accepting = True
                self.selector.register(self.socket, selectors.EVENT_READ, None)

    def serve_forever(self, poll_interval: float = 0.2, on_tick: Callable[[], None] | None = None) -> None:
        self.loop_thread = threading.current_thread()
        self._running = True
        self._done.clear()
        sweep_every = min(0.25, self.settings.header_timeout / 4, self.settings.idle_timeout / 4)
        next_sweep = time.monotonic() + sweep_every
        stop_seen = False
        try:
            while True:
                if self.stopping and not stop_seen:
                    stop_seen = True
                    self._stop_accepting()
                    for c in list(self.connections.values()):
                        c.check_timers(time.monotonic())
                if stop_seen and not self.connections:
                    break
                timeout = max(0.0, min(poll_interval, next_sweep - time.monotonic()))
                for key, events in self.selector.select(timeout):
                    if key.data is None:
                        self._accept()
                    elif key.data is self._wake_r:
                        self._run_commands()
                    else:
                        conn: Connection = key.data
                        if events & selectors.EVENT_WRITE:
                            conn.on_writable()
                        if events & selectors.EVENT_READ and conn.sock.fileno() >= 0:
                            conn.on_readable()
                self._run_commands()
                now = time.monotonic()
                if now >= next_sweep:
                    next_sweep = now + sweep_every
                    for conn in list(self.connections.values()):
                        conn.check_timers(now)
                if on_tick is not None:
                    on_tick()
        finally:
            self._running = False
            self.loop_thread = None
            self._done.set()

    def _run_commands(self) -> None:
        with self._wake_lock:
            self._wake_pending = False
        with contextlib.suppress(OSError):
            while self._wake_r.recv(4096):
                pass
        while self._commands:
            fn = self._commands.popleft()
            try:
                fn()
            except Exception:
                log.exception("front-end command failed")

    def _accept(self) -> None:
        for _ in range(64):
            if len(self.connections) >= self.settings.max_connections:
                self._accept_paused = True  # the rest wait in the backlog until one closes
                self._stop_accepting()
                return
            try:
                sock, peer = self.socket.accept()
            except (BlockingIOError, InterruptedError):
                return  # another process took it
            except OSError as exc:
                if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    log.warning("cannot accept a connection: %s", exc)
                return
            sock.setblocking(False)
            if sock.family in (socket.AF_INET, socket.AF_INET6):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = Connection(self, sock, peer if isinstance(peer, tuple) else ("unix", 0))
            self.connections[conn.fd] = conn
            conn.update_interest()

    def _stop_accepting(self) -> None:
        if self._accepting:
            self._accepting = False
            with contextlib.suppress(KeyError, ValueError):
                self.selector.unregister(self.socket)

    def server_close(self) -> None:
        """Close everything (after `serve_forever` returned, or instead of it)."""
        self.stopping = True
        for conn in list(self.connections.values()):
            conn.close_now()
        self._stop_accepting()
        with contextlib.suppress(OSError):
            self.socket.close()
        self.selector.close()
        self._wake_r.close()
        self._wake_w.close()


def raise_fd_limit() -> None:
    """Many connections need many descriptors: take the soft limit up to the hard one."""
    try:
        import resource
    except ImportError:
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = max(soft, 65536)
    if soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


__all__ = ["BodyPipe", "Connection", "Exchange", "ProtocolError", "Server", "Settings", "raise_fd_limit"]
