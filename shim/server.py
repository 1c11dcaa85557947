"""The HTTP trigger: Spin's request handling on the HTTP/1.1 front end (`shim.http1`).

Each request is routed (Spin rules), given Spin's headers, and run in a fresh instance on one of
a bounded set of guest threads (`GuestPool`); the response streams back. The runtime answers
Spin's reserved paths itself, before routing, as Spin's trigger does (`spin/crates/trigger-http/
src/server.rs`, `HttpServer::handle`): `/.well-known/spin/health` is 200 `OK`,
`/.well-known/spin/info` the app's name and version as JSON, any other `/.well-known/spin/*` 404.

A guest failure before the response started is a 500; after, the connection is closed (the
client sees the response cut short). A client that went away is logged as such, not as a guest
failure. `serve_forever` returns after a graceful stop: no new connections, in-flight requests
finish (the SIGTERM path).
"""

from __future__ import annotations

import json
import logging
import queue
import socket
import threading
import time
from collections.abc import Callable
from urllib.parse import urlsplit

from shim import http1
from shim.app import LoadedApp
from shim.errors import BadRequestBody, ClientError, ClientGone, GuestError
from shim.executors import InboundHttpExecutor, SimpleResponse, WagiExecutor, WagiRequest, WasiHttpExecutor
from shim.manifest import HttpTrigger
from shim.routing import Match, spin_headers
from shim.wasi_http import InboundRequest

log = logging.getLogger("shim.http")
access_log = logging.getLogger("shim.access")

WELL_KNOWN_PREFIX = "/.well-known/spin/"


class _BodyTooLarge(Exception):
    """A request body that must be buffered (WAGI, inbound-http) is over the server's limit."""


def parse_listen(addr: str) -> tuple[str, int]:
    host, sep, port = addr.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"listen address {addr!r} must be HOST:PORT")
    return host.strip("[]") or "0.0.0.0", int(port)


class GuestPool:
    """At most `size` requests run in guests at once per process; the rest wait their turn.

    Threads start on demand up to `size`. The size is also the memory bound: with a per-instance
    cap, `size` instances cannot hold more than `size` times cap of linear memory (see
    `app.parse_limits`)."""

    def __init__(self, size: int) -> None:
        self.size = max(1, size)
        self._jobs: queue.SimpleQueue[tuple[Callable[[http1.Exchange], None], http1.Exchange] | None] = \
            queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._idle = 0
        self.active = 0
        self.peak = 0  # the most requests that ran at once (for tests and operators)

    def submit(self, fn: Callable[[http1.Exchange], None], ex: http1.Exchange) -> None:
        with self._lock:
            if self._idle:
                self._idle -= 1
            elif len(self._threads) < self.size:
                t = threading.Thread(target=self._run, name=f"shim-guest-{len(self._threads)}", daemon=True)
                self._threads.append(t)
                t.start()
        self._jobs.put((fn, ex))

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            fn, ex = job
            with self._lock:
                self.active += 1
                self.peak = max(self.peak, self.active)
            try:
                fn(ex)
            except BaseException:  # a thread never dies of one request
                log.exception("request %s failed in the server", ex.request_line)
            finally:
                with self._lock:
                    self.active -= 1
                    self._idle += 1

    def close(self, timeout: float = 5.0) -> None:
        with self._lock:
            threads = list(self._threads)
        for _ in threads:
            self._jobs.put(None)
        deadline = time.monotonic() + timeout
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))


