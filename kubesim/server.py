"""The HTTPS (HTTP/1.1) front of kubesim: bearer-token auth, bodies, dispatch to the verbs
(`routes` says what a path names), watch streams, /metrics, and the embeddable `start()`.

Threaded (one thread per connection, keep-alive, TLS handshake in the connection's thread), bound
to 127.0.0.1 unless told otherwise. Every answer is JSON (but /metrics); every error is a `Status`;
an unexpected exception is logged and answered with a 500 `InternalError`, so one bad request never
takes the server down.
"""

from __future__ import annotations

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

from kubesim import access, authn, metrics, openapi, reviews, routes, tables, tls
from kubesim.access import Gate
from kubesim.api import Cluster
from kubesim.authn import Identity
from kubesim.calls import Call, Reply
from kubesim.controllers import Controllers
from kubesim.errors import (
    ApiError,
    bad_request,
    internal,
    method_not_allowed,
    too_large,
)
from kubesim.kubeconfig import kubeconfig_yaml
from kubesim.rbac import Attributes
from kubesim.storage import Store, dumps

log = logging.getLogger("kubesim")

MAX_BODY = 3 * 1024 * 1024  # the real API server's limit for a request body
DRAIN_LIMIT = 32 * 1024 * 1024
DEFAULT_WATCH_TIMEOUT = 1800.0


class KubesimHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], cluster: Cluster, gate: Gate) -> None:
        super().__init__(address, Handler)
        self.cluster = cluster
        self.gate = gate
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
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s %s", self.address_string(), fmt % args)

    def parse_request(self) -> bool:
        """The request line and headers (HTTP/1.0 and 1.1), without the email package's parser
        the standard handler uses (a tenth of a request's time here)."""
        self.command = ""
        self.request_version = self.default_request_version
        self.close_connection = True
        line = str(getattr(self, "raw_requestline", b""), "iso-8859-1").rstrip("\r\n")
        self.requestline = line
        words = line.split()
        if len(words) != 3 or words[2] not in ("HTTP/1.1", "HTTP/1.0"):
            if not words:
                return False
            self.send_error(HTTPStatus.BAD_REQUEST, f"Bad request syntax ({line!r})")
            return False
        self.command, path, self.request_version = words
        self.path = "/" + path.lstrip("/") if path.startswith("//") else path
        headers = _Headers()
        for _ in range(MAX_HEADERS + 1):
            raw = self.rfile.readline(MAX_HEADER_LINE + 1)
            if len(raw) > MAX_HEADER_LINE:
                self.send_error(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "Line too long")
                return False
            if raw in (b"\r\n", b"\n", b""):
                break
            name, sep, value = str(raw, "iso-8859-1").partition(":")
            if sep:
                key = name.strip().lower()
                value = value.strip()
                headers[key] = f"{headers[key]}, {value}" if key in headers else value
                if key.startswith("impersonate-"):
                    headers.repeated.setdefault(key, []).append(value)
        else:
            self.send_error(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "Too many headers")
            return False
        self.headers = headers  # type: ignore[assignment]
        self.request_headers = headers
        connection = headers.get("connection", "").lower()
        if connection == "close":
            self.close_connection = True
        elif self.request_version == "HTTP/1.1" or connection == "keep-alive":
            self.close_connection = False
        if headers.get("expect", "").lower() == "100-continue" and self.request_version == "HTTP/1.1":
            return self.handle_expect_100()
        return True

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
            access.acting_as(None)
            try:
                gate, headers = self.server.gate, self.request_headers
                self._who = gate.identify(headers.get("authorization", ""), headers.getall)
            except ApiError:
                self._drain_or_close()
                raise
            access.acting_as(self._who)
            body = self._read_body()
            try:
                reply = self._route(method, body)
            finally:
                self.server.cluster.store.settle()  # acknowledge nothing before it is committed
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

    def _check(self, a: Attributes) -> None:
        self.server.gate.check(self._who, a)

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
        head += [f"Warning: 299 - {_quoted(w)}" for w in reply.warnings]
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
        content_type = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
        review = reviews.review_target(parts)
        if review is not None:
            self._check(Attributes("create", review[1], review[0], namespace=review[2]))
            return reviews.review(server.gate, self._who, method, review, body, content_type)
        token = reviews.token_target(parts)
        if token is not None:
            self._check(Attributes("create", "serviceaccounts", "", "token", token[0], token[1]))
            return reviews.token_request(server.gate, method, token[0], token[1], body, content_type)
        if not _resource_path(parts):
            path = "/" + "/".join(parts)
            self._check(Attributes("get" if method == "HEAD" else method.lower(), path=path))
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
            content_type,
            self.headers.get("User-Agent", ""),
        )
        self._authorize(method, call)
        return self._resource(method, call)

    def _authorize(self, method: str, call: Call) -> None:
        """RBAC for a resource request; a PUT or an apply that would create also needs `create`."""
        if authn.MASTERS in self._who.groups:
            return
        rtype = call.rtype
        verb = access.resource_verb(method, bool(call.name), call.query.get("watch") in ("1", "true", "True"))
        a = Attributes(verb, rtype.plural, rtype.group, call.subresource, call.namespace, call.name)
        self._check(a)
        if verb in ("update", "patch") and not call.subresource and (
            verb == "update" or call.content_type == "application/apply-patch+yaml"
        ):
            store = self.server.cluster.store
            if store.get(rtype.storage_key, call.namespace, call.name) is None:
                self._check(Attributes("create", rtype.plural, rtype.group, "", call.namespace, call.name))

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


