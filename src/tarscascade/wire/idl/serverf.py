"""``ServerF`` (servant ``tars.tarsnode.ServerObj``, NodeF.tars): business server -> tarsnode."""

from __future__ import annotations

from tarscascade.wire.codec import INT32_K, STRING, UINT32
from tarscascade.wire.interface import Interface, Method, Param
from tarscascade.wire.struct import struct_kind, tars_struct, tfield

NODE_SERVANT = "tars.tarsnode.ServerObj"
#: the node agent's default TARS port (where the SDK and TARS clients find their node)
DEFAULT_NODE_PORT = 19386
#: tarscascade's keepAlive context key naming the endpoint the calling process serves
#: (the SDK sends it, the node reads it; a stock tarsnode ignores it)
ENDPOINT_CONTEXT_KEY = "tarscascade.endpoint"


@tars_struct
class ServerInfo:
    __tars_module__ = "tars"
    application: str = tfield(0, STRING, require=True, default="")
    serverName: str = tfield(1, STRING, require=True, default="")
    pid: int = tfield(2, INT32_K, require=True, default=0)
    adapter: str = tfield(3, STRING, default="")


SERVER_INFO = struct_kind(ServerInfo)

KEEP_ALIVE = Method("keepAlive", (Param("serverInfo", SERVER_INFO),), INT32_K)
KEEP_ACTIVING = Method("keepActiving", (Param("serverInfo", SERVER_INFO),), INT32_K)
REPORT_VERSION = Method(
    "reportVersion",
    (Param("app", STRING), Param("serverName", STRING), Param("version", STRING)),
    INT32_K,
)
GET_LATEST_KEEP_ALIVE_TIME = Method("getLatestKeepAliveTime", (), UINT32)

SERVER_F = Interface.of(
    "ServerF", KEEP_ALIVE, KEEP_ACTIVING, REPORT_VERSION, GET_LATEST_KEEP_ALIVE_TIME
)
