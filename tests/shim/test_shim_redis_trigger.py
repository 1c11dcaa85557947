"""The Redis trigger end to end: the Python guest (spin-sdk 3.4.1, world spin-all) subscribed to a
real `redis-server` on loopback; each message goes through its handler, which writes it back over
outbound Redis and into SQLite. In process, and under `spindle shim up` (which ends with status 1
when the Redis connection is lost). Plus table tests for the manifest's `[[trigger.redis]]`."""

from __future__ import annotations

import logging
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import redis
from shim_services import Service, start_redis
from shim_testlib import GUEST_CACHE, Serve, build_python_app, free_port, make_app, shim_up

from shim import redis_trigger
from shim.errors import ManifestError
from shim.manifest import load_manifest, retain_components

ARTIFACTS = GUEST_CACHE / "artifacts"


@pytest.fixture(scope="module")
def py_wasm() -> Path:
    return build_python_app()


def manifest(address: str, channels: tuple[str, ...] = ("orders",)) -> str:
    triggers = "".join(f'[[trigger.redis]]\nchannel = "{c}"\ncomponent = "py"\n' for c in channels)
    return f"""\
spin_manifest_version = 2
[application]
name = "redis-app"
[application.trigger.redis]
address = "{{{{ redis_address }}}}"
[variables]
redis_address = {{ default = "redis://{address}" }}
who = {{ default = "x" }}
[[trigger.http]]
route = "/..."
component = "py"
{triggers}[component.py]
source = "app.wasm"
sqlite_databases = ["default"]
allowed_outbound_hosts = ["redis://{address}"]
[component.py.variables]
redis_address = "{{{{ redis_address }}}}"
"""


def app_root(tmp_path: Path, py_wasm: Path, address: str, channels: tuple[str, ...] = ("orders",)) -> Path:
    root = make_app(tmp_path / "app", manifest(address, channels), guests=())
    (root / "app.wasm").symlink_to(py_wasm)
    return root


def wait_for(check: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def messages(db: Path) -> list[bytes]:
    if not db.exists():
        return []
    with sqlite3.connect(db) as conn:
        try:
            return [bytes(r[0]) for r in conn.execute("SELECT m FROM messages ORDER BY rowid")]
        except sqlite3.OperationalError:
            return []


def test_messages_run_the_handler(serve: Serve, tmp_path: Path, py_wasm: Path, redis_server: Service,
                                  caplog: pytest.LogCaptureFixture) -> None:
    direct = redis.Redis(port=redis_server.port)
    direct.delete("received")
    state = tmp_path / "state"
    srv = serve(app_root(tmp_path, py_wasm, redis_server.address, ("orders", "other")), state_dir=state,
                cache_dir=ARTIFACTS)
    assert [(b.trigger.channel, b.address) for b in srv.app.redis] == [
        ("orders", f"redis://{redis_server.address}"), ("other", f"redis://{redis_server.address}")]
    ended: list[tuple[str, int]] = []
    subs = redis_trigger.subscribers(srv.app.redis, srv.app.limits)
    assert len(subs) == 1  # one subscription for the address's two channels
    subs[0].start(lambda what, code: ended.append((what, code)))
    try:
        wait_for(subs[0].subscribed.is_set, "the subscription")
        with caplog.at_level(logging.INFO):
            for payload in (b"first", b"trap", b"\x00second"):
                assert direct.publish("orders", payload) == 1
            assert direct.publish("other", b"third") == 1
            wait_for(lambda: direct.llen("received") == 3, "three messages handled")
        assert direct.lrange("received", 0, -1) == [b"first", b"\x00second", b"third"]
        assert messages(state / "sqlite-default.db") == [b"first", b"\x00second", b"third"]
        # the handler that failed is logged with its component and channel; the others went on
        assert any("redis trigger" in r.message and "orders" in r.message and "py" in r.message
                   and "trap" in r.message for r in caplog.records if r.levelno == logging.ERROR)
        assert any("redis message b'first'" in r.message for r in caplog.records)
        assert ended == []
    finally:
        subs[0].stop()


def test_shim_up_runs_the_trigger_and_exits_when_redis_goes(tmp_path: Path, py_wasm: Path) -> None:
    with start_redis(tmp_path) as server:
        root = app_root(tmp_path, py_wasm, server.address)
        direct = redis.Redis(port=server.port)
        with shim_up(root, tmp_path) as up:
            wait_for(lambda: direct.pubsub_numsub("orders")[0][1] == 1, "shim up's subscription")
            direct.publish("orders", "via shim up")
            wait_for(lambda: direct.llen("received") == 1, "the message handled")
            assert up.get("/.well-known/spin/health")[0] == 200  # HTTP in the same process
            server.proc.terminate()  # the trigger loses its connection: the runtime ends, status 1
            assert up.proc.wait(timeout=30) == 1
        assert messages(tmp_path / "state" / "sqlite-default.db") == [b"via shim up"]
    assert f"Redis Channels:\n  py: orders at redis://{server.address}\n" in up.output
    assert "lost the connection" in up.output


def test_shim_up_exits_when_it_cannot_subscribe(tmp_path: Path, py_wasm: Path) -> None:
    root = app_root(tmp_path, py_wasm, f"127.0.0.1:{free_port()}")
    # run to its end: with a cold artifact cache it may exit before the HTTP port ever listens
    proc = subprocess.run(
        [sys.executable, "-m", "reconciler.cli", "shim", "up", str(root),
         "--listen", f"127.0.0.1:{free_port()}",
         "--cache-dir", str(tmp_path / "cache"), "--state-dir", str(tmp_path / "state")],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120)
    assert proc.returncode == 1, proc.stdout
    assert "cannot subscribe to orders" in proc.stdout


MINIMAL = """\
spin_manifest_version = 2
[application]
name = "r"
{app}
[[trigger.redis]]
{trigger}
[component.c]
source = "c.wasm"
[component.d]
source = "d.wasm"
"""


@pytest.mark.parametrize(("app", "trigger", "expected"), [
    ('[application.trigger.redis]\naddress = "redis://a:1"', 'channel = "x"\ncomponent = "c"',
     ("x", "c", "redis://a:1")),
    ('[application.trigger.redis]\naddress = "redis://a:1"',
     'channel = "x"\ncomponent = "d"\naddress = "redis://b:2"', ("x", "d", "redis://b:2")),
    ("", 'channel = "x"\ncomponent = "c"\naddress = "redis://b:2"', ("x", "c", "redis://b:2")),
    ("", 'channel = "x"\ncomponent = "c"', "no Redis address"),
    ('[application.trigger.redis]\naddress = "redis://a:1"', 'component = "c"', "channel"),
    ('[application.trigger.redis]\naddress = "redis://a:1"', 'channel = "x"\ncomponent = "e"',
     "no component 'e'"),
    ('[application.trigger.redis]\naddress = "redis://a:1"', 'channel = "x"', "component"),
])
def test_manifest_redis_triggers(tmp_path: Path, app: str, trigger: str,
                                 expected: tuple[str, str, str] | str) -> None:
    path = tmp_path / "spin.toml"
    path.write_text(MINIMAL.format(app=app, trigger=trigger))
    if isinstance(expected, str):
        with pytest.raises(ManifestError, match=expected):
            load_manifest(path)
        return
    (t,) = load_manifest(path).redis_triggers
    assert (t.channel, t.component, t.address) == expected
    assert retain_components(load_manifest(path), "c" if expected[1] == "d" else "d").redis_triggers == ()
