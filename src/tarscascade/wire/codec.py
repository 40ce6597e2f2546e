"""TARS binary encoding (a.k.a. JCE): type ids, kinds, primitive readers/writers, skipping.

Sans-IO and stdlib only. A *kind* describes one IDL type (``int``, ``string``,
``vector<EndpointF>``...) and knows how to write a value with a tag and how to read a
value whose head has already been consumed. Struct kinds get generated, specialised
code from :mod:`tarscascade.wire.struct`; this module holds the generic pieces.

Reading never trusts a length: every length and container size is checked against
the bytes that remain before anything is allocated, and every failure is a
:class:`~tarscascade.errors.DecodeError`.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from tarscascade.errors import DecodeError, EncodeError

T = TypeVar("T")

# Type ids (TarsCpp TarsHeade*, tars-protocol.md §1.2).
CHAR = 0
SHORT = 1
INT32 = 2
INT64 = 3
FLOAT = 4
DOUBLE = 5
STRING1 = 6
STRING4 = 7
MAP = 8
LIST = 9
STRUCT_BEGIN = 10
STRUCT_END = 11
ZERO = 12
SIMPLE_LIST = 13

TYPE_NAMES = (
    "char",
    "short",
    "int32",
    "int64",
    "float",
    "double",
    "string1",
    "string4",
    "map",
    "list",
    "struct_begin",
    "struct_end",
    "zero",
    "simple_list",
)

MAX_TAG = 255
#: How deep unknown nested values may go before the skipper gives up (hostile input).
MAX_DEPTH = 64

_S16 = struct.Struct(">h")
_S32 = struct.Struct(">i")
_S64 = struct.Struct(">q")
_U32 = struct.Struct(">I")
_F32 = struct.Struct(">f")
_F64 = struct.Struct(">d")
pack_s16 = _S16.pack
pack_s32 = _S32.pack
pack_s64 = _S64.pack
pack_u32 = _U32.pack
pack_f32 = _F32.pack
pack_f64 = _F64.pack
unpack_s16 = _S16.unpack_from
unpack_s32 = _S32.unpack_from
unpack_s64 = _S64.unpack_from
unpack_u32 = _U32.unpack_from
unpack_f32 = _F32.unpack_from
unpack_f64 = _F64.unpack_from

#: byte value -> signed char, so hot paths need no arithmetic.
SIGNED_CHAR: tuple[int, ...] = tuple(b - 256 if b > 127 else b for b in range(256))

INT8_RANGE = (-(2**7), 2**7 - 1)
INT16_RANGE = (-(2**15), 2**15 - 1)
INT32_RANGE = (-(2**31), 2**31 - 1)
INT64_RANGE = (-(2**63), 2**63 - 1)


def head_bytes(tag: int, typ: int) -> bytes:
    """The encoded head for ``tag`` and type id ``typ`` (1 byte below tag 15, else 2)."""
    if not 0 <= tag <= MAX_TAG:
        raise EncodeError(f"tag {tag} out of range 0..{MAX_TAG}")
    if tag < 15:
        return bytes(((tag << 4) | typ,))
    return bytes((0xF0 | typ, tag))


def read_head(buf: bytes, pos: int) -> tuple[int, int, int]:
    """Return ``(tag, type, new_pos)``; raises IndexError on truncation (callers translate)."""
    b = buf[pos]
    tag = b >> 4
    pos += 1
    if tag == 15:
        tag = buf[pos]
        pos += 1
    return tag, b & 15, pos


def type_mismatch(expected: str, typ: int) -> DecodeError:
    got = TYPE_NAMES[typ] if 0 <= typ < len(TYPE_NAMES) else f"invalid type id {typ}"
    return DecodeError(f"type mismatch: expected {expected}, got {got}")


# ---------------------------------------------------------------- primitive writers


def write_int(w: bytearray, tag: int, v: int) -> None:
    """Write an integer in the narrowest encoding (ZeroTag for 0)."""
    if tag < 15:
        h = tag << 4
        if v == 0:
            w.append(h | ZERO)
        elif -128 <= v <= 127:
            w.append(h | CHAR)
            w.append(v & 0xFF)
        elif -32768 <= v <= 32767:
            w.append(h | SHORT)
            w += pack_s16(v)
        elif -2147483648 <= v <= 2147483647:
            w.append(h | INT32)
            w += pack_s32(v)
        else:
            w.append(h | INT64)
            w += pack_s64(v)
        return
    if v == 0:
        w += head_bytes(tag, ZERO)
    elif -128 <= v <= 127:
        w += head_bytes(tag, CHAR)
        w.append(v & 0xFF)
    elif -32768 <= v <= 32767:
        w += head_bytes(tag, SHORT)
        w += pack_s16(v)
    elif -2147483648 <= v <= 2147483647:
        w += head_bytes(tag, INT32)
        w += pack_s32(v)
    else:
        w += head_bytes(tag, INT64)
        w += pack_s64(v)


def write_str(w: bytearray, tag: int, v: str) -> None:
    bs = v.encode("utf-8", "surrogateescape")
    write_raw_str(w, tag, bs)


def write_raw_str(w: bytearray, tag: int, bs: bytes) -> None:
    n = len(bs)
    if n < 256:
        w += head_bytes(tag, STRING1)
        w.append(n)
    else:
        if n > 0xFFFFFFFF:
            raise EncodeError("string longer than 4 GiB")
        w += head_bytes(tag, STRING4)
        w += pack_u32(n)
    w += bs


def write_bytes(w: bytearray, tag: int, v: bytes) -> None:
    w += head_bytes(tag, SIMPLE_LIST)
    w.append(0)  # inner head: Char, tag 0
    write_int(w, 0, len(v))
    w += v


# ---------------------------------------------------------------- primitive readers


def read_int(buf: bytes, pos: int, typ: int) -> tuple[int, int]:
    if typ == ZERO:
        return 0, pos
    if typ == CHAR:
        return SIGNED_CHAR[buf[pos]], pos + 1
    if typ == SHORT:
        return unpack_s16(buf, pos)[0], pos + 2
    if typ == INT32:
        return unpack_s32(buf, pos)[0], pos + 4
    if typ == INT64:
        return unpack_s64(buf, pos)[0], pos + 8
    raise type_mismatch("integer", typ)


def read_size(buf: bytes, pos: int, min_item: int) -> tuple[int, int]:
    """Read a container size (an int field with tag 0) and check it against what remains.

    Every element takes at least ``min_item`` bytes, so a size larger than the remaining
    bytes allow is rejected before anything is allocated.
    """
    tag, typ, pos = read_head(buf, pos)
    if tag != 0:
        raise DecodeError(f"container size must have tag 0, got tag {tag}")
    n, pos = read_int(buf, pos, typ)
    if n < 0:
        raise DecodeError(f"negative container size {n}")
    if n * min_item > len(buf) - pos:
        raise DecodeError(f"container size {n} larger than the remaining {len(buf) - pos} bytes")
    return n, pos


def read_str(buf: bytes, pos: int, typ: int) -> tuple[str, int]:
    bs, pos = read_raw_str(buf, pos, typ)
    return bs.decode("utf-8", "surrogateescape"), pos


def read_raw_str(buf: bytes, pos: int, typ: int) -> tuple[bytes, int]:
    if typ == STRING1:
        n = buf[pos]
        pos += 1
    elif typ == STRING4:
        n = unpack_u32(buf, pos)[0]
        pos += 4
    else:
        raise type_mismatch("string", typ)
    end = pos + n
    if end > len(buf):
        raise DecodeError(f"string length {n} past the end of the buffer")
    return buf[pos:end], end


def read_bytes(buf: bytes, pos: int, typ: int) -> tuple[bytes, int]:
    if typ == SIMPLE_LIST:
        tag, inner, pos = read_head(buf, pos)
        if inner != CHAR or tag != 0:
            raise DecodeError("simple list must carry char elements with tag 0")
        n, pos = read_size(buf, pos, 1)
        end = pos + n
        return buf[pos:end], end
    if typ == LIST:  # C++ and Go accept a plain list of chars too
        n, pos = read_size(buf, pos, 1)
        out = bytearray()
        for _ in range(n):
            tag, t, pos = read_head(buf, pos)
            v, pos = read_int(buf, pos, t)
            if not -128 <= v <= 255:
                raise DecodeError(f"byte value {v} out of range")
            out.append(v & 0xFF)
        return bytes(out), pos
    raise type_mismatch("vector<byte>", typ)


def read_float(buf: bytes, pos: int, typ: int) -> tuple[float, int]:
    if typ == ZERO:
        return 0.0, pos
    if typ == FLOAT:
        return unpack_f32(buf, pos)[0], pos + 4
    if typ == DOUBLE:
        return unpack_f64(buf, pos)[0], pos + 8
    raise type_mismatch("float/double", typ)


def skip_value(buf: bytes, pos: int, typ: int, depth: int = 0) -> int:
    """Skip one value whose head was consumed; returns the position after it."""
    if depth > MAX_DEPTH:
        raise DecodeError(f"nesting deeper than {MAX_DEPTH}")
    if typ == ZERO:
        return pos
    if typ == CHAR:
        new = pos + 1
    elif typ == SHORT:
        new = pos + 2
    elif typ in (INT32, FLOAT):
        new = pos + 4
    elif typ in (INT64, DOUBLE):
        new = pos + 8
    elif typ == STRING1:
        new = pos + 1 + buf[pos]
    elif typ == STRING4:
        new = pos + 4 + unpack_u32(buf, pos)[0]
    elif typ == MAP:
        n, pos = read_size(buf, pos, 2)
        for _ in range(2 * n):
            _, t, pos = read_head(buf, pos)
            pos = skip_value(buf, pos, t, depth + 1)
        return pos
    elif typ == LIST:
        n, pos = read_size(buf, pos, 1)
        for _ in range(n):
            _, t, pos = read_head(buf, pos)
            pos = skip_value(buf, pos, t, depth + 1)
        return pos
    elif typ == STRUCT_BEGIN:
        return skip_to_struct_end(buf, pos, depth + 1)
    elif typ == SIMPLE_LIST:
        tag, inner, pos = read_head(buf, pos)
        if inner != CHAR or tag != 0:
            raise DecodeError("simple list must carry char elements with tag 0")
        n, pos = read_size(buf, pos, 1)
        new = pos + n
    elif typ == STRUCT_END:
        raise DecodeError("unexpected struct end")
    else:
        raise DecodeError(f"invalid type id {typ}")
    if new > len(buf):
        raise DecodeError("value past the end of the buffer")
    return new


def skip_to_struct_end(buf: bytes, pos: int, depth: int) -> int:
    """Skip fields up to and including the StructEnd of the current struct."""
    while True:
        _, t, pos = read_head(buf, pos)
        if t == STRUCT_END:
            return pos
        pos = skip_value(buf, pos, t, depth)


# ---------------------------------------------------------------- kinds

Writer = Callable[[bytearray, int, Any], None]
Reader = Callable[[bytes, int, int], tuple[Any, int]]


class Kind(Generic[T]):
    """One IDL type: how to write it with a tag, read it after its head, and its default."""

    __slots__ = ("idl", "min_size", "name", "read", "write")

    def __init__(self, name: str, idl: str, write: Writer, read: Reader, min_size: int = 1):
        self.name = name
        self.idl = idl  # the IDL spelling, e.g. "vector<EndpointF>"
        self.write = write
        self.read = read
        self.min_size = min_size  # fewest bytes one encoded element (head included) takes

    def default(self) -> T:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<Kind {self.idl}>"


class _IntKind(Kind[int]):
    __slots__ = ("hi", "lo")

    def __init__(self, name: str, idl: str, lo: int, hi: int) -> None:
        self.lo = lo
        self.hi = hi

        def write(w: bytearray, tag: int, v: int) -> None:
            if not lo <= v <= hi:
                raise EncodeError(f"{v!r} out of range for {idl}")
            write_int(w, tag, v)

        def read(buf: bytes, pos: int, typ: int) -> tuple[int, int]:
            v, pos = read_int(buf, pos, typ)
            if not lo <= v <= hi:
                raise DecodeError(f"{v} out of range for {idl}")
            return v, pos

        super().__init__(name, idl, write, read)

    def default(self) -> int:
        return 0


class _BoolKind(Kind[bool]):
    __slots__ = ()

    def __init__(self) -> None:
        def write(w: bytearray, tag: int, v: bool) -> None:
            write_int(w, tag, 1 if v else 0)

        def read(buf: bytes, pos: int, typ: int) -> tuple[bool, int]:
            v, pos = read_int(buf, pos, typ)
            return v != 0, pos

        super().__init__("bool", "bool", write, read)

    def default(self) -> bool:
        return False


class _FloatKind(Kind[float]):
    __slots__ = ()

    def __init__(self, double: bool) -> None:
        typ = DOUBLE if double else FLOAT
        pack = pack_f64 if double else pack_f32

        def write(w: bytearray, tag: int, v: float) -> None:
            # C++ and Go always write the float head, even for 0.0.
            w += head_bytes(tag, typ)
            w += pack(v)

        name = "double" if double else "float"
        super().__init__(name, name, write, read_float)

    def default(self) -> float:
        return 0.0


class _StrKind(Kind[str]):
    __slots__ = ()

    def __init__(self) -> None:
        super().__init__("string", "string", write_str, read_str)

    def default(self) -> str:
        return ""


class _BytesKind(Kind[bytes]):
    __slots__ = ()

    def __init__(self) -> None:
        def write(w: bytearray, tag: int, v: bytes) -> None:
            # bytes(5) would silently make five zero bytes: accept bytes-like values only
            if not isinstance(v, bytes | bytearray | memoryview):
                raise EncodeError(f"vector<byte> needs bytes, got {type(v).__name__}")
            write_bytes(w, tag, bytes(v))

        super().__init__("bytes", "vector<byte>", write, read_bytes, min_size=3)

    def default(self) -> bytes:
        return b""


class ListKind(Kind[list[Any]]):
    __slots__ = ("elem",)

    def __init__(self, elem: Kind[Any]) -> None:
        self.elem = elem
        ew = elem.write
        er = elem.read
        emin = elem.min_size

        def write(w: bytearray, tag: int, v: list[Any]) -> None:
            w += head_bytes(tag, LIST)
            write_int(w, 0, len(v))
            for item in v:
                ew(w, 0, item)

        def read(buf: bytes, pos: int, typ: int) -> tuple[list[Any], int]:
            if typ != LIST:
                raise type_mismatch(f"vector<{elem.idl}>", typ)
            n, pos = read_size(buf, pos, emin)
            out = []
            for _ in range(n):
                b = buf[pos]
                if b >> 4:
                    raise DecodeError(f"list element with tag {b >> 4}, expected 0")
                item, pos = er(buf, pos + 1, b & 15)
                out.append(item)
            return out, pos

        super().__init__(f"list[{elem.name}]", f"vector<{elem.idl}>", write, read)

    def default(self) -> list[Any]:
        return []


class MapKind(Kind[dict[Any, Any]]):
    __slots__ = ("key", "value")

    def __init__(self, key: Kind[Any], value: Kind[Any]) -> None:
        self.key = key
        self.value = value
        kw, kr, vw, vr = key.write, key.read, value.write, value.read
        emin = key.min_size + value.min_size

        def write(w: bytearray, tag: int, v: dict[Any, Any]) -> None:
            w += head_bytes(tag, MAP)
            write_int(w, 0, len(v))
            for k, x in v.items():
                kw(w, 0, k)
                vw(w, 1, x)

        def read(buf: bytes, pos: int, typ: int) -> tuple[dict[Any, Any], int]:
            if typ != MAP:
                raise type_mismatch(f"map<{key.idl},{value.idl}>", typ)
            n, pos = read_size(buf, pos, emin)
            out = {}
            for _ in range(n):
                b = buf[pos]
                if b >> 4 != 0:
                    raise DecodeError("map key must have tag 0")
                k, pos = kr(buf, pos + 1, b & 15)
                b = buf[pos]
                if b >> 4 != 1:
                    raise DecodeError("map value must have tag 1")
                x, pos = vr(buf, pos + 1, b & 15)
                try:
                    out[k] = x
                except TypeError as exc:  # e.g. a struct key: unhashable here
                    raise DecodeError(f"unhashable map key of type {key.idl}") from exc
            return out, pos

        super().__init__(
            f"map[{key.name},{value.name}]", f"map<{key.idl},{value.idl}>", write, read
        )
        self.min_size = 2

    def default(self) -> dict[Any, Any]:
        return {}


#: the kind of every integer type (a range to check); public for codecs that map types
IntKind = _IntKind

INT8: Kind[int] = _IntKind("int8", "byte", *INT8_RANGE)
INT16: Kind[int] = _IntKind("int16", "short", *INT16_RANGE)
INT32_K: Kind[int] = _IntKind("int32", "int", *INT32_RANGE)
INT64_K: Kind[int] = _IntKind("int64", "long", *INT64_RANGE)
# Unsigned IDL types are widened before writing (tars-protocol.md §1.3).
UINT8: Kind[int] = _IntKind("uint8", "unsigned byte", 0, 2**8 - 1)
UINT16: Kind[int] = _IntKind("uint16", "unsigned short", 0, 2**16 - 1)
UINT32: Kind[int] = _IntKind("uint32", "unsigned int", 0, 2**32 - 1)
BOOL: Kind[bool] = _BoolKind()
FLOAT_K: Kind[float] = _FloatKind(double=False)
DOUBLE_K: Kind[float] = _FloatKind(double=True)
STRING: Kind[str] = _StrKind()
BYTES: Kind[bytes] = _BytesKind()


def list_of(elem: Kind[Any]) -> ListKind:
    return ListKind(elem)


def map_of(key: Kind[Any], value: Kind[Any]) -> MapKind:
    return MapKind(key, value)


STRING_MAP = map_of(STRING, STRING)

_FOREIGN = (IndexError, struct.error, RecursionError, OverflowError, ValueError, MemoryError)


def encode_value(kind: Kind[T], value: T, tag: int = 0) -> bytes:
    """Encode one value with ``tag`` (a standalone Tars stream)."""
    w = bytearray()
    try:
        kind.write(w, tag, value)
    except EncodeError:
        raise
    except (TypeError, AttributeError, *_FOREIGN) as exc:
        raise EncodeError(f"cannot encode {type(value).__name__} as {kind.idl}: {exc}") from exc
    return bytes(w)


def decode_value(kind: Kind[T], data: bytes, tag: int = 0, *, require: bool = True) -> T:
    """Decode the value at ``tag`` from a Tars stream of tagged fields (unknown tags skipped)."""
    buf = bytes(data)
    try:
        pos = 0
        n = len(buf)
        while pos < n:
            t, typ, pos = read_head(buf, pos)
            if t == tag:
                v: T
                v, pos = kind.read(buf, pos, typ)
                return v
            pos = skip_value(buf, pos, typ)
    except DecodeError:
        raise
    except _FOREIGN as exc:
        raise translate_foreign(exc) from exc
    if require:
        raise DecodeError(f"require field not exist, tag {tag}")
    return kind.default()


def translate_foreign(exc: BaseException) -> DecodeError:
    """Map an exception escaping a reader to the library's DecodeError."""
    if isinstance(exc, IndexError | struct.error):
        return DecodeError("truncated input")
    return DecodeError(f"malformed input: {exc}")


FOREIGN_DECODE_ERRORS = _FOREIGN
