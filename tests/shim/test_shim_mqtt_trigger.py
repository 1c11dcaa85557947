"""The MQTT trigger (spin-trigger-mqtt's manifest keys and world): a Python guest (spin-sdk 3.4.1,
world spin-mqtt-app) subscribed to a real `mosquitto` on loopback, with a user and password; each
message runs `handle-message(message, metadata)`, which writes it into SQLite. In process, and
under `spindle shim up` (status 1 when the broker goes). Plus table tests."""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import paho.mqtt.publish as publish
import pytest
from shim_services import MQTT_PASSWORD, MQTT_USER, Service, start_mosquitto
from shim_testlib import GUEST_CACHE, Serve, build_python_app, make_app, shim_up

from shim import mqtt_trigger
from shim.app import LoadOptions, load_app
from shim.engine import EngineBox
from shim.errors import ManifestError
from shim.manifest import load_manifest, retain_components

ARTIFACTS = GUEST_CACHE / "artifacts"


@pytest.fixture(scope="module")
def mqtt_wasm() -> Path:
    return build_python_app("pymqtt", "spin-mqtt-app")


def manifest(port: int, password: str = MQTT_PASSWORD) -> str:
    return f"""\
spin_manifest_version = 2
[application]
name = "mqtt-app"
[application.trigger.mqtt]
address = "mqtt://127.0.0.1:{port}"
username = "{{{{ mqtt_user }}}}"
password = "{password}"
keep_alive_interval = "30"
[variables]
mqtt_user = {{ default = "{MQTT_USER}" }}
[[trigger.mqtt]]
id = "orders"
component = "sub"
topic = "orders/#"
qos = "1"
[component.sub]
source = "app.wasm"
sqlite_databases = ["default"]
"""


def app_root(tmp_path: Path, wasm: Path, port: int, password: str = MQTT_PASSWORD) -> Path:
    root = make_app(tmp_path / "app", manifest(port, password), guests=())
    (root / "app.wasm").symlink_to(wasm)
    return root


def send(broker: Service, topic: str, payload: bytes) -> None:
    publish.single(topic, payload, qos=1, hostname="127.0.0.1", port=broker.port,
                   auth={"username": MQTT_USER, "password": MQTT_PASSWORD})


