"""TUP version 2 ("complex" UniAttribute): every value filed under its type name.

The body is ``map<string, map<string, vector<byte>>>`` at tag 0: parameter name ->
(type name -> the value encoded alone with tag 0). TarsJava (``OldUniAttribute``) and
@tars/stream (``UniAttribute`` with ``tupVersion = 2``) speak it; TarsCpp and TarsGo
do not (they know versions 1, 3 and 5 only).

Type names are spelled as @tars/stream spells them, because its reader looks a value
up by exact name (``List<T>`` for vectors, ``list<char>`` for ``vector<byte>``,
``map<K,V>``, ``Module.Struct``); TarsJava takes the single entry whatever its name.
So the reader here does as TarsJava does, and only when a parameter carries several
typed values does it pick the one spelled like ours (case-insensitively: old TarsCpp
and TarsJava write ``list<T>``).
"""

from __future__ import annotations

from typing import Any

from tarscascade.errors import DecodeError, EncodeError
from tarscascade.wire.codec import (
    BOOL,
    BYTES,
    DOUBLE_K,
    FLOAT_K,
    INT8,
    INT16,
    INT32_K,
    INT64_K,
    STRING,
    UINT8,
    UINT16,
    UINT32,
    Kind,
    ListKind,
    MapKind,
    decode_value,
    encode_value,
    map_of,
)
from tarscascade.wire.struct import StructKind, struct_info

ATTRIBUTES = map_of(STRING, map_of(STRING, BYTES))

# Unsigned kinds are widened on the wire, and named after the wider type (@tars/stream).
_NAMES: dict[Kind[Any], str] = {
    BOOL: "bool",
    INT8: "char",
    INT16: "short",
    INT32_K: "int32",
    INT64_K: "int64",
    UINT8: "short",
    UINT16: "int32",
    UINT32: "int64",
    FLOAT_K: "float",
    DOUBLE_K: "double",
    STRING: "string",
    BYTES: "list<char>",
}


def type_name(kind: Kind[Any]) -> str:
    """The TUP version 2 type name of ``kind`` (@tars/stream's ``_classname``)."""
    name = _NAMES.get(kind)
    if name is not None:
        return name
    if isinstance(kind, ListKind):
        return f"List<{type_name(kind.elem)}>"
    if isinstance(kind, MapKind):
        return f"map<{type_name(kind.key)},{type_name(kind.value)}>"
    if isinstance(kind, StructKind):
        return struct_info(kind.cls).qualified_name
    raise EncodeError(f"no TUP version 2 type name for {kind.idl}")


def encode_attributes(values: list[tuple[str, Kind[Any], Any]]) -> bytes:
    """Encode ``(name, kind, value)`` triples as a version 2 attribute map."""
    m = {name: {type_name(kind): encode_value(kind, v, 0)} for name, kind, v in values}
    return encode_value(ATTRIBUTES, m, 0)


def decode_attributes(body: bytes) -> dict[str, dict[str, bytes]]:
    m: dict[str, dict[str, bytes]] = decode_value(ATTRIBUTES, body, 0)
    return m


def read_attribute(entry: dict[str, bytes], kind: Kind[Any], what: str) -> Any:
    """Decode the value of one parameter (its type name -> bytes map) as ``kind``."""
    if len(entry) == 1:
        (raw,) = entry.values()
    else:
        want = type_name(kind).lower()
        found = [v for k, v in entry.items() if k.lower() == want]
        if len(found) != 1:
            names = sorted(entry)[:4]
            raise DecodeError(f"{what}: {len(entry)} typed values {names}, none of {want}")
        raw = found[0]
    return decode_value(kind, raw, 0)
