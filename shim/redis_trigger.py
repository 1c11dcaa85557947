"""The Redis trigger: messages published on a channel run the component's
`fermyon:spin/inbound-redis` `handle-message`, as Spin's `[[trigger.redis]]` does.

One subscriber thread per address (redis-py pub/sub, RESP2) holds that address's channels; its
messages are handled one at a time, in order, each in a fresh instance. A handler that traps or
returns its error value is logged and the next message goes on. Losing the connection (or not
getting one at start) ends the trigger with status 1, and with it the runtime, as Spin does.
Only the serving process runs triggers (extra HTTP workers do not, or each message would run
once per process).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from itertools import groupby

import redis

from shim.app import RedisBinding
from shim.errors import GuestError
from shim.executors import Limits

log = logging.getLogger("shim.redis")

OnExit = Callable[[str, int], None]  # (what ended, exit status)


class RedisSubscriber:
    """The channels of one address, on one thread."""

    def __init__(self, address: str, bindings: Sequence[RedisBinding], limits: Limits) -> None:
        self.address, self.bindings, self.limits = address, list(bindings), limits
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.subscribed = threading.Event()

    def start(self, on_exit: OnExit) -> None:
        self._thread = threading.Thread(target=self._run, args=(on_exit,), name="shim-redis", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30) -> None:
        """Stop after the message being handled; waits for it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self, on_exit: OnExit) -> None:
        channels = sorted({b.trigger.channel for b in self.bindings})
        try:
            client = redis.Redis.from_url(self.address, protocol=2, socket_connect_timeout=10)
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            pubsub.subscribe(*channels)
        except (redis.RedisError, OSError, ValueError) as exc:
            log.error("redis trigger: cannot subscribe to %s at %s: %s", ", ".join(channels),
                      self.address, exc)
            on_exit(f"redis trigger {self.address}", 1)
            return
        self.subscribed.set()
        try:
            while not self._stop.is_set():
                msg = pubsub.get_message(timeout=0.2)
                if msg is not None and msg.get("type") == "message":
                    self._dispatch(_text(msg["channel"]), bytes(msg["data"]))
        except (redis.RedisError, OSError) as exc:
            if not self._stop.is_set():
                log.error("redis trigger: lost the connection to %s: %s", self.address, exc)
                on_exit(f"redis trigger {self.address}", 1)
        finally:
            pubsub.close()
            client.close()

    def _dispatch(self, channel: str, payload: bytes) -> None:
        for b in self.bindings:
            if b.trigger.channel != channel:
                continue
            try:
                b.executor.handle(channel, payload, self.limits)
            except GuestError as exc:
                log.error("redis trigger %s (channel %s): %s", b.trigger.id, channel, exc)


def subscribers(bindings: Sequence[RedisBinding], limits: Limits) -> list[RedisSubscriber]:
    """One subscriber per distinct address."""
    ordered = sorted(bindings, key=lambda b: b.address)
    return [RedisSubscriber(address, list(group), limits)
            for address, group in groupby(ordered, key=lambda b: b.address)]


def _text(channel: bytes | str) -> str:
    return channel.decode("utf-8", "replace") if isinstance(channel, bytes) else channel
