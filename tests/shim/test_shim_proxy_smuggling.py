"""Request smuggling through a real reverse proxy: Debian's haproxy on loopback, keeping its
connections to the shim alive and sharing them between clients (`http-reuse always`), as an
ingress does. A proxy and a server that frame one request differently let a client hide a second
request in the first one's body, which then answers someone else. Each classic framing attack
(CL.TE, TE.CL, TE.TE obfuscations, CL.CL) goes through the proxy, and then another client's
request must get its own response; the hidden request never reaches the guest.
"""

from __future__ import annotations

import logging
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from shim_testlib import WAT_APP, Running, Serve, free_port, make_app

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
pytestmark = pytest.mark.skipif(not Path(HAPROXY).exists(),
                                reason="haproxy is not installed (apt-get install haproxy)")

SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
N = len(SMUGGLED)
P = b"POST /echo HTTP/1.1\r\nHost: x\r\n"
CHUNKED = b"Transfer-Encoding: chunked\r\n"
ATTACKS = {
    "CL.TE": P + b"Content-Length: %d\r\n" % (5 + N) + CHUNKED + b"\r\n0\r\n\r\n" + SMUGGLED,
    "TE.CL": P + b"Content-Length: 4\r\n" + CHUNKED + b"\r\n%x\r\n" % N + SMUGGLED + b"\r\n0\r\n\r\n",
    "TE.TE xchunked": P + b"Content-Length: %d\r\nTransfer-Encoding: xchunked\r\n\r\n" % N + SMUGGLED,
    "TE.TE space before colon": P + b"Content-Length: %d\r\nTransfer-Encoding : chunked\r\n\r\n" % N
                                + SMUGGLED,
    "TE.TE tab": P + b"Content-Length: %d\r\nTransfer-Encoding:\tchunked\r\n\r\n0\r\n\r\n" % (5 + N)
                 + SMUGGLED,
    "TE.TE second header": P + b"Content-Length: %d\r\n" % (5 + N) + CHUNKED
                           + b"Transfer-Encoding: identity\r\n\r\n0\r\n\r\n" + SMUGGLED,
    "CL.CL": P + b"Content-Length: 0\r\nContent-Length: %d\r\n\r\n" % N + SMUGGLED,
    "chunk size overflow": P + CHUNKED + b"\r\n1000000000000000%x\r\n" % N + SMUGGLED + b"\r\n0\r\n\r\n",
}


@pytest.fixture
def proxied(serve: Serve, tmp_path: Path) -> Iterator[tuple[int, Running]]:
    srv = serve(make_app(tmp_path / "app", WAT_APP))
    port = free_port()
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text(f"""\
global
    maxconn 100
defaults
    mode http
    timeout connect 5s
    timeout client 10s
    timeout server 10s
    option http-keep-alive
    http-reuse always
frontend ingress
    bind 127.0.0.1:{port}
    default_backend shim
backend shim
    server shim1 127.0.0.1:{srv.port}
""")
    proc = subprocess.Popen([HAPROXY, "-f", str(cfg), "-db"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while True:
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else b""
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "haproxy did not start"
                time.sleep(0.05)
        yield port, srv
    finally:
        proc.terminate()
        proc.wait(10)


def _send(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        out = b""
        while chunk := sock.recv(65536):
            out += chunk
        return out


def test_smuggling_attempts_through_a_reverse_proxy(proxied: tuple[int, Running],
                                                    caplog: pytest.LogCaptureFixture) -> None:
    port, srv = proxied
    with caplog.at_level(logging.DEBUG, logger="shim.access"):
        for name, attack in ATTACKS.items():
            for _ in range(2):  # the proxy keeps the backend connection: poison it twice
                answer = _send(port, attack)
                assert answer.startswith(b"HTTP/1.1 "), (name, answer[:100])
            victim = _send(port, b"GET /victim HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            head, _, body = victim.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200 "), (name, victim[:200])
            assert b"path=/victim\n" in body, (name, victim[:300])
        deadline = time.monotonic() + 5  # the access line is written just after the response
        while srv.server.pool.active and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.1)
    served = [r.getMessage() for r in caplog.records if r.name == "shim.access"]
    assert served and not any("/smuggled" in line for line in served), served
    assert sum("/victim" in line for line in served) == len(ATTACKS)
