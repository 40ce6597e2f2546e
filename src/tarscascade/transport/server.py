"""A TARS server: several servants by name on one port.

Each connection is an ``asyncio.Protocol`` around the sans-IO :class:`ServerRpc`.
Synchronous servant answers are written straight from ``data_received`` (no task per
request); awaitable answers run as tasks owned by the connection, at most
``max_pending`` at once (beyond that the caller gets TARSSERVEROVERLOAD). A peer that
does not read its replies pauses our reading from it, so it cannot grow our memory;
a peer that sends part of a frame and stalls is closed by the sweeper, and so is one
that connects and never sends a whole request, or goes quiet for ``idle_timeout``.
Connections are bounded in total and per peer address (one host cannot lock the
others out), and every socket has TCP keepalive, so dead peers are found.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, cast

from tarscascade.errors import ProtocolError
from tarscascade.transport.peercred import peer_key
from tarscascade.transport.servant import (
    Current,
    MaybeAwaitable,
    Servant,
    dispatch_in_kind,
)
from tarscascade.transport.sockopts import DEFAULT_KEEPALIVE, KeepAlive, apply_keepalive
from tarscascade.transport.tls import cert_name
from tarscascade.wire.framing import DEFAULT_MAX_FRAME
from tarscascade.wire.packets import PING_FUNC, RequestPacket, Result, Ret
from tarscascade.wire.rpc import ServerRpc, encode_push

log = logging.getLogger(__name__)

#: refusals (connection limits) are logged at most this often
REFUSAL_LOG_INTERVAL_S = 10.0


@dataclass(slots=True)
class ServerOptions:
    max_frame: int = DEFAULT_MAX_FRAME
    #: awaitable dispatches in flight per connection; more are refused with OVERLOAD
    max_pending: int = 1024
    max_connections: int = 10_000
    #: connections from one peer address (None = no limit beyond max_connections)
    max_connections_per_ip: int | None = 2_000
    #: a connection holding an incomplete frame this long without progress is closed
    stall_timeout: float = 30.0
    #: a connection that has not sent one whole request this long after it was
    #: accepted is closed (None = never): idle sockets cannot hold the slots
    first_request_timeout: float | None = 10.0
    #: a connection with no traffic at all this long is closed (None = never); TARS
    #: clients reconnect on demand, cascade sessions heartbeat every few seconds
    idle_timeout: float | None = 600.0
    #: TCP keepalive and user timeout on accepted sockets (None = the kernel's defaults)
    keepalive: KeepAlive | None = DEFAULT_KEEPALIVE
    sweep_interval: float = 1.0
    #: how long aclose() lets in-flight requests finish before cancelling them
    drain_timeout: float = 5.0
    write_high_water: int = 4 * 1024 * 1024
    backlog: int = 1024
    #: TLS (``TlsConfig.server_context()``); None = plain TCP
    ssl: ssl.SSLContext | None = None


class _Conn(asyncio.Protocol):
    __slots__ = (
        "_close_callbacks",
        "_closing",
        "_counted_ip",
        "_paused_writing",
        "_peer_cert",
        "_peer_key",
        "_tasks",
        "_writable",
        "last_activity",
        "last_progress",
        "peer",
        "requests",
        "rpc",
        "server",
        "transport",
    )

    def __init__(self, server: TarsServer) -> None:
        self.server = server
        self.rpc = ServerRpc(server.options.max_frame)
        self.transport: asyncio.Transport | None = None
        self.peer: tuple[str, int] = ("", 0)
        self._tasks: set[asyncio.Task[Result]] = set()
        self._paused_writing = False
        self._writable: asyncio.Event | None = None  # created by the first drain()
        self._closing = False
        self._close_callbacks: list[Callable[[], None]] = []
        self._counted_ip = ""
        self._peer_key: str | None = None
        self._peer_cert: str | None = None
        self.requests = 0
        now = time.monotonic()
        self.last_activity = now
        self.last_progress = now

    # -- asyncio callbacks
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # a stream transport, but not always an asyncio.Transport subclass (uvloop's
        # TCPTransport is not): an isinstance check refused every connection there
        self.transport = transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        self.peer = (str(peer[0]), int(peer[1])) if peer else ("", 0)
        server, opts = self.server, self.server.options
        if len(server._conns) >= opts.max_connections:
            server._refuse(self.peer, "too many connections", "refused_total")
            transport.abort()
            return
        ip = self.peer[0]
        per_ip = opts.max_connections_per_ip
        if per_ip is not None and server._per_ip.get(ip, 0) >= per_ip:
            server._refuse(self.peer, f"more than {per_ip} connections from it", "refused_per_ip")
            transport.abort()
            return
        if opts.ssl is not None:
            self._peer_cert = cert_name(transport.get_extra_info("peercert"))
        apply_keepalive(transport.get_extra_info("socket"), opts.keepalive)
        transport.set_write_buffer_limits(high=opts.write_high_water)
        server._conns.add(self)
        server._per_ip[ip] = server._per_ip.get(ip, 0) + 1
        self._counted_ip = ip

    def connection_lost(self, exc: Exception | None) -> None:
        self._closing = True
        if self._writable is not None:
            self._writable.set()  # wake drain() waiters: the connection is gone
        self.server._conns.discard(self)
        if self._counted_ip:
            self.server._uncount(self._counted_ip)
            self._counted_ip = ""
        for t in self._tasks:
            t.cancel()
        callbacks, self._close_callbacks = self._close_callbacks, []
        for cb in callbacks:
            try:
                cb()
            except Exception:
                log.exception("close callback failed")

    @property
    def peer_cert_name(self) -> str | None:
        """The name in the peer's verified TLS client certificate (mutual TLS), else None."""
        return self._peer_cert

    @property
    def peer_key(self) -> str:
        """Who this peer is, for per-peer budgets: its IP, or ``uid:N`` for a local
        process (``transport/peercred.py``); looked up once per connection."""
        if self._peer_key is None:
            sock = self.transport.get_extra_info("sockname") if self.transport else None
            local = (str(sock[0]), int(sock[1])) if sock else ("", 0)
            self._peer_key = peer_key(self.peer, local)
        return self._peer_key

    def add_close_callback(self, fn: Callable[[], None]) -> None:
        """Call ``fn()`` once when this connection closes (subscriptions clean up here)."""
        if self._closing:
            fn()
        else:
            self._close_callbacks.append(fn)

    def pause_writing(self) -> None:
        # The peer is not reading its replies: stop reading its requests.
        self._paused_writing = True
        if self._writable is not None:
            self._writable.clear()
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        self._paused_writing = False
        if self._writable is not None:
            self._writable.set()
        if self.transport is not None and not self._closing and not self.server._draining:
            self.transport.resume_reading()

    def data_received(self, data: bytes) -> None:
        now = time.monotonic()
        self.last_activity = now
        try:
            requests = self.rpc.receive_data(data)
        except ProtocolError as exc:
            # The stream cannot be re-synchronised after a bad frame: close it.
            log.info("closing %s: %s", self.peer, exc)
            self.server.stats["protocol_errors"] += 1
            self.abort()
            return
        if requests or self.rpc.buffered == 0:
            self.last_progress = now
        self.requests += len(requests)
        for req in requests:
            self._handle(req)

    # -- dispatch
    def _handle(self, req: RequestPacket) -> None:
        server = self.server
        server.stats["requests"] += 1
        servant = server.servants.get(req.sServantName)
        result: MaybeAwaitable
        if servant is None:
            result = (Ret.NO_SERVANT, b"", f"no servant {req.sServantName!r}")
        elif req.sFuncName == PING_FUNC:
            result = (Ret.SUCCESS, b"", "")
        elif server._draining:
            result = (Ret.OVERLOAD, b"", "server is shutting down")
        else:
            try:
                result = dispatch_in_kind(servant, Current(req, self.peer, self))
            except Exception as exc:  # a servant bug must not kill the connection
                log.exception("servant %s raised", req.sServantName)
                result = (Ret.UNKNOWN, b"", f"{type(exc).__name__}: {exc}")
        if isinstance(result, tuple):
            self._reply(req, result)
            return
        if len(self._tasks) >= server.options.max_pending:
            close = getattr(result, "close", None)  # a coroutine, or an InKind around one
            if close is not None:
                close()
            self._reply(req, (Ret.OVERLOAD, b"", "too many requests in flight"))
            return
        task: asyncio.Task[Result] = asyncio.ensure_future(result)
        self._tasks.add(task)
        task.add_done_callback(lambda t, r=req: self._finished(t, r))  # type: ignore[misc]

    def _finished(self, task: asyncio.Task[Result], req: RequestPacket) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            log.error("servant task failed", exc_info=exc)
            self._reply(req, (Ret.UNKNOWN, b"", f"{type(exc).__name__}: {exc}"))
            return
        self._reply(req, task.result())

    def _reply(self, req: RequestPacket, result: Result) -> None:
        # is_closing: a failed send (peer reset) closes the transport before
        # connection_lost runs; writing on would only make asyncio log each reply
        if self.is_closing or self.transport is None:
            return
        ret, body, desc = result
        try:
            frame = self.rpc.build_reply(req, int(ret), body, desc)
        except ProtocolError as exc:  # e.g. a reply larger than the frame limit
            frame = self.rpc.build_reply(req, Ret.SERVER_ENCODE_ERR, b"", str(exc))
        if frame is not None:
            self.transport.write(frame)

    # -- used by servants and the server
    def push(self, func: str, body: bytes) -> bool:
        if self.is_closing or self.transport is None:
            return False
        self.transport.write(encode_push(func, body, self.rpc.max_frame))
        return True

    def push_frame(self, frame: bytes) -> bool:
        """Write an already encoded push frame (one encoding shared by many connections)."""
        if self.is_closing or self.transport is None:
            return False
        self.transport.write(frame)
        return True

    async def drain(self) -> None:
        """Wait until the write buffer is below the low-water mark (or the connection is gone).

        For servants streaming large pushes (snapshots): write, then drain, so a peer that
        reads slowly holds back the sender instead of growing our buffer.
        """
        if not self._paused_writing or self._closing:
            return
        if self._writable is None:
            self._writable = asyncio.Event()
        await self._writable.wait()

    @property
    def is_closing(self) -> bool:
        return self._closing or self.transport is None or self.transport.is_closing()

    @property
    def write_buffer_size(self) -> int:
        return self.transport.get_write_buffer_size() if self.transport else 0

    def abort(self) -> None:
        self._closing = True
        if self._writable is not None:
            self._writable.set()
        if self.transport is not None:
            self.transport.abort()

    def stop_reading(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.pause_reading()


class TarsServer:
    """Hosts servants on one TCP port. Use ``async with`` or ``start()``/``aclose()``."""

    def __init__(
        self,
        servants: Iterable[Servant] = (),
        host: str = "127.0.0.1",
        port: int = 0,
        options: ServerOptions | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.options = options or ServerOptions()
        self.servants: dict[str, Servant] = {}
        for s in servants:
            self.add_servant(s)
        self._server: asyncio.Server | None = None
        self._conns: set[_Conn] = set()
        self._sweeper: asyncio.Task[None] | None = None
        self._draining = False
        self._per_ip: dict[str, int] = {}
        self._last_refusal_log = -1e9
        self.stats: dict[str, int] = {
            "requests": 0,
            "protocol_errors": 0,
            "stalled_closed": 0,
            "idle_closed": 0,
            "refused_total": 0,
            "refused_per_ip": 0,
        }

    def _refuse(self, peer: tuple[str, int], why: str, stat: str) -> None:
        self.stats[stat] += 1
        now = time.monotonic()
        if now - self._last_refusal_log >= REFUSAL_LOG_INTERVAL_S:  # one line, not a flood
            self._last_refusal_log = now
            log.warning(
                "refusing connection from %s:%s: %s (%d refused so far)",
                *peer,
                why,
                self.stats["refused_total"] + self.stats["refused_per_ip"],
            )

    def _uncount(self, ip: str) -> None:
        n = self._per_ip.get(ip, 0) - 1
        if n > 0:
            self._per_ip[ip] = n
        else:
            self._per_ip.pop(ip, None)

    def connections_from(self, ip: str) -> int:
        return self._per_ip.get(ip, 0)

    def add_servant(self, servant: Servant) -> None:
        self.servants[servant.name] = servant

    @property
    def address(self) -> tuple[str, int]:
        return (self.host, self.port)

    @property
    def connection_count(self) -> int:
        return len(self._conns)

    def endpoint(self) -> str:
        """This server as a TARS endpoint string."""
        return f"tcp -h {self.host} -p {self.port}"

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _Conn(self),
            self.host,
            self.port,
            backlog=self.options.backlog,
            reuse_address=True,
            ssl=self.options.ssl,
        )
        sock = self._server.sockets[0]
        self.port = int(sock.getsockname()[1])
        self._sweeper = asyncio.create_task(self._sweep(), name=f"tars-sweeper:{self.port}")

    async def _sweep(self) -> None:
        opts = self.options
        while True:
            await asyncio.sleep(opts.sweep_interval)
            now = time.monotonic()
            for conn in list(self._conns):
                stalled = conn.rpc.buffered and now - conn.last_progress > opts.stall_timeout
                idle = (
                    opts.idle_timeout is not None and now - conn.last_activity > opts.idle_timeout
                ) or (
                    opts.first_request_timeout is not None
                    and conn.requests == 0
                    and now - conn.last_progress > opts.first_request_timeout
                )
                if stalled:
                    self.stats["stalled_closed"] += 1
                    conn.abort()
                elif idle and not conn._tasks:
                    self.stats["idle_closed"] += 1
                    conn.abort()

    def push_all(self, func: str, body: bytes) -> int:
        """Push to every connected peer; returns how many were reached."""
        return sum(1 for c in list(self._conns) if c.push(func, body))

    async def aclose(self) -> None:
        """Stop in stages: stop accepting, stop reading, drain in-flight work, close."""
        if self._server is None:
            return
        self._draining = True
        server, self._server = self._server, None
        server.close()
        for conn in list(self._conns):
            conn.stop_reading()
        pending: set[asyncio.Task[Any]] = set()
        for conn in self._conns:
            pending |= conn._tasks
        if pending:
            await asyncio.wait(pending, timeout=self.options.drain_timeout)
        for conn in list(self._conns):
            for t in conn._tasks:
                t.cancel()
            conn.abort()
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        await server.wait_closed()

    async def __aenter__(self) -> TarsServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        names = sorted(self.servants)
        return f"<TarsServer {self.host}:{self.port} servants={names} conns={len(self._conns)}>"
