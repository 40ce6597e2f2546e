"""The registry of the load benchmark: QueryObj (QueryF) and CascadeObj on ONE TarsServer.

``python -m bench.serve_load_registry --db URL`` prints ``READY <port> <rss_mb>``; both
modes of :mod:`bench.bench_load` (direct QueryF clients, cascade nodes) run against this
same program. Then it reads commands on stdin, one per line, answering each with one
JSON line:

* ``counters`` — requests dispatched by the server (every servant), QueryF requests,
  hub counters (subscribes, heartbeats, acks, deltas sent...), cascade sessions, RSS;
* ``update`` — one single-endpoint write: the watched object's endpoint gets weight
  ``n`` (1, 2, ...); returns ``[n, revision, t_issued, t_ack]`` (``time.time()``;
  ``t_ack`` = the write returned: committed, applied to the catalog, pushed);
* ``stream_start INTERVAL_S`` — such updates every INTERVAL_S in the background;
* ``stream_stop`` — stop them; returns every ``[n, revision, t_issued, t_ack]`` since start;
* ``nodes N TIMEOUT`` — wait until N cascade nodes are connected and acked everything.

It exits when stdin closes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import time
from typing import Any

import psutil

from bench.serve_cascade import command_loop, open_core, wait_nodes
from tarscascade.cascade import CascadeHub, HubOptions
from tarscascade.model import EndpointRecord
from tarscascade.registry.core import RegistryCore
from tarscascade.registry.feed import attach_cascade
from tarscascade.registry.servants import QueryServant
from tarscascade.store import Put
from tarscascade.transport import Current, TarsServer
from tarscascade.wire.idl.queryf import QUERY_SERVANT

#: the object the update stream changes (one endpoint's weight), and that endpoint
WATCHED_OBJ = "Load.S0.Obj"
WATCHED_HOST = "10.200.0.1"
WATCHED_PORT = 9000


class CountingQuery(QueryServant):
    """QueryServant plus one integer increment per request (QueryF requests reaching us)."""

    def __init__(self, core: RegistryCore) -> None:
        super().__init__(core.answerer, QUERY_SERVANT)
        self.requests = 0

    def dispatch(self, current: Current) -> tuple[int, bytes, str]:
        self.requests += 1
        return super().dispatch(current)


class Registry:
    def __init__(
        self, core: RegistryCore, hub: CascadeHub, query: CountingQuery, server: TarsServer
    ) -> None:
        self.core = core
        self.hub = hub
        self.query = query
        self.server = server
        self.n = 0
        self.stream: list[list[float]] = []
        self.stream_task: asyncio.Task[None] | None = None

    async def update(self) -> list[float]:
        self.n += 1
        rec = EndpointRecord(WATCHED_OBJ, WATCHED_HOST, WATCHED_PORT, weight=self.n)
        t0 = time.time()
        events = await self.core.write([Put(rec)])
        return [self.n, events[-1].revision, t0, time.time()]

    async def _stream(self, interval: float) -> None:
        loop = asyncio.get_running_loop()
        nxt = loop.time()
        while True:
            self.stream.append(await self.update())
            nxt = max(nxt + interval, loop.time())
            await asyncio.sleep(nxt - loop.time())

    async def command(self, line: str) -> Any:
        cmd, *args = line.split()
        if cmd == "counters":
            return {
                "requests": self.server.stats["requests"],
                "queryf_requests": self.query.requests,
                "hub": dataclasses.asdict(self.hub.stats),
                "sessions": self.hub.session_count,
                "rss_mb": round(psutil.Process().memory_info().rss / 2**20, 1),
            }
        if cmd == "update":
            return await self.update()
        if cmd == "stream_start":
            if self.stream_task is None:
                self.stream = []
                self.stream_task = asyncio.create_task(self._stream(float(args[0])))
            return {"ok": True}
        if cmd == "stream_stop":
            if self.stream_task is not None:
                self.stream_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self.stream_task
                self.stream_task = None
            return self.stream
        if cmd == "nodes":
            return await wait_nodes(self.core, self.hub, int(args[0]), float(args[1]))
        return {"error": f"unknown command {cmd}"}


async def serve(db: str) -> None:
    core = await open_core(db)
    hub = await attach_cascade(core, token=None, options=HubOptions())
    query = CountingQuery(core)
    async with TarsServer([query, hub.servant], host="127.0.0.1", port=0) as server:
        reg = Registry(core, hub, query, server)
        try:
            await command_loop(server, core, reg.command)
        finally:
            if reg.stream_task is not None:
                reg.stream_task.cancel()
    await hub.aclose()
    await core.aclose()
    core.store.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", required=True)
    asyncio.run(serve(ap.parse_args().db))


if __name__ == "__main__":
    main()
