"""The servant proxy: pick an endpoint, call it, account the outcome, decode the result.

Per object an :class:`EndpointPool` holds the balancer, the shield and one channel per
endpoint. Channels are opened lazily and closed when their endpoint leaves the list
(after in-flight calls had their time). Inactive endpoints keep their channels but are
not picked.

Outcomes fed to the shield, as TarsCpp ``AdapterProxy::finishInvoke``: a reply with iRet 0
is a success; any other iRet, a call timeout or a lost connection is a failure; a refused
connect is a connect failure, and since nothing was sent the call moves on to another
endpoint within its deadline. One-way calls and cancellation record nothing.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from tarscascade.client.balance import Addr, Balancer, HashKey, addr_of
from tarscascade.client.lkg import EndpointList
from tarscascade.client.shield import Outcome, Shield, ShieldOptions
from tarscascade.client.tasks import TaskOwner
from tarscascade.errors import (
    CallTimeoutError,
    ConnectError,
    ConnectionClosedError,
    NoEndpointError,
    ServerError,
)
from tarscascade.transport import Channel, ChannelOptions
from tarscascade.wire.endpoint import Endpoint, format_endpoint
from tarscascade.wire.interface import Interface, Method
from tarscascade.wire.packets import (
    MESSAGE_TYPE_SETNAME,
    STATUS_SETNAME_VALUE,
    TARS_VERSION,
    TUP_VERSION,
    Ret,
)

log = logging.getLogger(__name__)

DEFAULT_CALL_TIMEOUT = 3.0


class Source(Protocol):
    """What a proxy needs from a resolver."""

    endpoints: EndpointList

    @property
    def ready(self) -> bool: ...

    async def wait_ready(self) -> None: ...

    def add_listener(self, fn: Callable[[EndpointList], None]) -> None: ...


class EndpointPool:
    """Balancer + shield + channels of one object."""

    def __init__(
        self,
        object_id: str,
        source: Source,
        owner: TaskOwner,
        *,
        channel_options: Callable[[], ChannelOptions] = ChannelOptions,
        shield_options: ShieldOptions | None = None,
        clock: Callable[[], float] = time.monotonic,
        drain_grace: float = DEFAULT_CALL_TIMEOUT,
        rng: random.Random | None = None,
    ) -> None:
        self.object_id = object_id
        self.source = source
        self.balancer = Balancer(rng)
        self.shield: Shield[Addr] = Shield(shield_options, clock)
        self._owner = owner
        self._channel_options = channel_options
        self._drain_grace = drain_grace
        self._channels: dict[Addr, Channel] = {}
        self._retiring: set[Channel] = set()
        self._update(source.endpoints)
        source.add_listener(self._update)

    def _update(self, eps: EndpointList) -> None:
        self.balancer.update(eps.active, eps.inactive)
        known = {addr_of(e) for e in eps.active} | {addr_of(e) for e in eps.inactive}
        self.shield.retain(known)
        for addr in [a for a in self._channels if a not in known]:
            ch = self._channels.pop(addr)
            self._retiring.add(ch)
            if self._owner.closed:
                continue  # aclose() closes it
            self._owner.spawn(self._retire(ch), f"retire {ch.host}:{ch.port}")

    async def _retire(self, ch: Channel) -> None:
        try:
            if ch.pending_count:
                # calls in flight end by their own deadlines; then close
                await asyncio.sleep(self._drain_grace)
        finally:
            self._retiring.discard(ch)
            await ch.aclose()

    def channel(self, ep: Endpoint) -> Channel:
        addr = addr_of(ep)
        ch = self._channels.get(addr)
        if ch is None:
            ch = self._channels[addr] = Channel(ep.host, ep.port, self._channel_options())
        return ch

    @property
    def channels(self) -> dict[Addr, Channel]:
        return dict(self._channels)

    @property
    def pending_calls(self) -> int:
        return sum(ch.pending_count for ch in self._channels.values())

    async def aclose(self) -> None:
        chans = list(self._channels.values()) + list(self._retiring)
        self._channels.clear()
        self._retiring.clear()
        for ch in chans:
            await ch.aclose()

    def __repr__(self) -> str:
        return (
            f"<EndpointPool {self.object_id} {self.balancer!r} channels={len(self._channels)} "
            f"blocked={len(self.shield.blocked)}>"
        )


@dataclass(frozen=True, slots=True)
class InvokeResult:
    """A call's decoded value and the endpoint that answered it."""

    value: Any
    endpoint: Endpoint


def shape_result(method: Method, values: tuple[Any, ...]) -> Any:
    """The return value alone, or ``(ret, *outs)`` when the method has out-parameters."""
    return values if method.out_params else values[0]


