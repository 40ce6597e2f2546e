"""Declared TARS structs with generated, specialised encoders and decoders.

A struct is declared once, as a dataclass whose fields carry their tag and kind::

    @tars_struct
    class EndpointF:
        host: str = tfield(0, STRING, require=True, default="")
        port: int = tfield(1, INT32_K, require=True, default=0)

At decoration time the field list is compiled into two Python functions: an encoder
that appends to a ``bytearray`` and a decoder that walks a ``bytes`` buffer with local
variables only. A generic field-by-field interpreter costs several times more per
field; per-struct code is what lets a million endpoints decode in seconds.

The decoder reads like the C++ one: fields are looked for in ascending tag order, an
unexpected (unknown or out-of-order) tag is skipped, a missing ``require`` field is a
:class:`DecodeError`, a missing optional field keeps its default.
"""

from __future__ import annotations

import dataclasses
import keyword
from collections.abc import Callable
from struct import error as struct_error
from typing import Any, TypeVar, dataclass_transform

from tarscascade.errors import DecodeError, EncodeError
from tarscascade.wire import codec
from tarscascade.wire.codec import (
    FOREIGN_DECODE_ERRORS,
    INT8,
    INT16,
    INT32_K,
    INT64_K,
    STRING,
    Kind,
    ListKind,
    MapKind,
)

T = TypeVar("T")

_META_KEY = "tars"
#: the IDL module of a struct that does not say (``__tars_module__ = "tars"`` in its body
#: names the module of the standard TARS IDL); TUP version 2 names structs ``Module.Name``
DEFAULT_MODULE = "tarscascade"


def idl_name(attr: str) -> str:
    """The IDL name of a field: Python keywords get a trailing ``_`` (``from_`` is ``from``)."""
    if attr.endswith("_") and keyword.iskeyword(attr[:-1]):
        return attr[:-1]
    return attr


@dataclasses.dataclass(frozen=True, slots=True)
class FieldSpec:
    """One declared field: its tag, kind, and how defaults are written."""

    tag: int
    kind: Kind[Any]
    require: bool
    # True when the IDL gives an explicit default: C++ then omits the field when equal.
    skip_default: bool


def tfield(
    tag: int,
    kind: Kind[Any],
    *,
    require: bool = False,
    default: Any = dataclasses.MISSING,
    default_factory: Any = dataclasses.MISSING,
    skip_default: bool = False,
) -> Any:
    """Declare a struct field (a dataclass field carrying its TARS tag and kind)."""
    if not 0 <= tag <= codec.MAX_TAG:
        raise ValueError(f"tag {tag} out of range")
    meta = {_META_KEY: FieldSpec(tag, kind, require, skip_default)}
    if default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=meta)
    if default is dataclasses.MISSING:
        raise ValueError("a TARS field needs a default (used when an optional field is absent)")
    return dataclasses.field(default=default, metadata=meta)


@dataclasses.dataclass(slots=True)
class StructInfo:
    name: str
    #: ``Module.Name`` as the IDL spells it (TUP version 2 type names)
    qualified_name: str
    fields: tuple[tuple[str, FieldSpec], ...]
    encode: Callable[[Any, bytearray], None]
    decode: Callable[[bytes, int, bool], tuple[Any, int]]
    kind: Kind[Any]
    source: str


class StructKind(Kind[T]):
    """The kind of a declared struct, usable as a field, list element or map value."""

    __slots__ = ("cls",)

    def __init__(self, cls: type[T], enc: Callable[[Any, bytearray], None], dec: Any) -> None:
        self.cls = cls

        def write(w: bytearray, tag: int, v: T) -> None:
            if tag < 15:
                w.append((tag << 4) | codec.STRUCT_BEGIN)
            else:
                w += codec.head_bytes(tag, codec.STRUCT_BEGIN)
            enc(v, w)
            w.append(codec.STRUCT_END)

        def read(buf: bytes, pos: int, typ: int) -> tuple[T, int]:
            if typ != codec.STRUCT_BEGIN:
                raise codec.type_mismatch(cls.__name__, typ)
            v: T
            v, pos = dec(buf, pos, False)
            return v, pos

        super().__init__(cls.__name__, cls.__name__, write, read, min_size=2)

    def default(self) -> T:
        return self.cls()


_NEXT = """\
{i}if pos < n:
{i}    b = buf[pos]
{i}    pos += 1
{i}    typ = b & 15
{i}    if typ == 11:
{i}        tag = 256
{i}    else:
{i}        tag = b >> 4
{i}        if tag == 15:
{i}            tag = buf[pos]
{i}            pos += 1
{i}else:
{i}    tag = 257
"""

_INT_FAST = {INT8: "int8", INT16: "int16", INT32_K: "int32", INT64_K: "int64"}
_RANGES = {
    INT8: codec.INT8_RANGE,
    INT16: codec.INT16_RANGE,
    INT32_K: codec.INT32_RANGE,
    INT64_K: codec.INT64_RANGE,
}


def _head_expr(tag: int, typ: int) -> str:
    return f"w.append({(tag << 4) | typ})" if tag < 15 else f"w += {codec.head_bytes(tag, typ)!r}"


