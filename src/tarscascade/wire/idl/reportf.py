"""``ReportF`` (servant ``tars.tarsregistry.ReportObj``): node -> upstream state reports.

A node agent learns from ``ServerF.keepAlive`` whether the business servers on its host
are alive, and reports each change of an endpoint's present state upstream; the
registry records it (a versioned write that reaches every node), and a relay node
forwards it to its own upstream. The TARS IDL::

    struct EndpointStateF {
        0 require string objectId; 1 require string host; 2 require int port;
        3 require string state;   // "active" | "inactive"
        4 optional string endpoint = "";  // "tcp -h H -p P ...": create it when unknown
        5 optional string version = "";   // the TARS version its server reported, if any
    };
    struct ReportStatesReq {
        0 require string nodeName; 1 require string token; 2 require vector<EndpointStateF> states;
    };
    interface ReportF { int reportStates(ReportStatesReq req); };

``reportStates`` returns the number of endpoints whose state changed, or -1 when the
token is wrong, -2 when the request names endpoints that are not the node's own.
"""

from __future__ import annotations

from tarscascade.wire.codec import INT32_K, STRING, list_of
from tarscascade.wire.interface import Interface, Method, Param
from tarscascade.wire.struct import struct_kind, tars_struct, tfield

REPORT_SERVANT = "tars.tarsregistry.ReportObj"
AUTH_FAILED = -1
NOT_YOURS = -2


@tars_struct
class EndpointStateF:
    objectId: str = tfield(0, STRING, require=True, default="")
    host: str = tfield(1, STRING, require=True, default="")
    port: int = tfield(2, INT32_K, require=True, default=0)
    state: str = tfield(3, STRING, require=True, default="")
    #: optional TARS endpoint string: lets the registry create an endpoint it does not know
    endpoint: str = tfield(4, STRING, default="", skip_default=True)
    #: optional: the version the endpoint's server reported (``ServerF.reportVersion``)
    version: str = tfield(5, STRING, default="", skip_default=True)


@tars_struct
class ReportStatesReq:
    nodeName: str = tfield(0, STRING, require=True, default="")
    token: str = tfield(1, STRING, require=True, default="")
    states: list[EndpointStateF] = tfield(
        2, list_of(struct_kind(EndpointStateF)), require=True, default_factory=list
    )


REPORT_STATES = Method("reportStates", (Param("req", struct_kind(ReportStatesReq)),), INT32_K)
REPORT_F = Interface.of("ReportF", REPORT_STATES)
