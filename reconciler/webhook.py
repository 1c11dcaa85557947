"""The HTTP endpoint of the loop: push webhooks, `/healthz`, `/readyz` and `/metrics`.

Webhooks are POSTed to `/hook` and must prove they know the shared secret:

    GitHub     X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>     events: push (ping answers 200)
    GitLab     X-Gitlab-Token: <the secret itself>                          events: Push Hook, Tag Push Hook
    generic    X-Spindle-Signature-256: sha256=<hex HMAC-SHA256 of the body>  any payload triggers

A missing or wrong signature gets 401 and nothing runs. Bodies over the size limit get 413 before
they are read. Every comparison is constant-time (`hmac.compare_digest`).
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import json
import logging
import socket
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

log = logging.getLogger("spindle.webhook")

DEFAULT_MAX_PAYLOAD = 1024 * 1024  # GitHub caps payloads at 25 MB; pushes are far smaller


class Provider(enum.StrEnum):
    GITHUB = "github"
    GITLAB = "gitlab"
    GENERIC = "generic"


@dataclass(frozen=True)
class Delivery:
    provider: Provider
    event: str
    triggers: bool


def _hmac_ok(secret: bytes, body: bytes, header: str) -> bool:
    algo, _, given = header.strip().partition("=")
    if algo != "sha256" or not given:
        return False
    expected = hmac.new(secret, body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), given.strip().lower().encode())


def verify(headers: Mapping[str, str], body: bytes, secret: bytes) -> Delivery | None:
    """Who sent this payload, if its signature or token matches `secret`; None otherwise. Pure."""
    headers = {k.lower(): v for k, v in headers.items()}  # HTTP header names are case-insensitive
    github = headers.get("x-hub-signature-256")
    if github is not None:
        if not _hmac_ok(secret, body, github):
            return None
        event = headers.get("x-github-event", "push")
        return Delivery(Provider.GITHUB, event, event == "push")
    gitlab = headers.get("x-gitlab-token")
    if gitlab is not None:
        if not hmac.compare_digest(gitlab.encode(), secret):
            return None
        event = headers.get("x-gitlab-event", "Push Hook")
        return Delivery(Provider.GITLAB, event, event in ("Push Hook", "Tag Push Hook"))
    generic = headers.get("x-spindle-signature-256")
    if generic is not None and _hmac_ok(secret, body, generic):
        return Delivery(Provider.GENERIC, "push", True)
    return None


@dataclass
class Endpoints:
    """What the server serves; each is a seam the loop fills in."""

    secret: bytes | None  # None: webhooks are refused (401) but health and metrics still serve
    on_push: Callable[[Delivery], None]
    ready: Callable[[], bool]
    metrics: Callable[[], tuple[bytes, str]]
    max_payload: int = DEFAULT_MAX_PAYLOAD


class _Handler(BaseHTTPRequestHandler):
    server: WebhookServer
    timeout = 10  # seconds a client may take per read: slow senders cannot pin a thread
    server_version = "spindle"
    sys_version = ""

    def log_message(self, fmt: str, *args: object) -> None:
        log.debug("%s %s", self.address_string(), fmt % args)

    def _reply(
        self, status: int, body: bytes | dict[str, object], ctype: str = "application/json", allow: str = ""
    ) -> None:
        data = json.dumps(body).encode() + b"\n" if isinstance(body, dict) else body
        self.send_response(status)
        if allow:
            self.send_header("Allow", allow)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        ep = self.server.endpoints
        path = self.path.split("?", 1)[0]
        if path == "/healthz":
            self._reply(200, b"ok\n", "text/plain")
        elif path == "/readyz":
            ready = ep.ready()
            self._reply(200 if ready else 503, b"ready\n" if ready else b"not ready\n", "text/plain")
        elif path == "/metrics":
            data, ctype = ep.metrics()
            self._reply(200, data, ctype)
        elif path == "/hook":
            self._reply(405, {"error": "webhooks are POSTed to /hook"}, allow="POST")
        else:
            self._reply(404, {"error": f"no such endpoint {path}"})

    def do_POST(self) -> None:
        ep = self.server.endpoints
        if self.path.split("?", 1)[0] != "/hook":
            self._reply(404, {"error": "webhooks are received at /hook"})
            return
        raw_length = self.headers.get("Content-Length")
        if raw_length is None or not raw_length.isdigit():
            self.close_connection = True
            self._reply(411, {"error": "Content-Length required"})
            return
        length = int(raw_length)
        if length > ep.max_payload:
            self.close_connection = True  # the unread body must not be parsed as a next request
            self._reply(413, {"error": f"payload over {ep.max_payload} bytes"})
            return
        body = self.rfile.read(length)
        delivery = verify(dict(self.headers.items()), body, ep.secret) if ep.secret else None
        if delivery is None:
            log.warning("webhook from %s refused: bad or missing signature", self.address_string())
            self._reply(401, {"error": "bad or missing signature"})
            return
        if not delivery.triggers:
            self._reply(200, {"triggered": False, "provider": delivery.provider, "event": delivery.event})
            return
        ep.on_push(delivery)
        self._reply(202, {"triggered": True, "provider": delivery.provider, "event": delivery.event})


class WebhookServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, host: str, port: int, endpoints: Endpoints) -> None:
        if ":" in host:
            self.address_family = socket.AF_INET6
        super().__init__((host, port), _Handler)
        self.endpoints = endpoints
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        shown = f"[{host!s}]" if ":" in str(host) else str(host)
        return f"http://{shown}:{port}"

    def start(self) -> None:
        self._thread = threading.Thread(target=self.serve_forever, name="spindle-webhook", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)


def parse_addr(text: str) -> tuple[str, int]:
    """`HOST:PORT`, `:PORT` (binds 127.0.0.1) or `[::1]:PORT`."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"webhook address {text!r} is not HOST:PORT")
    host = host.strip("[]") or "127.0.0.1"
    return host, int(port)
