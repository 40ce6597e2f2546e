"""Prometheus metrics of one registry, on a private ``CollectorRegistry``.

Private, not prometheus_client's global registry: several registries (and node agents)
may run in one process (tests, ``tarscascade up``), and metric names would clash. The
gauges are read from the core at scrape time, so nothing has to update them on the hot
path; only the HTTP request counter is incremented per request.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from tarscascade.model import Category
from tarscascade.registry.core import RegistryCore

PREFIX = "tarscascade_registry"


class _CoreCollector(Collector):
    """Reads the core's counters and versions when Prometheus scrapes."""

    def __init__(
        self,
        core: RegistryCore,
        tars_requests: Callable[[], int] | None,
        extra: Callable[[], Mapping[str, float]] | None = None,
        refusals: Callable[[], Mapping[str, float]] | None = None,
    ) -> None:
        self.core = core
        self.tars_requests = tars_requests
        self.extra = extra
        self.refusals = refusals

    def collect(self) -> Iterator[Metric]:
        core = self.core
        yield _gauge("ready", "1 when the catalog has loaded and serves", int(core.ready.is_set()))
        yield _gauge("revision", "store revision the catalog reflects", core.revision)
        yield _gauge(
            "healthy", "1 when /healthz answers 200 (see its body otherwise)", core.health() is None
        )
        yield _gauge(
            "store_consecutive_failures",
            "store operations (tail, writes) failed in a row; /healthz is 503 from "
            "RegistryOptions.unhealthy_after on",
            core.failures,
        )
        yield _gauge(
            "epoch_confirmed",
            "0 while the current epoch is held for an operator (it loses too many endpoints)",
            core.epoch_confirmed,
        )
        info = GaugeMetricFamily(f"{PREFIX}_epoch_info", "data lineage (epoch)", labels=["epoch"])
        info.add_metric([core.epoch], 1)
        yield info
        counts = core.catalog.counts()
        records = GaugeMetricFamily(
            f"{PREFIX}_records", "records per catalog count", labels=["kind"]
        )
        for kind, n in sorted(counts.items()):
            records.add_metric([kind], n)
        yield records
        versions = GaugeMetricFamily(
            f"{PREFIX}_category_revision", "revision of each category", labels=["category"]
        )
        for cat in Category:
            versions.add_metric([cat.value], core.catalog.version(cat).revision)
        yield versions
        answerer = core.answerer
        yield _counter("answer_cache_hits", "QueryF answers served from cache", answerer.hits)
        yield _counter("answer_cache_misses", "QueryF answers encoded afresh", answerer.misses)
        yield _gauge("answer_cache_entries", "cached views and answers", answerer.size)
        for f in dataclasses.fields(core.stats):
            value = getattr(core.stats, f.name)
            yield _counter(f.name, f"RegistryCore.stats.{f.name}", value)
        if (tier := core.tier) is not None:
            yield _gauge(
                "liveness_judge",
                "1 while this registry judges node liveness for the tier",
                tier.is_judge,
            )
            for f in dataclasses.fields(tier.stats):
                yield _counter(
                    f"tier_{f.name}", f"TierPresence.stats.{f.name}", getattr(tier.stats, f.name)
                )
        if self.refusals is not None:  # what callers tried and were not allowed (issue 14)
            for name, value in sorted(self.refusals().items()):
                yield _counter(name, f"refused: {name.replace('_', ' ')}", value)
        if self.tars_requests is not None:
            yield _counter(
                "tars_requests", "requests the TARS server handled", self.tars_requests()
            )
        if self.extra is not None:  # the db_tars importer's figures
            for name, value in sorted(self.extra().items()):
                yield _gauge(f"dbtars_{name}", f"db_tars importer: {name}", value)


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(f"{PREFIX}_{name}", doc, value=value)


def _counter(name: str, doc: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(f"{PREFIX}_{name}", doc, value=value)


class RegistryMetrics:
    """The registry's metrics; ``render()`` gives the Prometheus text exposition."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(
        self,
        core: RegistryCore,
        *,
        tars_requests: Callable[[], int] | None = None,
        extra: Callable[[], Mapping[str, float]] | None = None,
        refusals: Callable[[], Mapping[str, float]] | None = None,
    ) -> None:
        self.registry = CollectorRegistry()
        self.http_requests = Counter(
            "tarscascade_http_requests",
            "admin HTTP requests by route template, method and status",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.registry.register(_CoreCollector(core, tars_requests, extra, refusals))

    def observe_request(self, route: str, method: str, status: int) -> None:
        self.http_requests.labels(route, method, str(status)).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
