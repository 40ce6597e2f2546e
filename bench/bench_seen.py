"""Seen by clients: registry write acknowledged -> every client's endpoint list has it.

Process A (this one): a registry (SQLite, temp dir) and one node agent (as in
:mod:`bench.bench_drain`). Process(es) B (:mod:`bench.seen_clients`): N SDK clients
(:class:`~tarscascade.client.Communicator`, each with its own connection to the node)
resolving one object, each timestamping (``time.time()``) every change of its list.

Update k writes the object's one endpoint with weight k, so "client c has seen update
k" = the first change at c carrying a weight >= k (a 3 s poller skips intermediate
values; it still sees k when it sees a later one). Per update: ack -> last client
that saw it; also per client-update. Streams: paced (one write every ``PACE`` s) and
back to back (the next write as soon as the last one is acknowledged). Modes: push
(``subscribe``: the node pushes ``objectChanged`` and the client asks again) and 3 s
polling of the node (paced 150 ms apart there, so 100 updates span five periods).

Targets: push p99 < 200 ms (issue 5's drain target); polling: bounded by the 3 s period.
"""

from __future__ import annotations

import asyncio
import json
import math
import sys
import time
from typing import Any

from bench.bench_cascade import summary_ms
from bench.bench_drain import POLL_INTERVAL, ROOT, registry_and_node, stop_clients, wait_ready
from bench.common import cli, verdict
from bench.seen_clients import OBJ
from tarscascade.model import EndpointRecord
from tarscascade.registry.core import RegistryCore
from tarscascade.store import Put
from tarscascade.testing import eventually
from tarscascade.wire.idl.serverf import NODE_SERVANT

TARGET_PUSH_P99_MS = 200.0
PACE = 0.05  # push
LINE_LIMIT = 64 * 2**20
POLL_PACE = 0.15  # polling: 100 updates span five 3 s periods


async def write(core: RegistryCore, weight: int) -> float:
    await core.write([Put(EndpointRecord(OBJ, "127.0.0.1", 1, weight=weight))])
    return time.time()


async def dump(procs: list[asyncio.subprocess.Process]) -> list[list[tuple[float, int]]]:
    out: list[list[tuple[float, int]]] = []
    for p in procs:
        assert p.stdin is not None
        assert p.stdout is not None
        p.stdin.write(b"dump\n")
        await p.stdin.drain()
        out += json.loads(await asyncio.wait_for(p.stdout.readline(), 30))
    return out


async def stream(
    core: RegistryCore,
    procs: list[asyncio.subprocess.Process],
    first: int,
    count: int,
    pace: float,
    bound: float,
) -> dict[str, Any]:
    acks: dict[int, float] = {}
    for k in range(first, first + count):
        acks[k] = await write(core, k)
        if pace:
            await asyncio.sleep(pace)
    last = first + count - 1
    got: list[list[tuple[float, int]]] = []

    async def everyone_has_last() -> bool:
        nonlocal got
        batch = await dump(procs)
        got = [a + b for a, b in zip(got, batch, strict=True)] if got else batch
        return all(any(w >= last for _, w in changes) for changes in got)

    loop = asyncio.get_running_loop()
    deadline = loop.time() + bound
    while not await everyone_has_last():
        if loop.time() > deadline:
            break
        await asyncio.sleep(0.2)
    per_update: list[float] = []
    per_client: list[float] = []
    complete = 0
    for k, t_ack in acks.items():
        firsts = [next((t for t, w in ch if w >= k), math.nan) for ch in got]
        if any(math.isnan(t) for t in firsts):
            continue
        complete += 1
        per_update.append(max(firsts) - t_ack)
        per_client += [t - t_ack for t in firsts]
    return {
        "updates": count,
        "updates_seen_by_every_client": complete,
        "pace_s": pace,
        "ack_to_last_client_ms": summary_ms(per_update) if per_update else {},
        "ack_to_each_client_ms": summary_ms(per_client) if per_client else {},
    }


async def run_mode(
    core: RegistryCore, node_port: int, split: list[int], push: bool, quick: bool
) -> dict[str, Any]:
    locator = f"{NODE_SERVANT}@tcp -h 127.0.0.1 -p {node_port}"
    procs: list[asyncio.subprocess.Process] = []
    for count in split:
        cmd = [sys.executable, "-m", "bench.seen_clients", "--locator", locator]
        cmd += ["--count", str(count), "--refresh", str(POLL_INTERVAL)]
        if push:
            cmd.append("--subscribe")
        procs.append(
            await asyncio.create_subprocess_exec(
                *cmd,
                cwd=ROOT,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                limit=LINE_LIMIT,  # a dump is one JSON line of every client's changes
            )
        )
    try:
        await wait_ready(procs, 60)
        await dump(procs)  # forget the initial lists
        n = 20 if quick else (200 if push else 100)
        bound = 10.0 if push else POLL_INTERVAL + 10.0
        pace = PACE if push else POLL_PACE
        paced = await stream(core, procs, (3 if push else 5) * 10_000, n, pace, bound)
        back = await stream(core, procs, (4 if push else 6) * 10_000, n, 0.0, bound)
    finally:
        await stop_clients(procs)
    return {"paced": paced, "back_to_back": back}


async def run_async(quick: bool) -> dict[str, Any]:
    split = [10] if quick else [50, 50]
    async with registry_and_node() as (rp, node):
        assert rp.core is not None
        await write(rp.core, 1)
        await eventually(lambda: len(node.catalog.get_object(OBJ)) == 1, 20)
        push = await run_mode(rp.core, node.port, split, True, quick)
        print(f"[seen] push: {push}", file=sys.stderr)
        poll = await run_mode(rp.core, node.port, split, False, quick)
        print(f"[seen] poll: {poll}", file=sys.stderr)
    p99 = push["paced"]["ack_to_last_client_ms"].get("p99", math.inf)
    return {
        "clients": sum(split),
        "client_processes": len(split),
        "push": push,
        "polling_3s": poll,
        "verdict": f"push paced p99 {verdict(p99, TARGET_PUSH_P99_MS)}",
    }


def run(quick: bool) -> dict[str, Any]:
    return asyncio.run(run_async(quick))


def main(argv: list[str] | None = None) -> int:
    return cli("seen", run, __doc__, argv)


if __name__ == "__main__":
    raise SystemExit(main())
