"""Many etcd watchers in one process, each listing then watching a prefix on its own connection.

The Kubernetes-style consumer (an informer) on etcd's native v3 gRPC API (``grpc.aio``):
each watcher has its own channel, so its own TCP connection to etcd, Ranges the prefix into
its own dict (key -> decoded JSON value), then opens a Watch stream from the Range's
revision + 1 and applies each event to its dict, remembering the highest revision seen.

Protocol (stdout, one line each):

* ``SYNCED <seconds> <rss_mb> <min_keys_per_watcher>`` once every watcher has listed and
  got its watch's ``created`` response; ``FAILED <reason>`` instead (then it exits).
* then one command per stdin line, one JSON line answering each:

  - ``dump``: ``{mod_revision: [time.time() applied, one per watcher...]}`` for the events
    applied since the last dump (the time is taken once the event is in the watcher's dict,
    as ``bench.cascade_nodes`` does), then forgets them; ``{"error": ...}`` if a watcher
    stopped.
  - ``reconnect fresh``: every watcher at once closes its channel and starts over as a new
    consumer (new channel, Range, Watch); ``{"s": seconds until every watch is created
    again, "keys": min keys per watcher}``.
  - ``reconnect resume``: every watcher at once closes its channel, opens a new one and
    watches again from its last seen revision + 1 without a Range (client-go's reflector
    when its resourceVersion is still in etcd's history): the events of the gap arrive
    through the watch. Answered as ``reconnect fresh``.

Exits when stdin closes, cancelling every watcher (which closes its channel).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import sys
import time
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import grpc
import orjson
import psutil

from bench.etcd_grpc import CHANNEL_OPTIONS, PREFIX, prefix_end
from bench.etcdpb import rpc_pb2, rpc_pb2_grpc

#: gRPC shares one subchannel (TCP connection) between channels created with equal
#: arguments to the same target, through a process-wide pool: 100 watchers would then be
#: 100 HTTP/2 streams on one connection. A local pool per channel gives each watcher its
#: own connection, like informers on separate hosts (checked with ``ss -tn``: N watchers,
#: N established connections to etcd's client port).
WATCH_OPTIONS: list[tuple[str, int]] = [*CHANNEL_OPTIONS, ("grpc.use_local_subchannel_pool", 1)]

Applied = defaultdict[int, list[float]]


class Watcher:
    """One informer: its own channel, its own dict, its own watch stream."""

    def __init__(self, target: str, prefix: str, applied: Applied, timeout: float) -> None:
        self.target = target
        self.key = prefix.encode()
        self.end = prefix_end(prefix)
        self.applied = applied
        self.timeout = timeout  # for the Range
        self.items: dict[str, Any] = {}
        self.revision = 0  # the Range's, then the highest mod_revision applied
        self.created = asyncio.Event()
        self.error: BaseException | None = None
        self.task: asyncio.Task[None] | None = None

    def start(self, resume: bool) -> None:
        """Connect and list (unless ``resume``: then watch on from the last revision seen)."""
        if not resume:  # a new consumer: starts empty
            self.items = {}
            self.revision = 0
        self.created = asyncio.Event()
        self.error = None
        self.task = asyncio.create_task(self._guarded(resume))

    async def stop(self) -> None:
        """Cancel the task: leaving its ``async with`` closes the channel (and connection)."""
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
            self.task = None

    def stopped(self) -> bool:
        return self.task is None or self.task.done()

    async def _guarded(self, resume: bool) -> None:
        try:
            await self._run(resume)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # reported through SYNCED / dump / reconnect
            self.error = e
            self.created.set()

    async def _run(self, resume: bool) -> None:
        async with grpc.aio.insecure_channel(self.target, options=WATCH_OPTIONS) as channel:
            if not resume:
                await self._list(channel)
            await self._watch(channel)

    async def _list(self, channel: grpc.aio.Channel) -> None:
        req = rpc_pb2.RangeRequest(key=self.key, range_end=self.end)
        resp = await rpc_pb2_grpc.KVStub(channel).Range(req, timeout=self.timeout)
        self.items = {kv.key.decode(): orjson.loads(kv.value) for kv in resp.kvs}
        self.revision = int(resp.header.revision)

    async def _watch(self, channel: grpc.aio.Channel) -> None:
        call = rpc_pb2_grpc.WatchStub(channel).Watch()
        create = rpc_pb2.WatchCreateRequest(
            key=self.key, range_end=self.end, start_revision=self.revision + 1
        )
        await call.write(rpc_pb2.WatchRequest(create_request=create))
        # no done_writing(): etcd ends the whole stream when the client half-closes it
        while True:
            resp = await call.read()
            if resp is grpc.aio.EOF:
                raise RuntimeError("watch stream ended")
            if resp.canceled:  # e.g. compacted: start_revision is no longer in history
                raise RuntimeError(
                    f"watch canceled: {resp.cancel_reason!r}, "
                    f"compact_revision {resp.compact_revision}"
                )
            if resp.created:
                self.created.set()
            if resp.events:
                self._apply(resp.events)

    def _apply(self, events: Iterable[rpc_pb2.Event]) -> None:
        revs: dict[int, None] = {}  # ordered set: a txn's puts share one revision
        for ev in events:
            key = ev.kv.key.decode()
            if ev.type == rpc_pb2.Event.DELETE:
                self.items.pop(key, None)
            else:
                self.items[key] = orjson.loads(ev.kv.value)
            revs[int(ev.kv.mod_revision)] = None
        now = time.time()
        for rev in revs:
            self.applied[rev].append(now)
        self.revision = max(self.revision, *revs)


def failed(watchers: list[Watcher]) -> str | None:
    errors = [w.error for w in watchers if w.error is not None]
    if errors:
        return f"{len(errors)} watchers failed: {errors[0]!r}"
    dead = sum(1 for w in watchers if w.stopped())
    return f"{dead} watchers stopped" if dead else None


async def all_created(watchers: list[Watcher], timeout: float) -> str | None:
    """Wait until every watch is created: None, or why not."""
    try:
        async with asyncio.timeout(timeout):
            for w in watchers:
                await w.created.wait()
    except TimeoutError:
        waiting = sum(1 for w in watchers if not w.created.is_set())
        return f"timeout after {timeout} s: {waiting} watches not created"
    return failed(watchers)


async def reconnect(watchers: list[Watcher], resume: bool, timeout: float) -> dict[str, Any]:
    """Every watcher drops its connection, then all come back at once: timed from the
    moment all are down, as ``bench.cascade_nodes`` times its nodes."""
    await asyncio.gather(*(w.stop() for w in watchers))
    t0 = time.perf_counter()
    for w in watchers:
        w.start(resume)
    error = await all_created(watchers, timeout)
    if error is not None:
        return {"error": error}
    return {"s": time.perf_counter() - t0, "keys": min(len(w.items) for w in watchers)}


async def serve(watchers: list[Watcher], applied: Applied, timeout: float) -> None:
    """Answer stdin's commands until it closes."""
    loop = asyncio.get_running_loop()
    while line := await loop.run_in_executor(None, sys.stdin.readline):
        command = line.strip()
        answer: dict[Any, Any]
        if command == "dump":
            error = failed(watchers)
            answer = {"error": error} if error else dict(applied)
            applied.clear()
        elif command in ("reconnect fresh", "reconnect resume"):
            answer = await reconnect(watchers, command.endswith("resume"), timeout)
        else:
            answer = {"error": f"unknown command {command!r}"}
        print(json.dumps(answer), flush=True)