def _enc_field(lines: list[str], i: int, name: str, spec: FieldSpec, ns: dict[str, Any]) -> None:
    kind, tag = spec.kind, spec.tag
    ind = "    "
    lines.append(f"    v = o.{name}")
    cond = None
    if not spec.require:
        if isinstance(kind, ListKind | MapKind) or kind is codec.BYTES:
            cond = "if v:"
        elif spec.skip_default and kind is not codec.BOOL:
            ns[f"_d{i}"] = None  # filled by caller with the default value
            cond = f"if v != _d{i}:"
    if cond:
        lines.append(f"    {cond}")
        ind = "        "
    ns[f"_w{i}"] = kind.write
    if kind in _INT_FAST and tag < 15:
        h = tag << 4
        hi = _RANGES[kind][1]
        lines += [
            f"{ind}if v == 0:",
            f"{ind}    w.append({h | codec.ZERO})",
            f"{ind}elif -128 <= v <= 127:",
            f"{ind}    w.append({h | codec.CHAR})",
            f"{ind}    w.append(v & 255)",
        ]
        if hi > 127:
            lines += [
                f"{ind}elif -32768 <= v <= 32767:",
                f"{ind}    w.append({h | codec.SHORT})",
                f"{ind}    w += _ps16(v)",
            ]
        if hi > 32767:
            lines += [
                f"{ind}elif -2147483648 <= v <= 2147483647:",
                f"{ind}    w.append({h | codec.INT32})",
                f"{ind}    w += _ps32(v)",
            ]
        lines += [f"{ind}else:", f"{ind}    _w{i}(w, {tag}, v)"]
    elif kind is STRING and tag < 15:
        lines += [
            f"{ind}v = v.encode('utf-8', 'surrogateescape')",
            f"{ind}m = len(v)",
            f"{ind}if m < 256:",
            f"{ind}    w.append({(tag << 4) | codec.STRING1})",
            f"{ind}    w.append(m)",
            f"{ind}    w += v",
            f"{ind}else:",
            f"{ind}    _wrs(w, {tag}, v)",
        ]
    elif isinstance(kind, ListKind) and isinstance(kind.elem, StructKind):
        ns[f"_e{i}"] = kind.elem.cls.__tars__.encode
        lines += [
            f"{ind}{_head_expr(tag, codec.LIST)}",
            f"{ind}_wint(w, 0, len(v))",
            f"{ind}for x in v:",
            f"{ind}    w.append(10)",
            f"{ind}    _e{i}(x, w)",
            f"{ind}    w.append(11)",
        ]
    else:
        lines.append(f"{ind}_w{i}(w, {tag}, v)")


def _dec_field(lines: list[str], i: int, spec: FieldSpec, ns: dict[str, Any]) -> None:
    kind = spec.kind
    ind = "        "
    ns[f"_r{i}"] = kind.read
    if kind in _INT_FAST:
        lines += [
            f"{ind}if typ == 12:",
            f"{ind}    f{i} = 0",
            f"{ind}elif typ == 0:",
            f"{ind}    f{i} = _SC[buf[pos]]",
            f"{ind}    pos += 1",
            f"{ind}else:",
            f"{ind}    f{i}, pos = _r{i}(buf, pos, typ)",
        ]
    elif kind is STRING:
        lines += [
            f"{ind}if typ == 6:",
            f"{ind}    e = pos + 1 + buf[pos]",
            f"{ind}    if e > n:",
            f"{ind}        raise _DE('string length past the end of the buffer')",
            f"{ind}    f{i} = buf[pos + 1:e].decode('utf-8', 'surrogateescape')",
            f"{ind}    pos = e",
            f"{ind}else:",
            f"{ind}    f{i}, pos = _r{i}(buf, pos, typ)",
        ]
    elif isinstance(kind, ListKind) and isinstance(kind.elem, StructKind):
        ns[f"_x{i}"] = kind.elem.cls.__tars__.decode
        lines += [
            f"{ind}if typ != 9:",
            f"{ind}    raise _mismatch({kind.idl!r}, typ)",
            f"{ind}cnt, pos = _rsize(buf, pos, 2)",
            f"{ind}f{i} = []",
            f"{ind}for _ in range(cnt):",
            f"{ind}    if buf[pos] != 10:",
            f"{ind}        raise _DE('list element must be a struct with tag 0')",
            f"{ind}    x, pos = _x{i}(buf, pos + 1, False)",
            f"{ind}    f{i}.append(x)",
        ]
    else:
        lines.append(f"{ind}f{i}, pos = _r{i}(buf, pos, typ)")


