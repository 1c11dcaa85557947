"""One writer per source: a `coordination.k8s.io/v1` Lease held for the length of a run.

Every run that changes the cluster (`apply`, each `reconcile` run) takes the Lease
`spindle-<source>` in `spindle-system` (the namespace of its inventory), renews it from a
background thread while it runs and gives it back at the end (its holder cleared). A second run
on the same source waits, saying who holds it and since when, until the holder releases it, its
renewals stop long enough for it to expire (a holder killed with -9), or the wait times out.
`diff`, `--detect-only` and `--dry-run` change nothing and take no Lease.

Writes are optimistic: a create that meets an existing Lease, or an update that meets a newer
resourceVersion, means another run got there first and is read again. Times are the Lease's
MicroTime (RFC 3339 with microseconds, UTC), compared with this machine's clock like client-go's
leader election does for `renewTime`.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from reconciler.kube import errors
from reconciler.kube.client import KubeClient
from reconciler.ssa import objects

Obj = dict[str, Any]
API_VERSION, KIND = "coordination.k8s.io/v1", "Lease"
DEFAULT_DURATION = 15.0  # seconds a Lease outlives its last renewal
DURATION_ENV = "SPINDLE_LEASE_DURATION"  # shorter in tests of killed holders


class LeaseHeld(Exception):
    """Another run holds the source's Lease (and `--no-wait` was given, or the wait timed out)."""


@dataclass(frozen=True)
class Holder:
    """Who holds a Lease and since when, as read from it."""

    identity: str
    since: str  # acquireTime
    renewed: dt.datetime | None
    duration: float

    def expired(self, now: dt.datetime) -> bool:
        return self.renewed is None or now > self.renewed + dt.timedelta(seconds=self.duration)

    def describe(self) -> str:
        return f"held by {self.identity} since {self.since}"


def lease_name(source: str) -> str:
    return f"spindle-{objects.label_value(source)}"[:253]


def identity(command: str) -> str:
    """`host pid 1234 (spindle apply)`."""
    return f"{socket.gethostname()} pid {os.getpid()} ({command})"


def duration_from_env() -> float:
    try:
        return max(float(os.environ.get(DURATION_ENV, "")), 1.0)
    except ValueError:
        return DEFAULT_DURATION


def _micro(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse(text: str | None) -> dt.datetime | None:
    if not text:
        return None
    try:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def holder_of(lease: Obj | None) -> Holder | None:
    """The current holder, or None when the Lease is missing or released."""
    spec = (lease or {}).get("spec") or {}
    who = spec.get("holderIdentity")
    if not who:
        return None
    return Holder(
        str(who), str(spec.get("acquireTime") or "?"), _parse(spec.get("renewTime")),
        float(spec.get("leaseDurationSeconds") or DEFAULT_DURATION),
    )


class Lease:
    """The Lease of one source, for one process."""

    def __init__(
        self,
        client: KubeClient,
        source: str,
        *,
        command: str,
        duration: float | None = None,
        now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client = client
        self.name = lease_name(source)
        self.namespace = objects.SYSTEM_NAMESPACE
        self.identity = identity(command)
        self.duration = duration or duration_from_env()
        self.now = now
        self.sleep = sleep
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None

    # -- taking and giving back -------------------------------------------------------------

    def acquire(self, *, timeout: float, wait: bool, say: Callable[[str], None]) -> None:
        """Take the Lease, waiting up to `timeout` seconds (not at all unless `wait`) while
        another run holds it; raise LeaseHeld naming the holder."""
        deadline = time.monotonic() + timeout
        told = ""
        while True:
            held = self._try_take()
            if held is None:
                self._start_renewing()
                return
            if not wait:
                raise LeaseHeld(
                    f"Lease {self.namespace}/{self.name} is {held.describe()}; not waiting (--no-wait)"
                )
            if time.monotonic() >= deadline:
                raise LeaseHeld(
                    f"Lease {self.namespace}/{self.name} is still {held.describe()} after waiting "
                    f"{timeout:g}s (--lock-timeout)"
                )
            if held.describe() != told:
                told = held.describe()
                say(f"waiting for Lease {self.namespace}/{self.name}: {told} (up to {timeout:g}s)")
            self.sleep(min(1.0, self.duration / 3))

    def release(self) -> None:
        """Stop renewing and clear the holder (if still ours); errors are ignored: the Lease
        then expires by itself."""
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join(timeout=5)
        try:
            live = self._get()
            held = holder_of(live)
            if live is not None and held is not None and held.identity == self.identity:
                spec = dict(live.get("spec") or {})
                spec["holderIdentity"] = None
                self._put({**live, "spec": spec})
        except errors.KubeError:
            pass

    # -- pieces -----------------------------------------------------------------------------

    def _get(self) -> Obj | None:
        return self.client.get(API_VERSION, KIND, self.name, self.namespace)

    def _put(self, lease: Obj) -> None:
        res = self.client.resource(API_VERSION, KIND)
        self.client.send("PUT", res.item(self.name, self.namespace),
                         subject=f"Lease/{self.namespace}/{self.name}", body=lease)

    def _spec(self, transitions: int, acquired: str | None = None) -> Obj:
        stamp = _micro(self.now())
        return {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": max(round(self.duration), 1),
            "acquireTime": acquired or stamp,
            "renewTime": stamp,
            "leaseTransitions": transitions,
        }

    def _try_take(self) -> Holder | None:
        """Take the Lease if it is free or expired; else the holder that has it."""
        live = self._get()
        if live is None:
            try:
                namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": self.namespace}}
                self.client.apply(namespace)
                self.client.create({
                    "apiVersion": API_VERSION, "kind": KIND,
                    "metadata": {"name": self.name, "namespace": self.namespace,
                                 "labels": {"app.kubernetes.io/managed-by": "spindle"}},
                    "spec": self._spec(0),
                })
            except errors.Conflict:  # created by another run a moment ago: look again
                return self._try_take()
            return None
        held = holder_of(live)
        if held is not None and held.identity != self.identity and not held.expired(self.now()):
            return held
        spec = live.get("spec") or {}
        mine = held is not None and held.identity == self.identity
        transitions = int(spec.get("leaseTransitions") or 0) + (0 if mine else 1)
        try:
            self._put({**live, "spec": self._spec(transitions)})
        except errors.Conflict:  # another run took it between our read and write
            return self._try_take()
        return None

    def _renew_once(self) -> None:
        live = self._get()
        held = holder_of(live)
        if live is None or held is None or held.identity != self.identity:
            return  # lost (expired and taken): nothing to renew; the run finishes regardless
        spec = dict(live.get("spec") or {})
        spec["renewTime"] = _micro(self.now())
        self._put({**live, "spec": spec})

    def _start_renewing(self) -> None:
        self._stop.clear()

        def renew() -> None:
            while not self._stop.wait(self.duration / 3):
                try:
                    self._renew_once()
                except errors.KubeError:
                    continue  # try again next period; the Lease lasts `duration`

        self._renewer = threading.Thread(target=renew, name=f"lease-{self.name}", daemon=True)
        self._renewer.start()


@contextmanager
def held(
    client: KubeClient,
    source: str,
    *,
    command: str,
    timeout: float,
    wait: bool,
    say: Callable[[str], None],
) -> Iterator[Lease]:
    """The source's Lease for the length of the block."""
    lease = Lease(client, source, command=command)
    lease.acquire(timeout=timeout, wait=wait, say=say)
    try:
        yield lease
    finally:
        lease.release()
