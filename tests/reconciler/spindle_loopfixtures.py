"""A real, tiny reconcile function for the loop tests, and helpers to sign and send webhooks,
pick free ports and wait for conditions.

`FileReconciler` is not a mock: it reconciles a checkout into an in-memory "cluster" (a dict),
one object per `*.yaml` file, and classifies each as Created, Configured, Unchanged or Pruned.
"""

from __future__ import annotations

import hashlib
import hmac
import socket
import threading
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

from reconciler.changeset import Action, ChangeSetEntry, FieldDrift, ObjectRef, ReconcileRecord, Revision


def _now() -> str:
    return datetime.now(UTC).isoformat()


class FileReconciler:
    def __init__(self, *, delay: float = 0.0, fail_times: int = 0) -> None:
        self.delay = delay
        self.fail_times = fail_times
        self.cluster: dict[str, str] = {}
        self.checkouts: list[tuple[Path, str | None]] = []
        self.started_at: list[float] = []
        self.finished_at: list[float] = []
        self.active = 0
        self.max_active = 0
        self._lock = threading.Lock()

    def __call__(self, checkout: Path, *, source_name: str, revision: Revision | None) -> ReconcileRecord:
        with self._lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
            self.started_at.append(time.monotonic())
            self.checkouts.append((checkout, revision.sha if revision else None))
            failing = self.fail_times > 0
            self.fail_times -= 1
        try:
            record = ReconcileRecord(source=source_name, revision=revision, started=_now())
            time.sleep(self.delay)
            if failing:
                record.errors.append("cluster unreachable (simulated by the test's reconcile function)")
                return record
            desired = {p.stem: p.read_text() for p in sorted(checkout.glob("*.yaml"))}
            for name, text in desired.items():
                ref = ObjectRef("v1", "ConfigMap", "default", name)
                live = self.cluster.get(name)
                if live is None:
                    record.entries.append(ChangeSetEntry(ref, Action.CREATED))
                elif live != text:
                    patch = ({"op": "replace", "path": "/data/text", "value": text},)
                    fields = (FieldDrift(".data.text", live, text),)
                    record.entries.append(ChangeSetEntry(ref, Action.CONFIGURED, patch=patch, fields=fields))
                else:
                    record.entries.append(ChangeSetEntry(ref, Action.UNCHANGED))
                self.cluster[name] = text
            for name in sorted(set(self.cluster) - set(desired)):
                gone = ObjectRef("v1", "ConfigMap", "default", name)
                record.entries.append(ChangeSetEntry(gone, Action.PRUNED))
                del self.cluster[name]
            record.finished = _now()
            return record
        finally:
            with self._lock:
                self.active -= 1
                self.finished_at.append(time.monotonic())

    @property
    def runs(self) -> int:
        with self._lock:
            return len(self.started_at)


def free_port() -> int:
    """A loopback port nothing listens on right now (tests never use fixed ports)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(predicate: object, timeout: float = 10.0, step: float = 0.01) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(step)
    return False


def sign(secret: bytes, body: bytes) -> str:
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def post(url: str, body: bytes, headers: dict[str, str]) -> int:
    req = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse_metrics(text: str) -> Samples:
    """Prometheus exposition text as {(sample name, sorted labels): value}."""
    from prometheus_client.parser import text_string_to_metric_families

    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def scrape(url: str) -> Samples:
    """GET `url`/metrics and parse it."""
    status, text = get(url + "/metrics")
    assert status == 200, text
    return parse_metrics(text)


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return int(resp.status), resp.read().decode()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read().decode()
