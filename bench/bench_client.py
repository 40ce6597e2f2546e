"""Client SDK: invoke round trips per second through the ServantProxy on loopback.

A separate process hosts Test.HelloServer.HelloObj (``bench.serve_hello``); this process
calls ``hello`` through a :class:`~tarscascade.client.ServantProxy` (balancer + shield +
channel + encode/decode) with (a) one call in flight, (b) 100 in flight, (c) 100 in flight
round-robined over two server processes; and, for comparison, with a bare
:class:`~tarscascade.transport.Channel` (no balancing/shielding, same encode/decode).
Reported: calls/s (median of runs), and latency percentiles for the sequential case.
Target (issue 5, informative): >= 5,000 sequential round trips/s through the proxy.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from bench.bench_transport import start_server, stop
from bench.common import cli, median, verdict
from bench.serve_hello import HELLO, IFACE, OBJ
from tarscascade.client import Communicator
from tarscascade.transport import Channel

TARGET_SEQUENTIAL = 5_000
Call = Callable[[], Awaitable[Any]]


async def drive(call: Call, in_flight: int, duration: float, warmup: float) -> dict[str, Any]:
    """Keep ``in_flight`` calls going for ``duration`` s after ``warmup``; count and time them."""
    loop = asyncio.get_running_loop()
    start = loop.time() + warmup
    end = start + duration
    counts = [0] * in_flight
    lat: list[float] = []
    record = in_flight == 1

    async def worker(i: int) -> None:
        while True:
            t0 = time.perf_counter()
            await call()
            now = loop.time()
            if now >= end:
                return
            if now >= start:
                counts[i] += 1
                if record:
                    lat.append(time.perf_counter() - t0)

    async with asyncio.TaskGroup() as tg:
        for i in range(in_flight):
            tg.create_task(worker(i))
    out: dict[str, Any] = {"calls": sum(counts), "rps": sum(counts) / duration}
    if lat:
        q = statistics.quantiles(lat, n=100)
        out["latency_us"] = {
            "p50": round(q[49] * 1e6, 1),
            "p99": round(q[98] * 1e6, 1),
            "mean": round(statistics.fmean(lat) * 1e6, 1),
        }
    return out


async def scenarios(ports: list[int], duration: float, runs: int) -> dict[str, Any]:
    one = f"{OBJ}@tcp -h 127.0.0.1 -p {ports[0]}"
    two = f"{OBJ}@" + ":".join(f"tcp -h 127.0.0.1 -p {p}" for p in ports)
    out: dict[str, Any] = {}
    async with Communicator() as comm, Channel("127.0.0.1", ports[0]) as ch:
        p1 = comm.proxy(one, IFACE)
        p2 = comm.proxy(two, IFACE)

        async def via_proxy() -> Any:
            return await p1.invoke("hello", ["bench"])

        async def via_proxy_two() -> Any:
            return await p2.invoke("hello", ["bench"])

        async def via_channel() -> Any:
            return await ch.call(OBJ, HELLO, "bench")

        cases: dict[str, tuple[Call, int]] = {
            "proxy_sequential": (via_proxy, 1),
            "channel_sequential": (via_channel, 1),
            "proxy_100_in_flight": (via_proxy, 100),
            "channel_100_in_flight": (via_channel, 100),
            "proxy_two_servers_100_in_flight": (via_proxy_two, 100),
        }
        for name, (call, depth) in cases.items():
            samples = [await drive(call, depth, duration, 0.3) for _ in range(runs)]
            res: dict[str, Any] = {
                "in_flight": depth,
                "runs": runs,
                "rps_median": round(median([s["rps"] for s in samples])),
                "samples": samples,
            }
            if depth == 1:
                res["latency_us_p50_median"] = median([s["latency_us"]["p50"] for s in samples])
                res["latency_us_p99_median"] = median([s["latency_us"]["p99"] for s in samples])
            out[name] = res
        seq = out["proxy_sequential"]["rps_median"]
        out["proxy_sequential"]["target"] = verdict(seq, TARGET_SEQUENTIAL, lower_is_better=False)
        for depth in ("sequential", "100_in_flight"):
            raw = out[f"channel_{depth}"]["rps_median"]
            out[f"proxy_{depth}"]["share_of_bare_channel"] = (
                round(out[f"proxy_{depth}"]["rps_median"] / raw, 3) if raw else 0.0
            )
        spread = p2.pool.shield.blocked
        out["proxy_two_servers_100_in_flight"]["shielded_endpoints"] = len(spread)
    return out


def run(quick: bool) -> dict[str, Any]:
    duration = 1.0 if quick else 3.0
    runs = 1 if quick else 3
    procs = [
        start_server([sys.executable, "-m", "bench.serve_hello", "--port", "0"]) for _ in (1, 2)
    ]
    try:
        ports = [int(ready[0]) for _, ready in procs]
        return asyncio.run(scenarios(ports, duration, runs))
    finally:
        for proc, _ in procs:
            stop(proc)


def main(argv: list[str] | None = None) -> int:
    return cli("client", run, __doc__, argv)


if __name__ == "__main__":
    raise SystemExit(main())
