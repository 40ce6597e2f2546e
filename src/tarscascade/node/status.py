"""The node agent's status: what the status page, ``/v1/status`` and the CLI show."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from tarscascade.cascade import CascadeClient
from tarscascade.catalog import Catalog
from tarscascade.model import Category

if TYPE_CHECKING:
    from tarscascade.node.app import NodeAgent


def replica_lag(catalog: Catalog, client: CascadeClient | None) -> dict[Category, int | None]:
    """Revisions behind the upstream per category, as of the upstream's last answer
    (subscribe or heartbeat); None when unknown or on another epoch."""
    upstream = client.upstream_versions if client is not None else {}
    out: dict[Category, int | None] = {}
    for c in Category:
        up, held = upstream.get(c), catalog.version(c)
        same = up is not None and up.epoch != "" and up.epoch == held.epoch
        out[c] = max(0, up.revision - held.revision) if same and up is not None else None
    return out


def node_status(agent: NodeAgent) -> dict[str, Any]:
    cat = agent.catalog
    client = agent.client
    fresh = agent.freshness()
    return {
        "node": agent.config.name,
        "stale": agent.stale,
        "synced": bool(client and client.synced.is_set()),
        "in_sync": bool(client and client.in_sync),
        "has_data": agent.has_data(),
        "loaded_from_disk": agent.loaded_from_disk,
        "from_disk_unconfirmed": fresh.from_disk,
        "upstream_stale": bool(client and client.upstream_freshness.stale),
        "contact_age_s": None if fresh.contact_age >= 86_400.0 else fresh.contact_age,
        "stale_for_s": None if (gone := agent.stale_for()) == float("inf") else gone,
        "ahead_of_upstream": sorted(c.value for c in client.ahead_of_upstream) if client else [],
        "lineage_held": sorted(c.value for c in client.held_back) if client else [],
        "upstream": f"{client.upstream[0]}:{client.upstream[1]}"
        if client and client.upstream
        else None,
        "upstreams": [f"{h}:{p}" for h, p in agent.config.upstreams],
        "categories": {
            c.value: {
                "version": {"epoch": cat.version(c).epoch, "revision": cat.version(c).revision},
                "digest": f"{cat.digest(c):032x}",
            }
            for c in Category
        },
        "lag": {c.value: n for c, n in agent.lag().items()},
        "counts": cat.counts(),
        "client": dataclasses.asdict(client.stats) if client else {},
        "downstream_nodes": len(agent.hub.node_states()),
        "keepalive_servers": len(agent.keepalive.servers),
        "servers": agent.keepalive.view(agent.config.clock()),
        "subscriptions": agent.watch.subscriptions,
        "reports_sent": agent.reports_sent,
        "disk": agent.disk.status() if agent.disk is not None else None,
    }
