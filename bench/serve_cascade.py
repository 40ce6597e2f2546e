"""A registry with the cascade hub for benchmarks; prints ``READY <port> <rss_mb>``.

Then reads commands on stdin, one per line, answering each with one JSON line:

* ``nodes N TIMEOUT`` — wait until N nodes are connected and have acked everything;
* ``updates K INTERVAL_S`` — K endpoint updates, one write each; returns per update the
  revision, the time the write was issued and the time the registry had it committed
  and applied (``time.time()``, the moment it acknowledges the writer);
* ``burst K`` — K endpoint updates issued at once (concurrent writes, serialized by the
  store), answered like ``updates``;
* ``drain K`` — K updates, each followed by ``wait_acked`` (all connected nodes);
* ``idle S`` — the process CPU share over S seconds of doing nothing but heartbeats;
* ``stats`` — hub counters and RSS;
* ``cpu`` — this process's CPU seconds so far (user + system) and ``time.perf_counter()``.

It exits when stdin closes.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import gc
import json
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import psutil

from tarscascade.cascade import CascadeHub, HubOptions
from tarscascade.model import Category, ChangeEvent, EndpointRecord
from tarscascade.registry.core import RegistryCore, RegistryOptions
from tarscascade.registry.feed import attach_cascade
from tarscascade.store import Put, SqlStore
from tarscascade.transport import TarsServer
from tarscascade.transport.server import ServerOptions

BENCH_OBJ = "Bench.Propagation.Obj"


class Registry:
    def __init__(self, core: RegistryCore, hub: CascadeHub) -> None:
        self.core = core
        self.hub = hub
        self.committed: dict[int, float] = {}
        self.n = 0

    def on_events(self, batch: Sequence[ChangeEvent]) -> None:
        # Registered before the hub's listener: the time the write is applied, right
        # before it is pushed and acknowledged to the writer.
        now = time.time()
        for ev in batch:
            self.committed[ev.revision] = now

    async def update(self) -> tuple[int, float]:
        self.n += 1
        rec = EndpointRecord(BENCH_OBJ, "10.200.0.1", 9000, weight=self.n % 1000)
        t0 = time.time()
        events = await self.core.write([Put(rec)])
        return events[-1].revision, t0

    async def command(self, line: str) -> Any:
        cmd, *args = line.split()
        if cmd == "nodes":
            return await wait_nodes(self.core, self.hub, int(args[0]), float(args[1]))
        if cmd == "updates":
            k, interval = int(args[0]), float(args[1])
            out = []
            for _ in range(k):
                rev, t0 = await self.update()
                out.append([rev, t0, self.committed.pop(rev)])
                await asyncio.sleep(interval)
            return out
        if cmd == "burst":
            done = await asyncio.gather(*(self.update() for _ in range(int(args[0]))))
            return [[rev, t0, self.committed.pop(rev)] for rev, t0 in done]
        if cmd == "drain":
            waits = []
            for _ in range(int(args[0])):
                rev, _ = await self.update()
                version = self.core.catalog.version(Category.OBJECTS)
                elapsed, missing = await self.hub.wait_acked(Category.OBJECTS, version, timeout=30)
                waits.append([elapsed, len(missing)])
                await asyncio.sleep(0.02)
            return waits
        if cmd == "idle":
            proc = psutil.Process()
            c0, t0, hb0 = proc.cpu_times(), time.perf_counter(), self.hub.stats.heartbeats
            await asyncio.sleep(float(args[0]))
            c1, t1 = proc.cpu_times(), time.perf_counter()
            cpu = (c1.user + c1.system) - (c0.user + c0.system)
            return {
                "cpu_percent": 100.0 * cpu / (t1 - t0),
                "heartbeats_per_s": (self.hub.stats.heartbeats - hb0) / (t1 - t0),
            }
        if cmd == "cpu":
            c = psutil.Process().cpu_times()
            return {"cpu_s": c.user + c.system, "t": time.perf_counter()}
        if cmd == "stats":
            return {
                "hub": dataclasses.asdict(self.hub.stats),
                "rss_mb": psutil.Process().memory_info().rss / 2**20,
                "sessions": self.hub.session_count,
            }
        return {"error": f"unknown command {cmd}"}


async def wait_nodes(core: RegistryCore, hub: CascadeHub, want: int, timeout: float) -> Any:
    """The ``nodes`` command: until ``want`` nodes are connected and acked everything."""
    t0 = time.perf_counter()
    deadline = t0 + timeout
    while len(hub.tracker.connected_names()) < want:
        if time.perf_counter() > deadline:
            return {"ok": False, "connected": len(hub.tracker.connected_names())}
        await asyncio.sleep(0.05)
    version = core.catalog.version(Category.OBJECTS)
    _, missing = await hub.wait_acked(
        Category.OBJECTS, version, timeout=max(0.1, deadline - time.perf_counter())
    )
    return {"ok": not missing, "missing": len(missing), "s": time.perf_counter() - t0}


async def open_core(db: str) -> RegistryCore:
    """The store and a started core (no anti-entropy reload: the benchmarks' data only
    changes through it), its catalog frozen out of the collector's way."""
    store = await asyncio.to_thread(SqlStore.open, db)
    core = RegistryCore(store, RegistryOptions(reload_interval=0))
    await core.start()
    gc.freeze()  # the loaded catalog is long-lived: keep the collector off it
    return core


async def command_loop(
    server: TarsServer, core: RegistryCore, handle: Callable[[str], Awaitable[Any]]
) -> None:
    """Print READY, run the core's change-log tail, answer stdin commands until EOF."""
    loop = asyncio.get_running_loop()
    async with asyncio.TaskGroup() as tg:
        runner = tg.create_task(core.run())
        rss = psutil.Process().memory_info().rss / 2**20
        print(f"READY {server.port} {rss:.1f}", flush=True)
        while line := await loop.run_in_executor(None, sys.stdin.readline):
            if line.strip():
                print(json.dumps(await handle(line)), flush=True)
        runner.cancel()


async def serve(db: str) -> None:
    core = await open_core(db)
    hub_ref: list[Registry] = []
    core.add_listener(lambda batch: hub_ref[0].on_events(batch) if hub_ref else None)
    hub = await attach_cascade(core, token=None, options=HubOptions())
    reg = Registry(core, hub)
    hub_ref.append(reg)
    # every simulated node connects from 127.0.0.1: lift the per-address bound (in a
    # fleet each host has its own address; the total bound still holds)
    opts = ServerOptions(max_connections_per_ip=None)
    async with TarsServer([hub.servant], options=opts) as server:
        await command_loop(server, core, reg.command)
    await hub.aclose()
    await core.aclose()
    core.store.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", required=True)
    asyncio.run(serve(ap.parse_args().db))


if __name__ == "__main__":
    main()
