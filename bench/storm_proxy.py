"""A failure-injection TCP proxy for :mod:`bench.bench_storm`; prints ``READY <port>``.

``python -m bench.storm_proxy --upstream PORT`` listens on 127.0.0.1 (an OS-assigned
port) and relays every accepted connection to ``127.0.0.1:PORT``, bytes both ways, with
back-pressure (a direction reads again only once its write buffer drained). When either
side of a relayed pair closes, both are closed (the cascade never half-closes).

Then reads commands on stdin, one per line, answering each with one JSON line:

* ``cut S`` — abort (RST) every relayed connection now, both sides, and for S seconds
  accept new connections only to abort them at once: every node sees its connection drop
  and its reconnects fail, as in a network blip. Answers at once with the number closed
  and the cut's start and end (``time.time()``).
* ``open`` — end a cut now (new connections are relayed again); answers its time.
* ``target PORT`` — relay new connections to this upstream port (a restarted registry).
* ``count`` — connections relayed and open now, counters, and when the latest
  connection was relayed (its upstream connect succeeded).

It exits when stdin closes. A failed upstream connect (the registry is down) aborts the
accepted connection, as a refused connect would end the node's attempt.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from typing import Any

CHUNK = 256 * 1024
UPSTREAM_CONNECT_TIMEOUT = 3.0


class Pair:
    """One relayed connection: the downstream (node) side and the upstream side."""

    def __init__(self, down: asyncio.StreamWriter, up: asyncio.StreamWriter) -> None:
        self.down = down
        self.up = up

    def abort(self) -> None:
        for w in (self.down, self.up):
            w.transport.abort()


class Proxy:
    def __init__(self, upstream: int) -> None:
        self.upstream = upstream
        self.refuse_until = 0.0  # time.monotonic()
        self.pairs: set[Pair] = set()
        self.accepted = 0
        self.refused = 0
        self.upstream_failed = 0
        self.relayed = 0
        self.last_relayed = 0.0  # time.time() of the latest connection relayed

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        if time.monotonic() < self.refuse_until:
            self.refused += 1
            writer.transport.abort()
            return
        try:
            async with asyncio.timeout(UPSTREAM_CONNECT_TIMEOUT):
                up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream)
        except (OSError, TimeoutError):
            self.upstream_failed += 1
            writer.transport.abort()
            return
        if time.monotonic() < self.refuse_until:  # a cut began while connecting
            self.refused += 1
            up_writer.transport.abort()
            writer.transport.abort()
            return
        self.relayed += 1
        self.last_relayed = time.time()
        pair = Pair(writer, up_writer)
        self.pairs.add(pair)
        a = asyncio.create_task(_pipe(reader, up_writer))
        b = asyncio.create_task(_pipe(up_reader, writer))
        try:
            await asyncio.wait({a, b}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            a.cancel()
            b.cancel()
            await asyncio.gather(a, b, return_exceptions=True)
            self.pairs.discard(pair)
            pair.abort()  # one side ended: end the other (no half-close in the cascade)

    def cut(self, seconds: float) -> dict[str, Any]:
        now = time.time()
        self.refuse_until = time.monotonic() + seconds
        pairs = list(self.pairs)
        for p in pairs:
            p.abort()
        return {"closed": len(pairs), "t_start": now, "t_end": now + seconds}

    def command(self, line: str) -> Any:
        cmd, *args = line.split()
        if cmd == "cut":
            return self.cut(float(args[0]))
        if cmd == "open":
            self.refuse_until = 0.0
            return {"t": time.time()}
        if cmd == "target":
            self.upstream = int(args[0])
            return {"ok": True, "upstream": self.upstream}
        if cmd == "count":
            return {
                "open": len(self.pairs),
                "accepted": self.accepted,
                "refused": self.refused,
                "upstream_failed": self.upstream_failed,
                "relayed": self.relayed,
                "last_relayed_t": self.last_relayed,
            }
        return {"error": f"unknown command {cmd}"}


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy until EOF; drain after every write, so a slow reader slows the writer."""
    while data := await reader.read(CHUNK):
        writer.write(data)
        await writer.drain()


async def serve(upstream: int) -> None:
    proxy = Proxy(upstream)
    server = await asyncio.start_server(proxy.handle, "127.0.0.1", 0, backlog=4096)
    port = server.sockets[0].getsockname()[1]
    print(f"READY {port}", flush=True)
    loop = asyncio.get_running_loop()
    async with server:
        while line := await loop.run_in_executor(None, sys.stdin.readline):
            if line.strip():
                print(json.dumps(proxy.command(line)), flush=True)
        server.close()
        for p in list(proxy.pairs):
            p.abort()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--upstream", type=int, required=True)
    asyncio.run(serve(ap.parse_args().upstream))


if __name__ == "__main__":
    main()
