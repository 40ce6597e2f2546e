"""Many etcd watchers in one process, each listing then watching a prefix on its own connection.

The Kubernetes-style consumer (an informer): each watcher has its own ``httpx`` client
(so its own HTTP connection to etcd's v3 JSON gateway), lists the prefix with
``/v3/kv/range``, keeps the items in its own dict (key -> decoded JSON value), then
watches ``/v3/watch`` from the list's revision + 1 and applies each event to its dict.

Prints ``SYNCED <seconds> <rss_mb> <keys_per_watcher>`` once every watcher has listed and
its watch is created, then answers ``dump`` with one JSON line ``{mod_revision: [times
seen...]}`` of the events applied since the last dump (``time.time()``, taken after the
event is in the watcher's dict, as ``bench.cascade_nodes`` does), and exits when stdin
closes.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import ssl
import sys
import time
from collections import defaultdict
from typing import Any

import httpx
import orjson
import psutil


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def prefix_end(prefix: str) -> str:
    """The range_end that selects every key starting with ``prefix`` (last byte + 1)."""
    raw = prefix.encode()
    return base64.b64encode(raw[:-1] + bytes([raw[-1] + 1])).decode()


class Watcher:
    def __init__(
        self, url: str, prefix: str, applied: dict[int, list[float]], ctx: ssl.SSLContext
    ) -> None:
        self.url = url
        self.prefix = prefix
        self.applied = applied
        self.ctx = ctx
        self.items: dict[str, Any] = {}
        self.created = asyncio.Event()
        self.error: BaseException | None = None

    async def run(self) -> None:
        try:
            await self._run()
        except asyncio.CancelledError:
            raise
        except BaseException as e:  # reported through SYNCED / the parent's timeouts
            self.error = e
            self.created.set()

    async def _run(self) -> None:
        rng = {"key": b64(self.prefix), "range_end": prefix_end(self.prefix)}
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        timeout = httpx.Timeout(10.0, read=None)  # a watch stream is silent while idle
        async with httpx.AsyncClient(
            base_url=self.url, limits=limits, timeout=timeout, verify=self.ctx
        ) as client:
            r = await client.post("/v3/kv/range", json=rng)
            r.raise_for_status()
            doc = orjson.loads(r.content)
            for kv in doc.get("kvs", []):
                self.items[base64.b64decode(kv["key"]).decode()] = orjson.loads(
                    base64.b64decode(kv["value"])
                )
            start = int(doc["header"]["revision"]) + 1
            req = {"create_request": {**rng, "start_revision": start}}
            async with client.stream("POST", "/v3/watch", json=req) as resp:
                resp.raise_for_status()
                async for line in resp.aiter_lines():
                    if not line.strip():
                        continue
                    result = orjson.loads(line).get("result", {})
                    if result.get("created"):
                        self.created.set()
                    events = result.get("events")
                    if not events:
                        continue
                    revs = []
                    for ev in events:
                        kv = ev["kv"]
                        key = base64.b64decode(kv["key"]).decode()
                        if ev.get("type") == "DELETE":
                            self.items.pop(key, None)
                        else:
                            self.items[key] = orjson.loads(base64.b64decode(kv["value"]))
                        revs.append(int(kv["mod_revision"]))
                    now = time.time()
                    for rev in revs:
                        self.applied[rev].append(now)
            raise RuntimeError("watch stream ended")


async def run(url: str, count: int, prefix: str, timeout: float) -> None:
    applied: dict[int, list[float]] = defaultdict(list)
    ctx = ssl.create_default_context()  # unused (plain http), shared so clients start fast
    watchers = [Watcher(url, prefix, applied, ctx) for _ in range(count)]
    t0 = time.perf_counter()
    tasks = [asyncio.create_task(w.run()) for w in watchers]
    try:
        async with asyncio.timeout(timeout):
            for w in watchers:
                await w.created.wait()
        errors = [w.error for w in watchers if w.error is not None]
        if errors:
            print(f"FAILED {len(errors)} watchers: {errors[0]!r}", flush=True)
            return
        synced_s = time.perf_counter() - t0
        rss = psutil.Process().memory_info().rss / 2**20
        keys = min(len(w.items) for w in watchers)
        print(f"SYNCED {synced_s:.3f} {rss:.1f} {keys}", flush=True)
        loop = asyncio.get_running_loop()
        while line := await loop.run_in_executor(None, sys.stdin.readline):
            if line.strip() == "dump":
                broken = sum(1 for t in tasks if t.done())
                if broken:
                    print(json.dumps({"error": f"{broken} watchers stopped"}), flush=True)
                else:
                    print(json.dumps(applied), flush=True)
                applied.clear()
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True, help="etcd client URL, e.g. http://127.0.0.1:2379")
    ap.add_argument("--count", type=int, default=1)
    ap.add_argument("--prefix", default="/tars/objects/")
    ap.add_argument("--timeout", type=float, default=120.0)
    a = ap.parse_args()
    asyncio.run(run(a.url, a.count, a.prefix, a.timeout))


if __name__ == "__main__":
    main()
