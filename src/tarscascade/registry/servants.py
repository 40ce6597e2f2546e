"""The registry's TARS servants: ``tars.tarsregistry.QueryObj`` (QueryF)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Mapping

from tarscascade.auth import credential_equal
from tarscascade.catalog import QueryAnswerer
from tarscascade.catalog.announce import announce_refusal
from tarscascade.catalog.queryf import handle_query
from tarscascade.errors import DecodeError, EndpointSyntaxError, InvalidRecordError, NotFoundError
from tarscascade.model import (
    MAX_VERSION_LEN,
    Category,
    EndpointRecord,
    Record,
    State,
    endpoint_key,
    is_node_name,
    record_from_endpoint,
)
from tarscascade.registry.core import RegistryCore
from tarscascade.registry.node_auth import NodeAuthority, OncePer
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
from tarscascade.wire.packets import Result, Ret

log = logging.getLogger(__name__)


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

    The report must carry the node's own credential (``NodeAuthority.check_report``).
    Only endpoints whose ``node_name`` is the reporting node are accepted (a node cannot
    flip another host's servers). The report is one write of ``present_state`` patches,
    each checked against the row as the database holds it then: a report never undoes a
    concurrent drain or edit, and all of it applies or none (``NOT_YOURS``). An announced
    endpoint the registry does not know is registered only if the announcement rule holds
    (``catalog/announce.py``: the node's own host, an object registered for it or allowed
    to it); a refused announcement is left out, counted and logged once per (node, object).
    """

    methods: Mapping[str, Method] = REPORT_F.methods

    def __init__(
        self,
        core: RegistryCore,
        token: str | None = None,
        owner: str | None = None,
        *,
        authority: NodeAuthority | None = None,
        allow_loopback: bool = True,
    ) -> None:
        self.name = REPORT_SERVANT
        self.core = core
        self.owner = owner  # set: endpoints belong to that source (db_tars), reports refused
        if authority is None:
            authority = NodeAuthority("shared", shared_token=token) if token else None
        self.authority = authority or NodeAuthority("open")
        #: loopback hosts may be announced (a registry that itself serves only loopback)
        self.allow_loopback = allow_loopback
        self.announcements_refused = 0
        self._logged = OncePer()

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
        # mutual TLS: a certificate naming the reporting node authenticates it; another
        # name (a relay forwarding a leaf's report) leaves it to the report's own proof
        cert = getattr(current.conn, "peer_cert_name", None)
        return self._apply(report, cert is not None and credential_equal(cert, report.nodeName))

    async def _apply(self, report: ReportStatesReq, by_cert: bool = False) -> Result:
        if not by_cert and not self.authority.check_report(report):
            return (Ret.SUCCESS, REPORT_STATES.encode_result(AUTH_FAILED), "")
        if self.owner is not None:
            desc = f"{self.owner} owns endpoints: present states come from it, not from reports"
            return (Ret.SUCCESS, REPORT_STATES.encode_result(NOT_YOURS), desc)
        not_yours = REPORT_STATES.encode_result(NOT_YOURS)
        if not is_node_name(report.nodeName):  # the admin API could not manage its records
            return (Ret.SUCCESS, not_yours, "bad node name")
        owned = _owned_by(report.nodeName)
        ops: list[WriteOp] = []
        refusal = ""
        for s in report.states:
            if s.state not in (State.ACTIVE, State.INACTIVE):
                return (Ret.SUCCESS, not_yours, "bad state")
            created = None
            if s.endpoint:  # announced: registered if the registry does not know it
                created = self._announced(report.nodeName, s)
                if created is None:
                    return (Ret.SUCCESS, not_yours, "bad endpoint")
                if not self._known(s):
                    why = self._announce_refusal(report.nodeName, s)
                    if why is not None:
                        refusal = why
                        continue
            if len(s.version) > MAX_VERSION_LEN:
                return (Ret.SUCCESS, not_yours, "bad version")
            key = endpoint_key(s.objectId, s.host, s.port)
            changes: dict[str, object] = {"present_state": State(s.state)}
            if s.version:  # "" = not reported: keep what is known
                changes["tars_version"] = s.version
            ops.append(Patch(Category.OBJECTS, key, changes, create=created, check=owned))
        if not ops:
            return (Ret.SUCCESS, not_yours if refusal else REPORT_STATES.encode_result(0), refusal)
        try:
            done = await self.core.commit(ops)
        except (NotFoundError, _NotYours):
            return (Ret.SUCCESS, not_yours, "not yours")
        except InvalidRecordError:
            return (Ret.SUCCESS, not_yours, "bad endpoint")
        return (
            Ret.SUCCESS,
            REPORT_STATES.encode_result(len(done.events)),
            refusal or f"revision {done.revision}",
        )

    def _known(self, s: EndpointStateF) -> bool:
        return any(
            r.host == s.host and r.port == s.port
            for r in self.core.catalog.endpoints_unordered(s.objectId)
        )

    def own_hosts(self, node: str) -> set[str]:
        """The hosts ``node`` may announce on: those an admin pinned, else its record's."""
        pinned = self.authority.hosts_of(node)
        if pinned:
            return set(pinned)
        rec = self.core.catalog.get_node(node)
        return {rec.host} if rec is not None and rec.host else set()

    def _announce_refusal(self, node: str, s: EndpointStateF) -> str | None:
        why = announce_refusal(
            self.core.catalog,
            node,
            s.objectId,
            s.host,
            self.own_hosts(node),
            allow_loopback=self.allow_loopback,
        )
        if why is not None:
            self.announcements_refused += 1
            if self._logged.first(node, s.objectId):
                log.warning("node %r announced %s: refused, %s", node, s.objectId, why)
        return why

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
