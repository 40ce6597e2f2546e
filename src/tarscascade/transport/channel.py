"""A channel: one TCP connection to one TARS endpoint, pipelined.

Calls share the connection; each waits on a future in a pending table keyed by request
id, removed in ``finally`` whatever happens (reply, timeout, cancellation, connection
loss), so nothing leaks. Pushes (request id 0) go to ``on_push``. After a connection
loss the next call reconnects, no sooner than a jittered backoff delay after the last
failed attempt; with ``keep_connected`` the channel reconnects by itself and calls
``on_connected`` each time (so a subscriber can subscribe again).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, cast

from tarscascade.errors import (
    CallTimeoutError,
    ConnectError,
    ConnectionClosedError,
    OverloadError,
    ProtocolError,
    ServerError,
)
from tarscascade.transport.backoff import Backoff
from tarscascade.transport.sockopts import DEFAULT_KEEPALIVE, KeepAlive, apply_keepalive
from tarscascade.wire.framing import DEFAULT_MAX_FRAME
from tarscascade.wire.interface import Method
from tarscascade.wire.packets import PING_FUNC, TARS_VERSION, TUP_VERSION, ResponsePacket, Ret
from tarscascade.wire.rpc import ClientRpc, Push, Reply

log = logging.getLogger(__name__)

PushHandler = Callable[[ResponsePacket], None]
ConnectedHandler = Callable[["Channel"], Awaitable[None]]


@dataclass(slots=True)
class ChannelOptions:
    connect_timeout: float = 3.0
    call_timeout: float = 3.0
    max_frame: int = DEFAULT_MAX_FRAME
    max_pending: int = 10_000
    keep_connected: bool = False
    backoff: Backoff = field(default_factory=Backoff)
    #: TCP keepalive and user timeout on the socket (None = the kernel's defaults)
    keepalive: KeepAlive | None = DEFAULT_KEEPALIVE
    #: TLS (``TlsConfig.client_context()``); None = plain TCP
    ssl: ssl.SSLContext | None = None


class _ClientProtocol(asyncio.Protocol):
    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self.transport: asyncio.Transport | None = None
        self.rpc = ClientRpc(channel.options.max_frame)
        self.closed = asyncio.get_running_loop().create_future()
        self._can_write = asyncio.Event()
        self._can_write.set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # a stream transport, but not always an asyncio.Transport subclass (uvloop's
        # TCPTransport is not): an isinstance check refused every connection there
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        ch = self.channel
        ch.last_received = time.monotonic()
        try:
            events = self.rpc.receive_data(data)
        except ProtocolError:
            events = []  # rpc.failed is set; closed below
        for ev in events:
            if isinstance(ev, Reply):
                fut = ch._pending.get(ev.packet.iRequestId)
                if fut is not None and not fut.done():
                    fut.set_result(ev.packet)
            elif isinstance(ev, Push):
                if ch.on_push is not None:
                    try:
                        ch.on_push(ev.packet)
                    except Exception:
                        log.exception("push handler failed")
            # StrayReply: a late answer to a call that already gave up; dropped.
        if self.rpc.failed is not None:
            log.warning("closing channel to %s:%s: %s", ch.host, ch.port, self.rpc.failed)
            if self.transport is not None:
                self.transport.abort()

    def pause_writing(self) -> None:
        self._can_write.clear()

    def resume_writing(self) -> None:
        self._can_write.set()

    def connection_lost(self, exc: Exception | None) -> None:
        self._can_write.set()
        if not self.closed.done():
            self.closed.set_result(None)
        self.channel._lost(self, exc)


class Channel:
    """A client connection to ``host:port``. ``aclose()`` always closes."""

    def __init__(
        self,
        host: str,
        port: int,
        options: ChannelOptions | None = None,
        *,
        on_push: PushHandler | None = None,
        on_connected: ConnectedHandler | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.options = options or ChannelOptions()
        self.on_push = on_push
        self.on_connected = on_connected
        self._proto: _ClientProtocol | None = None
        self._pending: dict[int, asyncio.Future[ResponsePacket]] = {}
        self._connect_lock = asyncio.Lock()
        self._next_attempt = 0.0
        self._closed = False
        self._reconnector: asyncio.Task[None] | None = None
        self.connects = 0
        #: when (monotonic) bytes last came from the peer; 0.0: never
        self.last_received = 0.0

    # -- connection management
    @property
    def is_connected(self) -> bool:
        p = self._proto
        return p is not None and p.transport is not None and not p.transport.is_closing()

    @property
    def pending_count(self) -> int:
        return len(self._pending)

    def received_within(self, seconds: float) -> bool:
        """Whether the peer sent anything in the last ``seconds``: a call that timed out
        while it did is stuck behind our own reading (pushes ahead of its answer in the
        stream), not lost to a dead peer."""
        return self.last_received > 0 and time.monotonic() - self.last_received <= seconds

    async def wait_disconnected(self) -> None:
        """Return when the current connection is lost (at once when not connected).

        Lets a subscriber holding a long-lived connection notice a drop immediately
        instead of at its next call.
        """
        proto = self._proto
        if proto is None:
            return
        await asyncio.shield(proto.closed)

    async def connect(self) -> None:
        """Connect now (calls also connect lazily)."""
        await self._ensure_connected(self.options.connect_timeout)

    async def _ensure_connected(self, budget: float) -> _ClientProtocol:
        if self._closed:
            raise ConnectionClosedError("channel is closed")
        proto = self._proto
        if proto is not None and proto.transport is not None and not proto.transport.is_closing():
            return proto
        async with self._connect_lock:
            proto = self._proto
            if proto is not None and proto.transport is not None:
                if not proto.transport.is_closing():
                    return proto
            loop = asyncio.get_running_loop()
            wait = self._next_attempt - loop.time()
            if wait > 0:
                if wait > budget:
                    raise ConnectError(f"{self.host}:{self.port}: backing off after failures")
                await asyncio.sleep(wait)
            if self._closed:
                raise ConnectionClosedError("channel is closed")
            try:
                async with asyncio.timeout(min(budget, self.options.connect_timeout)):
                    _, p = await loop.create_connection(
                        lambda: _ClientProtocol(self),
                        self.host,
                        self.port,
                        ssl=self.options.ssl,
                    )
            except (OSError, TimeoutError) as exc:
                self._next_attempt = loop.time() + self.options.backoff.next_delay()
                raise ConnectError(f"cannot connect to {self.host}:{self.port}: {exc}") from exc
            self.options.backoff.reset()
            self._next_attempt = 0.0
            if p.transport is not None:
                apply_keepalive(p.transport.get_extra_info("socket"), self.options.keepalive)
            self._proto = p
            self.connects += 1
        if self.on_connected is not None:
            await self.on_connected(self)
        return p

    def _lost(self, proto: _ClientProtocol, exc: Exception | None) -> None:
        if self._proto is proto:
            self._proto = None
        err = ConnectionClosedError(
            f"connection to {self.host}:{self.port} lost: {exc or 'closed'}"
        )
        for rid in list(proto.rpc.outstanding):
            fut = self._pending.get(rid)
            if fut is not None and not fut.done():
                fut.set_exception(err)
        proto.rpc.outstanding.clear()
        if self.options.keep_connected and not self._closed:
            if self._reconnector is None or self._reconnector.done():
                self._reconnector = asyncio.get_running_loop().create_task(self._reconnect())

    async def _reconnect(self) -> None:
        while not self._closed and not self.is_connected:
            try:
                await self._ensure_connected(self.options.connect_timeout)
                return
            except ConnectError:
                await asyncio.sleep(
                    max(0.0, self._next_attempt - asyncio.get_running_loop().time())
                )
            except ConnectionClosedError:
                return
            except Exception:
                log.exception("on_connected handler failed; retrying")
                await asyncio.sleep(self.options.backoff.next_delay())

    # -- calls
    async def invoke(
        self,
        servant: str,
        func: str,
        body: bytes = b"",
        *,
        timeout: float | None = None,
        context: dict[str, str] | None = None,
        status: dict[str, str] | None = None,
        oneway: bool = False,
        version: int = TARS_VERSION,
        message_type: int = 0,
    ) -> ResponsePacket | None:
        """Send one request; return the response packet (None for one-way calls).

        Raises CallTimeoutError, ConnectError, ConnectionClosedError or OverloadError;
        a non-zero iRet is returned, not raised (see :meth:`call`).
        """
        budget = self.options.call_timeout if timeout is None else timeout
        loop = asyncio.get_running_loop()
        deadline = loop.time() + budget
        if len(self._pending) >= self.options.max_pending:
            raise OverloadError(f"{len(self._pending)} calls already pending")
        proto = await self._ensure_connected(budget)
        rid, frame = proto.rpc.send_request(
            servant,
            func,
            body,
            timeout_ms=int(budget * 1000),
            context=context,
            status=status,
            oneway=oneway,
            version=version,
            message_type=message_type,
        )
        fut: asyncio.Future[ResponsePacket] | None = None
        if not oneway:
            fut = loop.create_future()
            self._pending[rid] = fut
        try:
            async with asyncio.timeout_at(deadline):
                if not proto._can_write.is_set():
                    await proto._can_write.wait()
                if proto.transport is None or proto.transport.is_closing():
                    raise ConnectionClosedError(f"connection to {self.host}:{self.port} lost")
                proto.transport.write(frame)
                if fut is None:
                    return None
                return await fut
        except TimeoutError as exc:
            raise CallTimeoutError(
                f"{servant}.{func} on {self.host}:{self.port}: no answer in {budget:.3f} s"
            ) from exc
        finally:
            if fut is not None:
                self._pending.pop(rid, None)
                proto.rpc.forget(rid)

    async def call(
        self,
        servant: str,
        method: Method,
        *args: Any,
        timeout: float | None = None,
        context: dict[str, str] | None = None,
        tup: bool = False,
    ) -> tuple[Any, ...]:
        """Call an IDL method; returns ``(ret, *outs)``; a non-zero iRet raises ServerError."""
        body = method.encode_args_tup(*args) if tup else method.encode_args(*args)
        rsp = await self.invoke(
            servant,
            method.name,
            body,
            timeout=timeout,
            context=context,
            version=TUP_VERSION if tup else TARS_VERSION,
        )
        assert rsp is not None
        if rsp.iRet != Ret.SUCCESS:
            raise ServerError(rsp.iRet, rsp.sResultDesc)
        if tup:
            return method.decode_result_tup(rsp.sBuffer)
        return method.decode_result(rsp.sBuffer)

    async def ping(self, servant: str, timeout: float | None = None) -> None:
        rsp = await self.invoke(servant, PING_FUNC, timeout=timeout)
        if rsp is not None and rsp.iRet != Ret.SUCCESS:
            raise ServerError(rsp.iRet, rsp.sResultDesc)

    # -- closing
    async def aclose(self) -> None:
        """Close the connection; pending calls fail with ConnectionClosedError."""
        self._closed = True
        if self._reconnector is not None:
            self._reconnector.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reconnector
        proto, self._proto = self._proto, None
        if proto is not None and proto.transport is not None:
            proto.transport.close()
            try:
                async with asyncio.timeout(1.0):
                    await proto.closed
            except TimeoutError:
                proto.transport.abort()
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(ConnectionClosedError("channel closed"))

    async def __aenter__(self) -> Channel:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        state = "connected" if self.is_connected else "closed" if self._closed else "idle"
        return f"<Channel {self.host}:{self.port} {state} pending={len(self._pending)}>"
