"""Prometheus metrics of one node agent, on a private ``CollectorRegistry``.

Private for the same reason as the registry's (several agents may share a process).
Everything but the HTTP request counter is read from the agent when Prometheus
scrapes: versions, counts (no digests: a digest is an identity, not a quantity), the
stale and synced flags, the cascade client's counters, subscriptions and reports.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from tarscascade.model import Category
from tarscascade.node.app import NodeAgent

PREFIX = "tarscascade_node"


class _AgentCollector(Collector):
    """Reads the agent's state and counters when Prometheus scrapes."""

    def __init__(self, agent: NodeAgent) -> None:
        self.agent = agent

    def collect(self) -> Iterator[Metric]:
        agent = self.agent
        catalog = agent.catalog
        client = agent.client
        yield _gauge(
            "has_data",
            "1 when the replica holds data and QueryF is answered",
            int(agent.has_data()),
        )
        yield _gauge(
            "stale",
            "1 while the replica may be out of date (not subscribed, upstream stale or behind)",
            int(agent.stale),
        )
        gone = agent.stale_for()
        yield _gauge(
            "stale_seconds",
            "seconds the replica has been stale (0 while fresh)",
            gone if gone != float("inf") else -1,
        )
        fresh = agent.freshness()
        yield _gauge(
            "contact_age_seconds",
            "seconds since the replica was last known current at the registry",
            min(fresh.contact_age, 86_400.0),
        )
        ahead = len(client.ahead_of_upstream) if client else 0
        yield _gauge(
            "ahead_of_upstream", "categories the upstream is behind this replica in", ahead
        )
        disk = agent.disk
        yield _gauge(
            "disk_error",
            "1 while the disk copy cannot be written (retried with backoff)",
            int(disk is not None and disk.error is not None),
        )
        synced = client is not None and client.synced.is_set()
        yield _gauge("synced", "1 once the replica synced with an upstream", int(synced))
        yield _gauge(
            "loaded_from_disk",
            "1 when started from the last-known-good file",
            int(agent.loaded_from_disk),
        )
        versions = GaugeMetricFamily(
            f"{PREFIX}_category_revision", "revision of each category held", labels=["category"]
        )
        lag = GaugeMetricFamily(
            f"{PREFIX}_category_lag",
            "revisions behind the upstream (as of its last answer); absent when unknown",
            labels=["category"],
        )
        lags = agent.lag()
        for cat in Category:
            versions.add_metric([cat.value], catalog.version(cat).revision)
            behind = lags.get(cat)
            if behind is not None:
                lag.add_metric([cat.value], behind)
        yield versions
        yield lag
        records = GaugeMetricFamily(
            f"{PREFIX}_records", "records per catalog count", labels=["kind"]
        )
        for kind, n in sorted(catalog.counts().items()):
            records.add_metric([kind], n)
        yield records
        if client is not None:
            for f in dataclasses.fields(client.stats):
                value = getattr(client.stats, f.name)
                if isinstance(value, int) and not isinstance(value, bool):
                    yield _counter(f"cascade_{f.name}", f"CascadeClient.stats.{f.name}", value)
        yield _gauge("subscriptions", "registerQuery subscriptions held", agent.watch.subscriptions)
        yield _gauge("blocking_queries", "HTTP lookups waiting for a change", agent.watch.waiters)
        yield _counter("pushes", "objectChanged pushes sent to TARS clients", agent.watch.pushes)
        yield _counter("reports_sent", "state reports sent upstream", agent.reports_sent)
        # refusals (issue 14): what local or remote callers tried and were not allowed
        yield _counter(
            "announcements_refused",
            "endpoint announcements refused (not this node's host, or an object it may not"
            " announce)",
            agent.announcements_refused,
        )
        server_obj = getattr(agent, "server_obj", None)
        yield _counter(
            "serverf_refused",
            "ServerF calls refused (a peer that is not on this host)",
            server_obj.serverf_refused if server_obj is not None else 0,
        )
        yield _counter(
            "subscriptions_refused",
            "registerQuery subscriptions refused by a per-connection, per-peer or global budget",
            agent.watch.refused,
        )
        yield _gauge(
            "downstream_nodes", "nodes known to this node's relay hub", len(agent.hub.node_states())
        )
        yield _gauge(
            "keepalive_servers",
            "business server processes seen keeping alive",
            len(agent.keepalive.servers),
        )
        answerer = agent.answerer
        yield _counter("answer_cache_hits", "QueryF answers served from cache", answerer.hits)
        yield _counter("answer_cache_misses", "QueryF answers encoded afresh", answerer.misses)
        yield _gauge("answer_cache_entries", "cached views and answers", answerer.size)


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(f"{PREFIX}_{name}", doc, value=value)


def _counter(name: str, doc: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(f"{PREFIX}_{name}", doc, value=value)


class NodeMetrics:
    """The node agent's metrics; ``render()`` gives the Prometheus text exposition."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self, agent: NodeAgent) -> None:
        self.registry = CollectorRegistry()
        self.http_requests = Counter(
            "tarscascade_node_http_requests",
            "node HTTP requests by route template, method and status",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.registry.register(_AgentCollector(agent))

    def observe_request(self, route: str, method: str, status: int) -> None:
        self.http_requests.labels(route, method, str(status)).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
