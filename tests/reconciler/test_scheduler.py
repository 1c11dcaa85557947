"""The scheduler: backoff, no overlap, one queued follow-up, graceful stop and SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from spindle_loopfixtures import wait_for

from reconciler.scheduler import Backoff, Scheduler, default_backoff


@pytest.mark.parametrize(
    ("failures", "expected"),
    [(0, 0.0), (1, 10.0), (2, 20.0), (3, 40.0), (5, 160.0), (6, 300.0), (30, 300.0)],
)
def test_backoff_doubles_up_to_the_cap(failures: int, expected: float) -> None:
    assert Backoff(initial=10, factor=2, cap=300).delay(failures) == expected


def test_default_backoff_follows_interval() -> None:
    assert default_backoff(300) == Backoff(initial=10, cap=300)
    assert default_backoff(2) == Backoff(initial=2, cap=2)


class Job:
    """A run that takes `delay` seconds, records overlap and fails while `fail` says so."""

    def __init__(self, delay: float = 0.0, fail: int = 0) -> None:
        self.delay, self.fail = delay, fail
        self.active = self.max_active = 0
        self.starts: list[float] = []
        self.ends: list[float] = []
        self.lock = threading.Lock()

    def __call__(self) -> bool:
        with self.lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
            self.starts.append(time.monotonic())
            failing = self.fail > 0
            self.fail -= 1
        time.sleep(self.delay)
        with self.lock:
            self.active -= 1
            self.ends.append(time.monotonic())
        return not failing


def test_never_two_runs_at_once() -> None:
    job = Job(delay=0.15)
    sched = Scheduler(job, interval=0.05)
    sched.start()
    stop = time.monotonic() + 1.2
    hammer = [threading.Thread(target=lambda: [sched.trigger() or time.sleep(0.01)
                                               for _ in range(60)]) for _ in range(3)]
    for t in hammer:
        t.start()
    direct = threading.Thread(target=sched.run_now)
    direct.start()
    while time.monotonic() < stop:
        time.sleep(0.05)
    for t in [*hammer, direct]:
        t.join()
    sched.stop()
    assert job.max_active == 1
    assert len(job.starts) >= 4


def test_triggers_during_a_run_queue_exactly_one_follow_up() -> None:
    job = Job(delay=0.5)
    sched = Scheduler(job, interval=3600)
    sched.start()
    assert wait_for(lambda: len(job.starts) == 1)
    for _ in range(5):
        sched.trigger()
    assert wait_for(lambda: len(job.ends) == 2, timeout=15)
    time.sleep(0.7)
    sched.stop()
    assert len(job.starts) == 2
    assert job.starts[1] >= job.ends[0]  # the follow-up started after the first run ended


def test_trigger_when_idle_runs_at_once() -> None:
    job = Job()
    sched = Scheduler(job, interval=3600)
    sched.start(run_now=False)
    time.sleep(0.2)
    assert job.starts == []
    try:
        sched.trigger()
        # With a one-hour interval only the trigger can start a run within the wait; no
        # wall-clock threshold here (speed belongs to bench/).
        assert wait_for(lambda: len(job.starts) == 1, timeout=10)
    finally:
        sched.stop()


def test_backoff_while_failing_then_interval_cadence() -> None:
    job = Job(fail=3)
    # Factor 10 so the capped waits (0.5 s) sit far from the uncapped ones (2 s, 20 s): the upper
    # bound tells the cap apart with 1.4 s of slack for a loaded box, not a tight timing window.
    sched = Scheduler(job, interval=3600, backoff=Backoff(initial=0.2, factor=10, cap=0.5))
    sched.start()
    try:
        assert wait_for(lambda: len(job.starts) == 4, timeout=15)
        gaps = [b - a for a, b in zip(job.starts, job.starts[1:], strict=False)]
        # 0.2 s, then capped at 0.5 s twice (the scheduler may wake late, never early).
        for gap, want in zip(gaps, [0.2, 0.5, 0.5], strict=True):
            assert want - 0.02 <= gap < 1.9, gaps
        assert wait_for(lambda: sched.failures == 0)
        time.sleep(0.1)
        nxt = sched.next_run
        assert nxt is not None and (nxt - datetime.now(UTC)).total_seconds() > 3500
    finally:
        sched.stop()
    assert len(job.starts) == 4


def test_a_crashing_run_counts_as_a_failure_and_the_loop_goes_on() -> None:
    calls: list[int] = []

    def run() -> bool:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("boom")
        return True

    sched = Scheduler(run, interval=3600, backoff=Backoff(initial=0.1, cap=0.1))
    sched.start()
    assert wait_for(lambda: len(calls) == 2, timeout=15)
    sched.stop()
    assert sched.failures == 0 and sched.runs == 2


def test_stop_lets_the_current_run_finish() -> None:
    job = Job(delay=0.6)
    sched = Scheduler(job, interval=3600)
    sched.start()
    assert wait_for(lambda: len(job.starts) == 1)
    sched.trigger()  # a queued follow-up is dropped by stop()
    sched.stop()
    assert len(job.ends) == 1 and job.active == 0
    time.sleep(0.3)
    assert len(job.starts) == 1


SIGTERM_SCRIPT = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from reconciler.changeset import ReconcileRecord
    from reconciler.loop import ReconcileLoop, serve
    from reconciler.source import FetchResult
    from reconciler.changeset import Revision

    out = Path(sys.argv[1])

    def fetch():
        return FetchResult(checkout=out.parent, revision=Revision(sha="f" * 40), changed=True)

    def reconcile(checkout, *, source_name, revision):
        with out.open("a") as f:
            f.write("start\\n")
        time.sleep(1.0)
        with out.open("a") as f:
            f.write("end\\n")
        return ReconcileRecord(source=source_name, revision=revision, started="2026-01-01T00:00:00Z")

    loop = ReconcileLoop(source_name="s", fetch=fetch, reconcile=reconcile, history=None)
    sys.exit(serve(loop, interval=3600))
    """
)


def test_sigterm_finishes_the_current_run_then_exits_0(tmp_path: Path) -> None:
    out = tmp_path / "runs.log"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path.cwd()), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-c", SIGTERM_SCRIPT, str(out)], env=env)
    try:
        assert wait_for(lambda: out.exists() and "start" in out.read_text(), timeout=30)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert out.read_text().split() == ["start", "end"]
