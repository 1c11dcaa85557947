"""The HTTP path for large bodies through a real socket: what sits between the socket and the
guest (accept loop, request body reads, response writes) streams both ways, holds back when the
client does, and costs little next to the guest."""

from __future__ import annotations

import hashlib
import http.client
import os
import socket
import threading
import time
from pathlib import Path

from shim_testlib import WAT_APP, Serve, make_app, shim_up


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def _echo(sock: socket.socket, head: bytes, body: bytes) -> bytes:
    """Send one request from a thread while reading its response here (a streaming server
    answers before the request is in); the connection stays open for the next one."""
    sender = threading.Thread(target=sock.sendall, args=(head + body,), daemon=True)
    sender.start()
    resp = http.client.HTTPResponse(sock)
    resp.begin()
    assert resp.status == 200
    data = resp.read()
    sender.join(timeout=60)
    return data


def _chunked(body: bytes, sizes: tuple[int, ...]) -> bytes:
    out, at, i = bytearray(), 0, 0
    while at < len(body):
        piece = body[at:at + sizes[i % len(sizes)]]
        out += b"%x\r\n%b\r\n" % (len(piece), piece)
        at, i = at + len(piece), i + 1
    return bytes(out + b"0\r\n\r\n")


def _read_chunk_sizes(sock: socket.socket) -> tuple[list[int], bytes]:
    """Read a chunked response to its end; the size of each chunk, and the body."""
    f = sock.makefile("rb")
    while f.readline() not in (b"\r\n", b""):
        pass
    sizes, body = [], bytearray()
    while (size := int(f.readline(), 16)) > 0:
        sizes.append(size)
        body += f.read(size)
        assert f.read(2) == b"\r\n"
    return sizes, bytes(body)


def test_idle_server_does_not_spin(tmp_path: Path) -> None:
    """The accept loop waits for connections: a spinning loop holds the GIL against the request
    threads (it cost ~10 ms on a 1 MiB echo and most of the one-process request rate)."""
    root = make_app(tmp_path / "app", WAT_APP)
    with shim_up(root, tmp_path, "--workers", "1") as up:
        assert up.get("/warm")[0] == 200
        before, t0 = _cpu_seconds(up.proc.pid), time.monotonic()
        time.sleep(1.5)
        used, elapsed = _cpu_seconds(up.proc.pid) - before, time.monotonic() - t0
        # a waiting loop wakes 5 times a second (plus the epoch ticker); a spinning one uses a core
        assert used < 0.25 * elapsed, f"idle server used {used:.2f} s CPU in {elapsed:.2f} s"
        assert up.get("/after")[0] == 200


def test_8mib_echoes_through_two_worker_processes(tmp_path: Path) -> None:
    """Several 8 MiB echoes over the inherited listening socket: whichever process accepts, the
    body comes back whole."""
    root = make_app(tmp_path / "app", WAT_APP)
    body = os.urandom(8 << 20)
    with shim_up(root, tmp_path, "--workers", "2") as up:
        for _ in range(3):
            with socket.create_connection(("127.0.0.1", up.port), timeout=60) as sock:
                head = f"POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: {len(body)}\r\n\r\n".encode()
                got = _echo(sock, head, body)
                assert hashlib.sha256(got).digest() == hashlib.sha256(body).digest()


def test_large_bodies_keep_the_connection_usable(serve: Serve, tmp_path: Path) -> None:
    """A content-length body, then a chunked one in odd-sized chunks, then a plain GET, on one
    connection: each request is read to its exact end, never into the next."""
    srv = serve(make_app(tmp_path / "app", WAT_APP))
    first, second = os.urandom(3 << 20), os.urandom((2 << 20) + 12345)
    with socket.create_connection(("127.0.0.1", srv.port), timeout=60) as sock:
        head = f"POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: {len(first)}\r\n\r\n".encode()
        assert _echo(sock, head, first) == first
        head = b"POST /echo HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n"
        assert _echo(sock, head, _chunked(second, (1, 65535, 65537, 200_000, 7))) == second
        sock.sendall(b"GET /after HTTP/1.1\r\nhost: x\r\n\r\n")
        resp = http.client.HTTPResponse(sock)
        resp.begin()
        assert resp.read().startswith(b"path=/after")


def test_a_client_that_stops_reading_holds_the_request_back(serve: Serve, tmp_path: Path) -> None:
    """Backpressure both ways: while the client reads none of the echo, the server stops taking
    the request (it does not swallow a 64 MiB body into memory); once the client reads, all of it
    comes back."""
    srv = serve(make_app(tmp_path / "app", WAT_APP))
    body = os.urandom(64 << 20)
    sent = [0]
    with socket.create_connection(("127.0.0.1", srv.port), timeout=60) as sock:
        sock.sendall(f"POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: {len(body)}\r\n\r\n".encode())

        def send() -> None:
            view = memoryview(body)
            while sent[0] < len(body):
                sent[0] += sock.send(view[sent[0]:sent[0] + (1 << 20)])

        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        last, deadline = -1, time.monotonic() + 20
        while sent[0] != last and time.monotonic() < deadline:  # until sending stalls
            last = sent[0]
            time.sleep(0.5)
        stalled_at = sent[0]
        # what is in flight: socket buffers both ways plus one 64 KiB piece in the server
        assert stalled_at < len(body) // 2, f"server took {stalled_at} bytes without being read"
        resp = http.client.HTTPResponse(sock)
        resp.begin()
        h = hashlib.sha256()
        while data := resp.read(1 << 20):
            h.update(data)
        sender.join(timeout=60)
    assert h.digest() == hashlib.sha256(body).digest()


def test_guest_reads_span_the_clients_small_chunks(serve: Serve, tmp_path: Path) -> None:
    """A body sent at once in 1 KiB chunks reaches the guest in reads of up to its 64 KiB, not one
    read per chunk. The WAT echo writes back each read as it comes, and each write is one
    response chunk, so the response's chunk sizes are the guest's read sizes."""
    srv = serve(make_app(tmp_path / "app", WAT_APP))
    body = os.urandom(96 << 10)
    with socket.create_connection(("127.0.0.1", srv.port), timeout=30) as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n"
                     b"connection: close\r\n\r\n" + _chunked(body, (1024,)))
        sizes, echoed = _read_chunk_sizes(sock)
    assert echoed == body
    assert len(sizes) <= 8, f"guest read in {len(sizes)} pieces: {sizes[:20]}"


def test_content_length_body_streams_piece_by_piece(serve: Serve, tmp_path: Path) -> None:
    """Reads gather what has arrived but never wait for more: with a Content-Length body sent in
    pieces, each piece comes back before the client sends the next."""
    srv = serve(make_app(tmp_path / "app", WAT_APP))
    pieces = (b"first", b"second", b"third")
    with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as sock:
        length = sum(map(len, pieces))
        sock.sendall(f"POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: {length}\r\n\r\n".encode())
        received = b""
        for piece in pieces:
            sock.sendall(piece)
            frame = b"%x\r\n%b\r\n" % (len(piece), piece)
            while frame not in received:  # the last piece may come with the end of the body
                data = sock.recv(65536)  # times out if the server holds the piece back
                assert data, received
                received += data
        while not received.endswith(b"0\r\n\r\n"):
            received += sock.recv(65536)
        assert received.startswith(b"HTTP/1.1 200 ")
