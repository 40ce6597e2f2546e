"""The registry's TARS servants: ``tars.tarsregistry.QueryObj`` (QueryF)."""

from __future__ import annotations

from tarscascade.catalog import QueryAnswerer
from tarscascade.catalog.queryf import handle_query
from tarscascade.transport import Current
from tarscascade.wire.idl.queryf import QUERY_SERVANT


class QueryServant:
    """QueryF answered from the catalog's encoded-answer cache, synchronously.

    The caller identity is TarsCpp's ``Current::getHostName``: context ``node_name``,
    else the peer IP — the key of the IDC group logic.
    """

    def __init__(self, answerer: QueryAnswerer, name: str = QUERY_SERVANT) -> None:
        self.name = name
        self.answerer = answerer

    def dispatch(self, current: Current) -> tuple[int, bytes, str]:
        req = current.request
        return handle_query(
            self.answerer, req.sFuncName, req.sBuffer, req.iVersion, current.host_name
        )