def wait_for(check: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def messages(db: Path) -> list[tuple[str, bytes]]:
    if not db.exists():
        return []
    with sqlite3.connect(db) as conn:
        try:
            return [(t, bytes(m)) for t, m in conn.execute("SELECT topic, m FROM messages ORDER BY rowid")]
        except sqlite3.OperationalError:
            return []


@pytest.fixture
def broker(tmp_path: Path) -> Service:
    with start_mosquitto(tmp_path) as service:
        yield service


def test_messages_run_the_handler(serve: Serve, tmp_path: Path, mqtt_wasm: Path, broker: Service,
                                  caplog: pytest.LogCaptureFixture) -> None:
    state = tmp_path / "state"
    srv = serve(app_root(tmp_path, mqtt_wasm, broker.port), state_dir=state, cache_dir=ARTIFACTS)
    (binding,) = srv.app.mqtt
    assert (binding.username, binding.topic, binding.trigger.qos) == (MQTT_USER, "orders/#", 1)
    ended: list[tuple[str, int]] = []
    (sub,) = mqtt_trigger.subscribers(srv.app.mqtt, srv.app.limits)
    sub.start(lambda what, code: ended.append((what, code)))
    try:
        wait_for(sub.subscribed.is_set, "the subscription")
        with caplog.at_level(logging.INFO):
            send(broker, "orders/eu", b"first")
            send(broker, "orders/eu", b"fail")
            send(broker, "orders/us", b"\x00second")
            send(broker, "elsewhere", b"not for us")
            wait_for(lambda: len(messages(state / "sqlite-default.db")) == 2, "two messages handled")
        assert messages(state / "sqlite-default.db") == [("orders/eu", b"first"),
                                                         ("orders/us", b"\x00second")]
        assert any("mqtt trigger orders" in r.message and "other: asked to fail" in r.message
                   for r in caplog.records if r.levelno == logging.ERROR)
        assert ended == []
    finally:
        sub.stop()


def test_a_refused_login_ends_the_trigger(engine_box: EngineBox, tmp_path: Path, mqtt_wasm: Path,
                                          broker: Service) -> None:
    app = load_app(app_root(tmp_path, mqtt_wasm, broker.port, password="wrong"), engine_box.engine,
                   LoadOptions(env={}, cache_dir=ARTIFACTS, state_dir=tmp_path / "state"))
    ended: list[tuple[str, int]] = []
    (sub,) = mqtt_trigger.subscribers(app.mqtt, app.limits)
    try:
        sub.start(lambda what, code: ended.append((what, code)))
        wait_for(lambda: bool(ended), "the trigger to end", timeout=30)
        assert ended == [("mqtt trigger orders", 1)]
    finally:
        sub.stop()
        app.close()


def test_shim_up_runs_the_trigger_and_exits_when_the_broker_goes(tmp_path: Path, mqtt_wasm: Path) -> None:
    with start_mosquitto(tmp_path) as server:
        root = app_root(tmp_path, mqtt_wasm, server.port)
        with shim_up(root, tmp_path) as up:
            db = tmp_path / "state" / "sqlite-default.db"

            def delivered() -> bool:
                send(server, "orders/up", b"via shim up")  # until the subscription is there
                return bool(messages(db))
            wait_for(delivered, "a message handled")
            server.proc.terminate()
            assert up.proc.wait(timeout=30) == 1
    assert messages(db)[0] == ("orders/up", b"via shim up")
    assert f"MQTT Topics:\n  sub: orders/# (qos 1) at mqtt://127.0.0.1:{server.port}\n" in up.output
    assert "lost the connection" in up.output


def test_sqs_is_refused_at_load(engine_box: EngineBox, tmp_path: Path) -> None:
    root = make_app(tmp_path / "app", 'spin_manifest_version = 2\n[application]\nname = "q"\n'
                    '[[trigger.sqs]]\ncomponent = "c"\nqueue_url = "https://sqs.example/q"\n'
                    '[component.c]\nsource = "handler.wasm"\n')
    with pytest.raises(ManifestError, match=r"trigger\.sqs: sqs triggers are not supported"):
        load_app(root, engine_box.engine, LoadOptions(env={}, state_dir=tmp_path / "s"))


SETTINGS = '[application.trigger.mqtt]\naddress = "mqtt://b:1"\nusername = "u"\npassword = "p"\n' \
           'keep_alive_interval = "15"\n'


@pytest.mark.parametrize(("settings", "trigger", "expected"), [
    (SETTINGS, 'component = "c"\ntopic = "t"\nqos = "2"', ("c", "t", 2, "mqtt://b:1", "u", "p", 15)),
    ('[application.trigger.mqtt]\naddress = "mqtt://b"', 'component = "c"\ntopic = "t"',
     ("c", "t", 0, "mqtt://b", "", "", 30)),
    (SETTINGS, 'component = "c"\ntopic = "t"\nqos = 1', ("c", "t", 1, "mqtt://b:1", "u", "p", 15)),
    (SETTINGS, 'component = "c"\ntopic = "t"\nqos = "3"', r"qos: expected a number in 0\.\.2"),
    (SETTINGS, 'component = "c"', "topic"),
    (SETTINGS, 'component = "x"\ntopic = "t"', "no component 'x'"),
    ("", 'component = "c"\ntopic = "t"', "address: is required for mqtt triggers"),
])
def test_manifest_mqtt_triggers(tmp_path: Path, settings: str, trigger: str,
                                expected: tuple[object, ...] | str) -> None:
    path = tmp_path / "spin.toml"
    path.write_text(f'spin_manifest_version = 2\n[application]\nname = "m"\n{settings}\n[[trigger.mqtt]]\n'
                    f'{trigger}\n[component.c]\nsource = "c.wasm"\n[component.d]\nsource = "d.wasm"\n')
    if isinstance(expected, str):
        with pytest.raises(ManifestError, match=expected):
            load_manifest(path)
        return
    (t,) = load_manifest(path).mqtt_triggers
    assert (t.component, t.topic, t.qos, t.address, t.username, t.password, t.keep_alive) == expected
    assert retain_components(load_manifest(path), "d").mqtt_triggers == ()


@pytest.mark.parametrize(("address", "parsed"), [
    ("mqtt://localhost:1883", ("localhost", 1883, False)), ("mqtt://h", ("h", 1883, False)),
    ("mqtts://h", ("h", 8883, True)), ("tcp://h:7", ("h", 7, False)),
    ("http://h", None), ("mqtt://", None), ("mqtt://h:99999", None),
])
def test_parse_address(address: str, parsed: tuple[str, int, bool] | None) -> None:
    assert mqtt_trigger.parse_address(address) == parsed
