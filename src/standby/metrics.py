"""Prometheus metrics for one site, on a registry of its own (no module-level state)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector


class _Callback(Collector):
    """A gauge whose value is read when scraped (e.g. the change-log head LSN)."""

    def __init__(self, name: str, doc: str, read: Callable[[], float | None]) -> None:
        self.name, self.doc, self.read = name, doc, read

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            value = self.read()
        except Exception:  # noqa: BLE001 - a scrape must not fail because the store is down
            value = None
        if value is not None:
            yield GaugeMetricFamily(self.name, self.doc, value=value)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "standby_http_requests", "HTTP requests", ["method", "route", "status"], registry=r
        )
        self.latency = Histogram(
            "standby_http_request_seconds",
            "HTTP request latency",
            ["route"],
            registry=r,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
        )
        self.logins = Counter(
            "standby_logins", "Login attempts by outcome", ["outcome"], registry=r
        )
        self.writes_refused = Counter(
            "standby_writes_refused", "Writes refused (standby, fenced, no lease)", registry=r
        )
        self.info = Gauge("standby_site_info", "Site role and epoch", ["site", "role"], registry=r)

    def gauge_callback(self, name: str, doc: str, read: Callable[[], float | None]) -> None:
        self.registry.register(_Callback(name, doc, read))

    def render(self) -> bytes:
        return generate_latest(self.registry)