async def run(target: str, count: int, prefix: str, timeout: float) -> None:
    applied: Applied = defaultdict(list)
    watchers = [Watcher(target, prefix, applied, timeout) for _ in range(count)]
    t0 = time.perf_counter()
    for w in watchers:
        w.start(resume=False)
    try:
        error = await all_created(watchers, timeout)
        if error is not None:
            print(f"FAILED {error}", flush=True)
            return
        synced_s = time.perf_counter() - t0
        # long-lived replicas, kept out of the collector's way as bench.cascade_nodes does
        gc.collect()
        gc.freeze()
        rss = psutil.Process().memory_info().rss / 2**20
        keys = min(len(w.items) for w in watchers)
        print(f"SYNCED {synced_s:.3f} {rss:.1f} {keys}", flush=True)
        await serve(watchers, applied, timeout)
    finally:
        await asyncio.gather(*(w.stop() for w in watchers))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", required=True, help="etcd's gRPC address, e.g. 127.0.0.1:2379")
    ap.add_argument("--count", type=int, default=1)
    ap.add_argument("--prefix", default=PREFIX)
    ap.add_argument("--timeout", type=float, default=120.0)
    a = ap.parse_args()
    asyncio.run(run(a.target, a.count, a.prefix, a.timeout))


if __name__ == "__main__":
    main()
