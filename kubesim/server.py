"""The HTTPS (HTTP/1.1) front of kubesim: bearer-token auth, bodies, dispatch to the verbs
(`routes` says what a path names), watch streams, /metrics, and the embeddable `start()`.

Threaded (one thread per connection, keep-alive, TLS handshake in the connection's thread), bound
to 127.0.0.1 unless told otherwise. Every answer is JSON (but /metrics); every error is a `Status`;
an unexpected exception is logged and answered with a 500 `InternalError`, so one bad request never
takes the server down.
"""

from __future__ import annotations

import hmac
import logging
import secrets
import shutil
import socket
import ssl
import tempfile
import threading
import time
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from kubesim import metrics, openapi, routes, tables, tls
from kubesim.api import Cluster
from kubesim.calls import Call, Reply
from kubesim.controllers import Controllers
from kubesim.errors import (
    ApiError,
    bad_request,
    internal,
    method_not_allowed,
    too_large,
    unauthorized,
)
from kubesim.kubeconfig import kubeconfig_yaml
from kubesim.storage import Store, dumps

log = logging.getLogger("kubesim")

MAX_BODY = 3 * 1024 * 1024  # the real API server's limit for a request body
DRAIN_LIMIT = 32 * 1024 * 1024
DEFAULT_WATCH_TIMEOUT = 1800.0


class KubesimHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], cluster: Cluster, token: str) -> None:
        super().__init__(address, Handler)
        self.cluster = cluster
        self.token = token
        self.stopping = threading.Event()
        self.openapi = openapi.Documents(cluster.registry)
        self.metrics = metrics.Metrics(cluster.store)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hangs up mid-handshake or speaks plain HTTP to the TLS port is not news.
        log.debug("kubesim: connection from %s failed", client_address, exc_info=True)

    @property
    def address_text(self) -> str:
        host, port = self.server_address[:2]
        return f"{host!s}:{port}"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: KubesimHTTPServer
    server_version = "kubesim"
    sys_version = ""
    # An idle or silent connection is dropped after this long (client-go reconnects as needed).
    timeout = 600

    def log_message(self, fmt: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), fmt % args)

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def do_HEAD(self) -> None:
        self._handle("HEAD")

    def do_OPTIONS(self) -> None:
        self._send(Reply(405, method_not_allowed().status()))

    # -- plumbing ----------------------------------------------------------------------------

    def _handle(self, method: str) -> None:
        started = time.perf_counter()
        self._verb, self._resource_name, self._code = method, "", 0
        try:
            self._serve(method)
        finally:
            if self._code:
                self.server.metrics.observe(
                    self._verb, self._resource_name, self._code, time.perf_counter() - started
                )

    def _serve(self, method: str) -> None:
        try:
            if not self._authorized():
                self._drain_or_close()
                raise unauthorized()
            body = self._read_body()
            reply = self._route(method, body)
            if reply is not None:
                self._send(reply)
        except ApiError as exc:
            self._send(Reply(exc.code, exc.status()), retry_after=exc.retry_after)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except RecursionError:  # a body nested deeper than any object could be
            self._send(Reply(400, bad_request("the object is nested too deeply").status()))
        except Exception as exc:  # a bug, not the client's fault: log it and keep serving
            log.exception("kubesim: %s %s failed", method, self.path)
            try:
                self._send(Reply(500, internal(f"{type(exc).__name__}: {exc}").status()))
            except OSError:
                self.close_connection = True

    def _authorized(self) -> bool:
        header = self.headers.get("Authorization", "")
        scheme, _, given = header.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            given.strip().encode(), self.server.token.encode()
        )

    def _drain_or_close(self) -> None:
        length = self.headers.get("Content-Length")
        if length and length.isdigit() and int(length) <= MAX_BODY:
            self.rfile.read(int(length))
        elif length or self.headers.get("Transfer-Encoding"):
            self.close_connection = True

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            return self._read_chunked()
        raw = self.headers.get("Content-Length")
        if not raw:
            return b""
        try:
            length = int(raw)
        except ValueError:
            self.close_connection = True
            raise bad_request("invalid Content-Length") from None
        if length > MAX_BODY:
            # Read and drop a moderately large body so a client that writes it all before reading
            # gets the 413 rather than a reset; beyond that, hang up after answering.
            if length <= DRAIN_LIMIT:
                left = length
                while left > 0:
                    chunk = self.rfile.read(min(left, 1 << 16))
                    if not chunk:
                        break
                    left -= len(chunk)
            else:
                self.close_connection = True
            raise too_large(MAX_BODY)
        return self.rfile.read(length) if length > 0 else b""

    def _read_chunked(self) -> bytes:
        parts: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(1024)
            try:
                size = int(line.split(b";")[0].strip() or b"0", 16)
            except ValueError:
                self.close_connection = True
                raise bad_request("malformed chunked body") from None
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(parts)
            total += size
            if total > MAX_BODY:
                self.close_connection = True
                raise too_large(MAX_BODY)
            parts.append(self.rfile.read(size))
            self.rfile.readline(8)

    def _send_text(self, payload: bytes, content_type: str) -> None:
        head = f"HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {len(payload)}\r\n\r\n"
        self.wfile.write(head.encode() + (b"" if self.command == "HEAD" else payload))
        self._code = 200

    def _send(self, reply: Reply, retry_after: int | None = None) -> None:
        payload = reply.text.encode() if reply.text is not None else dumps(reply.body).encode()
        head = [
            f"HTTP/1.1 {reply.code} {_phrase(reply.code)}",
            "Content-Type: application/json",
            f"Content-Length: {len(payload)}",
            "Cache-Control: no-cache, private",
        ]
        head += [f'Warning: 299 - "{w}"' for w in reply.warnings]
        if retry_after is not None:
            head.append(f"Retry-After: {retry_after}")
        if self.close_connection:
            head.append("Connection: close")
        data = ("\r\n".join(head) + "\r\n\r\n").encode() + (b"" if self.command == "HEAD" else payload)
        self.wfile.write(data)
        self._code = reply.code
        self.log_request(reply.code, len(payload))

    # -- routing -----------------------------------------------------------------------------

    def _route(self, method: str, body: bytes) -> Reply | None:
        url = urlsplit(self.path)
        parts = [p for p in url.path.split("/") if p]
        query = dict(parse_qsl(url.query, keep_blank_values=True))
        server = self.server
        if method in ("GET", "HEAD"):
            if parts == ["metrics"]:
                self._send_text(server.metrics.render(), metrics.CONTENT_TYPE)
                return None
            types = server.cluster.registry.types()
            accept = self.headers.get("Accept", "")
            doc = routes.document(parts, types, server.openapi, accept, server.address_text)
            if doc is not None:
                return doc
        target = routes.resource(server.cluster.registry, parts)
        self._resource_name = target.rtype.plural
        call = Call(
            target.rtype,
            target.namespace,
            target.name,
            target.subresource,
            query,
            body,
            self.headers.get("Content-Type", "").split(";")[0].strip().lower(),
            self.headers.get("User-Agent", ""),
        )
        return self._resource(method, call)

    def _resource(self, method: str, call: Call) -> Reply | None:
        cluster = self.server.cluster
        rtype, name, sub, query = call.rtype, call.name, call.subresource, call.query
        accept = self.headers.get("Accept", "")
        if not name:
            if method in ("GET", "HEAD"):
                if query.get("watch") in ("1", "true", "True"):
                    self._verb = "WATCH"
                    self._watch(call, tables.wants_table(accept))
                    return None
                self._verb = "LIST"
                reply = cluster.list_objects(call)
                return tables.as_table(rtype, reply, query) if tables.wants_table(accept) else reply
            if method == "POST":
                return cluster.create(call)
            if method == "DELETE":
                return cluster.delete_collection(call)
            raise method_not_allowed()
        if method in ("GET", "HEAD"):
            reply = cluster.get(call)
            return tables.as_table(rtype, reply, query) if tables.wants_table(accept) and not sub else reply
        if method == "PUT":
            return cluster.update(call)
        if method == "PATCH":
            return cluster.patch(call)
        if method == "DELETE" and not sub:
            return cluster.delete(call)
        raise method_not_allowed()

    def _watch(self, call: Call, as_table: bool) -> None:
        timeout = DEFAULT_WATCH_TIMEOUT
        raw = call.query.get("timeoutSeconds")
        if raw:
            try:
                timeout = max(0.0, float(raw))
            except ValueError:
                raise bad_request(f'invalid value for timeoutSeconds: "{raw}"') from None
        include = call.query.get("includeObject", "Metadata")
        events = self.server.cluster.watch(call, self.server.stopping.is_set, timeout)
        self.wfile.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
            b"Cache-Control: no-cache, private\r\n\r\n"
        )
        self.close_connection = True
        watching = self.server.metrics.longrunning.labels("WATCH", call.rtype.plural)
        watching.inc()
        self._code = 200
        try:
            for kind, obj in events:
                if as_table and kind not in ("ERROR", "BOOKMARK"):
                    meta = {"resourceVersion": obj["metadata"].get("resourceVersion", "")}
                    obj = tables.table(call.rtype, [obj], meta, include)
                data = (dumps({"type": kind, "object": obj}) + "\n").encode()
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError, OSError):
            pass
        finally:
            watching.dec()


