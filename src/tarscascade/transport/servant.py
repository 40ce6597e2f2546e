"""Servants: what a TarsServer dispatches requests to.

A servant gets a :class:`Current` (the request, the peer, a way to push on the same
connection) and returns ``(ret, body, desc)`` or an awaitable of it. Returning a plain
tuple keeps hot servants (a cached QueryF answer) free of task scheduling.

Servants speak TARS (version 1) bodies only. :func:`dispatch_in_kind` is the one place
that knows the other body formats (TUP 2 and 3, JSON 5): from the IDL methods a servant
declares in ``methods`` it turns such a request's arguments into a TARS body before the
servant sees it, and the servant's TARS answer into the request's own format after.
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
from collections.abc import Awaitable, Callable, Generator, Mapping
from typing import Any, Protocol

from tarscascade.errors import DecodeError, EncodeError, ServerError
from tarscascade.wire.interface import Interface, Method
from tarscascade.wire.packets import ONEWAY, TARS_VERSION, RequestPacket, Ret
from tarscascade.wire.packets import Result as Result  # servants' answer, re-exported

log = logging.getLogger(__name__)

MaybeAwaitable = Result | Awaitable[Result]


class Pusher(Protocol):
    def push(self, func: str, body: bytes) -> bool: ...

    def add_close_callback(self, fn: Callable[[], None]) -> None: ...


class Connection(Pusher, Protocol):
    """What a servant may do with the connection a request came on (a server ``_Conn``)."""

    def push_frame(self, frame: bytes) -> bool: ...

    async def drain(self) -> None: ...

    @property
    def is_closing(self) -> bool: ...

    @property
    def write_buffer_size(self) -> int: ...

    def abort(self) -> None: ...


class Current:
    """The context of one request."""

    __slots__ = ("conn", "peer", "request")

    def __init__(self, request: RequestPacket, peer: tuple[str, int], conn: Connection) -> None:
        self.request = request
        self.peer = peer
        self.conn = conn

    @property
    def host_name(self) -> str:
        """TarsCpp ``Current::getHostName``: context ``node_name`` if set, else the peer IP."""
        return self.request.context.get("node_name") or self.peer[0]

    @property
    def context(self) -> dict[str, str]:
        return self.request.context

    def push(self, func: str, body: bytes) -> bool:
        """Push to the caller on this connection (request id 0). False if it is gone."""
        return self.conn.push(func, body)


class Servant(Protocol):
    """What a server dispatches to.

    A servant that also has ``methods`` (a ``Mapping[str, Method]``: the IDL methods it
    answers) is reachable in every protocol version (see :func:`dispatch_in_kind`);
    one without is reachable in TARS (version 1) only.
    """

    name: str

    def dispatch(self, current: Current) -> MaybeAwaitable: ...


def dispatch_in_kind(servant: Servant, current: Current) -> MaybeAwaitable:
    """Dispatch ``current`` to ``servant`` whatever the request's body format.

    TARS requests go straight through. Others are decoded by the declared method,
    re-encoded as TARS for the servant, and its answer is re-encoded in the request's
    version; the server builds the reply packet from the original request, so it
    carries that version too. A body that does not decode is SERVER_DECODE_ERR and
    reaches no servant.
    """
    req = current.request
    if req.iVersion == TARS_VERSION:
        return servant.dispatch(current)
    methods: Mapping[str, Method] | None = getattr(servant, "methods", None)
    if methods is None:
        return (Ret.SERVER_DECODE_ERR, b"", f"{servant.name} takes TARS (version 1) bodies only")
    method = methods.get(req.sFuncName)
    if method is None:
        return (Ret.NO_FUNC, b"", f"no function {req.sFuncName!r} in {servant.name}")
    try:
        args = method.decode_args_as(req.iVersion, req.sBuffer)
        body = method.encode_args(*args)
    except (DecodeError, EncodeError) as exc:
        return (Ret.SERVER_DECODE_ERR, b"", f"cannot decode {method.name} arguments: {exc}")
    inner = dataclasses.replace(req, iVersion=TARS_VERSION, sBuffer=body)
    result = servant.dispatch(Current(inner, current.peer, current.conn))
    if isinstance(result, tuple):
        return _answer_in_kind(method, req.iVersion, result)
    return InKind(result, method, req.iVersion)


class InKind:
    """A servant's pending answer, re-encoded in the request's version when it comes.

    Not a coroutine wrapper: a server that refuses to run an answer (overload) closes
    it, and :meth:`close` must reach the servant's own coroutine, never started.
    """

    __slots__ = ("method", "pending", "version")

    def __init__(self, pending: Awaitable[Result], method: Method, version: int) -> None:
        self.pending = pending
        self.method = method
        self.version = version

    def __await__(self) -> Generator[Any, None, Result]:
        result = yield from self.pending.__await__()
        return _answer_in_kind(self.method, self.version, result)

    def close(self) -> None:
        close = getattr(self.pending, "close", None)
        if close is not None:
            close()


def _answer_in_kind(method: Method, version: int, result: Result) -> Result:
    ret, body, desc = result
    if ret != Ret.SUCCESS:
        return (ret, b"", desc)
    try:
        return (ret, method.encode_result_as(version, *method.decode_result(body)), desc)
    except (DecodeError, EncodeError) as exc:
        return (Ret.SERVER_ENCODE_ERR, b"", f"cannot encode result in version {version}: {exc}")


class RawServant:
    """Dispatch by function name to handlers taking ``(current, body)``."""

    def __init__(self, name: str, handlers: dict[str, Callable[[Current, bytes], Any]]) -> None:
        self.name = name
        self.handlers = handlers

    def dispatch(self, current: Current) -> MaybeAwaitable:
        h = self.handlers.get(current.request.sFuncName)
        if h is None:
            return (Ret.NO_FUNC, b"", f"no function {current.request.sFuncName!r}")
        out: MaybeAwaitable = h(current, current.request.sBuffer)
        return out


def _unknown_error(exc: BaseException) -> Result:
    if isinstance(exc, ServerError):
        return (exc.code, b"", exc.desc)
    log.exception("servant raised", exc_info=exc)
    return (Ret.UNKNOWN, b"", f"{type(exc).__name__}: {exc}")


class InterfaceServant:
    """Bind an IDL :class:`Interface` to an implementation object.

    For each IDL method the implementation has a method of the same name taking
    ``(current, *in_args)`` and returning the return value, or a tuple ``(ret, *outs)``
    when the method has out-parameters. It may be ``async``. Raising
    :class:`ServerError` answers with that framework code.
    """

    def __init__(self, name: str, interface: Interface, impl: object) -> None:
        self.name = name
        self.interface = interface
        self.methods: Mapping[str, Method] = interface.methods
        self._impl: dict[str, tuple[Method, Callable[..., Any], bool]] = {}
        for mname, method in interface.methods.items():
            fn = getattr(impl, mname, None)
            if fn is not None:
                self._impl[mname] = (method, fn, inspect.iscoroutinefunction(fn))

    def dispatch(self, current: Current) -> MaybeAwaitable:
        req = current.request
        entry = self._impl.get(req.sFuncName)
        if entry is None:
            return (Ret.NO_FUNC, b"", f"no function {req.sFuncName!r} in {self.name}")
        method, fn, is_async = entry
        try:
            args = method.decode_args(req.sBuffer)
        except DecodeError as exc:
            return (Ret.SERVER_DECODE_ERR, b"", f"cannot decode arguments: {exc}")
        if is_async:
            return self._run_async(method, fn, current, args)
        try:
            value = fn(current, *args)
        except Exception as exc:
            return _unknown_error(exc)
        return _encode(method, value, req)

    async def _run_async(
        self, method: Method, fn: Callable[..., Any], current: Current, args: list[Any]
    ) -> Result:
        try:
            value = await fn(current, *args)
        except Exception as exc:
            return _unknown_error(exc)
        return _encode(method, value, current.request)


#: what a one-way call's servant answers: nothing is sent back, so nothing is encoded
#: (a node's acks are one-way: encoding their unsent result was an eighth of an ack)
_ONEWAY_DONE: Result = (Ret.SUCCESS, b"", "")


def _encode(method: Method, value: Any, req: RequestPacket) -> Result:
    if req.cPacketType == ONEWAY:
        return _ONEWAY_DONE
    if method.out_params:
        values = tuple(value)
        if method.ret is None:
            values = (None, *values)
    else:
        values = (value,)
    try:
        body = method.encode_result(*values)
    except (EncodeError, TypeError, ValueError) as exc:
        return (Ret.SERVER_ENCODE_ERR, b"", f"cannot encode result: {exc}")
    return (Ret.SUCCESS, body, "")
