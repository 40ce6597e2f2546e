"""The registry's TARS servants: ``tars.tarsregistry.QueryObj`` (QueryF)."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Mapping

from tarscascade.catalog import QueryAnswerer
from tarscascade.catalog.queryf import Result, handle_query
from tarscascade.errors import DecodeError, EndpointSyntaxError, InvalidRecordError, NotFoundError
from tarscascade.model import Category, EndpointRecord, Record, State, endpoint_key
from tarscascade.registry.admin_ops import MAX_VERSION_LEN, record_from_endpoint
from tarscascade.registry.core import RegistryCore
from tarscascade.store import Patch, PatchCheck, WriteOp
from tarscascade.transport import Current
from tarscascade.wire.endpoint import parse_endpoint, validate_object_id
from tarscascade.wire.idl.queryf import QUERY_F, QUERY_SERVANT
from tarscascade.wire.idl.reportf import (
    AUTH_FAILED,
    NOT_YOURS,
    REPORT_F,
    REPORT_SERVANT,
    REPORT_STATES,
    EndpointStateF,
    ReportStatesReq,
)
from tarscascade.wire.idl.serverf import NODE_SERVANT, SERVER_F
from tarscascade.wire.interface import Method
from tarscascade.wire.packets import Ret


class QueryServant:
    """QueryF answered from the catalog's encoded-answer cache, synchronously.

    The caller identity is TarsCpp's ``Current::getHostName``: context ``node_name``,
    else the peer IP — the key of the IDC group logic.
    """

    methods: Mapping[str, Method] = QUERY_F.methods

    def __init__(self, answerer: QueryAnswerer, name: str = QUERY_SERVANT) -> None:
        self.name = name
        self.answerer = answerer

    def dispatch(self, current: Current) -> tuple[int, bytes, str]:
        req = current.request
        return handle_query(self.answerer, req.sFuncName, req.sBuffer, current.host_name)


class ServerObjAlias(QueryServant):
    """``tars.tarsnode.ServerObj`` on the registry: QueryF only.

    TARS clients treat every endpoint of a locator as a replica of one object, so a
    locator naming a node and the registry (``tars.tarsnode.ServerObj@node:registry``)
    needs the registry to answer that name too. ServerF calls (keepAlive and the rest)
    belong to the node on the business server's host: refused with a message saying so.
    """

    # ServerF too, so that a TUP or JSON ServerF call gets the refusal below
    methods: Mapping[str, Method] = {**QUERY_F.methods, **SERVER_F.methods}

    def __init__(self, answerer: QueryAnswerer) -> None:
        super().__init__(answerer, NODE_SERVANT)

    def dispatch(self, current: Current) -> tuple[int, bytes, str]:
        func = current.request.sFuncName
        if func in SERVER_F.methods:
            return (Ret.NO_FUNC, b"", f"{func} is ServerF, served by {SERVER_F_HOME}")
        return super().dispatch(current)


#: where ServerF calls belong (the registry's ServerObj alias says so when refusing them)
SERVER_F_HOME = (
    "the tarscascade node on the server's own host (tars.tarsnode.ServerObj there); "
    "this registry answers QueryF under that name only"
)


class _NotYours(Exception):
    """A reported endpoint is another node's: the whole report is refused."""


def _owned_by(node: str) -> PatchCheck:
    def check(before: Record | None, _after: Record) -> None:
        if before is not None and getattr(before, "node_name", None) != node:
            raise _NotYours(before.key)

    return check


class ReportServant:
    """``ReportObj``: a node reports the present state of the endpoints it hosts.

    Only endpoints whose ``node_name`` is the reporting node are accepted (a node cannot
    flip another host's servers). The report is one write of ``present_state`` patches,
    each checked against the row as the database holds it then: a report never undoes a
    concurrent drain or edit, and all of it applies or none (``NOT_YOURS``).
    """

    methods: Mapping[str, Method] = REPORT_F.methods

    def __init__(self, core: RegistryCore, token: str | None, owner: str | None = None) -> None:
        self.name = REPORT_SERVANT
        self.core = core
        self.token = token or ""
        self.owner = owner  # set: endpoints belong to that source (db_tars), reports refused

    def dispatch(
        self, current: Current
    ) -> Awaitable[tuple[int, bytes, str]] | tuple[int, bytes, str]:
        req = current.request
        if req.sFuncName != REPORT_STATES.name:
            return (Ret.NO_FUNC, b"", f"ReportF has no function {req.sFuncName!r}")
        try:
            (report,) = REPORT_STATES.decode_args(req.sBuffer)
        except DecodeError as exc:
            return (Ret.SERVER_DECODE_ERR, b"", f"cannot decode reportStates: {exc}")
        return self._apply(report)

    async def _apply(self, report: ReportStatesReq) -> Result:
        if not hmac.compare_digest(report.token.encode(), self.token.encode()):
            return (Ret.SUCCESS, REPORT_STATES.encode_result(AUTH_FAILED), "")
        if self.owner is not None:
            desc = f"{self.owner} owns endpoints: present states come from it, not from reports"
            return (Ret.SUCCESS, REPORT_STATES.encode_result(NOT_YOURS), desc)
        not_yours = REPORT_STATES.encode_result(NOT_YOURS)
        owned = _owned_by(report.nodeName)
        ops: list[WriteOp] = []
        for s in report.states:
            if s.state not in (State.ACTIVE, State.INACTIVE):
                return (Ret.SUCCESS, not_yours, "bad state")
            created = None
            if s.endpoint:  # announced: registered if the registry does not know it
                created = self._announced(report.nodeName, s)
                if created is None:
                    return (Ret.SUCCESS, not_yours, "bad endpoint")
            if len(s.version) > MAX_VERSION_LEN:
                return (Ret.SUCCESS, not_yours, "bad version")
            key = endpoint_key(s.objectId, s.host, s.port)
            changes: dict[str, object] = {"present_state": State(s.state)}
            if s.version:  # "" = not reported: keep what is known
                changes["tars_version"] = s.version
            ops.append(Patch(Category.OBJECTS, key, changes, create=created, check=owned))
        if not ops:
            return (Ret.SUCCESS, REPORT_STATES.encode_result(0), "")
        try:
            done = await self.core.commit(ops)
        except (NotFoundError, _NotYours):
            return (Ret.SUCCESS, not_yours, "not yours")
        except InvalidRecordError:
            return (Ret.SUCCESS, not_yours, "bad endpoint")
        return (
            Ret.SUCCESS,
            REPORT_STATES.encode_result(len(done.events)),
            f"revision {done.revision}",
        )

    @staticmethod
    def _announced(node: str, s: EndpointStateF) -> EndpointRecord | None:
        """A server announced an endpoint the registry does not know: register it."""
        try:
            validate_object_id(s.objectId)
            ep = parse_endpoint(s.endpoint)
        except EndpointSyntaxError:
            return None
        if (ep.host, ep.port) != (s.host, s.port) or not node or len(s.version) > MAX_VERSION_LEN:
            return None
        return record_from_endpoint(
            s.objectId, ep, node_name=node, present_state=State(s.state), tars_version=s.version
        )
