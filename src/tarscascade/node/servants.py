"""The node's TARS servants: ``tars.tarsnode.ServerObj`` and its ``QueryObj`` alias.

ServerObj answers QueryF (from the replica, with the same catalog code as the
registry) and ServerF (keepAlive, keepActiving, reportVersion from the business servers
on this host; rules in ``node/keepalive.py``). Before the
replica holds any data the node does not answer QueryF with empty lists: it returns
TARSSERVERUNKNOWNERR with a message, and TARS clients keep their old list on an error.
``registerQuery(id, name)`` subscribes the calling connection to pushes when that
object's endpoint list changes (the SDK uses it to see a drain within milliseconds).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from tarscascade.catalog import QueryAnswerer
from tarscascade.catalog.queryf import Result, handle_query
from tarscascade.errors import DecodeError, EndpointSyntaxError
from tarscascade.node.keepalive import KeepAliveTracker
from tarscascade.node.watch import ObjectWatch
from tarscascade.transport import Current
from tarscascade.wire.endpoint import format_endpoint, parse_endpoint
from tarscascade.wire.idl.queryf import QUERY_F
from tarscascade.wire.idl.serverf import ENDPOINT_CONTEXT_KEY, NODE_SERVANT, SERVER_F, ServerInfo
from tarscascade.wire.interface import Method
from tarscascade.wire.packets import Ret

__all__ = ["ENDPOINT_CONTEXT_KEY", "NODE_SERVANT", "NOT_SYNCED", "NodeQueryServant"]

NOT_SYNCED = "node has no data yet (not synced with any upstream): keep your old list"


class NodeQueryServant:
    """QueryF (+ ServerF when ``keepalive`` is given) served from the replica."""

    methods: Mapping[str, Method] = {**QUERY_F.methods, **SERVER_F.methods}

    def __init__(
        self,
        name: str,
        answerer: QueryAnswerer,
        watch: ObjectWatch,
        has_data: Callable[[], bool],
        keepalive: KeepAliveTracker | None = None,
        clock: Callable[[], float] | None = None,
        on_keepalive: Callable[[], None] | None = None,
    ) -> None:
        self.name = name
        self.answerer = answerer
        self.watch = watch
        self.has_data = has_data
        self.keepalive = keepalive
        self.clock = clock
        self.on_keepalive = on_keepalive

    def dispatch(self, current: Current) -> Result:
        req = current.request
        func = req.sFuncName
        if self.keepalive is not None and func in SERVER_F.methods:
            return self._server_f(SERVER_F.methods[func], current)
        if func.startswith("find") and not self.has_data():
            return (Ret.UNKNOWN, b"", NOT_SYNCED)

        def register_query(method: Method, args: list[object], caller: str) -> Result:
            ok = self.watch.subscribe(str(args[0]), current.conn)
            return (Ret.SUCCESS, method.encode_result(0 if ok else -1), "")

        return handle_query(
            self.answerer,
            func,
            req.sBuffer,
            current.host_name,
            extra={"registerQuery": register_query},
        )

    def _server_f(self, method: Method, current: Current) -> Result:
        req = current.request
        try:
            args = method.decode_args(req.sBuffer)
        except DecodeError as exc:
            return (Ret.SERVER_DECODE_ERR, b"", f"cannot decode {method.name} arguments: {exc}")
        assert self.keepalive is not None
        assert self.clock is not None
        ka, now = self.keepalive, self.clock()
        ret: object
        if method.name == "getLatestKeepAliveTime":
            ret = int(ka.latest()) & 0xFFFFFFFF
        else:
            # 0 accepted, -1 ignored (pid <= 0, no name, a bound reached), as tarsnode
            # answers -1 for what it cannot take
            accepted = self._beat(method.name, args, req.context, now)
            if accepted and self.on_keepalive is not None:
                self.on_keepalive()
            ret = 0 if accepted else -1
        return (Ret.SUCCESS, method.encode_result(ret), "")

    def _beat(self, name: str, args: list[object], context: dict[str, str], now: float) -> bool:
        ka = self.keepalive
        assert ka is not None
        if name == "reportVersion":
            app, server, version = (str(a) for a in args)
            return ka.report_version(app, server, version)
        info = args[0]
        assert isinstance(info, ServerInfo)
        if name == "keepActiving":
            return ka.keep_activing(info.application, info.serverName, info.pid, now)
        announced = _announced(context.get(ENDPOINT_CONTEXT_KEY, ""))
        return ka.keep_alive(
            info.application, info.serverName, info.pid, info.adapter, now, announced
        )


def _announced(text: str) -> tuple[str, int, str] | None:
    if not text:
        return None
    try:
        ep = parse_endpoint(text)
    except EndpointSyntaxError:
        return None
    return (ep.host, ep.port, format_endpoint(ep))