def _phrase(code: int) -> str:
    try:
        return HTTPStatus(code).phrase
    except ValueError:
        return "Unknown"


# -- embedding -------------------------------------------------------------------------------------


@dataclass
class RunningServer:
    """A kubesim serving in background threads; `stop()` shuts it down and closes the database."""

    url: str
    token: str
    cluster: Cluster
    httpd: KubesimHTTPServer
    controllers: Controllers
    ca_pem: bytes
    threads: list[threading.Thread] = field(default_factory=list)
    cleanup: list[Path] = field(default_factory=list)

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    def kubeconfig(self, path: str | Path | None = None, *, context: str = "kubesim") -> str:
        """The kubeconfig text; also written (mode 0600) to `path` when given."""
        text = kubeconfig_yaml(self.url, self.token, self.ca_pem, context)
        if path is not None:
            p = Path(path)
            p.parent.mkdir(parents=True, exist_ok=True)
            p.touch(mode=0o600, exist_ok=True)
            p.chmod(0o600)
            p.write_text(text)
        return text

    def stop(self) -> None:
        """Idempotent: open watches end, controllers stop, then the database closes."""
        if self.httpd.stopping.is_set():
            return
        self.httpd.stopping.set()
        self.controllers.stop()
        self.httpd.shutdown()
        self.httpd.server_close()
        for t in self.threads:
            t.join(timeout=5)
        self.cluster.store.close()
        for p in self.cleanup:
            shutil.rmtree(p, ignore_errors=True)

    def __enter__(self) -> RunningServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start(
    state: str | Path = ":memory:",
    port: int = 0,
    token: str | None = None,
    *,
    address: str = "127.0.0.1",
    simulate_workloads: bool = False,
    simulate_delay: float = 2.0,
    lock_wait: float = 0.0,
) -> RunningServer:
    """Start kubesim (HTTPS) in background threads and return once it accepts connections.

    state is a SQLite path (created if missing; its TLS key pair lives beside it) or ":memory:";
    a state another kubesim process has open is waited for up to `lock_wait` seconds (StoreError).
    """
    cleanup: list[Path] = []
    # Clients reach a wildcard bind through loopback; any other address goes into the certificate.
    client_host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(address, address)
    hosts = (client_host,)
    if str(state) == ":memory:":
        tls_dir = Path(tempfile.mkdtemp(prefix="kubesim-tls-"))
        cleanup.append(tls_dir)
        pair = tls.ensure(tls_dir, hosts=hosts)
    else:
        Path(state).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        pair = tls.ensure(Path(state).parent, Path(state).name + "-tls", hosts=hosts)
    store = Store(str(state), lock_wait=lock_wait)
    controllers = Controllers(simulate_workloads=simulate_workloads, delay=simulate_delay)
    cluster = Cluster(store, on_delete=controllers.notify_deleted)
    controllers.attach(cluster)
    token = token or secrets.token_urlsafe(32)
    httpd = KubesimHTTPServer((address, port), cluster, token)
    httpd.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pair.cert_file, pair.key_file)
    # The handshake happens in the connection's own thread, so a slow client cannot stall accept().
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True, do_handshake_on_connect=False)
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.2}, name="kubesim-http", daemon=True
    )
    thread.start()
    controllers.start()
    host = client_host if ":" not in client_host else f"[{client_host}]"
    url = f"https://{host}:{httpd.server_address[1]}"
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((client_host, int(httpd.server_address[1])), timeout=0.5):
                break
        except OSError:
            time.sleep(0.02)
    return RunningServer(url, token, cluster, httpd, controllers, pair.cert_pem, [thread], cleanup)


__all__ = ["MAX_BODY", "RunningServer", "start"]
