"""Prometheus metrics at /metrics, named like the real API server's where there is a match:
`apiserver_request_total{verb,resource,code}`, `apiserver_request_duration_seconds{verb,resource}`,
`apiserver_longrunning_requests{verb,resource}` (open watches) and `apiserver_storage_objects{resource}`.
Each server has its own registry, so several embedded servers in one process do not mix.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily

from kubesim.storage import Store

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class _StoredObjects:
    def __init__(self, store: Store) -> None:
        self._store = store

    def collect(self) -> Iterator[Any]:
        family = GaugeMetricFamily(
            "apiserver_storage_objects", "Number of stored objects per resource.", labels=["resource"]
        )
        counts: dict[str, int] = {}
        for res, _ in self._store.all_entries():
            counts[res] = counts.get(res, 0) + 1
        for res, n in sorted(counts.items()):
            family.add_metric([res], n)
        yield family


class Metrics:
    def __init__(self, store: Store) -> None:
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "apiserver_request",
            "Requests by verb, resource and HTTP code.",
            ["verb", "resource", "code"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "apiserver_request_duration_seconds",
            "Request latency by verb and resource.",
            ["verb", "resource"],
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.longrunning = Gauge(
            "apiserver_longrunning_requests",
            "Open long-running requests (watches).",
            ["verb", "resource"],
            registry=self.registry,
        )
        self.registry.register(_StoredObjects(store))

    def observe(self, verb: str, resource: str, code: int, seconds: float) -> None:
        key = (verb, resource, code)
        children = self._children.get(key)
        if children is None:  # looking a child up by labels costs more than the observation
            children = self._children[key] = (
                self.requests.labels(verb, resource, str(code)),
                self.latency.labels(verb, resource) if verb != "WATCH" else None,
            )
        children[0].inc()
        if children[1] is not None:
            children[1].observe(seconds)

    def render(self) -> bytes:
        data: bytes = generate_latest(self.registry)
        return data
