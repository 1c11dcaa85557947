"""The MQTT trigger, as spin-trigger-mqtt runs it: `[application.trigger.mqtt]` names the broker
(`address` `mqtt://host[:port]` or `mqtts://`, `username`, `password`, `keep_alive_interval`),
each `[[trigger.mqtt]]` subscribes its `topic` at its `qos` with its own client (paho-mqtt), and
each message runs the component's `handle-message(message, metadata { topic })`.

Messages of one subscription are handled one at a time, in order, each in a fresh instance; a
handler that traps or returns its error value is logged and the next message goes on. Not
connecting at start, or losing the connection, ends the trigger with status 1, and with it the
runtime. Only the serving process runs triggers.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from shim.app import MqttBinding
from shim.errors import GuestError
from shim.executors import Limits

log = logging.getLogger("shim.mqtt")

OnExit = Callable[[str, int], None]
DEFAULT_PORT = {"mqtt": 1883, "tcp": 1883, "mqtts": 8883, "ssl": 8883}


def parse_address(address: str) -> tuple[str, int, bool] | None:
    """(host, port, tls) of an `mqtt://` / `mqtts://` (or `tcp://` / `ssl://`) address."""
    try:
        url = urlsplit(address)
        if url.scheme not in DEFAULT_PORT or not url.hostname:
            return None
        return url.hostname, url.port or DEFAULT_PORT[url.scheme], url.scheme in ("mqtts", "ssl")
    except ValueError:
        return None


class MqttSubscriber:
    """One `[[trigger.mqtt]]`: a client, a subscription, a thread."""

    def __init__(self, binding: MqttBinding, limits: Limits) -> None:
        self.binding, self.limits = binding, limits
        self.subscribed = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._client: mqtt.Client | None = None

    @property
    def what(self) -> str:
        return f"mqtt trigger {self.binding.trigger.id}"

    def start(self, on_exit: OnExit) -> None:
        self._thread = threading.Thread(target=self._run, args=(on_exit,), name="shim-mqtt", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30) -> None:
        """Stop after the message being handled; waits for it."""
        self._stopping.set()
        if self._client is not None:
            self._client.disconnect()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self, on_exit: OnExit) -> None:
        b = self.binding
        where = parse_address(b.address)
        if where is None:
            log.error("%s: %r is not an mqtt:// address", self.what, b.address)
            on_exit(self.what, 1)
            return
        host, port, tls = where
        client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
        if b.username:
            client.username_pw_set(b.username, b.password or None)
        if tls:
            client.tls_set()
        client.on_connect = self._on_connect
        client.on_subscribe = lambda *_args: self.subscribed.set()
        client.on_message = self._on_message

        def on_disconnect(_c: Any, _u: Any, _flags: Any, reason: Any, _props: Any) -> None:
            if not self._stopping.is_set():
                log.error("%s: lost the connection to %s: %s", self.what, b.address, reason)
                self._stopping.set()
                on_exit(self.what, 1)

        client.on_disconnect = on_disconnect
        self._client = client
        try:
            client.connect(host, port, keepalive=b.trigger.keep_alive)
        except (OSError, ValueError) as exc:
            log.error("%s: cannot connect to %s: %s", self.what, b.address, exc)
            on_exit(self.what, 1)
            return
        try:  # our own loop, not loop_forever: that one reconnects, spin-trigger-mqtt does not
            while not self._stopping.is_set():
                if client.loop(timeout=0.2) != mqtt.MQTT_ERR_SUCCESS and not self._stopping.is_set():
                    on_disconnect(client, None, None, "the connection failed", None)
        finally:
            client.disconnect()

    def _on_connect(self, client: mqtt.Client, _u: Any, _flags: Any, reason: Any, _props: Any) -> None:
        if reason.is_failure:
            log.error("%s: the broker refused the connection: %s", self.what, reason)
            return  # on_disconnect follows
        client.subscribe(self.binding.topic, self.binding.trigger.qos)

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            self.binding.executor.handle(msg.topic, bytes(msg.payload), self.limits)
        except GuestError as exc:
            log.error("%s (topic %s): %s", self.what, msg.topic, exc)


def subscribers(bindings: list[MqttBinding], limits: Limits) -> list[MqttSubscriber]:
    return [MqttSubscriber(b, limits) for b in bindings]
