"""A registry (store + core + QueryObj) for benchmarks; prints ``READY <port> <load_s> <rss_mb>``.

The time from process start to READY is the registry's time to serve; it exits when
stdin closes.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
import time

import psutil

from tarscascade.registry.core import RegistryCore, RegistryOptions
from tarscascade.registry.servants import QueryServant
from tarscascade.store import SqlStore
from tarscascade.transport import TarsServer

T0 = time.perf_counter()


async def serve(db: str) -> None:
    store = await asyncio.to_thread(SqlStore.open, db)
    core = RegistryCore(store, RegistryOptions(reload_interval=0))
    await core.start()
    gc.freeze()  # a million long-lived records: keep the collector from rescanning them
    async with TarsServer([QueryServant(core.answerer)]) as server:
        load_s = time.perf_counter() - T0
        rss = psutil.Process().memory_info().rss / 2**20
        print(f"READY {server.port} {load_s:.3f} {rss:.1f}", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    store.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", required=True)
    asyncio.run(serve(ap.parse_args().db))


if __name__ == "__main__":
    main()
