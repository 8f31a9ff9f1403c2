"""Prometheus metrics of one server process, on a registry of its own (several apps can
live in one test process)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from dev8.core.workspace import Operation
from dev8.store.store import Store


class _StoreCollector(Collector):
    """Read at scrape time from the database, so every server process reports the truth."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def collect(self) -> Iterator[GaugeMetricFamily]:
        workspaces = GaugeMetricFamily(
            "dev8_workspaces", "Workspaces (not removed) by observed state", labels=["state"]
        )
        for state, count in sorted(self.store.count_by_state().items()):
            workspaces.add_metric([state], count)
        yield workspaces
        yield GaugeMetricFamily(
            "dev8_operations_unfinished",
            "Operations queued or running",
            value=self.store.count_unfinished(),
        )


class Metrics:
    def __init__(self, store: Store) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "dev8_http_requests",
            "HTTP requests by route and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "dev8_http_request_duration_seconds",
            "HTTP request duration",
            ["method", "route"],
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
        )
        self.operations = Counter(
            "dev8_operations",
            "Finished operations by action, result and actor kind",
            ["action", "result", "actor"],
            registry=self.registry,
        )
        self.operation_seconds = Histogram(
            "dev8_operation_duration_seconds",
            "Operation duration from request to result",
            ["action"],
            registry=self.registry,
            buckets=(0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300),
        )
        self.registry.register(_StoreCollector(store))

    def operation_finished(self, operation: Operation) -> None:
        kind = operation.actor if operation.actor in ("reconciler", "idle-timeout") else "user"
        self.operations.labels(operation.action, operation.result, kind).inc()
        if operation.duration_s is not None:
            self.operation_seconds.labels(operation.action).observe(operation.duration_s)

    def render(self) -> bytes:
        return generate_latest(self.registry)
