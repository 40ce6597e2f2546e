"""The communicator: one per process (or per configuration), owning every resolver,
channel and background task of the client SDK.

    async with Communicator(node_name="10.0.0.5") as comm:
        hello = comm.proxy("Test.HelloServer.HelloObj", HELLO_INTERFACE)
        print(await hello.invoke("hello", ["world"]))

Objects named without endpoints are resolved through the locator (the local node agent,
the registry as fallback) and refreshed in the background; ``App.Server.Obj@tcp -h H -p P``
is called directly. ``aclose()`` (or leaving the ``async with``) cancels and awaits every
task and closes every connection.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tarscascade.client.lkg import EndpointList, LkgFile, lkg_key
from tarscascade.client.locator import DEFAULT_LOCATOR, LocatorClient, parse_locator
from tarscascade.client.proxy import DEFAULT_CALL_TIMEOUT, EndpointPool, ServantProxy
from tarscascade.client.resolver import (
    DEFAULT_REFRESH_INTERVAL,
    FAIL_INTERVAL,
    Resolver,
    ResolverOptions,
    StaticResolver,
    check_set_division,
    choose_query,
)
from tarscascade.client.shield import ShieldOptions
from tarscascade.client.tasks import TaskOwner
from tarscascade.transport import ChannelOptions
from tarscascade.wire.endpoint import parse_object, validate_object_id
from tarscascade.wire.interface import Interface


@dataclass(frozen=True, slots=True)
class CommunicatorOptions:
    #: object string(s) of QueryF servants, tried in order
    locator: str | tuple[str, ...] = DEFAULT_LOCATOR
    #: the caller's identity for IDC grouping (context ``node_name``; TARS: the local IP)
    node_name: str | None = None
    #: ``name.area.group``: resolve with findObjectByIdInSameSet
    set_division: str = ""
    #: IDC station: resolve with findObjectByIdInSameStation (when no set division)
    station: str = ""
    refresh_interval: float = DEFAULT_REFRESH_INTERVAL
    fail_interval: float = FAIL_INTERVAL
    #: ask the node to push changes (registerQuery) so they arrive within milliseconds
    subscribe: bool = False
    #: last-known-good endpoint file (None: off)
    lkg_path: str | os.PathLike[str] | None = None
    call_timeout: float = DEFAULT_CALL_TIMEOUT
    connect_timeout: float = 3.0
    locator_timeout: float = 2.0
    shield: ShieldOptions = field(default_factory=ShieldOptions)
    #: sent as registerQuery's ``name``
    client_name: str = ""
    clock: Callable[[], float] = time.monotonic

    def __post_init__(self) -> None:
        check_set_division(self.set_division)
        if min(self.call_timeout, self.connect_timeout, self.locator_timeout) <= 0:
            raise ValueError("timeouts must be positive")
        ResolverOptions(self.refresh_interval, self.fail_interval)  # validates


@dataclass(slots=True)
class _Target:
    source: Resolver | StaticResolver
    pool: EndpointPool


class Communicator:
    """Owns resolvers, channels and tasks; hands out :class:`ServantProxy` objects."""

    def __init__(self, options: CommunicatorOptions | None = None, **overrides: Any) -> None:
        opts = options or CommunicatorOptions()
        if overrides:
            opts = dataclasses.replace(opts, **overrides)
        self.options = opts
        self._entries = parse_locator(opts.locator)
        self._locator_text = " ; ".join(str(e) for e in self._entries)
        self._query = choose_query(opts.set_division, opts.station)
        self._resolver_options = ResolverOptions(
            opts.refresh_interval, opts.fail_interval, opts.subscribe
        )
        self._owner = TaskOwner("communicator")
        self._targets: dict[str, _Target] = {}
        self._locator: LocatorClient | None = None
        self._lkg: LkgFile | None = None
        self._lkg_entries: dict[str, EndpointList] = {}
        self._started = False

    # -- lifecycle
    async def start(self) -> None:
        if self._started:
            return
        opts = self.options
        self._locator = LocatorClient(
            self._entries,
            node_name=opts.node_name,
            client_name=opts.client_name or f"python:{os.getpid()}",
            timeout=opts.locator_timeout,
            connect_timeout=min(opts.connect_timeout, opts.locator_timeout),
            subscribe=opts.subscribe,
            on_changed=self._on_changed,
        )
        if opts.lkg_path is not None:
            self._lkg = LkgFile(opts.lkg_path, self._locator_text)
            self._lkg_entries = await asyncio.to_thread(self._lkg.load)
        self._started = True

    async def aclose(self) -> None:
        """Cancel every task, close every connection. Always closes; idempotent."""
        try:
            await self._owner.aclose()
        finally:
            targets, self._targets = list(self._targets.values()), {}
            for t in targets:
                await t.pool.aclose()
            if self._locator is not None:
                await self._locator.aclose()

    async def __aenter__(self) -> Communicator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- proxies
    def proxy(
        self,
        obj: str,
        interface: Interface | None = None,
        *,
        timeout: float | None = None,
        context: dict[str, str] | None = None,
        set_division: str | None = None,
        tup: bool = False,
    ) -> ServantProxy:
        """A proxy for ``App.Server.Obj`` (resolved) or ``App.Server.Obj@endpoints`` (direct).

        ``set_division`` (``name.area.group``) is this proxy's set, as TarsCpp's
        ``stringToProxy(obj, setName)``: None takes the communicator's, "" none. With a
        set, resolution asks ``findObjectByIdInSameSet`` and every call carries the set
        flag (iMessageType 0x80, ``status[STATUS_SETNAME_VALUE]``). ``tup``: calls go as
        TUP (version 3). Proxies of the same object string and set share endpoints,
        shield state and connections.
        """
        set_name = self.options.set_division if set_division is None else set_division
        check_set_division(set_name)
        target = self._target(obj, set_name)
        ref_name = target.pool.object_id
        return ServantProxy(
            ref_name,
            target.pool,
            interface,
            timeout=self.options.call_timeout if timeout is None else timeout,
            context=context,
            set_name=set_name,
            tup=tup,
        )

    def resolver(self, obj: str, set_division: str | None = None) -> Resolver | StaticResolver:
        set_name = self.options.set_division if set_division is None else set_division
        return self._target(obj, set_name).source

    def _target(self, obj: str, set_name: str) -> _Target:
        text = obj.strip()
        key = f"{text}\x00{set_name}"
        target = self._targets.get(key)
        if target is not None:
            return target
        if not self._started or self._owner.closed:
            raise RuntimeError("use the communicator inside 'async with' (or after start())")
        ref = parse_object(text)
        source: Resolver | StaticResolver
        if ref.endpoints:
            source = StaticResolver(ref.name, ref.endpoints)
        else:
            validate_object_id(ref.name)
            assert self._locator is not None
            lk = lkg_key(ref.name, set_name)
            query = self._query
            if set_name != self.options.set_division:
                query = choose_query(set_name, self.options.station)
            source = Resolver(
                ref.name,
                self._locator,
                query,
                self._resolver_options,
                lkg=self._lkg,
                lkg_key=lk,
                initial=self._lkg_entries.get(lk),
            )
        opts = self.options
        pool = EndpointPool(
            ref.name,
            source,
            self._owner,
            channel_options=lambda: ChannelOptions(
                connect_timeout=opts.connect_timeout, call_timeout=opts.call_timeout
            ),
            shield_options=opts.shield,
            clock=opts.clock,
            drain_grace=opts.call_timeout,
        )
        target = self._targets[key] = _Target(source, pool)
        if isinstance(source, Resolver):
            self._owner.spawn(source.run(), f"resolve {ref.name}")
        return target

    def _on_changed(self, object_id: str) -> None:
        for t in self._targets.values():
            if t.source.object_id == object_id:
                t.source.notify()

    # -- introspection
    @property
    def locator(self) -> LocatorClient | None:
        return self._locator

    @property
    def task_count(self) -> int:
        return len(self._owner)

    def __repr__(self) -> str:
        return (
            f"<Communicator locator={self._locator_text!r} objects={len(self._targets)} "
            f"tasks={len(self._owner)}>"
        )
