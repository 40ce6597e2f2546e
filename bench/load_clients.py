"""Simulated TARS client processes for :mod:`bench.bench_load` (the open-source model).

``python -m bench.load_clients --port P --first F --count C --total K --objects N``

Each simulated client process is ONE TCP connection of its own to the registry, and
refreshes its ``N`` object proxies every ``period`` seconds as a TARS client does: one
``findObjectByIdInSameGroup`` per object, all sent together (the proxies are created
together at start, so their refresh timers run in step), with the caller identity of its
host (context ``node_name`` = the host IP; ``--per-host`` clients share a host). A round
is skipped when the previous one is not fully answered yet (TARS does not re-ask while a
query is in flight), so a saturated registry shows as skipped rounds, not as an unbounded
queue. Client ``g`` of ``K`` first refreshes at ``T0 + (g + u) / K * period`` with ``u``
uniform in [0, 1): phases spread evenly over the period.

The load stays lean: requests are pre-encoded (one blob per host), replies are only split
by their length prefix and counted; the one reply per round about the watched object
(always the ``--watch``-th: a connection's answers come in order) is decoded only when its
bytes differ from the previous one, to record when the client first saw each new weight.

Prints ``READY <connections>`` once connected, then answers stdin commands with one JSON
line each: ``go T0 PERIOD`` (start refreshing; ``T0`` is a ``time.time()`` value),
``counters``, ``stop`` (stop refreshing; answers the counters), ``seen`` (per client the
``[time, weight]`` changes of the watched object it saw). Exits when stdin closes.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import random
import sys
import time
from typing import Any

from bench.serve_load_registry import WATCHED_HOST, WATCHED_PORT
from tarscascade.wire.idl.queryf import FIND_IN_SAME_GROUP, QUERY_SERVANT
from tarscascade.wire.rpc import ClientRpc, decode_response


def host_ip(host: int) -> str:
    return f"10.{1 + host // 250}.{host % 250}.1"


def object_ids(objects: int) -> list[str]:
    return [f"Load.S{i}.Obj" for i in range(objects)]


def watched_weight(frame: bytes) -> int:
    """The weight of the watched endpoint in a findObjectByIdInSameGroup reply (-2: absent)."""
    pkt = decode_response(frame)
    _, active, inactive = FIND_IN_SAME_GROUP.decode_result(pkt.sBuffer)
    for ep in [*active, *inactive]:
        if ep.host == WATCHED_HOST and ep.port == WATCHED_PORT:
            return int(ep.weight)
    return -2


class Totals:
    __slots__ = ("bytes_in", "bytes_out", "replies", "requests", "rounds", "skipped")

    def __init__(self) -> None:
        self.requests = self.replies = self.rounds = self.skipped = 0
        self.bytes_out = self.bytes_in = 0


class SimClient(asyncio.Protocol):
    """One simulated client process: its own connection, a refresh round every period."""

    def __init__(self, gid: int, blob: bytes, n: int, watch: int, totals: Totals) -> None:
        self.gid = gid
        self.blob = blob
        self.n = n
        self.watch = watch
        self.totals = totals
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None
        self.outstanding = 0
        self.pos = 0
        self.round_start = 0.0
        self.round_times: list[float] = []
        self.last_watch = b""
        self.seen: list[list[float]] = []
        self.timer: asyncio.TimerHandle | None = None
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if self.timer is not None:
            self.timer.cancel()

    def fire(self, loop: asyncio.AbstractEventLoop, at: float, period: float) -> None:
        """One refresh round, then schedule the next one at ``at + period``."""
        t = self.totals
        if self.transport is None or self.lost:
            return
        if self.outstanding:
            t.skipped += 1
        else:
            self.outstanding, self.pos = self.n, 0
            self.round_start = time.perf_counter()
            self.transport.write(self.blob)
            t.rounds += 1
            t.requests += self.n
            t.bytes_out += len(self.blob)
        nxt = at + period
        self.timer = loop.call_at(nxt, self.fire, loop, nxt, period)

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        self.totals.bytes_in += len(data)
        pos, end, done = 0, len(buf), 0
        while end - pos >= 4:
            size = int.from_bytes(buf[pos : pos + 4], "big")
            if end - pos < size:
                break
            if self.pos + done == self.watch:
                frame = bytes(buf[pos + 4 : pos + size])
                if frame != self.last_watch:
                    self.last_watch = frame
                    self.seen.append([time.time(), watched_weight(frame)])
            pos += size
            done += 1
        if pos:
            del buf[:pos]
        if done:
            self.pos += done
            self.totals.replies += done
            self.outstanding -= done
            if self.outstanding <= 0:
                self.outstanding = 0
                self.round_times.append(time.perf_counter() - self.round_start)


def blobs(first: int, count: int, per_host: int, objects: int) -> dict[int, bytes]:
    """Pre-encoded refresh rounds, one per host (the caller identity differs per host)."""
    m = FIND_IN_SAME_GROUP
    out: dict[int, bytes] = {}
    for g in range(first, first + count):
        h = g // per_host
        if h in out:
            continue
        rpc = ClientRpc()
        ctx = {"node_name": host_ip(h)}
        out[h] = b"".join(
            rpc.send_request(QUERY_SERVANT, m.name, m.encode_args(o), context=ctx)[1]
            for o in object_ids(objects)
        )
    return out


async def run(a: argparse.Namespace) -> None:
    loop = asyncio.get_running_loop()
    totals = Totals()
    per_host = blobs(a.first, a.count, a.per_host, a.objects)
    clients: list[SimClient] = []
    try:
        async with asyncio.timeout(a.timeout):
            for g in range(a.first, a.first + a.count):
                blob = per_host[g // a.per_host]
                _, c = await loop.create_connection(
                    functools.partial(SimClient, g, blob, a.objects, a.watch, totals),
                    a.host,
                    a.port,
                )
                clients.append(c)
        print(f"READY {len(clients)}", flush=True)
        rng = random.Random(a.seed)

        def counters() -> dict[str, Any]:
            rt = sorted(r for c in clients for r in c.round_times)
            return {
                "clients": len(clients),
                "connections_lost": sum(1 for c in clients if c.lost),
                "requests": totals.requests,
                "replies": totals.replies,
                "rounds": totals.rounds,
                "skipped_rounds": totals.skipped,
                "bytes_out": totals.bytes_out,
                "bytes_in": totals.bytes_in,
                "rounds_done": len(rt),
                "round_s_p50": rt[len(rt) // 2] if rt else None,
                "round_s_max": rt[-1] if rt else None,
            }

        while line := await loop.run_in_executor(None, sys.stdin.readline):
            cmd, *args = line.split() or [""]
            out: Any
            if cmd == "go":
                t0, period = float(args[0]), float(args[1])
                base = loop.time() + (t0 - time.time())
                for c in clients:
                    at = base + (c.gid + rng.random()) / a.total * period
                    c.timer = loop.call_at(at, c.fire, loop, at, period)
                out = {"ok": True}
            elif cmd == "counters":
                out = counters()
            elif cmd == "stop":
                for c in clients:
                    if c.timer is not None:
                        c.timer.cancel()
                out = counters()
            elif cmd == "seen":
                out = {str(c.gid): c.seen for c in clients}
            elif not cmd:
                continue
            else:
                out = {"error": f"unknown command {cmd}"}
            print(json.dumps(out), flush=True)
    finally:
        for c in clients:
            if c.timer is not None:
                c.timer.cancel()
            if c.transport is not None:
                c.transport.close()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.load_clients", description=__doc__)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--first", type=int, default=0, help="global index of the first client")
    ap.add_argument("--count", type=int, default=1, help="clients (connections) here")
    ap.add_argument("--total", type=int, default=1, help="clients over every load process")
    ap.add_argument("--objects", type=int, default=100)
    ap.add_argument("--watch", type=int, default=0, help="index of the watched object")
    ap.add_argument("--per-host", type=int, default=10, help="client processes per host")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=60.0, help="to connect every client")
    asyncio.run(run(ap.parse_args(argv)))


if __name__ == "__main__":
    main()
