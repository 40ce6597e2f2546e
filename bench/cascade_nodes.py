"""Many cascade nodes in one process, each with its own catalog and TCP connection.

Upstreams: ``--port P`` (every node subscribes to 127.0.0.1:P) or ``--upstreams P1,P2,...``
(every node lists all of them, node i's list rotated by i, so each upstream is first for
an equal share of the nodes; a node fails over along its list).

Prints ``SYNCED <seconds> <rss_mb> <max_rss_mb> <objects_replaced_s>`` once every node
is synced, then answers
``dump`` with one JSON line ``{revision: [apply times...]}`` of the objects deltas
applied since the last dump (``time.time()``), and ``stats`` with one JSON line: the
clients' counters summed (``ClientStats``: connects, failovers, snapshots received, ...),
how many nodes are connected and to which upstream port, the lowest and highest objects
revision the nodes hold, and (with ``--watch-active``) every endpoint a node's catalog
turned inactive: ``[node, endpoint key, time.time()]``; ``reconnect fresh`` or
``reconnect resume``: every node closes its connection at once and comes back as a new
client, with an empty catalog or with the one it held (subscribing with its versions),
answered with ``{"s": seconds until all are synced, "keys": fewest endpoints held}``.
It exits when stdin closes.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import gc
import json
import resource
import sys
import time
from collections import defaultdict
from collections.abc import Set

import psutil

from tarscascade.cascade import CascadeClient, ClientOptions
from tarscascade.catalog import Catalog
from tarscascade.model import Category, ChangeEvent, Version


def upstream_lists(ports: list[int], count: int) -> list[list[tuple[str, int]]]:
    """Per node, every upstream; node i's list rotated by i (each first for 1/k of them)."""
    k = len(ports)
    return [[("127.0.0.1", ports[(i + j) % k]) for j in range(k)] for i in range(count)]


def watch_active(catalog: Catalog, node: str, inactive: list[list[object]]) -> None:
    """Record every endpoint this catalog serves as inactive after a change (the active
    rule: both states, and the endpoint's node alive), once per endpoint until it is
    active again."""
    off: set[str] = set()

    def on_change(affected: Set[str] | None) -> None:
        ids = catalog.object_ids() if affected is None else affected
        now = time.time()
        for oid in ids:
            for ep in catalog.get_object(oid):
                if not catalog.is_active(ep):
                    if ep.key not in off:
                        off.add(ep.key)
                        inactive.append([node, ep.key, now])
                else:
                    off.discard(ep.key)

    catalog.add_listener(on_change)


def stats(clients: list[CascadeClient], inactive: list[list[object]]) -> dict[str, object]:
    total: dict[str, int] = defaultdict(int)
    where: dict[str, int] = defaultdict(int)
    for c in clients:
        for k, v in dataclasses.asdict(c.stats).items():
            if isinstance(v, int):
                total[k] += v
        if c.connected and c.upstream is not None:
            where[str(c.upstream[1])] += 1
    revs = [c.catalog.version(Category.OBJECTS).revision for c in clients]
    return {
        "nodes": len(clients),
        "connected": sum(where.values()),
        "upstream_ports": where,
        "objects_revision_min": min(revs),
        "objects_revision_max": max(revs),
        "stats": total,
        "inactive": inactive,
    }


async def start_all(clients: list[CascadeClient], timeout: float) -> float:
    """Start every client at once: seconds until all are synced."""
    t0 = time.perf_counter()
    for c in clients:
        c.start()
    async with asyncio.timeout(timeout):
        for c in clients:
            await c.synced.wait()
    return time.perf_counter() - t0


async def run(
    upstreams: list[int],
    count: int,
    prefix: str,
    heartbeat: float,
    timeout: float,
    watch: bool = False,
) -> None:
    applied: dict[int, list[float]] = defaultdict(list)
    replaced: list[float] = []  # when each node's objects snapshot was in its catalog
    inactive: list[list[object]] = []

    def on_applied(
        cat: Category, _before: Version | None, _after: Version, events: list[ChangeEvent] | None
    ) -> None:
        if cat is Category.OBJECTS and events:
            now = time.time()
            if _before is not None and _after.revision - _before.revision <= 10_000:
                # every revision the delta covers: the node now holds each of them (a
                # coalesced delta carries only the last change of every key)
                for rev in range(_before.revision + 1, _after.revision + 1):
                    applied[rev].append(now)
            else:
                for ev in events:
                    applied[ev.revision].append(now)
        elif cat is Category.OBJECTS and events is None:
            replaced.append(time.perf_counter())

    def make_clients(catalogs: list[Catalog]) -> list[CascadeClient]:
        return [
            CascadeClient(
                catalogs[i],
                ups,
                node_name=f"{prefix}{i}",
                # as a node agent runs: freeze the long-lived replica after a large snapshot
                options=ClientOptions(
                    heartbeat_interval=heartbeat, call_timeout=30.0, freeze_gc_after_snapshot=True
                ),
                on_applied=on_applied,
            )
            for i, ups in enumerate(upstream_lists(upstreams, count))
        ]

    clients = make_clients([Catalog() for _ in range(count)])
    if watch:
        for c in clients:
            watch_active(c.catalog, c.node_name, inactive)
    t0 = time.perf_counter()
    try:
        synced_s = await start_all(clients, timeout)
        replaced_s = (max(replaced) - t0) if replaced else synced_s
        gc.collect()
        # The replicas are long-lived: keep the collector from rescanning them, as a node
        # agent would after its first sync (otherwise a full collection over hundreds of
        # replicas in this one process shows up as propagation latency).
        gc.freeze()
        rss = psutil.Process().memory_info().rss / 2**20
        max_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"SYNCED {synced_s:.3f} {rss:.1f} {max_rss:.1f} {replaced_s:.3f}", flush=True)
        loop = asyncio.get_running_loop()
        while line := await loop.run_in_executor(None, sys.stdin.readline):
            if line.strip() == "dump":
                print(json.dumps(applied), flush=True)
                applied.clear()
            elif line.strip() == "stats":
                print(json.dumps(stats(clients, inactive)), flush=True)
            elif line.split()[:1] == ["reconnect"]:
                fresh = line.split()[1:] == ["fresh"]
                for c in clients:
                    await c.aclose()
                catalogs = [Catalog() if fresh else c.catalog for c in clients]
                clients = make_clients(catalogs)
                took = await start_all(clients, timeout)
                keys = min(c.catalog.counts()["endpoints"] for c in clients)
                print(json.dumps({"s": took, "keys": keys}), flush=True)
    finally:
        for c in clients:
            await c.aclose()


def main() -> None:
    ap = argparse.ArgumentParser()
    where = ap.add_mutually_exclusive_group(required=True)
    where.add_argument("--port", type=int, help="one upstream: 127.0.0.1:PORT")
    where.add_argument(
        "--upstreams", help="PORT,PORT,...: every node lists all, node i's list rotated by i"
    )
    ap.add_argument("--count", type=int, default=1)
    ap.add_argument("--prefix", default="node")
    ap.add_argument("--heartbeat", type=float, default=3.0)
    ap.add_argument("--timeout", type=float, default=120.0)
    ap.add_argument(
        "--watch-active", action="store_true", help="record endpoints turning inactive (stats)"
    )
    a = ap.parse_args()
    ports = [a.port] if a.port is not None else [int(p) for p in a.upstreams.split(",")]
    asyncio.run(run(ports, a.count, a.prefix, a.heartbeat, a.timeout, a.watch_active))


if __name__ == "__main__":
    main()
