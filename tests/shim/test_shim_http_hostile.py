"""Hostile and malformed HTTP/1.1 traffic against the front end (RFC 9112), over raw sockets.

Every refusal is a complete response with a status line and `Connection: close`, after which
the connection is closed; nothing refused reaches the guest.
"""

from __future__ import annotations

import logging
import re
import socket
import time
from pathlib import Path

import pytest
from shim_testlib import WAT_APP, Serve, make_app, shim_up

from shim.http1 import raise_fd_limit


def exchange(port: int, data: bytes, timeout: float = 10.0) -> bytes:
    """Send `data`, then read until the server closes the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        return read_to_close(sock)


def read_to_close(sock: socket.socket) -> bytes:
    out = b""
    while True:
        try:
            data = sock.recv(65536)
        except ConnectionResetError:
            break
        if not data:
            break
        out += data
    return out


def status_lines(raw: bytes) -> list[str]:
    return [line.decode() for line in raw.split(b"\r\n") if line.startswith(b"HTTP/1.1 ")]


H = b"Host: x\r\n"
POST = b"POST /echo HTTP/1.1\r\n" + H

REFUSED = [
    # request smuggling: two framings (RFC 9112 6.3)
    ("two different content-lengths", b"POST /echo HTTP/1.1\r\n" + H +
     b"Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", 400),
    ("content-length with chunked", b"POST /echo HTTP/1.1\r\n" + H +
     b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    ("chunked not last", b"POST /echo HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked, gzip\r\n\r\n", 400),
    ("obfuscated transfer-encoding", POST + b"Transfer-Encoding: xchunked\r\n\r\n", 400),
    ("space before the colon", b"POST /echo HTTP/1.1\r\n" + H + b"Transfer-Encoding : chunked\r\n\r\n", 400),
    ("transfer-encoding in HTTP/1.0", b"POST /echo HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
     400),
    # a coding we do not understand: 501 (RFC 9112 6.1)
    ("unknown transfer coding", b"POST /echo HTTP/1.1\r\n" + H + b"Transfer-Encoding: gzip, chunked\r\n\r\n"
     b"0\r\n\r\n", 501),
    # malformed request lines and headers (RFC 9112 3, 5)
    ("bad request line", b"GARBAGE\r\n\r\n", 400),
    ("NUL in the path", b"GET /a\x00b HTTP/1.1\r\n" + H + b"\r\n", 400),
    ("header line without a colon", b"GET / HTTP/1.1\r\n" + H + b"no colon here\r\n\r\n", 400),
    ("obs-fold", b"GET / HTTP/1.1\r\n" + H + b"X-A: a\r\n b\r\n\r\n", 400),
    ("control character in a value", b"GET / HTTP/1.1\r\n" + H + b"X-A: a\x01b\r\n\r\n", 400),
    ("negative content-length", b"POST /echo HTTP/1.1\r\n" + H + b"Content-Length: -3\r\n\r\n", 400),
    ("HTTP/1.1 without Host", b"GET / HTTP/1.1\r\n\r\n", 400),
    ("two Host headers", b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
    ("invalid Host", b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400),
    ("HTTP/2.0 in an HTTP/1 request line", b"GET / HTTP/2.0\r\n" + H + b"\r\n", 505),
    ("unknown expectation", POST + b"Expect: 200-ok\r\nContent-Length: 1\r\n\r\nx", 417),
    ("CONNECT", b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", 501),
    # bounds
    ("target too long", b"GET /" + b"a" * (9 << 10) + b" HTTP/1.1\r\n" + H + b"\r\n", 414),
    ("too many headers", b"GET / HTTP/1.1\r\n" + H + b"".join(b"X-%d: 1\r\n" % i for i in range(120))
     + b"\r\n", 431),
    ("header too large", b"GET / HTTP/1.1\r\n" + H + b"X-Big: " + b"a" * (70 << 10) + b"\r\n\r\n", 431),
    ("one endless header line", b"GET / HTTP/1.1\r\n" + H + b"X-Big: " + b"a" * (300 << 10), 431),
]


@pytest.mark.parametrize(("case", "payload", "status"), REFUSED, ids=[c[0] for c in REFUSED])
def test_refused_with_a_status_line_and_close(serve: Serve, tmp_path: Path, case: str, payload: bytes,
                                              status: int) -> None:
    srv = serve(make_app(tmp_path / "app", WAT_APP))
    raw = exchange(srv.port, payload)
    head = raw.split(b"\r\n\r\n", 1)[0].decode("latin-1").lower()
    assert head.startswith(f"http/1.1 {status} "), (case, raw[:200])
    assert "\r\nconnection: close" in head, (case, head)
    assert len(status_lines(raw)) == 1  # nothing after the refusal: the connection was closed
    assert srv.server.pool.peak == 0  # no guest ever ran


def test_smuggled_request_behind_conflicting_lengths_never_runs(serve: Serve, tmp_path: Path,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    srv = serve(make_app(tmp_path / "app", WAT_APP))
    smuggled = b"GET /smuggled HTTP/1.1\r\n" + H + b"\r\n"
    with caplog.at_level(logging.DEBUG, logger="shim.access"):
        raw = exchange(srv.port, b"POST /echo HTTP/1.1\r\n" + H + b"Content-Length: 0\r\n"
                       b"Content-Length: %d\r\n\r\n" % len(smuggled) + smuggled)
    assert status_lines(raw) == ["HTTP/1.1 400 Bad Request"]
    assert not any("/smuggled" in r.getMessage() for r in caplog.records)


def test_surplus_bytes_after_a_body_are_the_next_request(serve: Serve, tmp_path: Path) -> None:
    """Bytes past Content-Length are not ignored on a connection that stays open: they are parsed
    as the next request, which here is garbage (400, close)."""
    srv = serve(make_app(tmp_path / "app", WAT_APP))
    raw = exchange(srv.port, POST + b"Content-Length: 5\r\n\r\nhelloEXTRA JUNK\r\n\r\n")
    assert status_lines(raw) == ["HTTP/1.1 200 OK", "HTTP/1.1 400 Bad Request"]
    assert b"hello" in raw.split(b"HTTP/1.1 400")[0]


def test_bad_chunk_framing_before_the_response_is_400_not_a_trap(serve: Serve, tmp_path: Path,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    srv = serve(make_app(tmp_path / "app", WAT_APP))  # /kvs reads the body before it answers
    with caplog.at_level(logging.INFO):
        raw = exchange(srv.port, b"POST /kvs/k HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n"
                       b"5\r\nhello\r\nzz\r\n")
    assert status_lines(raw) == ["HTTP/1.1 400 Bad Request"]
    assert b"connection: close" in raw.lower()
    assert b"content-length: 12\r\n" in raw and raw.endswith(b"\r\n\r\nBad Request\n")  # whole, framed
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


def test_bad_chunk_framing_after_the_response_started_cuts_it_short(
        serve: Serve, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    srv = serve(make_app(tmp_path / "app", WAT_APP))
    with caplog.at_level(logging.INFO), \
            socket.create_connection(("127.0.0.1", srv.port), timeout=10) as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
        got = b""
        while b"hello" not in got:
            got += sock.recv(65536)
        assert got.startswith(b"HTTP/1.1 200 ")
        sock.sendall(b"5\r\nworld\r\nnot-a-size\r\n")
        got += read_to_close(sock)
    assert not got.endswith(b"0\r\n\r\n")  # the response is incomplete: the client knows it failed
    assert len(status_lines(got)) == 1
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


def test_pipelined_requests_answer_in_order(serve: Serve, tmp_path: Path) -> None:
    srv = serve(make_app(tmp_path / "app", WAT_APP))
    reqs = b"".join(b"GET /p%d HTTP/1.1\r\n" % i + H + b"\r\n" for i in range(5))
    raw = exchange(srv.port, reqs + b"GET /last HTTP/1.1\r\n" + H + b"Connection: close\r\n\r\n")
    assert re.findall(rb"path=(/\w+)\n", raw) == [b"/p%d" % i for i in range(5)] + [b"/last"]


def test_http_1_0_response_is_close_delimited(serve: Serve, tmp_path: Path) -> None:
    srv = serve(make_app(tmp_path / "app", WAT_APP))
    raw = exchange(srv.port, b"GET /old HTTP/1.0\r\n\r\n")
    head, body = raw.split(b"\r\n\r\n", 1)
    assert b"transfer-encoding" not in head.lower()
    assert b"connection: close" in head.lower()
    assert body.startswith(b"path=/old")


def test_expect_100_continue(serve: Serve, tmp_path: Path) -> None:
    """100 Continue goes out when the guest first reads the body (/kvs reads before it answers)."""
    srv = serve(make_app(tmp_path / "app", WAT_APP + '    key_value_stores = ["default"]\n'))
    with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as sock:
        sock.sendall(b"POST /kvs/color HTTP/1.1\r\n" + H + b"Content-Length: 4\r\nExpect: 100-continue\r\n"
                     b"Connection: close\r\n\r\n")
        assert sock.recv(65536) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(b"blue")
        raw = read_to_close(sock)
    assert raw.startswith(b"HTTP/1.1 200 ") and raw.endswith(b"4\r\nblue\r\n0\r\n\r\n")


SLOW = {"SPINDLE_SHIM_HEADER_TIMEOUT_MS": "500", "SPINDLE_SHIM_IDLE_TIMEOUT_MS": "700"}


def test_trickled_headers_do_not_stretch_the_header_deadline(serve: Serve, tmp_path: Path) -> None:
    srv = serve(make_app(tmp_path / "app", WAT_APP), env=SLOW)
    with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as sock:
        t0 = time.monotonic()
        sock.sendall(b"GET / HTTP/1.1\r\n")
        got = b""
        for i in range(40):  # a byte-sized header every 50 ms: never idle, never done
            try:
                sock.sendall(b"X-%d: y\r\n" % i)
            except OSError:
                break
            time.sleep(0.05)
            sock.setblocking(False)
            try:
                got += sock.recv(4096)
            except BlockingIOError:
                pass
            finally:
                sock.setblocking(True)
            if got:
                break
        got += read_to_close(sock)
        elapsed = time.monotonic() - t0
    assert got.startswith(b"HTTP/1.1 408 "), got[:100]
    assert elapsed < 1.5  # 0.5 s from the first byte, checked four times a second


def test_idle_keep_alive_connection_is_closed(serve: Serve, tmp_path: Path) -> None:
    srv = serve(make_app(tmp_path / "app", WAT_APP), env=SLOW)
    with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as sock:
        sock.sendall(b"GET /once HTTP/1.1\r\n" + H + b"\r\n")
        t0 = time.monotonic()
        raw = read_to_close(sock)
        elapsed = time.monotonic() - t0
    assert status_lines(raw) == ["HTTP/1.1 200 OK"]
    assert 0.5 < elapsed < 2.0


def test_many_slow_connections_need_no_thread_each(tmp_path: Path) -> None:
    """2,500 connections that trickle or say nothing cost `shim up` no threads; a normal request
    still gets its answer at once. (The server is its own process: clients in this one would
    compete with it for the GIL.)"""
    raise_fd_limit()
    root = make_app(tmp_path / "app", WAT_APP)
    with shim_up(root, tmp_path, "--workers", "1") as up:
        up.get("/warm")
        threads_before = _threads(up.proc.pid)
        socks = []
        try:
            for i in range(2500):
                s = socket.create_connection(("127.0.0.1", up.port), timeout=10)
                if i % 2:
                    s.sendall(b"GET /slow HTTP/1.1\r\nHost: x\r\nX-Trickle: ")
                socks.append(s)
            t0 = time.monotonic()
            status, body = up.get("/meanwhile")
            assert (status, body.startswith(b"path=/meanwhile")) == (200, True)
            assert time.monotonic() - t0 < 1.0
            assert _threads(up.proc.pid) - threads_before < 3
        finally:
            for s in socks:
                s.close()


def _threads(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("Threads:")))
