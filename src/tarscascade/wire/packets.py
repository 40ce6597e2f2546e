"""RequestPacket / ResponsePacket (``tup/RequestF.tars``) and the protocol's named constants."""

from __future__ import annotations

from enum import IntEnum

from tarscascade.wire.codec import BYTES, INT8, INT16, INT32_K, STRING, STRING_MAP
from tarscascade.wire.struct import tars_struct, tfield

TARS_VERSION = 1
TUP_COMPLEX_VERSION = 2
TUP_VERSION = 3
JSON_VERSION = 5
#: versions answered with a RequestPacket-shaped reply (TarsJava, @tars/rpc; TarsCpp for 3)
TUP_VERSIONS = (TUP_COMPLEX_VERSION, TUP_VERSION)

NORMAL = 0  # cPacketType TARSNORMAL
ONEWAY = 1  # cPacketType TARSONEWAY

PING_FUNC = "tars_ping"

# iMessageType bits (BaseF.tars)
MESSAGE_TYPE_SETNAME = 0x80  # TARSMESSAGETYPESETNAME: a set call, set in STATUS_SETNAME_VALUE

# status keys (BaseF.tars)
STATUS_SETNAME_VALUE = "STATUS_SETNAME_VALUE"
STATUS_RESULT_CODE = "STATUS_RESULT_CODE"
STATUS_RESULT_DESC = "STATUS_RESULT_DESC"
STATUS_PUSH_FUNC = "TARS_FUNC"


class Ret(IntEnum):
    """Framework return codes (iRet), BaseF.tars."""

    SUCCESS = 0
    SERVER_DECODE_ERR = -1
    SERVER_ENCODE_ERR = -2
    NO_FUNC = -3
    NO_SERVANT = -4
    RESET_GRID = -5
    QUEUE_TIMEOUT = -6
    INVOKE_TIMEOUT = -7
    PROXY_CONNECT_ERR = -8
    OVERLOAD = -9
    ADAPTER_NULL = -10
    INVALID_SET = -11
    CLIENT_DECODE_ERR = -12
    SEND_REQUEST_ERR = -13
    UNKNOWN = -99


#: what a servant answers one request with: (``iRet``, the response body,
#: ``sResultDesc``) — the one meaning of ``Result`` in tarscascade
Result = tuple[int, bytes, str]


@tars_struct
class RequestPacket:
    """Every field is ``require`` in the RequestF.tars that TarsCpp and TarsGo compile."""

    iVersion: int = tfield(1, INT16, require=True, default=TARS_VERSION)
    cPacketType: int = tfield(2, INT8, require=True, default=NORMAL)
    iMessageType: int = tfield(3, INT32_K, require=True, default=0)
    iRequestId: int = tfield(4, INT32_K, require=True, default=0)
    sServantName: str = tfield(5, STRING, require=True, default="")
    sFuncName: str = tfield(6, STRING, require=True, default="")
    sBuffer: bytes = tfield(7, BYTES, require=True, default=b"")
    iTimeout: int = tfield(8, INT32_K, require=True, default=0)
    context: dict[str, str] = tfield(9, STRING_MAP, require=True, default_factory=dict)
    status: dict[str, str] = tfield(10, STRING_MAP, require=True, default_factory=dict)


@tars_struct
class ResponsePacket:
    """Tags 1-7 are required (the Node decoder insists on ``status``); 8-9 optional."""

    iVersion: int = tfield(1, INT16, require=True, default=TARS_VERSION)
    cPacketType: int = tfield(2, INT8, require=True, default=NORMAL)
    iRequestId: int = tfield(3, INT32_K, require=True, default=0)
    iMessageType: int = tfield(4, INT32_K, require=True, default=0)
    iRet: int = tfield(5, INT32_K, require=True, default=0)
    sBuffer: bytes = tfield(6, BYTES, require=True, default=b"")
    status: dict[str, str] = tfield(7, STRING_MAP, require=True, default_factory=dict)
    sResultDesc: str = tfield(8, STRING, default="", skip_default=True)
    context: dict[str, str] = tfield(9, STRING_MAP, default_factory=dict)
