"""Task events for containerd's subscribers (`ctr events`, CRI's OOM handling), sent through the
publish binary containerd names with `-publish-binary`:
`<binary> --address <grpc socket> publish --topic /tasks/exit --namespace <ns>` with the event
as a serialized `google.protobuf.Any` on stdin.

One thread sends them in order (a /tasks/exit must never overtake its /tasks/start), retrying
while containerd restarts; `close()` waits for what is queued, so a daemon that exits after the
last Delete still announces it.
"""

from __future__ import annotations

import logging
import queue
import subprocess
import threading
import time

from google.protobuf import any_pb2
from google.protobuf.message import Message

log = logging.getLogger("shim.containerd.events")

TASK_CREATE = "/tasks/create"
TASK_START = "/tasks/start"
TASK_EXIT = "/tasks/exit"
TASK_DELETE = "/tasks/delete"
TASK_OOM = "/tasks/oom"


def to_any(message: Message) -> any_pb2.Any:
    # containerd's typeurl registers its events under their bare full names
    return any_pb2.Any(type_url=message.DESCRIPTOR.full_name, value=message.SerializeToString())


class Publisher:
    def __init__(self, binary: str, address: str, namespace: str, *, attempts: int = 5) -> None:
        self._cmd = [binary, "--address", address, "publish", "--namespace", namespace, "--topic"]
        self._attempts = attempts
        self._queue: queue.Queue[tuple[str, bytes] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="publisher", daemon=True)
        self._enabled = bool(binary and address)
        if self._enabled:
            self._thread.start()

    def publish(self, topic: str, event: Message) -> None:
        if self._enabled:
            self._queue.put((topic, to_any(event).SerializeToString()))

    def close(self, timeout: float = 10.0) -> None:
        if self._enabled and self._thread.is_alive():
            self._queue.put(None)
            self._thread.join(timeout)

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            topic, payload = item
            for attempt in range(self._attempts):
                try:
                    proc = subprocess.run([*self._cmd, topic], input=payload, capture_output=True,
                                          timeout=10, check=False)
                except (OSError, subprocess.TimeoutExpired) as exc:
                    err = str(exc)
                else:
                    if proc.returncode == 0:
                        break
                    err = proc.stderr.decode(errors="replace").strip()
                if attempt + 1 == self._attempts:
                    log.warning("cannot publish %s: %s", topic, err)
                else:
                    time.sleep(0.2 * 2 ** attempt)  # containerd may be restarting