class ServantProxy:
    """Calls one servant object. Obtain it from ``Communicator.proxy()``."""

    def __init__(
        self,
        name: str,
        pool: EndpointPool,
        interface: Interface | None = None,
        *,
        timeout: float = DEFAULT_CALL_TIMEOUT,
        context: dict[str, str] | None = None,
        set_name: str = "",
        tup: bool = False,
    ) -> None:
        self.name = name
        self.pool = pool
        self.interface = interface
        self.timeout = timeout
        self.context = dict(context or {})
        #: the set this proxy calls by (TarsCpp ``isInvokeBySet``): every call carries the
        #: SETNAME flag and the set in ``status`` so set-checking servers see it
        self.set_name = set_name
        self._message_type = MESSAGE_TYPE_SETNAME if set_name else 0
        self._status = {STATUS_SETNAME_VALUE: set_name} if set_name else {}
        #: send calls as TUP (version 3, arguments by name) instead of TARS (version 1)
        self.tup = tup

    @property
    def endpoints(self) -> EndpointList:
        return self.pool.source.endpoints

    def _method(self, function: str | Method) -> Method:
        if isinstance(function, Method):
            return function
        if self.interface is None:
            raise TypeError(f"{self.name}: no interface given; pass a Method, not {function!r}")
        try:
            return self.interface.methods[function]
        except KeyError:
            raise TypeError(
                f"{self.name}: interface {self.interface.name} has no method {function!r}"
            ) from None

    async def invoke(
        self,
        function: str | Method,
        args: Sequence[Any] = (),
        *,
        timeout: float | None = None,
        oneway: bool = False,
        context: dict[str, str] | None = None,
        hash_key: HashKey | None = None,
        consistent_hash: bool = False,
        tup: bool | None = None,
    ) -> Any:
        """Call ``function(*args)``; see :meth:`invoke_detailed`."""
        res = await self.invoke_detailed(
            function,
            args,
            timeout=timeout,
            oneway=oneway,
            context=context,
            hash_key=hash_key,
            consistent_hash=consistent_hash,
            tup=tup,
        )
        return res.value

    async def invoke_detailed(
        self,
        function: str | Method,
        args: Sequence[Any] = (),
        *,
        timeout: float | None = None,
        oneway: bool = False,
        context: dict[str, str] | None = None,
        hash_key: HashKey | None = None,
        consistent_hash: bool = False,
        tup: bool | None = None,
    ) -> InvokeResult:
        """Call ``function(*args)`` on one endpoint of this object.

        Returns the return value (``(ret, *outs)`` with out-parameters; None for one-way
        calls). ``hash_key`` routes by hash (``consistent_hash``: on the ring); ``tup``
        sends this call as TUP (default: the proxy's ``tup``). Raises NoEndpointError,
        CallTimeoutError (within ``timeout`` seconds, connecting and resolving included),
        ServerError with the TARS code, or a TransportError.
        """
        method = self._method(function)
        as_tup = self.tup if tup is None else tup
        body = method.encode_args_tup(*args) if as_tup else method.encode_args(*args)
        version = TUP_VERSION if as_tup else TARS_VERSION
        budget = self.timeout if timeout is None else timeout
        if budget <= 0:
            raise ValueError(f"timeout must be positive, not {budget}")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + budget
        pool = self.pool
        if not pool.source.ready:
            try:
                async with asyncio.timeout_at(deadline):
                    await pool.source.wait_ready()
            except TimeoutError:
                pass  # no answer yet: use what is known (maybe last-known-good)
        ctx = {**self.context, **context} if context else self.context
        tried: set[Addr] = set()
        refused: ConnectError | None = None
        while True:
            ep = pool.balancer.pick(
                pool.shield, hash_key=hash_key, consistent=consistent_hash, exclude=tried
            )
            if ep is None:
                if refused is not None:
                    raise refused
                raise NoEndpointError(f"no endpoint for {self.name}{self._why()}")
            addr = addr_of(ep)
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise CallTimeoutError(f"{self.name}.{method.name}: no answer in {budget:.3f} s")
            try:
                rsp = await pool.channel(ep).invoke(
                    self.name,
                    method.name,
                    body,
                    timeout=remaining,
                    context=ctx,
                    status=self._status,
                    oneway=oneway,
                    version=version,
                    message_type=self._message_type,
                )
            except ConnectError as exc:
                pool.shield.record(addr, Outcome.CONNECT_FAILURE)
                tried.add(addr)  # nothing was sent: another endpoint may take it
                refused = exc
                continue
            except (CallTimeoutError, ConnectionClosedError):
                pool.shield.record(addr, Outcome.FAILURE)
                raise
            if rsp is None:
                return InvokeResult(None, ep)
            if rsp.iRet != Ret.SUCCESS:
                pool.shield.record(addr, Outcome.FAILURE)
                raise ServerError(rsp.iRet, rsp.sResultDesc)
            pool.shield.record(addr, Outcome.SUCCESS)
            decode = method.decode_result_tup if as_tup else method.decode_result
            return InvokeResult(shape_result(method, decode(rsp.sBuffer)), ep)

    def _why(self) -> str:
        src = self.pool.source
        why = []
        err = getattr(src, "last_error", "")
        if err:
            why.append(f"locator: {err}")
        refused = getattr(src, "unsupported", ())
        if refused:
            shown = ", ".join(format_endpoint(e) for e in refused[:3])
            why.append(f"refused {len(refused)} udp/ssl endpoint(s), tcp only: {shown}")
        return f" ({'; '.join(why)})" if why else ""

    def __repr__(self) -> str:
        return f"<ServantProxy {self.name} {self.pool!r}>"