def _compile(cls: type[Any]) -> StructInfo:
    fields: list[tuple[str, FieldSpec, dataclasses.Field[Any]]] = []
    for f in dataclasses.fields(cls):
        spec = f.metadata.get(_META_KEY)
        if not isinstance(spec, FieldSpec):
            raise TypeError(f"{cls.__name__}.{f.name}: declare TARS fields with tfield()")
        fields.append((f.name, spec, f))
    tags = [s.tag for _, s, _ in fields]
    if len(set(tags)) != len(tags):
        raise TypeError(f"{cls.__name__}: duplicate tags")
    order = sorted(range(len(fields)), key=lambda k: fields[k][1].tag)

    ns: dict[str, Any] = {
        "_ps16": codec.pack_s16,
        "_ps32": codec.pack_s32,
        "_wrs": codec.write_raw_str,
        "_wint": codec.write_int,
        "_SC": codec.SIGNED_CHAR,
        "_DE": DecodeError,
        "_mismatch": codec.type_mismatch,
        "_rsize": codec.read_size,
        "_skip": codec.skip_value,
        "_cls": cls,
        "_MISSING": dataclasses.MISSING,
    }
    enc = ["def _encode(o, w):"]
    dec = ["def _decode(buf, pos, top):", "    n = len(buf)"]
    for k in order:
        name, spec, f = fields[k]
        _enc_field(enc, k, name, spec, ns)
        if f"_d{k}" in ns:
            ns[f"_d{k}"] = f.default
        if f.default_factory is not dataclasses.MISSING:
            ns[f"_df{k}"] = f.default_factory
            dec.append(f"    f{k} = _MISSING")
        else:
            ns[f"_dv{k}"] = f.default
            dec.append(f"    f{k} = _dv{k}")
    if len(enc) == 1:
        enc.append("    pass")
    dec.append(_NEXT.format(i="    "))
    for k in order:
        name, spec, _ = fields[k]
        dec.append(f"    while tag < {spec.tag}:")
        dec.append("        pos = _skip(buf, pos, typ)")
        dec.append(_NEXT.format(i="        "))
        dec.append(f"    if tag == {spec.tag}:")
        _dec_field(dec, k, spec, ns)
        dec.append(_NEXT.format(i="        "))
        if spec.require:
            dec.append("    else:")
            what = f"{cls.__name__}.{name} (tag {spec.tag})"
            dec.append(f"        raise _DE('require field not exist: {what}')")
    dec += [
        "    while tag < 256:",
        "        pos = _skip(buf, pos, typ)",
        _NEXT.format(i="        "),
        "    if top:",
        "        if tag == 256:",
        "            raise _DE('unexpected struct end at top level')",
        "    elif tag == 257:",
        f"        raise _DE('truncated struct {cls.__name__}: no struct end')",
    ]
    for k in order:
        if f"_df{k}" in ns:
            dec.append(f"    if f{k} is _MISSING:")
            dec.append(f"        f{k} = _df{k}()")
    args = ", ".join(f"f{k}" for k in range(len(fields)))
    dec.append(f"    return _cls({args}), pos")
    source = "\n".join(enc) + "\n\n" + "\n".join(dec) + "\n"
    code = compile(source, f"<tars struct {cls.__name__}>", "exec")
    exec(code, ns)
    encode = ns["_encode"]
    decode = ns["_decode"]
    kind: StructKind[Any] = StructKind(cls, encode, decode)
    spec_fields = tuple((name, spec) for name, spec, _ in fields)
    module = cls.__dict__.get("__tars_module__", DEFAULT_MODULE)
    qualified = f"{module}.{cls.__name__}"
    return StructInfo(cls.__name__, qualified, spec_fields, encode, decode, kind, source)


@dataclass_transform(field_specifiers=(tfield,))
def tars_struct(cls: type[T]) -> type[T]:
    """Make ``cls`` a slotted dataclass and compile its TARS encoder and decoder."""
    dc = dataclasses.dataclass(slots=True)(cls)
    dc.__tars__ = _compile(dc)  # type: ignore[attr-defined]
    return dc


def struct_info(cls: type[Any]) -> StructInfo:
    info = getattr(cls, "__tars__", None)
    if not isinstance(info, StructInfo):
        raise TypeError(f"{cls!r} is not a TARS struct")
    return info


def struct_kind(cls: type[T]) -> Kind[T]:
    """The kind of a declared struct (for ``list_of(struct_kind(EndpointF))`` and friends)."""
    kind: Kind[T] = struct_info(cls).kind
    return kind


def encode_struct(obj: Any, out: bytearray | None = None) -> bytes:
    """Encode a struct's fields at top level (no StructBegin/End wrapper)."""
    info = struct_info(type(obj))
    w = bytearray() if out is None else out
    try:
        info.encode(obj, w)
    except EncodeError:
        raise
    except (TypeError, AttributeError, ValueError, OverflowError, struct_error) as exc:
        raise EncodeError(f"cannot encode {info.name}: {exc}") from exc
    return bytes(w) if out is None else b""


def decode_struct(cls: type[T], data: bytes | bytearray | memoryview) -> T:
    """Decode a struct encoded at top level; any malformed input raises DecodeError."""
    info = struct_info(cls)
    buf = data if type(data) is bytes else bytes(data)
    try:
        obj: T
        obj, _ = info.decode(buf, 0, True)
    except DecodeError:
        raise
    except FOREIGN_DECODE_ERRORS as exc:
        raise codec.translate_foreign(exc) from exc
    return obj
