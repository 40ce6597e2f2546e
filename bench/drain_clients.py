"""Client process for :mod:`bench.bench_drain`.

``python -m bench.drain_clients --locator OBJSTR --prefix push --first 0 --count 50
--interval 0.02 [--subscribe] [--refresh 3.0]``

Starts ``count`` :class:`~tarscascade.client.Communicator` instances (each with its own
connections) whose locator is the node, each calling ``hello(client_id)`` every
``interval`` seconds in its own task (``client_id`` = ``PREFIX-INDEX``). Prints ``READY``
on stdout once every client resolved both endpoints (and, with ``--subscribe``, the node
acknowledged its subscription); exits when stdin closes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys

from tarscascade.client import Communicator
from tarscascade.wire.codec import STRING
from tarscascade.wire.interface import Interface, Method, Param

OBJ = "Bench.DrainServer.HelloObj"
IFACE = Interface.of("Hello", Method("hello", (Param("name", STRING),), STRING))
NO_POLL = 3600.0


async def client_loop(comm: Communicator, name: str, interval: float) -> None:
    proxy = comm.proxy(OBJ, IFACE)
    loop = asyncio.get_running_loop()
    nxt = loop.time()
    while True:
        with contextlib.suppress(Exception):  # a failed call is retried at the next tick
            await proxy.invoke("hello", [name])
        nxt = max(nxt + interval, loop.time())
        await asyncio.sleep(nxt - loop.time())


def ready(comm: Communicator, subscribe: bool, want: int) -> bool:
    if len(comm.resolver(OBJ).endpoints.active) < want:
        return False
    if subscribe:
        loc = comm.locator
        return loc is not None and OBJ in loc.acknowledged
    return True


async def run(args: argparse.Namespace) -> None:
    refresh = NO_POLL if args.subscribe else args.refresh
    comms = [
        Communicator(locator=args.locator, subscribe=args.subscribe, refresh_interval=refresh)
        for _ in range(args.count)
    ]
    tasks: list[asyncio.Task[None]] = []
    try:
        for i, c in enumerate(comms):
            await c.start()
            name = f"{args.prefix}-{args.first + i}"
            tasks.append(asyncio.create_task(client_loop(c, name, args.interval)))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + args.ready_timeout
        while not all(ready(c, args.subscribe, args.endpoints) for c in comms):
            if loop.time() > deadline:
                print("NOT READY", flush=True)
                return
            await asyncio.sleep(0.02)
        print("READY", flush=True)
        await asyncio.to_thread(sys.stdin.read)  # returns at EOF: the bench closed stdin
    finally:
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        for c in comms:
            with contextlib.suppress(Exception):
                await c.aclose()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.drain_clients", description=__doc__)
    ap.add_argument("--locator", required=True)
    ap.add_argument("--prefix", default="c")
    ap.add_argument("--first", type=int, default=0)
    ap.add_argument("--count", type=int, default=10)
    ap.add_argument("--interval", type=float, default=0.02)
    ap.add_argument("--subscribe", action="store_true")
    ap.add_argument("--refresh", type=float, default=3.0)
    ap.add_argument("--endpoints", type=int, default=2, help="active endpoints before READY")
    ap.add_argument("--ready-timeout", type=float, default=30.0)
    asyncio.run(run(ap.parse_args(argv)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
