"""Outbound Redis for guests: `fermyon:spin/redis` (2.0.0) and `spin:redis/redis` (3.0.0), on redis-py.

`open` is allowed only to addresses in the component's `allowed_outbound_hosts`
(`redis://host:port`; port 6379 when none is given), as Spin does: any other address is
`invalid-address` and no connection is made. Connections are pooled per address for the process
(redis-py's pool is thread-safe). Server and network failures are `other(<message>)`; a value of
the wrong type (`incr` on a non-integer, a set operation on a string) is `type-error`.

`execute` answers Spin's `redis-result`s: nil, status (simple strings such as `OK`), int64, binary;
arrays are flattened, as Spin does. redis-py's RESP2 parser gives simple strings as bytes, so the
connections here use a parser subclass that keeps them apart (`_StatusParser`).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import redis
from redis._parsers.resp2 import _RESP2Parser
from redis.utils import SENTINEL

from shim import hostlink
from shim.codec import Err, Ok, V
from shim.outbound import HostPattern

INTERFACES = ("fermyon:spin/redis", "spin:redis/redis")
DEFAULT_PORT = 6379


class Status(bytes):
    """A RESP simple-string reply (`+OK`), as opposed to a bulk string."""


class _StatusParser(_RESP2Parser):
    """redis-py's RESP2 parser, except that simple strings come back as `Status`."""

    def _read_response(self, disable_decoding: bool = False, timeout: Any = SENTINEL) -> Any:
        buffer: Any = self._buffer
        pos = buffer.get_pos()
        raw: bytes = buffer.readline(timeout=timeout)
        if raw[:1] == b"+":
            return Status(raw[1:])
        if raw[:1] == b"*" and raw[1:] != b"-1":
            return [self._read_response(disable_decoding, timeout) for _ in range(int(raw[1:]))]
        buffer.rewind(pos)  # every other reply: redis-py parses it
        return super()._read_response(disable_decoding=disable_decoding, timeout=timeout)


def parse_address(address: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of a `redis://` or `rediss://` URL, or None if it is not one."""
    try:
        url = urlsplit(address)
        port = url.port or DEFAULT_PORT
    except ValueError:
        return None
    if url.scheme not in ("redis", "rediss") or not url.hostname:
        return None
    return url.scheme, url.hostname.lower(), port


def flatten(reply: Any) -> list[V]:
    """A redis reply → Spin's `list<redis-result>` (arrays flattened)."""
    if isinstance(reply, list):
        return [v for item in reply for v in flatten(item)]
    if reply is None:
        return [V("nil")]
    if isinstance(reply, Status):
        return [V("status", bytes(reply).decode("utf-8", "replace"))]
    if isinstance(reply, bool | int):
        return [V("int64", int(reply))]
    if isinstance(reply, str):
        return [V("binary", reply.encode())]
    return [V("binary", bytes(reply))]


def _argument(p: V) -> bytes | int:
    return int(p.value) if p.tag == "int64" else bytes(p.value)


class Clients:
    """One redis-py pool per address, for the process."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._lock = threading.Lock()
        self._pools: dict[str, redis.ConnectionPool] = {}

    def client(self, address: str) -> redis.Redis:
        with self._lock:
            pool = self._pools.get(address)
            if pool is None:
                pool = redis.ConnectionPool.from_url(
                    address, protocol=2, parser_class=_StatusParser, socket_connect_timeout=self.timeout,
                    socket_timeout=self.timeout)
                self._pools[address] = pool
        return redis.Redis(connection_pool=pool)

    def execute(self, address: str, *args: bytes | int | str) -> Any:
        """Send one command on a pooled connection and read its raw reply (no response callbacks)."""
        client = self.client(address)
        conn: Any = client.connection_pool.get_connection()  # redis-py's Connection is untyped here
        try:
            conn.send_command(*args)
            reply = conn.read_response()
        except BaseException:
            conn.disconnect()
            raise
        finally:
            client.connection_pool.release(conn)
        if isinstance(reply, redis.ResponseError):
            raise reply
        return reply


def _error(exc: Exception) -> V:
    text = str(exc)
    if isinstance(exc, redis.ResponseError) and (text.startswith("WRONGTYPE") or "not an integer" in text):
        return V("type-error")
    return V("other", text or type(exc).__name__)


def host_impls(clients: Clients, allowed_outbound_hosts: Sequence[str]) -> hostlink.Implementations:
    patterns = [HostPattern.parse(h) for h in allowed_outbound_hosts]

    def address_of(rep: int) -> str:
        address: str = hostlink.current().get(rep)
        return address

    def open_(address: str) -> Any:
        where = parse_address(address)
        if where is None or not any(p.allows(*where) for p in patterns):
            return Err(V("invalid-address"))
        try:
            clients.execute(address, "PING")
        except (redis.RedisError, OSError, ValueError) as exc:
            return Err(_error(exc))
        return Ok(hostlink.current().new("connection", address))

    def call(rep: int, convert: Any, *args: Any) -> Any:
        try:
            return Ok(convert(clients.execute(address_of(rep), *args)))
        except (redis.RedisError, OSError) as exc:
            return Err(_error(exc))

    def get(rep: int, key: str) -> Any:
        try:
            reply = clients.execute(address_of(rep), "GET", key)
        except (redis.RedisError, OSError) as exc:
            return Err(_error(exc))
        return Ok(None if reply is None else bytes(reply))

    def execute(rep: int, command: str, arguments: list[V]) -> Any:
        return call(rep, flatten, *command.split(), *(_argument(a) for a in arguments))

    def none(_reply: Any) -> None:
        return None

    def strings(reply: Any) -> list[str]:
        return [bytes(m).decode("utf-8", "replace") for m in reply]

    impls: hostlink.Implementations = {}
    for iface in INTERFACES:
        m = f"{iface}#[method]connection."
        impls[f"{iface}#[static]connection.open"] = open_
        impls[m + "publish"] = lambda rep, channel, payload: call(rep, none, "PUBLISH", channel, payload)
        impls[m + "get"] = get
        impls[m + "set"] = lambda rep, key, value: call(rep, none, "SET", key, value)
        impls[m + "incr"] = lambda rep, key: call(rep, int, "INCR", key)
        impls[m + "del"] = lambda rep, keys: call(rep, int, "DEL", *keys)
        impls[m + "sadd"] = lambda rep, key, values: call(rep, int, "SADD", key, *values)
        impls[m + "smembers"] = lambda rep, key: call(rep, strings, "SMEMBERS", key)
        impls[m + "srem"] = lambda rep, key, values: call(rep, int, "SREM", key, *values)
        impls[m + "execute"] = execute
    return impls
