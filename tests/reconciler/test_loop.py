"""The reconcile loop with a real Git source, a real history and a real (tiny) reconcile function."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from spindle_gitfixtures import Remote
from spindle_loopfixtures import FileReconciler, Samples, parse_metrics, wait_for

from reconciler.changeset import Action
from reconciler.history import History
from reconciler.loop import ReconcileLoop
from reconciler.metrics import Metrics
from reconciler.scheduler import Backoff, Scheduler
from reconciler.source import GitSource, SourceSpec


@pytest.fixture
def remote(tmp_path: Path) -> Remote:
    r = Remote(tmp_path / "upstream")
    r.commit({"a.yaml": "one", "b.yaml": "two"}, "initial apps")
    r.push()
    return r


def make_loop(remote: Remote, tmp_path: Path, engine: FileReconciler) -> tuple[ReconcileLoop, History]:
    history = History(tmp_path / "history.sqlite")
    source = GitSource(SourceSpec(url=remote.url), tmp_path / "cache")
    loop = ReconcileLoop(source_name="shop", fetch=source.fetch, reconcile=engine, history=history)
    return loop, history


def samples(metrics: Metrics) -> Samples:
    return parse_metrics(metrics.exposition()[0].decode())


def test_runs_are_recorded_with_their_revision(remote: Remote, tmp_path: Path) -> None:
    engine = FileReconciler()
    loop, history = make_loop(remote, tmp_path, engine)
    first = loop.run_once()
    assert first.ok and loop.ready
    assert [e.action for e in first.record.entries] == [Action.CREATED, Action.CREATED]
    sha = remote.commit({"a.yaml": "one-changed"}, "change a")
    remote.push()
    second = loop.run_once()
    assert second.record.revision is not None and second.record.revision.sha == sha
    assert {e.ref.name: e.action for e in second.record.entries} == {
        "a": Action.CONFIGURED, "b": Action.UNCHANGED}
    stored = history.last(5, source="shop")
    assert [r.revision.sha for r in stored if r.revision] == [sha, first.record.revision.sha]  # type: ignore[union-attr]
    assert stored[0].entries[0].fields[0].live == "one"


def test_unreachable_remote_keeps_serving_the_last_good_revision(remote: Remote, tmp_path: Path) -> None:
    engine = FileReconciler()
    loop, history = make_loop(remote, tmp_path, engine)
    good = loop.run_once()
    shutil.move(remote.bare, tmp_path / "offline.git")
    engine.cluster["a"] = "edited by hand"  # drift while the remote is down
    down = loop.run_once()
    assert not down.ok
    assert down.fetched is not None and down.fetched.revision == good.fetched.revision  # type: ignore[union-attr]
    assert "remote.git" in down.record.errors[0] and "last good revision" in down.record.errors[0]
    assert {e.ref.name: e.action for e in down.record.entries}["a"] is Action.CONFIGURED  # drift corrected
    assert history.last(1)[0].errors == down.record.errors


def test_first_fetch_failing_reconciles_nothing(tmp_path: Path) -> None:
    engine = FileReconciler()
    source = GitSource(SourceSpec(url=(tmp_path / "missing.git").as_uri()), tmp_path / "cache")
    metrics = Metrics()
    loop = ReconcileLoop(source_name="x", fetch=source.fetch, reconcile=engine, history=None, metrics=metrics)
    outcome = loop.run_once()
    assert not outcome.ok and outcome.record.revision is None and engine.runs == 0
    assert "missing.git" in outcome.record.errors[0]
    assert not loop.ready
    assert samples(metrics)[("spindle_reconcile_errors_total", (("source", "x"),))] == 1


def test_unreachable_remote_retries_with_backoff_then_recovers(remote: Remote, tmp_path: Path) -> None:
    engine = FileReconciler()
    loop, _ = make_loop(remote, tmp_path, engine)
    assert loop.run_once().ok
    shutil.move(remote.bare, tmp_path / "offline.git")
    # Factor 4 keeps the waits (0.2, 0.8, then 1.0 capped; 3.2 uncapped) far apart, so a real
    # git fetch slowed by a loaded box cannot reorder them.
    sched = Scheduler(loop, interval=3600, backoff=Backoff(initial=0.2, factor=4, cap=1.0))
    sched.start()
    try:
        assert wait_for(lambda: engine.runs >= 5, timeout=30)
        gaps = [b - a for a, b in zip(engine.started_at[1:], engine.started_at[2:], strict=False)]
        for gap, want in zip(gaps, [0.2, 0.8, 1.0], strict=False):
            assert gap >= want - 0.02, gaps  # never earlier than the backoff says
        assert gaps[0] < gaps[1] and gaps[2] < 3.0, gaps  # it grows, and the cap holds
        assert sched.failures >= 3
        shutil.move(tmp_path / "offline.git", remote.bare)
        assert wait_for(lambda: sched.failures == 0, timeout=15)
    finally:
        sched.stop()


def test_a_crashing_reconcile_is_recorded_and_the_loop_survives(remote: Remote, tmp_path: Path) -> None:
    calls = []

    def broken(checkout: Path, *, source_name: str, revision: object) -> object:
        calls.append(checkout)
        raise KeyError("spec")

    history = History(tmp_path / "h.sqlite")
    source = GitSource(SourceSpec(url=remote.url), tmp_path / "cache")
    loop = ReconcileLoop(source_name="s", fetch=source.fetch, reconcile=broken, history=history)  # type: ignore[arg-type]
    outcome = loop.run_once()
    assert not outcome.ok and "reconcile failed: KeyError" in outcome.record.errors[0]
    assert outcome.record.revision is not None
    assert history.last(1)[0].errors == outcome.record.errors


def test_metrics_after_runs(remote: Remote, tmp_path: Path) -> None:
    engine = FileReconciler(fail_times=1)
    loop, _ = make_loop(remote, tmp_path, engine)
    before = time.time()
    assert not loop.run_once().ok  # the reconcile function fails once
    assert loop.run_once().ok  # creates a and b
    remote.commit({"a.yaml": "changed", "c.yaml": "three"}, "more")
    remote.push()
    assert loop.run_once().ok  # configures a, creates c, b unchanged
    got = samples(loop.metrics)
    src = (("source", "shop"),)
    assert got[("spindle_reconcile_duration_seconds_count", src)] == 3
    assert got[("spindle_git_fetch_duration_seconds_count", src)] == 3
    assert got[("spindle_reconcile_errors_total", src)] == 1
    assert got[("spindle_reconcile_objects_total", (("action", "Created"), ("source", "shop")))] == 3
    assert got[("spindle_reconcile_objects_total", (("action", "Configured"), ("source", "shop")))] == 1
    assert got[("spindle_reconcile_objects_total", (("action", "Unchanged"), ("source", "shop")))] == 1
    assert got[("spindle_drifted_objects", src)] == 2
    assert before <= got[("spindle_last_success_timestamp_seconds", src)] <= time.time()
    # spindle's registry is its own: nothing leaks into the process-global one.
    assert REGISTRY.get_sample_value("spindle_reconcile_duration_seconds_count", {"source": "shop"}) is None
