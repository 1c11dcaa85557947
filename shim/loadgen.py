"""A small HTTP/1.1 keep-alive load generator (for bench/shim.py and the shim's load test).

Each worker thread owns one connection and sends pre-encoded requests; responses are parsed just
enough to find their end (content-length or chunked). Latencies are recorded per request.
"""

from __future__ import annotations

import socket
import statistics
import threading
import time
from dataclasses import dataclass, field


@dataclass
class LoadResult:
    requests: int
    errors: int
    seconds: float
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile(self, p: float) -> float:
        if not self.latencies:
            return 0.0
        s = sorted(self.latencies)
        return s[min(len(s) - 1, int(p / 100 * len(s)))]

    @property
    def p50(self) -> float:
        return statistics.median(self.latencies) if self.latencies else 0.0


class _Conn:
    def __init__(self, host: str, port: int, timeout: float) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def _fill(self) -> None:
        data = self.sock.recv(262144)
        if not data:
            raise ConnectionError("connection closed by server")
        self.buf += data

    def _line(self) -> bytes:
        while b"\r\n" not in self.buf:
            self._fill()
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line

    def _take(self, n: int) -> bytes:
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def roundtrip(self, request: bytes) -> tuple[int, bytes, bool]:
        """Returns status, body and whether the server keeps the connection open."""
        self.sock.sendall(request)
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for ln in lines[1:]:
            k, _, v = ln.partition(b":")
            headers[k.strip().lower()] = v.strip()
        keep = headers.get(b"connection", b"").lower() != b"close"
        if headers.get(b"transfer-encoding", b"").lower() == b"chunked":
            parts = []
            while True:
                size = int(self._line().split(b";")[0], 16)
                if size == 0:
                    self._line()
                    break
                parts.append(self._take(size))
                self._take(2)
            return status, b"".join(parts), keep
        return status, self._take(int(headers.get(b"content-length", b"0"))), keep

    def close(self) -> None:
        self.sock.close()


def encode_request(method: str, path: str, body: bytes = b"", host: str = "127.0.0.1") -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nhost: {host}\r\ncontent-length: {len(body)}\r\n\r\n"
    return head.encode() + body


def run_load(host: str, port: int, request: bytes, total: int, concurrency: int,
             timeout: float = 30.0, expect_status: int = 200) -> LoadResult:
    lock = threading.Lock()
    remaining = [total]
    lat: list[float] = []
    statuses: dict[int, int] = {}
    errors = [0]

    def worker() -> None:
        conn: _Conn | None = None
        local: list[float] = []
        local_status: dict[int, int] = {}
        local_err = 0
        while True:
            with lock:
                if remaining[0] <= 0:
                    break
                remaining[0] -= 1
            t0 = time.perf_counter()
            try:
                if conn is None:
                    conn = _Conn(host, port, timeout)
                status, _, keep = conn.roundtrip(request)
                local.append(time.perf_counter() - t0)
                local_status[status] = local_status.get(status, 0) + 1
                if status != expect_status:
                    local_err += 1
                if not keep:
                    conn.close()
                    conn = None
            except (OSError, ValueError, IndexError):
                local_err += 1
                if conn is not None:
                    conn.close()
                conn = None
        if conn is not None:
            conn.close()
        with lock:
            lat.extend(local)
            errors[0] += local_err
            for k, v in local_status.items():
                statuses[k] = statuses.get(k, 0) + v

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return LoadResult(total, errors[0], time.perf_counter() - start, lat, statuses)
