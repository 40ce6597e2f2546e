"""``EndpointF`` (module ``tars``, EndpointF.tars): one servant endpoint as QueryF returns it."""

from __future__ import annotations

from tarscascade.wire.codec import INT32_K, STRING, list_of
from tarscascade.wire.struct import struct_kind, tars_struct, tfield


@tars_struct
class EndpointF:
    __tars_module__ = "tars"
    # EndpointF.tars gives no defaults: an absent optional field reads as 0, as in
    # tars2cpp, TarsGo and @tars/stream (TarsGo omits zero-valued optionals).

    host: str = tfield(0, STRING, require=True, default="")
    port: int = tfield(1, INT32_K, require=True, default=0)
    #: the adapter's idle timeout in ms (``-t``); clients do not use it as a call timeout
    timeout: int = tfield(2, INT32_K, require=True, default=0)
    #: 0 = UDP, 1 = TCP, 2 = SSL
    istcp: int = tfield(3, INT32_K, require=True, default=0)
    grid: int = tfield(4, INT32_K, require=True, default=0)
    groupworkid: int = tfield(5, INT32_K, default=0)
    grouprealid: int = tfield(6, INT32_K, default=0)
    setId: str = tfield(7, STRING, default="")
    qos: int = tfield(8, INT32_K, default=0)
    bakFlag: int = tfield(9, INT32_K, default=0)
    weight: int = tfield(11, INT32_K, default=0)
    weightType: int = tfield(12, INT32_K, default=0)
    authType: int = tfield(13, INT32_K, default=0)
    nodeName: str = tfield(14, STRING, default="")


ENDPOINT_F = struct_kind(EndpointF)
ENDPOINT_LIST = list_of(ENDPOINT_F)
