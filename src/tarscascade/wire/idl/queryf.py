"""``QueryF`` (servant ``tars.tarsregistry.QueryObj``): every method, tags per QueryF.tars."""

from __future__ import annotations

from tarscascade.wire.codec import (
    BOOL,
    INT32_K,
    STRING,
    STRING_MAP,
    decode_value,
    encode_value,
    list_of,
)
from tarscascade.wire.idl.endpointf import ENDPOINT_LIST
from tarscascade.wire.interface import Interface, Method, Param
from tarscascade.wire.struct import struct_kind, tars_struct, tfield

QUERY_SERVANT = "tars.tarsregistry.QueryObj"
#: the registry's default TARS port (QueryObj, CascadeObj, ReportObj)
DEFAULT_REGISTRY_PORT = 17890


@tars_struct
class GetMasterSlaveLock:
    __tars_module__ = "tars"
    application: str = tfield(0, STRING, default="")
    server_name: str = tfield(1, STRING, default="")
    node_name: str = tfield(2, STRING, default="")
    isMaster: bool = tfield(3, BOOL, default=False)
    lastErr: bool = tfield(4, BOOL, default=False)
    timeout: int = tfield(5, INT32_K, default=0)
    bakType: int = tfield(6, INT32_K, default=0)


_ID = Param("id", STRING)
_ACTIVE = Param("activeEp", ENDPOINT_LIST, out=True)
_INACTIVE = Param("inactiveEp", ENDPOINT_LIST, out=True)

FIND_OBJECT_BY_ID = Method("findObjectById", (_ID,), ENDPOINT_LIST)
FIND_4ANY = Method("findObjectById4Any", (_ID, _ACTIVE, _INACTIVE), INT32_K)
FIND_4ALL = Method("findObjectById4All", (_ID, _ACTIVE, _INACTIVE), INT32_K)
FIND_IN_SAME_GROUP = Method("findObjectByIdInSameGroup", (_ID, _ACTIVE, _INACTIVE), INT32_K)
FIND_IN_SAME_STATION = Method(
    "findObjectByIdInSameStation", (_ID, Param("sStation", STRING), _ACTIVE, _INACTIVE), INT32_K
)
FIND_IN_SAME_SET = Method(
    "findObjectByIdInSameSet", (_ID, Param("setId", STRING), _ACTIVE, _INACTIVE), INT32_K
)
FIND_OBJECT_NODE_NAME = Method(
    "findObjectNodeName", (_ID, Param("nodeName", list_of(STRING), out=True)), INT32_K
)
REGISTER_CHANGE = Method(
    "registerChange", (Param("timestamp", STRING_MAP), Param("name", STRING)), INT32_K
)
REGISTER_QUERY = Method("registerQuery", (Param("id", STRING), Param("name", STRING)), INT32_K)
GET_LOCKER = Method("getLocker", (Param("req", struct_kind(GetMasterSlaveLock)),), INT32_K)

QUERY_F = Interface.of(
    "QueryF",
    FIND_OBJECT_BY_ID,
    FIND_4ANY,
    FIND_4ALL,
    FIND_IN_SAME_GROUP,
    FIND_IN_SAME_STATION,
    FIND_IN_SAME_SET,
    FIND_OBJECT_NODE_NAME,
    REGISTER_CHANGE,
    REGISTER_QUERY,
    GET_LOCKER,
)

#: tarscascade's push contract (served by ``tarscascade node``, consumed by the SDK): after
#: ``registerQuery(id, name)`` answered 0, the node pushes on that connection a TARS push
#: (request id 0) whose status ``TARS_FUNC`` is this name and whose body is the object id,
#: a TARS string at tag 0, whenever the object's endpoint list changes
OBJECT_CHANGED = "tarscascade.objectChanged"


def encode_object_changed(object_id: str) -> bytes:
    """The body of an :data:`OBJECT_CHANGED` push."""
    return encode_value(STRING, object_id, 0)


def decode_object_changed(body: bytes) -> str:
    return decode_value(STRING, body, 0)
