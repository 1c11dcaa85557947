"""Outbound Redis (`fermyon:spin/redis`) end to end: the Python guest (spin-sdk 3.4.1) against a
real `redis-server` on loopback, allowed only to `allowed_outbound_hosts`; errors as the
interface's values. Plus table tests for addresses and `execute` results."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest
import redis
from shim_services import Service
from shim_testlib import GUEST_CACHE, Running, Serve, build_python_app, free_port, make_app

from shim import outbound_redis
from shim.codec import V

ARTIFACTS = GUEST_CACHE / "artifacts"


@pytest.fixture(scope="module")
def py_wasm() -> Path:
    return build_python_app()


@pytest.fixture
def srv(serve: Serve, tmp_path: Path, py_wasm: Path, redis_server: Service) -> Running:
    root = make_app(tmp_path / "app", f"""\
        spin_manifest_version = 2
        [application]
        name = "redis-out"
        [variables]
        who = {{ default = "x" }}
        [[trigger.http]]
        route = "/..."
        component = "py"
        [component.py]
        source = "app.wasm"
        allowed_outbound_hosts = ["redis://{redis_server.address}", "redis://127.0.0.1:{CLOSED_PORT}"]
    """, guests=())
    (root / "app.wasm").symlink_to(py_wasm)
    return serve(root, cache_dir=ARTIFACTS)


CLOSED_PORT = free_port()  # allowed, but nothing listens there


def op(srv: Running, address: str, name: str, *args: Any) -> tuple[int, Any]:
    body = json.dumps({"address": address, "op": name, "args": list(args)}).encode()
    status, _, out = srv.request("POST", "/redis-op", body=body)
    return status, json.loads(out)["result"] if status == 200 else out.decode()


@pytest.fixture
def direct(redis_server: Service) -> redis.Redis:
    client = redis.Redis(port=redis_server.port)
    client.flushall()
    return client


def test_commands_reach_the_server(srv: Running, redis_server: Service, direct: redis.Redis) -> None:
    url = f"redis://{redis_server.address}"
    assert op(srv, url, "set", "greeting", "hello") == (200, None)
    assert direct.get("greeting") == b"hello"
    assert op(srv, url, "get", "greeting") == (200, "hello")
    assert op(srv, url, "get", "missing") == (200, None)
    assert op(srv, url, "incr", "n") == (200, 1)
    assert op(srv, url, "incr", "n") == (200, 2)
    assert op(srv, url, "sadd", "s", "a", "b", "c") == (200, 3)
    assert op(srv, url, "srem", "s", "b") == (200, 1)
    status, members = op(srv, url, "smembers", "s")
    assert status == 200 and sorted(members) == ["a", "c"]
    assert op(srv, url, "del", "greeting", "n", "absent") == (200, 2)
    assert op(srv, url, "execute", "SET", "k", "v") == (200, [["status", "OK"]])
    assert op(srv, url, "execute", "APPEND", "k", "w") == (200, [["int64", 2]])
    assert op(srv, url, "execute", "GET", "k") == (200, [["binary", "vw"]])
    assert op(srv, url, "execute", "GET", "none") == (200, [["nil", None]])
    direct.rpush("l", "x", "+OK", "z")  # a bulk string that looks like a status stays binary
    assert op(srv, url, "execute", "LRANGE", "l", 0, -1) == (200, [["binary", "x"], ["binary", "+OK"],
                                                                    ["binary", "z"]])


def test_publish_is_received(srv: Running, redis_server: Service, direct: redis.Redis) -> None:
    pubsub = direct.pubsub()
    pubsub.subscribe("news")
    assert pubsub.get_message(timeout=5)["type"] == "subscribe"
    got: list[Any] = []
    reader = threading.Thread(target=lambda: got.append(pubsub.get_message(timeout=10)))
    reader.start()
    assert op(srv, f"redis://{redis_server.address}", "publish", "news", "extra!") == (200, None)
    reader.join()
    assert got[0]["data"] == b"extra!"
    pubsub.close()


def test_errors_are_the_interface_values(srv: Running, redis_server: Service, direct: redis.Redis) -> None:
    url = f"redis://{redis_server.address}"
    direct.set("text", "abc")
    assert op(srv, url, "incr", "text") == (500, "redis error: Error_TypeError")
    assert op(srv, url, "sadd", "text", "x") == (500, "redis error: Error_TypeError")
    status, text = op(srv, url, "execute", "NOSUCHCOMMAND")
    assert status == 500 and text.startswith("redis error: Error_Other") and "unknown command" in text
    # not in allowed_outbound_hosts: refused without connecting
    assert op(srv, "redis://127.0.0.1:1", "get", "k") == (500, "redis error: Error_InvalidAddress")
    assert op(srv, "not a url", "get", "k") == (500, "redis error: Error_InvalidAddress")
    status, text = op(srv, f"redis://127.0.0.1:{CLOSED_PORT}", "get", "k")
    assert status == 500 and text.startswith("redis error: Error_Other"), text


@pytest.mark.parametrize(("address", "parsed"), [
    ("redis://127.0.0.1:6380", ("redis", "127.0.0.1", 6380)),
    ("redis://Cache.Local", ("redis", "cache.local", 6379)),
    ("rediss://h:1/0", ("rediss", "h", 1)),
    ("redis://user:pw@h:7", ("redis", "h", 7)),
    ("http://h:1", None), ("redis://", None), ("redis://h:99999", None), ("h:6379", None),
])
def test_parse_address(address: str, parsed: tuple[str, str, int] | None) -> None:
    assert outbound_redis.parse_address(address) == parsed


@pytest.mark.parametrize(("reply", "results"), [
    (None, [V("nil")]), (5, [V("int64", 5)]), (outbound_redis.Status(b"OK"), [V("status", "OK")]),
    (b"x", [V("binary", b"x")]), ([b"a", [1, None]], [V("binary", b"a"), V("int64", 1), V("nil")]),
    ([], []),
])
def test_flatten(reply: Any, results: list[V]) -> None:
    assert outbound_redis.flatten(reply) == results
