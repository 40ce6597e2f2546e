"""Servants: what a TarsServer dispatches requests to.

A servant gets a :class:`Current` (the request, the peer, a way to push on the same
connection) and returns ``(ret, body, desc)`` or an awaitable of it. Returning a plain
tuple keeps hot servants (a cached QueryF answer) free of task scheduling.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from tarscascade.errors import DecodeError, EncodeError, ServerError
from tarscascade.wire.interface import Interface, Method
from tarscascade.wire.packets import TUP_VERSION, RequestPacket, Ret

log = logging.getLogger(__name__)

Result = tuple[int, bytes, str]
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
    name: str

    def dispatch(self, current: Current) -> MaybeAwaitable: ...


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
        tup = req.iVersion == TUP_VERSION
        try:
            args = method.decode_args_tup(req.sBuffer) if tup else method.decode_args(req.sBuffer)
        except DecodeError as exc:
            return (Ret.SERVER_DECODE_ERR, b"", f"cannot decode arguments: {exc}")
        if is_async:
            return self._run_async(method, fn, current, args, tup)
        try:
            value = fn(current, *args)
        except Exception as exc:
            return _unknown_error(exc)
        return _encode(method, value, tup)

    async def _run_async(
        self, method: Method, fn: Callable[..., Any], current: Current, args: list[Any], tup: bool
    ) -> Result:
        try:
            value = await fn(current, *args)
        except Exception as exc:
            return _unknown_error(exc)
        return _encode(method, value, tup)


def _encode(method: Method, value: Any, tup: bool) -> Result:
    if method.out_params:
        values = tuple(value)
        if method.ret is None:
            values = (None, *values)
    else:
        values = (value,)
    try:
        if tup:
            body = method.encode_result_tup(*values)
        else:
            body = method.encode_result(*values)
    except (EncodeError, TypeError, ValueError) as exc:
        return (Ret.SERVER_ENCODE_ERR, b"", f"cannot encode result: {exc}")
    return (Ret.SUCCESS, body, "")
