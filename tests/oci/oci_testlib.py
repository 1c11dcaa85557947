"""Helpers for the registry tests: a real Debian `docker-registry`, a CA, a JWT token server, a flaky
recording proxy and a server that lies about blob bytes. Everything binds 127.0.0.1 on a free port and
is stopped by the fixture that started it."""

from __future__ import annotations

import base64
import datetime
import http.client
import ipaddress
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

LOCALHOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOCALHOST, 0))
        return int(sock.getsockname()[1])


# --- PKI ------------------------------------------------------------------------------------------------


@dataclass
class Issued:
    cert: x509.Certificate
    key: rsa.RSAPrivateKey
    cert_path: Path
    key_path: Path


def _write_pair(directory: Path, name: str, cert: x509.Certificate, key: rsa.RSAPrivateKey) -> Issued:
    cert_path, key_path = directory / f"{name}.pem", directory / f"{name}-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    return Issued(cert, key, cert_path, key_path)


def make_ca(directory: Path, name: str = "spindle test CA") -> Issued:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return _write_pair(directory, "ca", cert, key)


def issue(ca: Issued, directory: Path, name: str, *, server: bool = True) -> Issued:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(LOCALHOST))]
            ),
            critical=False,
        )
    return _write_pair(directory, name, builder.sign(ca.key, hashes.SHA256()), key)