MAX_HEADERS = 100
MAX_HEADER_LINE = 65536


class _Headers(dict[str, str]):
    """Request headers by lower-cased name (repeated ones joined with ", "); the Impersonate-*
    headers also one value per line (`getall`)."""

    def __init__(self) -> None:
        super().__init__()
        self.repeated: dict[str, list[str]] = {}

    def get(self, name: str, default: Any = None) -> Any:
        return super().get(name.lower(), default)

    def getall(self, name: str) -> list[str]:
        return list(self.repeated.get(name.lower(), []))


def _resource_path(parts: list[str]) -> bool:
    return (parts[:1] == ["api"] and len(parts) >= 3) or (parts[:1] == ["apis"] and len(parts) >= 4)


def _quoted(text: str) -> str:
    """A Warning header's warn-text: an HTTP quoted-string (client-go's NewWarningHeader)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ") + '"'


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
    token_file: str | Path | None = None,
) -> RunningServer:
    """Start kubesim (HTTPS) in background threads and return once it accepts connections.

    state is a SQLite path (created if missing; its TLS key pair lives beside it) or ":memory:";
    a state another kubesim process has open is waited for up to `lock_wait` seconds (StoreError).
    `token` is the admin's (system:masters); `token_file` adds users (kube-apiserver's
    --token-auth-file CSV: token,user,uid,"group1,group2"), whom RBAC then governs.
    """
    static: dict[str, Identity] = authn.read_token_file(token_file) if token_file is not None else {}
    cleanup: list[Path] = []
    # Clients reach a wildcard bind through loopback; any other address goes into the certificate.
    client_host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(address, address)
    hosts = (client_host,)
    if str(state) == ":memory:":
        tls_dir = Path(tempfile.mkdtemp(prefix="kubesim-tls-"))
        cleanup.append(tls_dir)
        pair = tls.ensure(tls_dir, hosts=hosts)
    else:
        tls_dir = Path(state).parent
        tls_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        pair = tls.ensure(tls_dir, Path(state).name + "-tls", hosts=hosts)
    store = Store(str(state), lock_wait=lock_wait)
    controllers = Controllers(simulate_workloads=simulate_workloads, delay=simulate_delay)
    cluster = Cluster(store, on_delete=controllers.notify_deleted)
    controllers.attach(cluster)
    access.bootstrap(cluster)
    token = token or secrets.token_urlsafe(32)
    gate = Gate(cluster, token, access.signing_key(state, tls_dir), static)
    cluster.write_check = gate.write_check
    httpd = KubesimHTTPServer((address, port), cluster, gate)
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
