"""A lean TARS load generator: C connections, each keeping D requests in flight.

Requests are pre-encoded frames and replies are only counted (their length prefix is
read), so nearly all CPU goes to the server under test. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

from tarscascade.wire.idl.queryf import FIND_IN_SAME_GROUP, QUERY_SERVANT
from tarscascade.wire.rpc import ClientRpc


class _Load(asyncio.Protocol):
    def __init__(self, frames: list[bytes], depth: int, counter: list[int]) -> None:
        self.frames = frames
        self.next = 0
        self.depth = depth
        self.counter = counter
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None
        self.stop = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(self._take(self.depth))

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        pos, n, done = 0, len(buf), 0
        while n - pos >= 4:
            size = int.from_bytes(buf[pos : pos + 4], "big")
            if n - pos < size:
                break
            pos += size
            done += 1
        del buf[:pos]
        self.counter[0] += done
        if done and not self.stop and self.transport is not None:
            self.transport.write(self._take(done))

    def _take(self, n: int) -> bytes:
        frames, i = self.frames, self.next
        if len(frames) == 1:
            return frames[0] * n
        out = b"".join(frames[(i + k) % len(frames)] for k in range(n))
        self.next = (i + n) % len(frames)
        return out


def build_frames(query_objects: list[str], caller: str) -> list[bytes]:
    """Pre-encoded requests: `hello`, or QueryF InSameGroup for each object id given."""
    rpc = ClientRpc()
    if not query_objects:
        from bench.serve_hello import HELLO, OBJ

        return [rpc.send_request(OBJ, "hello", HELLO.encode_args("bench"))[1]]
    m = FIND_IN_SAME_GROUP
    ctx = {"node_name": caller}
    return [
        rpc.send_request(QUERY_SERVANT, m.name, m.encode_args(o), context=ctx)[1]
        for o in query_objects
    ]


async def run(
    host: str,
    port: int,
    conns: int,
    depth: int,
    warmup: float,
    duration: float,
    frames: list[bytes],
) -> dict:
    loop = asyncio.get_running_loop()
    counter = [0]
    protos: list[_Load] = []
    for _ in range(conns):
        _, p = await loop.create_connection(lambda: _Load(frames, depth, counter), host, port)
        protos.append(p)
    await asyncio.sleep(warmup)
    start_count, t0 = counter[0], time.perf_counter()
    await asyncio.sleep(duration)
    count, t1 = counter[0] - start_count, time.perf_counter()
    for p in protos:
        p.stop = True
        if p.transport is not None:
            p.transport.close()
    return {"replies": count, "seconds": t1 - t0, "rps": count / (t1 - t0)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--connections", type=int, default=1)
    ap.add_argument("--depth", type=int, default=100)
    ap.add_argument("--warmup", type=float, default=0.5)
    ap.add_argument("--duration", type=float, default=3.0)
    ap.add_argument("--query-objects", default="", help="comma-separated ids: QueryF load")
    ap.add_argument("--caller", default="10.0.0.1", help="context node_name for QueryF")
    a = ap.parse_args()
    objs = [o for o in a.query_objects.split(",") if o]
    frames = build_frames(objs, a.caller)
    res = asyncio.run(run(a.host, a.port, a.connections, a.depth, a.warmup, a.duration, frames))
    print(json.dumps(res), flush=True)


if __name__ == "__main__":
    main()
