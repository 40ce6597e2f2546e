"""A TCP proxy for failure injection in tests: pass, drop, blackhole or delay traffic.

One listening port on 127.0.0.1 forwards every connection to ``target``. Modes apply to
every connection, current and future:

* ``pass``: bytes flow both ways;
* ``drop``: every connection is reset at once, new ones are accepted and reset;
* ``blackhole``: connections stay open but nothing flows either way (a partition, a
  peer that lost power: no FIN, no RST);
* ``delay``: bytes flow after ``delay`` seconds each way (order kept).

Everything runs in the test's event loop; :meth:`aclose` closes every socket.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Literal

Mode = Literal["pass", "drop", "blackhole", "delay"]
CHUNK = 65536


@dataclass(eq=False)
class _Pipe:
    client: tuple[asyncio.StreamReader, asyncio.StreamWriter]
    server: tuple[asyncio.StreamReader, asyncio.StreamWriter]
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def abort(self) -> None:
        for _, w in (self.client, self.server):
            w.transport.abort()
        for t in self.tasks:
            t.cancel()


class FaultProxy:
    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.mode: Mode = "pass"
        self.delay = 0.0
        self.port = 0
        self.accepted = 0
        self._server: asyncio.Server | None = None
        self._pipes: set[_Pipe] = set()
        self._flowing = asyncio.Event()
        self._flowing.set()

    @property
    def address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)

    async def start(self, port: int = 0) -> FaultProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def set(self, mode: Mode, delay: float = 0.0) -> None:
        self.mode, self.delay = mode, delay
        if mode == "blackhole":
            self._flowing.clear()
        else:
            self._flowing.set()
        if mode == "drop":
            for pipe in list(self._pipes):
                pipe.abort()
            self._pipes.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        if self.mode == "drop":
            writer.transport.abort()
            return
        try:
            up = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        pipe = _Pipe((reader, writer), up)
        self._pipes.add(pipe)
        pipe.tasks = [
            asyncio.create_task(self._pump(reader, up[1], pipe)),
            asyncio.create_task(self._pump(up[0], writer, pipe)),
        ]

    async def _pump(
        self, src: asyncio.StreamReader, dst: asyncio.StreamWriter, pipe: _Pipe
    ) -> None:
        try:
            while True:
                data = await src.read(CHUNK)
                if not data:
                    break
                await self._flowing.wait()  # a blackhole holds the bytes (and the socket)
                if self.mode == "delay" and self.delay > 0:
                    await asyncio.sleep(self.delay)
                dst.write(data)
                await dst.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            with contextlib.suppress(Exception):
                dst.close()
            self._pipes.discard(pipe)

    async def aclose(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for pipe in list(self._pipes):
            pipe.abort()
        tasks = [t for p in self._pipes for t in p.tasks]
        self._pipes.clear()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t

    async def __aenter__(self) -> FaultProxy:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
