"""Run a job on an interval with jitter, back off while it fails, never run it twice at once.

An APScheduler interval job (max_instances=1, coalesce) calls `_tick`, which takes a lock so
that no other path (a webhook trigger, a direct `run_now`) can overlap a run either. A trigger that
arrives during a run queues exactly one follow-up run, however many arrive. After a failure the
next run moves to now + backoff (doubling, capped); after a success the interval cadence resumes
from then. `stop()` lets the current run finish and starts no new one.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

log = logging.getLogger("spindle.scheduler")

JOB_ID = "reconcile"


@dataclass(frozen=True)
class Backoff:
    initial: float = 10.0
    factor: float = 2.0
    cap: float = 300.0

    def delay(self, failures: int) -> float:
        """Seconds to wait after the `failures`-th failure in a row (1-based)."""
        if failures <= 0:
            return 0.0
        return float(min(self.cap, self.initial * self.factor ** (failures - 1)))


def default_backoff(interval: float) -> Backoff:
    initial = min(10.0, interval)
    return Backoff(initial=initial, cap=max(interval, initial))


class Scheduler:
    def __init__(
        self,
        run: Callable[[], bool],
        *,
        interval: float,
        jitter: float = 0.0,
        backoff: Backoff | None = None,
    ) -> None:
        if interval <= 0:
            raise ValueError(f"interval must be positive, got {interval}")
        self._run = run
        self.interval = interval
        self.jitter = jitter
        self.backoff = backoff or default_backoff(interval)
        self._run_lock = threading.Lock()  # held for the whole of a run
        self._state = threading.Lock()  # guards the flags below
        self._running = False
        self._pending = False
        self._stopping = False
        self.failures = 0
        self.runs = 0
        self._sched = BackgroundScheduler(timezone=UTC)
        self._started = False

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self, *, run_now: bool = True) -> None:
        self._sched.start()
        first = datetime.now(UTC) if run_now else datetime.now(UTC) + timedelta(seconds=self.interval)
        self._sched.add_job(
            self._tick,
            IntervalTrigger(seconds=self.interval, jitter=self.jitter or None, timezone=UTC),
            id=JOB_ID,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
            next_run_time=first,
        )
        self._started = True

    def stop(self) -> None:
        """Finish the run in progress (if any), then stop. Queued follow-ups are dropped."""
        with self._state:
            self._stopping = True
            self._pending = False
        if self._started:
            self._sched.shutdown(wait=True)
            self._started = False
        with self._run_lock:  # a run started outside APScheduler (run_now) finishes too
            pass

    @property
    def next_run(self) -> datetime | None:
        job = self._sched.get_job(JOB_ID) if self._started else None
        return job.next_run_time if job is not None else None

    # -- triggering ---------------------------------------------------------------------------

    def trigger(self) -> None:
        """Run as soon as possible: now if idle, else exactly once more after the current run."""
        with self._state:
            if self._stopping:
                return
            if self._running:
                self._pending = True
                return
        if self._started:
            with contextlib.suppress(LookupError):
                self._sched.modify_job(JOB_ID, next_run_time=datetime.now(UTC))

    def run_now(self) -> bool:
        """Run in the calling thread (used by `--once`); waits for a run in progress first."""
        with self._run_lock:
            return self._run_guarded()

    # -- internals ----------------------------------------------------------------------------

    def _tick(self) -> None:
        if not self._run_lock.acquire(blocking=False):
            with self._state:
                self._pending = True
            return
        try:
            while True:
                self._run_guarded()
                with self._state:
                    again = self._pending and not self._stopping
                    self._pending = False
                if not again:
                    break
        finally:
            self._run_lock.release()
        self._reschedule()

    def _run_guarded(self) -> bool:
        with self._state:
            self._running = True
            self._pending = False
        try:
            ok = self._run()
        except Exception:  # a crash of one run must never kill the loop
            log.exception("reconcile run crashed")
            ok = False
        finally:
            with self._state:
                self._running = False
        self.runs += 1
        self.failures = 0 if ok else self.failures + 1
        return ok

    def _reschedule(self) -> None:
        with self._state:
            if self._stopping or not self._started:
                return
        if self.failures:
            delay = self.backoff.delay(self.failures)
        else:
            delay = self.interval + (random.uniform(0, self.jitter) if self.jitter else 0.0)
        when = datetime.now(UTC) + timedelta(seconds=delay)
        if self.failures:
            log.warning("reconcile failed %d time(s) in a row; retrying in %.3gs", self.failures, delay)
        with contextlib.suppress(LookupError):  # the job is gone: the scheduler is shutting down
            self._sched.modify_job(JOB_ID, next_run_time=when)