class SpinServer(http1.Server):
    max_buffered_body = 64 << 20  # WAGI and inbound-http get the whole body at once; more is a 413

    def __init__(self, app: LoadedApp, addr: tuple[str, int] | None = None, *,
                 sock: socket.socket | None = None, settings: http1.Settings | None = None) -> None:
        if sock is None:
            assert addr is not None
            sock = socket.create_server(addr, family=socket.AF_INET6 if ":" in addr[0] else socket.AF_INET)
        super().__init__(sock, settings or app.front_end)
        self.app = app
        self.pool = GuestPool(app.limits.concurrency)
        self._info = json.dumps({"name": app.manifest.name, **(
            {"version": app.manifest.version} if app.manifest.version else {})}, indent=2).encode()

    def dispatch(self, ex: http1.Exchange) -> None:
        if ex.error is not None:  # refused by the front end: answered here and now
            ex.respond(ex.error.status, f"{ex.error}\n".encode(), close=True)
            self._access(ex)
            return
        self.pool.submit(self._serve, ex)

    def server_close(self) -> None:
        super().server_close()
        self.pool.close()

    # ------------------------------------------------ one request, on a guest thread

    def _serve(self, ex: http1.Exchange) -> None:
        try:
            self._route(ex)
        except ClientGone as exc:
            log.info("%s %s: client %s disconnected (%s)", ex.method, ex.target, ex.client, exc)
        except BadRequestBody as exc:
            self._client_failed(ex, exc)
        finally:
            if not ex.finished:
                ex.abort()
            self._access(ex)

    def _access(self, ex: http1.Exchange) -> None:
        # access lines: DEBUG for `shim up`; the container mode turns the logger up to show them
        if access_log.isEnabledFor(logging.DEBUG):
            access_log.debug('%s "%s" %s %s', ex.conn.host, ex.request_line, ex.status or "-", "-")

    def _client_failed(self, ex: http1.Exchange, exc: ClientError) -> None:
        if isinstance(exc, BadRequestBody):
            log.info("%s %s from %s: %s (%d)", ex.method, ex.target, ex.client, exc, exc.status)
            if not ex.started:
                ex.respond(exc.status, f"{exc}\n".encode(), close=True)
        else:
            log.info("%s %s: client %s disconnected before the response was complete (%s)", ex.method,
                     ex.target, ex.client, exc)
        if not ex.finished:
            ex.abort()

    def _route(self, ex: http1.Exchange) -> None:
        app = self.app
        split = urlsplit(ex.target)
        path = split.path or "/"
        query = f"?{split.query}" if split.query else ""
        pq = ex.target if ex.target.startswith("/") else path + query
        if path.startswith(WELL_KNOWN_PREFIX):
            self._well_known(ex, path[len(WELL_KNOWN_PREFIX):])
            return
        match = app.router.match(path)
        if match is None:
            ex.respond(404, b"Not Found\n")
            return
        trig = match.trigger
        if trig.static_response is not None:
            sr = trig.static_response
            self._simple(ex, SimpleResponse(sr.status, [(k, v.encode()) for k, v in sr.headers], sr.body))
            return
        executor = app.executor_for(trig)
        raw_host = ex.header("host")
        host = raw_host.decode("latin-1") if raw_host else "localhost"  # what Spin assumes without one
        extra = spin_headers(match, scheme="http", host=host, path_with_query=pq, client_addr=ex.client)
        deadline = time.monotonic() + app.limits.timeout
        try:
            if isinstance(executor, WasiHttpExecutor):
                self._wasi_http(ex, executor, trig, pq, host, extra, deadline)
            elif isinstance(executor, WagiExecutor):
                self._wagi(ex, executor, match, split.query, host, extra, deadline)
            else:
                self._inbound(ex, executor, pq, extra, deadline)
        except _BodyTooLarge:
            ex.close = True
            ex.respond(413, b"Payload Too Large\n", close=True)
        except GuestError as exc:
            client = ex.body.error if isinstance(ex.body.error, ClientError) else None
            if ex.client_gone:
                client = ClientGone("it went away")
            if client is not None:
                self._client_failed(ex, client)
                return
            log.error("%s %s: %s", ex.method, path, exc)
            if ex.started:
                ex.abort()
            else:
                ex.respond(500, b"Internal Server Error\n")
        except ClientError as exc:
            self._client_failed(ex, exc)

    def _well_known(self, ex: http1.Exchange, name: str) -> None:
        if name == "health":
            ex.respond(200, b"OK", headers=[])
        elif name == "info":
            ex.respond(200, self._info, headers=[("content-type", b"application/json")])
        else:
            ex.respond(404, b"Not Found\n")

    def _wasi_http(self, ex: http1.Exchange, executor: WasiHttpExecutor, trig: HttpTrigger, pq: str,
                   host: str, extra: list[tuple[str, str]], deadline: float) -> None:
        headers = [*ex.headers, *((k, v.encode()) for k, v in extra)]
        body = ex.body

        def read(n: int) -> bytes:
            return body.read(n, deadline)

        req = InboundRequest(ex.method, pq, "http", host, headers, read, deadline)
        state = executor.serve(req, ex, self.app.limits)
        if state.client_gone or ex.client_gone:
            self._client_failed(ex, ClientGone("it went away"))
        elif body.error is not None:
            self._client_failed(ex, body.error)

    def _read_all(self, ex: http1.Exchange, deadline: float) -> bytes:
        chunks = []
        total = 0
        while True:
            data = ex.body.read(65536, deadline)
            if not data:
                break
            total += len(data)
            if total > self.max_buffered_body:
                raise _BodyTooLarge
            chunks.append(data)
        return b"".join(chunks)

    def _wagi(self, ex: http1.Exchange, executor: WagiExecutor, match: Match, query: str, host: str,
              extra: list[tuple[str, str]], deadline: float) -> None:
        data = self._read_all(ex, deadline)
        route = match.trigger.route
        hname, _, hport = host.partition(":")
        headers = [(k, v.decode("latin-1")) for k, v in ex.headers]
        env = {
            "REQUEST_METHOD": ex.method, "PATH_INFO": match.path_info, "PATH_TRANSLATED": match.path_info,
            "QUERY_STRING": query, "SCRIPT_NAME": route.based_prefix,
            "SERVER_PROTOCOL": f"HTTP/{ex.version}", "GATEWAY_INTERFACE": "CGI/1.1",
            "SERVER_SOFTWARE": "spindle-shim", "SERVER_NAME": hname, "SERVER_PORT": hport or "80",
            "REMOTE_ADDR": ex.conn.host, "REMOTE_HOST": ex.conn.host,
            "CONTENT_LENGTH": str(len(data)), "CONTENT_TYPE": next((v for k, v in headers
                                                                    if k == "content-type"), ""),
            "AUTH_TYPE": "", "REMOTE_USER": "",
        }
        # Spin's headers become X_* variables for WAGI (spin-full-url -> X_FULL_URL, ...)
        for k, v in extra:
            if k != "spin-path-info":
                env["X_" + k.removeprefix("spin-").upper().replace("-", "_")] = v
        env["X_RAW_PATH_INFO"] = match.path_info
        for k, v in headers:
            env["HTTP_" + k.upper().replace("-", "_")] = v
        path = ex.target.split("?", 1)[0]
        resp = executor.serve(WagiRequest(ex.method, path, query, headers, data, env), self.app.limits)
        self._simple(ex, resp)

    def _inbound(self, ex: http1.Exchange, executor: InboundHttpExecutor, pq: str,
                 extra: list[tuple[str, str]], deadline: float) -> None:
        data = self._read_all(ex, deadline)
        headers = [(k, v.decode("latin-1")) for k, v in ex.headers] + extra
        resp = executor.serve(ex.method, pq, headers, [], data, self.app.limits)
        self._simple(ex, resp)

    def _simple(self, ex: http1.Exchange, resp: SimpleResponse) -> None:
        headers = [(k, v) for k, v in resp.headers
                   if k.lower() not in ("content-length", "transfer-encoding", "connection")]
        ex.respond(resp.status, resp.body, headers=headers)
