"""The reconcile loop: fetch the source, reconcile the checkout, record the run, update the metrics.

`ReconcileLoop.run_once()` is one run; `serve()` runs it on a schedule, with the webhook/health/
metrics server, until SIGTERM or SIGINT, then lets the current run finish and returns 0.

The Git fetch and the reconcile itself are seams passed in: production passes `GitSource.fetch`
and `reconciler.engine.run` bound to its options and cluster client.

When the source cannot be fetched, the last good checkout (carried by the SourceError) is
reconciled again, so drift keeps being corrected; the run still counts as failed, so the fetch is
retried with backoff. Before any good fetch there is nothing to reconcile and the run only records
the error.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any, Protocol

from reconciler.changeset import ReconcileRecord, Revision
from reconciler.history import History, HistoryError
from reconciler.metrics import Metrics
from reconciler.scheduler import Backoff, Scheduler
from reconciler.source import FetchResult, SourceError
from reconciler.webhook import DEFAULT_MAX_PAYLOAD, Delivery, Endpoints, WebhookServer

log = logging.getLogger("spindle.loop")


class ReconcileFn(Protocol):
    def __call__(self, checkout: Path, *, source_name: str, revision: Revision | None) -> ReconcileRecord: ...


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class RunOutcome:
    record: ReconcileRecord
    ok: bool
    fetched: FetchResult | None  # what was reconciled (None: nothing could be)


class ReconcileLoop:
    def __init__(
        self,
        *,
        source_name: str,
        fetch: Callable[[], FetchResult],
        reconcile: ReconcileFn,
        history: History | None,
        metrics: Metrics | None = None,
        clock: Callable[[], datetime] = _utcnow,
        on_record: Callable[[RunOutcome], None] | None = None,
    ) -> None:
        self.source_name = source_name
        self._fetch = fetch
        self._reconcile = reconcile
        self.history = history
        self.metrics = metrics or Metrics()
        self._clock = clock
        self._on_record = on_record
        self._ready = threading.Event()

    @property
    def ready(self) -> bool:
        """True once a run has succeeded (for `/readyz`)."""
        return self._ready.is_set()

    def __call__(self) -> bool:
        return self.run_once().ok

    def run_once(self) -> RunOutcome:
        started = self._clock()
        t0 = time.monotonic()
        source_error: str | None = None
        try:
            fetched: FetchResult | None = self._fetch()
        except SourceError as exc:
            source_error = str(exc)
            fetched = exc.last_good
            log.warning("%s%s", exc, "; reconciling the last good revision" if fetched else "")
        self.metrics.observe_fetch(self.source_name, time.monotonic() - t0)

        if fetched is None:
            record = ReconcileRecord(
                source=self.source_name, revision=None, started=_stamp(started),
                finished=_stamp(self._clock()), errors=[source_error or "no checkout"],
            )
        else:
            record = self._reconcile_checkout(fetched, started)
            if source_error:  # the key fact first: long URLs would push it out of a log line
                record.errors.insert(
                    0, f"reconciled last good revision {fetched.revision.short}: {source_error}"
                )
        ok = record.ok
        self.metrics.observe_reconcile(record, time.monotonic() - t0, ok=ok, now=time.time())
        if ok:
            self._ready.set()
        self._store(record)
        outcome = RunOutcome(record, ok, fetched)
        if self._on_record is not None:
            self._on_record(outcome)
        return outcome

    def _reconcile_checkout(self, fetched: FetchResult, started: datetime) -> ReconcileRecord:
        try:
            return self._reconcile(fetched.checkout, source_name=self.source_name, revision=fetched.revision)
        except Exception as exc:  # one broken run never stops the loop; the record says why
            log.exception("reconcile of %s crashed", self.source_name)
            return ReconcileRecord(
                source=self.source_name, revision=fetched.revision, started=_stamp(started),
                finished=_stamp(self._clock()), errors=[f"reconcile failed: {type(exc).__name__}: {exc}"],
            )

    def _store(self, record: ReconcileRecord) -> None:
        if self.history is None:
            return
        try:
            self.history.add(record)
        except HistoryError as exc:  # losing a record must not stop reconciling
            log.error("%s", exc)


@dataclass(frozen=True)
class WebhookConfig:
    host: str
    port: int
    secret: bytes | None
    max_payload: int = DEFAULT_MAX_PAYLOAD


def serve(
    loop: ReconcileLoop,
    *,
    interval: float,
    jitter: float = 0.0,
    backoff: Backoff | None = None,
    webhook: WebhookConfig | None = None,
    stop: threading.Event | None = None,
    handle_signals: bool = True,
    announce: Callable[[str], None] = lambda _m: None,
) -> int:
    """Run `loop` until `stop` is set or SIGTERM/SIGINT arrives; the current run always finishes."""
    stop = stop or threading.Event()
    scheduler = Scheduler(loop, interval=interval, jitter=jitter, backoff=backoff)
    server: WebhookServer | None = None
    if webhook is not None:

        def on_push(delivery: Delivery) -> None:
            log.info("%s %s webhook: reconciling now", delivery.provider, delivery.event)
            scheduler.trigger()

        server = WebhookServer(
            webhook.host, webhook.port,
            Endpoints(
                webhook.secret, on_push, lambda: loop.ready, loop.metrics.exposition, webhook.max_payload
            ),
        )
        server.start()
        announce(f"listening on {server.url} (/hook, /healthz, /readyz, /metrics)")

    previous: dict[signal.Signals, Any] = {}
    if handle_signals:

        def on_signal(signum: int, _frame: FrameType | None) -> None:
            stop.set()

        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, on_signal)
    try:
        scheduler.start()
        while not stop.wait(0.5):
            pass
        announce("stopping: letting the current run finish")
        scheduler.stop()
    finally:
        if server is not None:
            server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0
