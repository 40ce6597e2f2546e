"""The locator: QueryF calls to the local node agent, with the registry as a fallback.

The locator is a list of object strings tried in order, e.g. the node's
``tars.tarsnode.ServerObj@tcp -h 127.0.0.1 -p 19386`` then the registry's
``tars.tarsregistry.QueryObj@tcp -h 127.0.0.1 -p 17890``. A transport failure or a
framework error (non-zero iRet: the node is not synced, unknown servant...) moves on to
the next endpoint; an application answer (QueryF's int return) is final, whatever it is.

Push subscription (tarscascade contract, served by ``tarscascade node``): the client calls
``QueryF.registerQuery(id, name)`` on the *first* locator entry; when it returns 0, the
node pushes on that same connection, whenever the endpoint list of ``id`` changes, a
TARS push (request id 0) whose status ``TARS_FUNC`` is :data:`OBJECT_CHANGED` and whose
body is ``id`` as a TARS string at tag 0. The client then queries again at once.
Subscriptions are re-sent after every reconnect, and every subscribed object is queried
again then (pushes may have been missed meanwhile).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tarscascade.errors import (
    CallTimeoutError,
    DecodeError,
    EndpointSyntaxError,
    ProtocolError,
    ServerError,
    TarsCascadeError,
    TransportError,
)
from tarscascade.transport import Channel, ChannelOptions
from tarscascade.wire.endpoint import ObjectRef, parse_object
from tarscascade.wire.idl.endpointf import EndpointF
from tarscascade.wire.idl.queryf import (
    DEFAULT_REGISTRY_PORT,
    OBJECT_CHANGED,
    QUERY_SERVANT,
    REGISTER_QUERY,
    decode_object_changed,
)
from tarscascade.wire.idl.serverf import DEFAULT_NODE_PORT, NODE_SERVANT
from tarscascade.wire.interface import Method
from tarscascade.wire.packets import STATUS_PUSH_FUNC, ResponsePacket

log = logging.getLogger(__name__)

DEFAULT_NODE_LOCATOR = f"{NODE_SERVANT}@tcp -h 127.0.0.1 -p {DEFAULT_NODE_PORT}"
DEFAULT_REGISTRY_LOCATOR = f"{QUERY_SERVANT}@tcp -h 127.0.0.1 -p {DEFAULT_REGISTRY_PORT}"
#: the local node first, the registry when the node does not answer
DEFAULT_LOCATOR = (DEFAULT_NODE_LOCATOR, DEFAULT_REGISTRY_LOCATOR)


def parse_locator(locator: str | Sequence[str]) -> tuple[ObjectRef, ...]:
    """Object strings with direct TCP endpoints; raises EndpointSyntaxError otherwise."""
    items = [locator] if isinstance(locator, str) else list(locator)
    if not items:
        raise EndpointSyntaxError("empty locator")
    refs = []
    for item in items:
        ref = parse_object(item)
        if not ref.endpoints:
            raise EndpointSyntaxError(f"locator {item!r} has no endpoints (Obj@tcp -h H -p P)")
        if any(ep.transport != "tcp" for ep in ref.endpoints):
            raise EndpointSyntaxError(f"locator {item!r}: only tcp endpoints are supported")
        refs.append(ref)
    return tuple(refs)


@dataclass(frozen=True, slots=True)
class Query:
    """Which QueryF method resolves an object, with its extra argument (set id, station)."""

    method: Method
    arg: str | None = None

    def args(self, object_id: str) -> tuple[str, ...]:
        return (object_id,) if self.arg is None else (object_id, self.arg)


@dataclass(frozen=True, slots=True)
class Answer:
    ret: int
    active: list[EndpointF]
    inactive: list[EndpointF]
    source: str  # "servant@host:port" that answered


class LocatorError(TarsCascadeError):
    """No locator endpoint answered."""


class LocatorClient:
    """Channels to every locator endpoint; ``find`` with failover; push subscriptions."""

    def __init__(
        self,
        entries: Sequence[ObjectRef],
        *,
        node_name: str | None = None,
        client_name: str = "",
        timeout: float = 2.0,
        connect_timeout: float = 1.0,
        subscribe: bool = False,
        on_changed: Callable[[str], None] | None = None,
    ) -> None:
        self.entries = tuple(entries)
        self.context = {"node_name": node_name} if node_name else {}
        self.client_name = client_name
        self.timeout = timeout
        self.on_changed = on_changed
        self._subs: set[str] = set()
        #: objects the push entry acknowledged (registerQuery returned 0)
        self.acknowledged: set[str] = set()
        self.pushes = 0
        self._cursor = [0] * len(self.entries)
        self._channels: list[list[Channel]] = []
        for i, ref in enumerate(self.entries):
            push = subscribe and i == 0
            opts = ChannelOptions(
                connect_timeout=min(connect_timeout, timeout),
                call_timeout=timeout,
                keep_connected=push,
            )
            self._channels.append(
                [
                    Channel(
                        ep.host,
                        ep.port,
                        opts,
                        on_push=self._on_push if push else None,
                        on_connected=self._on_connected if push else None,
                    )
                    for ep in ref.endpoints
                ]
            )

    @property
    def description(self) -> str:
        return " ; ".join(str(r) for r in self.entries)

    async def find(self, object_id: str, query: Query) -> Answer:
        """Ask each locator endpoint in turn until one answers; raise LocatorError if none."""
        errors: list[str] = []
        for e, ref in enumerate(self.entries):
            chans = self._channels[e]
            for k in range(len(chans)):
                i = (self._cursor[e] + k) % len(chans)
                ch = chans[i]
                try:
                    ret, active, inactive = await ch.call(
                        ref.name,
                        query.method,
                        *query.args(object_id),
                        timeout=self.timeout,
                        context=self.context,
                    )
                except (TransportError, CallTimeoutError, ServerError, ProtocolError) as exc:
                    errors.append(f"{ref.name}@{ch.host}:{ch.port}: {exc}")
                    self._cursor[e] = (i + 1) % len(chans)
                    continue
                return Answer(ret, active, inactive, f"{ref.name}@{ch.host}:{ch.port}")
        raise LocatorError(f"no locator answered for {object_id}: " + "; ".join(errors))

    # -- push subscription
    async def subscribe(self, object_id: str) -> None:
        """Ask the first locator entry to push changes of ``object_id`` (best effort)."""
        self._subs.add(object_id)
        for ch in self._channels[0]:
            if ch.is_connected:
                await self._register(ch, [object_id])
            else:
                try:
                    await ch.connect()  # on_connected registers every subscription
                except TransportError as exc:
                    log.debug("push locator %s:%s unreachable: %s", ch.host, ch.port, exc)

    async def _on_connected(self, ch: Channel) -> None:
        subs = sorted(self._subs)
        await self._register(ch, subs)
        if ch.connects > 1 and self.on_changed is not None:
            # pushes may have been missed while disconnected: query everything again
            for oid in subs:
                self.on_changed(oid)

    async def _register(self, ch: Channel, object_ids: list[str]) -> None:
        name = self.entries[0].name
        for oid in object_ids:
            try:
                (ret,) = await ch.call(
                    name,
                    REGISTER_QUERY,
                    oid,
                    self.client_name,
                    timeout=self.timeout,
                    context=self.context,
                )
            except TarsCascadeError as exc:
                log.info("registerQuery(%s) on %s:%s failed: %s", oid, ch.host, ch.port, exc)
                return
            if ret == 0:
                self.acknowledged.add(oid)
            else:
                log.info(
                    "%s at %s:%s does not push (registerQuery %s)", name, ch.host, ch.port, ret
                )
                return

    def _on_push(self, packet: ResponsePacket) -> None:
        if packet.status.get(STATUS_PUSH_FUNC) != OBJECT_CHANGED:
            return
        try:
            object_id = decode_object_changed(packet.sBuffer)
        except DecodeError as exc:
            log.warning("bad %s push: %s", OBJECT_CHANGED, exc)
            return
        self.pushes += 1
        if self.on_changed is not None:
            self.on_changed(object_id)

    async def aclose(self) -> None:
        for chans in self._channels:
            for ch in chans:
                await ch.aclose()

    def __repr__(self) -> str:
        return f"<LocatorClient {self.description} subscriptions={len(self._subs)}>"
