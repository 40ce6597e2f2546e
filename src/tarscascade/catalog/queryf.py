"""QueryF request handling shared by the registry's and the node's servants (pure).

``handle_query`` takes what a servant sees (function name, TARS argument bytes, caller
identity) and returns ``(ret, body, desc)``. Registry and node wrap it in a servant of
two lines each, so both answer byte-for-byte alike for the same data and caller.
Answers come from :class:`QueryAnswerer`'s cache. TUP and JSON callers reach it through
the transport's version switch (``transport.servant.dispatch_in_kind``), which
re-encodes arguments and answers by the IDL (``QUERY_F``).
"""

from __future__ import annotations

from collections.abc import Callable

from tarscascade.catalog.encoded import QUERY_METHODS, QueryAnswerer
from tarscascade.errors import DecodeError, EncodeError
from tarscascade.wire.idl.queryf import QUERY_F
from tarscascade.wire.interface import Method
from tarscascade.wire.packets import Result, Ret

#: extra functions a host can answer (e.g. the node's registerQuery); same signature
Extra = Callable[[Method, list[object], str], Result]

# Enterprise-only functions the open-source registry answers with -1 (QueryImp).
_UNSUPPORTED = {"registerChange", "registerQuery", "getLocker"}


def handle_query(
    answerer: QueryAnswerer,
    func: str,
    body: bytes,
    caller: str,
    extra: dict[str, Extra] | None = None,
) -> Result:
    method = QUERY_F.methods.get(func)
    if method is None:
        return (Ret.NO_FUNC, b"", f"QueryF has no function {func!r}")
    try:
        args = method.decode_args(body)
    except DecodeError as exc:
        return (Ret.SERVER_DECODE_ERR, b"", f"cannot decode {func} arguments: {exc}")
    if extra and func in extra:
        return extra[func](method, args, caller)
    if func in QUERY_METHODS:
        object_id = args[0]
        arg = args[1] if len(args) > 1 else ""
        return (Ret.SUCCESS, answerer.answer(func, object_id, caller, arg), "")
    if func == "findObjectNodeName":
        names = sorted({r.node_name for r in answerer.catalog.get_object(args[0]) if r.node_name})
        return _encode(method, (0 if names else -1, names))
    if func in _UNSUPPORTED:
        return _encode(method, (-1,))
    return (Ret.NO_FUNC, b"", f"{func} is not served here")


def _encode(method: Method, values: tuple[object, ...]) -> Result:
    try:
        return (Ret.SUCCESS, method.encode_result(*values), "")
    except EncodeError as exc:
        return (Ret.SERVER_ENCODE_ERR, b"", str(exc))