def htpasswd_line(user: str, password: str) -> str:
    """A bcrypt htpasswd line: libxcrypt through the stdlib `crypt`, else apache2-utils' htpasswd."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            import crypt

        hashed = crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16))
        if hashed and hashed.startswith("$2"):
            return f"{user}:{hashed}"
    except (ImportError, OSError):
        pass
    if shutil.which("htpasswd") is None:
        raise RuntimeError("no bcrypt available: apt-get install -y apache2-utils")
    out = subprocess.run(
        ["htpasswd", "-nbB", "-C", "4", user, password], capture_output=True, text=True, check=True
    )
    return out.stdout.strip()


# --- the registry process -------------------------------------------------------------------------------


@dataclass
class Registry:
    host: str  # 127.0.0.1:port
    root: Path
    log: Path

    def ref(self, path: str) -> str:
        return f"{self.host}/{path}"


def _wait_port(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"docker-registry exited: {log.read_text()[-2000:]}")
        with socket.socket() as sock:
            if sock.connect_ex((LOCALHOST, port)) == 0:
                return
        if time.monotonic() > deadline:
            raise RuntimeError(f"docker-registry did not listen: {log.read_text()[-2000:]}")
        time.sleep(0.05)


@contextmanager
def run_registry(root: Path, *, auth: str = "", tls: Issued | None = None) -> Iterator[Registry]:
    """Start `docker-registry serve` with a config written here; stop it by PID afterwards."""
    if shutil.which("docker-registry") is None:
        raise RuntimeError("docker-registry is not installed (apt-get install -y docker-registry)")
    root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    tls_block = ""
    if tls is not None:
        tls_block = f"  tls:\n    certificate: {tls.cert_path}\n    key: {tls.key_path}\n"
    config = root / "config.yml"
    config.write_text(
        "version: 0.1\n"
        "log:\n  level: warn\n  accesslog:\n    disabled: true\n"
        f"storage:\n  filesystem:\n    rootdirectory: {root / 'data'}\n  delete:\n    enabled: true\n"
        f"http:\n  addr: {LOCALHOST}:{port}\n  secret: spindle-test-secret\n{tls_block}"
        f"{auth}"
    )
    log = root / "registry.log"
    with open(log, "wb") as handle:
        proc = subprocess.Popen(
            ["docker-registry", "serve", str(config)],
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_port(port, proc, log)
        yield Registry(f"{LOCALHOST}:{port}", root, log)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)


# --- small HTTP servers ---------------------------------------------------------------------------------


class _QuietHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
        pass

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _reply(self, status: int, headers: Mapping[str, str], body: bytes) -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        if "Content-Length" not in headers:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)


@contextmanager
def serve(handler: type[BaseHTTPRequestHandler], **attrs: Any) -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer((LOCALHOST, 0), handler)
    server.daemon_threads = True
    for key, value in attrs.items():
        setattr(server, key, value)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def server_host(server: ThreadingHTTPServer) -> str:
    return f"{LOCALHOST}:{server.server_address[1]}"


# token server


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@dataclass
class TokenIssuer:
    signer: Issued
    issuer: str
    service: str
    users: dict[str, str]  # username -> password
    requests: list[dict[str, Any]] = field(default_factory=list)

    def sign(self, subject: str, access: list[dict[str, Any]]) -> str:
        header = {
            "typ": "JWT",
            "alg": "RS256",
            "x5c": [
                base64.b64encode(self.signer.cert.public_bytes(serialization.Encoding.DER)).decode("ascii")
            ],
        }
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": subject,
            "aud": self.service,
            "exp": now + 300,
            "nbf": now - 10,
            "iat": now,
            "jti": uuid.uuid4().hex,
            "access": access,
        }
        signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        signature = self.signer.key.sign(signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{_b64url(signature)}"


class TokenHandler(_QuietHandler):
    """GET /token?service=..&scope=..: Basic-authenticated users get what they ask for; others nothing."""

    def do_GET(self) -> None:
        issuer: TokenIssuer = self.server.issuer  # type: ignore[attr-defined]
        query = parse_qs(urlsplit(self.path).query)
        scopes = query.get("scope", [])
        user = None
        header = self.headers.get("Authorization", "")
        if header.startswith("Basic "):
            name, _, password = base64.b64decode(header[6:]).decode().partition(":")
            if issuer.users.get(name) != password:
                issuer.requests.append({"user": name, "scopes": scopes, "ok": False})
                self._reply(401, {"Content-Type": "application/json"}, b'{"details":"bad credentials"}')
                return
            user = name
        issuer.requests.append({"user": user, "scopes": scopes, "ok": True})
        access = []
        if user is not None:
            for scope in scopes:
                kind, name, actions = scope.split(":")
                access.append({"type": kind, "name": name, "actions": actions.split(",")})
        token = issuer.sign(user or "", access)
        body = json.dumps({"token": token, "access_token": token, "expires_in": 300}).encode()
        self._reply(200, {"Content-Type": "application/json"}, body)


# flaky recording proxy


@dataclass
class ProxyState:
    upstream: str  # host:port of the real registry
    fail_next: int = 0
    fail_status: int = 500
    retry_after: str | None = None
    log: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def take_failure(self) -> bool:
        with self.lock:
            if self.fail_next > 0:
                self.fail_next -= 1
                return True
            return False


_HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "te", "upgrade"}


class ProxyHandler(_QuietHandler):
    def _handle(self) -> None:
        state: ProxyState = self.server.state  # type: ignore[attr-defined]
        body = self._body()
        state.log.append((self.command, self.path, dict(self.headers)))
        if state.take_failure():
            headers = {"Content-Type": "application/json"}
            if state.retry_after is not None:
                headers["Retry-After"] = state.retry_after
            self._reply(
                state.fail_status, headers, b'{"errors":[{"code":"UNAVAILABLE","message":"injected"}]}'
            )
            return
        host, port = state.upstream.rsplit(":", 1)
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
            conn.request(
                self.command,
                self.path,
                body=body if body or self.command in ("PUT", "POST", "PATCH") else None,
                headers=headers,
            )
            response = conn.getresponse()
            data = response.read()
            out = {
                k: v
                for k, v in response.getheaders()
                if k.lower() not in _HOP and k.lower() != "content-length"
            }
            out["Content-Length"] = (
                response.getheader("Content-Length", "0") if self.command == "HEAD" else str(len(data))
            )
            self._reply(response.status, out, data)
        finally:
            conn.close()

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _handle


# a registry that serves fixed routes (for lying about bytes)


class StaticHandler(_QuietHandler):
    def _handle(self) -> None:
        routes: dict[str, tuple[int, dict[str, str], bytes]] = self.server.routes  # type: ignore[attr-defined]
        self._body()
        status, headers, body = routes.get(
            urlsplit(self.path).path, (404, {}, b'{"errors":[{"code":"NOT_FOUND"}]}')
        )
        self._reply(status, headers, body)

    do_GET = do_HEAD = _handle


SleepLog = list[float]


def recording_sleep(log: SleepLog) -> Callable[[float], None]:
    return log.append
