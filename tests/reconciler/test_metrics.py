"""Scrape /metrics from the running loop over HTTP and check the values after real runs."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from spindle_gitfixtures import Remote
from spindle_loopfixtures import FileReconciler, free_port, post, scrape, sign, wait_for

from reconciler.loop import ReconcileLoop, WebhookConfig, serve
from reconciler.source import GitSource, SourceSpec

SECRET = b"s"


def test_metrics_endpoint_after_runs(tmp_path: Path) -> None:
    remote = Remote(tmp_path / "up")
    remote.commit({"a.yaml": "1", "b.yaml": "2"}, "two apps")
    remote.push()
    engine = FileReconciler()
    source = GitSource(SourceSpec(url=remote.url), tmp_path / "cache")
    loop = ReconcileLoop(source_name="shop", fetch=source.fetch, reconcile=engine, history=None)
    port = free_port()
    stop = threading.Event()
    thread = threading.Thread(target=serve, args=(loop,), kwargs={
        "interval": 3600, "webhook": WebhookConfig("127.0.0.1", port, SECRET), "stop": stop,
        "handle_signals": False})
    started = time.time()
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        assert wait_for(lambda: loop.ready, timeout=10)
        remote.commit({"a.yaml": "changed"}, "change a")
        remote.push()
        body = b'{"ref": "refs/heads/main"}'
        assert post(url + "/hook", body, {"X-Spindle-Signature-256": sign(SECRET, body)}) == 202
        assert wait_for(lambda: engine.runs == 2 and len(engine.finished_at) == 2, timeout=30)
        src = (("source", "shop"),)
        assert wait_for(lambda: scrape(url).get(("spindle_reconcile_duration_seconds_count", src)) == 2)
        got = scrape(url)
        assert got[("spindle_git_fetch_duration_seconds_count", src)] == 2
        assert got[("spindle_reconcile_objects_total", (("action", "Created"), ("source", "shop")))] == 2
        assert got[("spindle_reconcile_objects_total", (("action", "Configured"), ("source", "shop")))] == 1
        assert got[("spindle_reconcile_objects_total", (("action", "Unchanged"), ("source", "shop")))] == 1
        assert got[("spindle_drifted_objects", src)] == 1
        # Exported as 0 before the first failure, so `increase(...) > 0` alerts fire on the first one.
        assert got[("spindle_reconcile_errors_total", src)] == 0
        assert started <= got[("spindle_last_success_timestamp_seconds", src)] <= time.time()
        assert got[("spindle_reconcile_duration_seconds_sum", src)] > 0
    finally:
        stop.set()
        thread.join(timeout=20)
