"""Hosting Python servants: a TARS server plus ``ServerF.keepAlive`` to the local node.

    async with ServantHost([InterfaceServant(OBJ, HELLO, Impl())], port=20001) as host:
        await host.serve_forever()

Contract with the node agent (``tars.tarsnode.ServerObj``, tars-protocol.md §7.3):

* Every ``keepalive_interval`` seconds, at once on start and after every reconnect, for
  each hosted servant: ``keepAlive(ServerInfo(application, serverName, pid, adapter))``
  with ``application``/``serverName`` the first two parts of the servant's object id and
  ``adapter`` the object id itself (``Test.HelloServer.HelloObj``), so the node finds the
  endpoint records of that object on its host and marks them present (active).
* The request context carries :data:`ENDPOINT_CONTEXT_KEY` = the endpoint this process
  serves (``tcp -h 127.0.0.1 -p 20001 -t 60000``; ``-h 0.0.0.0`` when bound to every
  interface: the node substitutes its own advertised host). A node that reads it can
  tell apart several instances of one server on a host, and register an endpoint it has
  no record of if the node's rules allow (its own host, an object registered or allowed
  for it); a stock tarsnode ignores the context.
* On a graceful stop: the same call with ``pid`` negated (``-pid``), meaning "this process
  is leaving", so a node that implements it marks the endpoint inactive at once (a stock
  tarsnode ignores pid <= 0). A killed process sends nothing: the node notices the
  heartbeats stopping (or the keepAlive connection closing).

With ``linger`` > 0 the host keeps serving that long after the goodbye, so callers that
have not refreshed yet are still answered (lossless stop).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tarscascade.client.locator import DEFAULT_NODE_LOCATOR
from tarscascade.client.tasks import TaskOwner
from tarscascade.errors import TarsCascadeError
from tarscascade.transport import Channel, ChannelOptions, Servant, ServerOptions, TarsServer
from tarscascade.wire.endpoint import Endpoint, format_endpoint, parse_object
from tarscascade.wire.hosts import is_wildcard
from tarscascade.wire.idl.serverf import ENDPOINT_CONTEXT_KEY, KEEP_ALIVE, ServerInfo

log = logging.getLogger(__name__)

#: where the SDK announces a hosted servant: the local node agent
DEFAULT_NODE = DEFAULT_NODE_LOCATOR
#: seconds between keepAlives (TarsCpp ``HEART_BEAT_INTERVAL``)
KEEPALIVE_INTERVAL = 10.0
#: the ``-t`` of the advertised endpoint (the adapter's idle timeout, ms)
ENDPOINT_TIMEOUT_MS = 60_000


@dataclass(frozen=True, slots=True)
class HostOptions:
    host: str = "127.0.0.1"
    port: int = 0
    #: the host callers should use (default: ``host``; bound to all interfaces, the
    #: node's own advertised host: the announcement names the wildcard and the node puts
    #: its host in, so a wildcard-bound server never registers 127.0.0.1 fleet-wide)
    advertise_host: str | None = None
    #: the node's ServerF object string; None: no keepAlive
    node: str | None = DEFAULT_NODE
    keepalive_interval: float = KEEPALIVE_INTERVAL
    keepalive_timeout: float = 2.0
    #: overrides the first two parts of each servant's object id
    application: str | None = None
    server_name: str | None = None
    endpoint_timeout: int = ENDPOINT_TIMEOUT_MS
    #: seconds to keep serving after the goodbye keepAlive
    linger: float = 0.0
    server_options: ServerOptions | None = None

    def __post_init__(self) -> None:
        if self.keepalive_interval <= 0 or self.keepalive_timeout <= 0 or self.linger < 0:
            raise ValueError("keepalive intervals must be positive and linger not negative")


class ServantHost:
    """A :class:`TarsServer` for Python servants that reports itself to the local node."""

    def __init__(
        self, servants: Sequence[Servant], options: HostOptions | None = None, **overrides: Any
    ) -> None:
        opts = options or HostOptions()
        if overrides:
            opts = dataclasses.replace(opts, **overrides)
        self.options = opts
        self.servants = list(servants)
        for s in self.servants:
            if len(s.name.split(".")) < 3 and (opts.application is None or not opts.server_name):
                raise ValueError(f"servant {s.name!r} is not App.Server.Obj: name the server")
        self.server = TarsServer(self.servants, opts.host, opts.port, opts.server_options)
        self.pid = os.getpid()
        self._node_name = ""
        self._node: Channel | None = None
        if opts.node is not None:
            ref = parse_object(opts.node)
            if not ref.endpoints:
                raise ValueError(f"node {opts.node!r} needs an endpoint (Obj@tcp -h H -p P)")
            ep = ref.endpoints[0]
            self._node_name = ref.name
            self._node = Channel(
                ep.host,
                ep.port,
                ChannelOptions(
                    connect_timeout=opts.keepalive_timeout,
                    call_timeout=opts.keepalive_timeout,
                    keep_connected=True,
                ),
                on_connected=self._reconnected,
            )
        self._owner = TaskOwner("servant-host")
        self._stopped = asyncio.Event()
        self._started = False
        self.keepalives_sent = 0
        self.keepalive_errors = 0
        self.last_error = ""
        #: set after the first keepAlive round the node acknowledged
        self.registered = asyncio.Event()

    # -- addresses
    @property
    def port(self) -> int:
        return self.server.port

    @property
    def endpoint(self) -> Endpoint:
        opts = self.options
        host = opts.advertise_host or ("0.0.0.0" if is_wildcard(opts.host) else opts.host)
        return Endpoint("tcp", host, self.server.port, timeout=opts.endpoint_timeout)

    def server_info(self, servant: Servant, *, leaving: bool = False) -> ServerInfo:
        parts = servant.name.split(".")
        return ServerInfo(
            application=self.options.application or parts[0],
            serverName=self.options.server_name or parts[1],
            pid=-self.pid if leaving else self.pid,
            adapter=servant.name,
        )

    # -- lifecycle
    async def start(self) -> None:
        await self.server.start()
        self._started = True
        if self._node is not None:
            self._owner.spawn(self._keepalive_loop(), "keepalive")

    async def serve_forever(self) -> None:
        """Wait until :meth:`stop` is called (or the task is cancelled)."""
        await self._stopped.wait()

    def stop(self) -> None:
        self._stopped.set()

    async def aclose(self) -> None:
        """Say goodbye to the node, linger, then stop serving (drains in-flight calls)."""
        self._stopped.set()
        try:
            await self._owner.aclose()
            if self._node is not None and self._started:
                await self._send_all(leaving=True)
                if self.options.linger:
                    await asyncio.sleep(self.options.linger)
        finally:
            if self._node is not None:
                await self._node.aclose()
            await self.server.aclose()

    async def __aenter__(self) -> ServantHost:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- keepAlive
    async def _keepalive_loop(self) -> None:
        while True:
            try:
                if await self._send_all():
                    self.registered.set()
            except Exception:  # a bug must not stop the heartbeat for good
                log.exception("keepAlive round failed")
            await asyncio.sleep(self.options.keepalive_interval)

    async def _reconnected(self, ch: Channel) -> None:
        # the node may have restarted: tell it again at once, not at the next tick
        if ch.connects > 1 and not self._stopped.is_set() and not self._owner.closed:
            self._owner.spawn(self._send_all(), "keepalive-now")

    async def _send_all(self, *, leaving: bool = False) -> bool:
        """One keepAlive per servant; True when the node acknowledged every one."""
        assert self._node is not None
        ok = True
        context = {ENDPOINT_CONTEXT_KEY: format_endpoint(self.endpoint)}
        for s in self.servants:
            try:
                (ret,) = await self._node.call(
                    self._node_name,
                    KEEP_ALIVE,
                    self.server_info(s, leaving=leaving),
                    timeout=self.options.keepalive_timeout,
                    context=context,
                )
            except TarsCascadeError as exc:
                ok = False
                self.keepalive_errors += 1
                if str(exc) != self.last_error:
                    log.warning("keepAlive to the node failed: %s", exc)
                self.last_error = str(exc)
                continue
            self.keepalives_sent += 1
            if ret != 0:
                ok = False
                said = f"node answered keepAlive for {s.name} with {ret}"
                if said != self.last_error:  # once, not every round
                    log.warning("%s (its log says why)", said)
                self.last_error = said
            elif self.last_error:
                log.info("keepAlive to the node works again")
                self.last_error = ""
        return ok

    def __repr__(self) -> str:
        names = [s.name for s in self.servants]
        return f"<ServantHost {self.endpoint} servants={names} keepalives={self.keepalives_sent}>"
