"""The node's TARS servants: ``tars.tarsnode.ServerObj``, its ``QueryObj`` alias, and the
relay's ``ReportObj``.

ServerObj answers QueryF (from the replica, with the same catalog code as the
registry) and ServerF (keepAlive, keepActiving, reportVersion from the business servers
on this host; rules in ``node/keepalive.py``). Before the
replica holds any data the node does not answer QueryF with empty lists: it returns
TARSSERVERUNKNOWNERR with a message, and TARS clients keep their old list on an error.
``registerQuery(id, name)`` subscribes the calling connection to pushes when that
object's endpoint list changes (the SDK uses it to see a drain within milliseconds).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from tarscascade.catalog import QueryAnswerer
from tarscascade.catalog.queryf import handle_query
from tarscascade.errors import DecodeError, EndpointSyntaxError, TarsCascadeError
from tarscascade.node.keepalive import KeepAliveTracker
from tarscascade.node.watch import ObjectWatch
from tarscascade.transport import Current
from tarscascade.wire.endpoint import format_endpoint, parse_endpoint
from tarscascade.wire.hosts import is_loopback
from tarscascade.wire.idl.queryf import QUERY_F
from tarscascade.wire.idl.reportf import REPORT_F, REPORT_SERVANT, REPORT_STATES, ReportStatesReq
from tarscascade.wire.idl.serverf import ENDPOINT_CONTEXT_KEY, SERVER_F, ServerInfo
from tarscascade.wire.interface import Method
from tarscascade.wire.packets import Result, Ret

__all__ = ["NOT_SYNCED", "NodeQueryServant", "ReportRelay"]

NOT_SYNCED = "node has no data yet (not synced with any upstream): keep your old list"
LOCAL_ONLY = "ServerF is served to processes on this node's own host only (loopback)"

#: (object id, (host, port, endpoint string)) -> the endpoint to record (its host may be
#: rewritten), or None when the announcement is refused
AnnounceCheck = Callable[[str, tuple[str, int, str]], tuple[str, int, str] | None]


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
        announce_check: AnnounceCheck | None = None,
        serverf_any_peer: bool = False,
    ) -> None:
        self.name = name
        self.answerer = answerer
        self.watch = watch
        self.has_data = has_data
        self.keepalive = keepalive
        self.clock = clock
        self.on_keepalive = on_keepalive
        #: which announced endpoints this node takes (None: every one, unchecked)
        self.announce_check = announce_check
        #: take ServerF from any peer, not only loopback ones (a node whose business
        #: servers reach it over the network; off by default)
        self.serverf_any_peer = serverf_any_peer
        self.serverf_refused = 0

    def dispatch(self, current: Current) -> Result:
        req = current.request
        func = req.sFuncName
        if self.keepalive is not None and func in SERVER_F.methods:
            if not self.serverf_any_peer and not is_loopback(current.peer[0]):
                self.serverf_refused += 1
                return (Ret.NO_FUNC, b"", LOCAL_ONLY)
            return self._server_f(SERVER_F.methods[func], current)
        if func.startswith("find") and not self.has_data():
            return (Ret.UNKNOWN, b"", NOT_SYNCED)

        def register_query(method: Method, args: list[object], caller: str) -> Result:
            conn = current.conn
            ok = self.watch.subscribe(str(args[0]), conn, getattr(conn, "peer_key", ""))
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
        refused = False
        if announced is not None and self.announce_check is not None and info.pid > 0:
            checked = self.announce_check(info.adapter, announced)
            refused = checked is None
            announced = checked
        ok = ka.keep_alive(
            info.application, info.serverName, info.pid, info.adapter, now, announced
        )
        return ok and not refused  # the beat counts; the caller learns the refusal


def _announced(text: str) -> tuple[str, int, str] | None:
    if not text:
        return None
    try:
        ep = parse_endpoint(text)
    except EndpointSyntaxError:
        return None
    return (ep.host, ep.port, format_endpoint(ep))


class ReportRelay:
    """``ReportObj`` on a node: downstream nodes' reports are forwarded upstream as is.

    ``forward`` sends a report to this node's current upstream and answers its return
    code (``Ret.UNKNOWN`` when no upstream answers).
    """

    name = REPORT_SERVANT
    methods = REPORT_F.methods

    def __init__(self, forward: Callable[[ReportStatesReq], Awaitable[int]]) -> None:
        self.forward = forward

    def dispatch(self, current: Current) -> Any:
        req = current.request
        if req.sFuncName != REPORT_STATES.name:
            return (Ret.NO_FUNC, b"", f"ReportF has no function {req.sFuncName!r}")
        try:
            (report,) = REPORT_STATES.decode_args(req.sBuffer)
        except TarsCascadeError as exc:
            return (Ret.SERVER_DECODE_ERR, b"", str(exc))
        return self._forward(report)

    async def _forward(self, report: ReportStatesReq) -> tuple[int, bytes, str]:
        ret = await self.forward(report)
        if ret == Ret.UNKNOWN:
            return (Ret.UNKNOWN, b"", "no upstream reachable")
        return (Ret.SUCCESS, REPORT_STATES.encode_result(ret), "")
