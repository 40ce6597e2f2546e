"""Client process for :mod:`bench.bench_seen`: resolvers that timestamp what they see.

``python -m bench.seen_clients --locator OBJSTR --count 50 [--subscribe] [--refresh 3.0]``

Starts ``count`` :class:`~tarscascade.client.Communicator` instances (each with its own
connection to the node) resolving :data:`OBJ`; every time a client's endpoint list
changes it records ``(time.time(), weight)`` of the endpoint. Prints ``READY`` once every
client has a list, then answers each ``dump`` line on stdin with one JSON line: per
client, the ``[time, weight]`` changes since the last dump. Exits when stdin closes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from collections.abc import Callable

from tarscascade.client import Communicator
from tarscascade.client.lkg import EndpointList

OBJ = "Bench.Seen.ListObj"
NO_POLL = 3600.0


async def run(args: argparse.Namespace) -> None:
    refresh = NO_POLL if args.subscribe else args.refresh
    comms = [
        Communicator(locator=args.locator, subscribe=args.subscribe, refresh_interval=refresh)
        for _ in range(args.count)
    ]
    seen: list[list[tuple[float, int]]] = [[] for _ in comms]

    def listener(i: int) -> Callable[[EndpointList], None]:
        def on_change(new: EndpointList) -> None:
            if new.active:
                seen[i].append((time.time(), new.active[0].weight))

        return on_change

    try:
        for i, c in enumerate(comms):
            await c.start()
            c.resolver(OBJ).add_listener(listener(i))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + args.ready_timeout
        while not all(seen) or (
            args.subscribe
            and not all(c.locator is not None and OBJ in c.locator.acknowledged for c in comms)
        ):
            if loop.time() > deadline:
                print("NOT READY", flush=True)
                return
            await asyncio.sleep(0.02)
        print("READY", flush=True)
        while line := await asyncio.to_thread(sys.stdin.readline):
            if line.strip() == "dump":
                print(json.dumps(seen), flush=True)
                for s in seen:
                    s.clear()
    finally:
        for c in comms:
            with contextlib.suppress(Exception):
                await c.aclose()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.seen_clients", description=__doc__)
    ap.add_argument("--locator", required=True)
    ap.add_argument("--count", type=int, default=10)
    ap.add_argument("--subscribe", action="store_true")
    ap.add_argument("--refresh", type=float, default=3.0)
    ap.add_argument("--ready-timeout", type=float, default=30.0)
    asyncio.run(run(ap.parse_args(argv)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
