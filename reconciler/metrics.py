"""Prometheus metrics of the reconcile loop, in spindle's own CollectorRegistry (never the global one).

    spindle_reconcile_duration_seconds        histogram  {source}
    spindle_reconcile_objects_total           counter    {source, action}
    spindle_drifted_objects                   gauge      {source}   drifted objects in the last run
    spindle_last_success_timestamp_seconds    gauge      {source}
    spindle_git_fetch_duration_seconds        histogram  {source}
    spindle_reconcile_errors_total            counter    {source}
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from reconciler.changeset import ReconcileRecord

_RECONCILE_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
_FETCH_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.reconcile_duration = Histogram(
            "spindle_reconcile_duration_seconds", "Duration of one reconcile (fetch, render, apply, prune).",
            ["source"], registry=r, buckets=_RECONCILE_BUCKETS,
        )
        self.objects = Counter(
            "spindle_reconcile_objects", "Objects handled by reconciles, by action.",
            ["source", "action"], registry=r,
        )
        self.drifted = Gauge(
            "spindle_drifted_objects",
            "Objects the last reconcile created, configured or pruned (detect-only: would have).",
            ["source"], registry=r,
        )
        self.last_success = Gauge(
            "spindle_last_success_timestamp_seconds", "Unix time of the last successful reconcile.",
            ["source"], registry=r,
        )
        self.fetch_duration = Histogram(
            "spindle_git_fetch_duration_seconds", "Duration of one Git fetch (ls-remote included).",
            ["source"], registry=r, buckets=_FETCH_BUCKETS,
        )
        self.errors = Counter(
            "spindle_reconcile_errors", "Reconciles that failed (source, render, apply or object errors).",
            ["source"], registry=r,
        )

    def observe_fetch(self, source: str, seconds: float) -> None:
        self.fetch_duration.labels(source).observe(seconds)

    def observe_reconcile(self, record: ReconcileRecord, seconds: float, *, ok: bool, now: float) -> None:
        self.reconcile_duration.labels(record.source).observe(seconds)
        for entry in record.entries:
            self.objects.labels(record.source, entry.action.value).inc()
        self.drifted.labels(record.source).set(len(record.drifted))
        errors = self.errors.labels(record.source)  # a 0 series from the first run on (alerts need it)
        if ok:
            self.last_success.labels(record.source).set(now)
        else:
            errors.inc()

    def exposition(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
