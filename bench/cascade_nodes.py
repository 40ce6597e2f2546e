"""Many cascade nodes in one process, each with its own catalog and TCP connection.

Prints ``SYNCED <seconds> <rss_mb> <max_rss_mb> <objects_replaced_s>`` once every node
is synced, then answers
``dump`` with one JSON line ``{revision: [apply times...]}`` of the objects deltas
applied since the last dump (``time.time()``), and exits when stdin closes.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import resource
import sys
import time
from collections import defaultdict

import psutil

from tarscascade.cascade import CascadeClient, ClientOptions
from tarscascade.catalog import Catalog
from tarscascade.model import Category, ChangeEvent, Version


async def run(port: int, count: int, prefix: str, heartbeat: float, timeout: float) -> None:
    applied: dict[int, list[float]] = defaultdict(list)
    replaced: list[float] = []  # when each node's objects snapshot was in its catalog

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

    clients = [
        CascadeClient(
            Catalog(),
            [("127.0.0.1", port)],
            node_name=f"{prefix}{i}",
            # as a node agent runs: freeze the long-lived replica after a large snapshot
            options=ClientOptions(
                heartbeat_interval=heartbeat, call_timeout=30.0, freeze_gc_after_snapshot=True
            ),
            on_applied=on_applied,
        )
        for i in range(count)
    ]
    t0 = time.perf_counter()
    for c in clients:
        c.start()
    try:
        async with asyncio.timeout(timeout):
            for c in clients:
                await c.synced.wait()
        synced_s = time.perf_counter() - t0
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
    finally:
        for c in clients:
            await c.aclose()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--count", type=int, default=1)
    ap.add_argument("--prefix", default="node")
    ap.add_argument("--heartbeat", type=float, default=3.0)
    ap.add_argument("--timeout", type=float, default=120.0)
    a = ap.parse_args()
    asyncio.run(run(a.port, a.count, a.prefix, a.heartbeat, a.timeout))


if __name__ == "__main__":
    main()
