"""A real node agent for benchmarks; prints ``READY <port> <synced_s> <rss_mb>`` once synced.

``python -m bench.serve_node --upstream PORT [--name NAME]``: a :class:`NodeAgent`
(replica, QueryObj/ServerObj on one TarsServer, no data dir) subscribed to the registry
on 127.0.0.1:PORT. It exits when stdin closes.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

import psutil

from tarscascade.node.app import NodeAgent, NodeConfig


async def serve(upstream: int, name: str, timeout: float) -> None:
    node = NodeAgent(
        NodeConfig(name=name, upstreams=[("127.0.0.1", upstream)], listen=("127.0.0.1", 0))
    )
    t0 = time.perf_counter()
    await node.start()
    try:
        assert node.client is not None
        await asyncio.wait_for(node.client.synced.wait(), timeout)
        synced_s = time.perf_counter() - t0
        rss = psutil.Process().memory_info().rss / 2**20
        print(f"READY {node.port} {synced_s:.3f} {rss:.1f}", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    finally:
        await node.aclose()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--upstream", type=int, required=True)
    ap.add_argument("--name", default="bench-node")
    ap.add_argument("--timeout", type=float, default=120.0)
    a = ap.parse_args()
    asyncio.run(serve(a.upstream, a.name, a.timeout))


if __name__ == "__main__":
    main()
