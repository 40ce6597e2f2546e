"""IDL interfaces: methods with typed parameters, and the encoding of their arguments.

A method's parameters are numbered from tag 1 in declaration order, in and out together;
the return value is tag 0 (tars-protocol.md §2.5). Arguments and results are encoded
through generated structs, so a call's sBuffer costs one specialised encode/decode.

The same values travel in three other body formats, chosen by the packet's iVersion
(``*_as(version, ...)`` picks one): TUP version 3 carries them in a
``map<string, vector<byte>>`` keyed by parameter name, the return value under ``""``
(and ``"tars_ret"`` for TarsGo); TUP version 2 adds a type name level
(:mod:`tarscascade.wire.tup2`); JSON (version 5) is an object keyed by parameter name,
the return value under ``"tars_ret"`` (:mod:`tarscascade.wire.jsoncodec`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from tarscascade.errors import DecodeError, EncodeError
from tarscascade.wire import jsoncodec, tup2
from tarscascade.wire.codec import BYTES, STRING, Kind, decode_value, encode_value, map_of
from tarscascade.wire.packets import JSON_VERSION, TARS_VERSION, TUP_COMPLEX_VERSION, TUP_VERSION
from tarscascade.wire.struct import decode_struct, encode_struct, tars_struct, tfield

_TUP_MAP = map_of(STRING, BYTES)
TUP_RET_KEYS = ("", "tars_ret")


@dataclass(frozen=True, slots=True)
class Param:
    name: str
    kind: Kind[Any]
    out: bool = False


def _make_struct(name: str, fields: Sequence[tuple[str, int, Kind[Any]]]) -> type[Any]:
    # Every field is `require`: servers decode in-params with require=true, and clients
    # such as @tars/rpc refuse a response whose out-params are missing.
    ns: dict[str, Any] = {"__annotations__": {f: Any for f, _, _ in fields}}
    for fname, tag, kind in fields:
        ns[fname] = tfield(tag, kind, require=True, default_factory=kind.default)
    plain: type[Any] = tars_struct(type(name, (), ns))
    return plain


@dataclass(frozen=True)
class Method:
    name: str
    params: tuple[Param, ...] = ()
    ret: Kind[Any] | None = None
    _args: type[Any] = field(init=False, repr=False, compare=False)
    _result: type[Any] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        ins = [(p.name, i + 1, p.kind) for i, p in enumerate(self.params) if not p.out]
        outs = [(p.name, i + 1, p.kind) for i, p in enumerate(self.params) if p.out]
        if self.ret is not None:
            outs.insert(0, ("_ret", 0, self.ret))
        object.__setattr__(self, "_args", _make_struct(f"{self.name}_args", ins))
        object.__setattr__(self, "_result", _make_struct(f"{self.name}_result", outs))

    @property
    def in_params(self) -> tuple[Param, ...]:
        return tuple(p for p in self.params if not p.out)

    @property
    def out_params(self) -> tuple[Param, ...]:
        return tuple(p for p in self.params if p.out)

    def _check_count(self, what: str, got: int, want: int) -> None:
        if got != want:
            raise EncodeError(f"{self.name}: {want} {what} expected, got {got}")

    # -- version 1 (TARS): tagged fields
    def encode_args(self, *args: Any) -> bytes:
        self._check_count("arguments", len(args), len(self.in_params))
        return encode_struct(self._args(*args))

    def decode_args(self, body: bytes) -> list[Any]:
        obj = decode_struct(self._args, body)
        return [getattr(obj, p.name) for p in self.in_params]

    def encode_result(self, ret: Any = None, *outs: Any) -> bytes:
        self._check_count("out-parameters", len(outs), len(self.out_params))
        values = (ret, *outs) if self.ret is not None else outs
        return encode_struct(self._result(*values))

    def decode_result(self, body: bytes) -> tuple[Any, ...]:
        """``(ret, out1, out2, ...)``; ret is None for a void method."""
        obj = decode_struct(self._result, body)
        outs = tuple(getattr(obj, p.name) for p in self.out_params)
        return (obj._ret if self.ret is not None else None, *outs)

    # -- version 3 (TUP): values by parameter name
    def encode_args_tup(self, *args: Any) -> bytes:
        ins = self.in_params
        self._check_count("arguments", len(args), len(ins))
        m = {p.name: encode_value(p.kind, v, 0) for p, v in zip(ins, args, strict=True)}
        return encode_value(_TUP_MAP, m, 0)

    def decode_args_tup(self, body: bytes) -> list[Any]:
        m: dict[str, bytes] = decode_value(_TUP_MAP, body, 0)
        values = []
        for p in self.in_params:
            if p.name not in m:
                raise DecodeError(f"TUP request lacks parameter {p.name!r}")
            values.append(decode_value(p.kind, m[p.name], 0))
        return values

    def encode_result_tup(self, ret: Any = None, *outs: Any) -> bytes:
        self._check_count("out-parameters", len(outs), len(self.out_params))
        m: dict[str, bytes] = {}
        if self.ret is not None:
            enc = encode_value(self.ret, ret, 0)
            for key in TUP_RET_KEYS:
                m[key] = enc
        for p, v in zip(self.out_params, outs, strict=True):
            m[p.name] = encode_value(p.kind, v, 0)
        return encode_value(_TUP_MAP, m, 0)

    def decode_result_tup(self, body: bytes) -> tuple[Any, ...]:
        m: dict[str, bytes] = decode_value(_TUP_MAP, body, 0)
        ret = None
        if self.ret is not None:
            raw = next((m[k] for k in TUP_RET_KEYS if k in m), None)
            if raw is None:
                raise DecodeError("TUP response lacks the return value")
            ret = decode_value(self.ret, raw, 0)
        outs = []
        for p in self.out_params:
            if p.name not in m:
                raise DecodeError(f"TUP response lacks out parameter {p.name!r}")
            outs.append(decode_value(p.kind, m[p.name], 0))
        return (ret, *outs)

    # -- version 2 (TUP, complex): values by parameter name, then by type name
    def encode_args_tup2(self, *args: Any) -> bytes:
        ins = self.in_params
        self._check_count("arguments", len(args), len(ins))
        return tup2.encode_attributes([(p.name, p.kind, v) for p, v in zip(ins, args, strict=True)])

    def decode_args_tup2(self, body: bytes) -> list[Any]:
        m = tup2.decode_attributes(body)
        values = []
        for p in self.in_params:
            if p.name not in m:
                raise DecodeError(f"TUP request lacks parameter {p.name!r}")
            values.append(tup2.read_attribute(m[p.name], p.kind, p.name))
        return values

    def encode_result_tup2(self, ret: Any = None, *outs: Any) -> bytes:
        self._check_count("out-parameters", len(outs), len(self.out_params))
        values: list[tuple[str, Kind[Any], Any]] = []
        if self.ret is not None:
            values += [(key, self.ret, ret) for key in TUP_RET_KEYS]
        values += [(p.name, p.kind, v) for p, v in zip(self.out_params, outs, strict=True)]
        return tup2.encode_attributes(values)

    def decode_result_tup2(self, body: bytes) -> tuple[Any, ...]:
        m = tup2.decode_attributes(body)
        ret = None
        if self.ret is not None:
            entry = next((m[k] for k in TUP_RET_KEYS if k in m), None)
            if entry is None:
                raise DecodeError("TUP response lacks the return value")
            ret = tup2.read_attribute(entry, self.ret, "return value")
        outs = []
        for p in self.out_params:
            if p.name not in m:
                raise DecodeError(f"TUP response lacks out parameter {p.name!r}")
            outs.append(tup2.read_attribute(m[p.name], p.kind, p.name))
        return (ret, *outs)

    # -- version 5 (JSON): an object keyed by parameter name
    def encode_args_json(self, *args: Any) -> bytes:
        ins = self.in_params
        self._check_count("arguments", len(args), len(ins))
        obj = {p.name: jsoncodec.to_json(p.kind, v) for p, v in zip(ins, args, strict=True)}
        return jsoncodec.dumps(obj)

    def decode_args_json(self, body: bytes) -> list[Any]:
        obj = jsoncodec.loads_object(body)
        values = []
        for p in self.in_params:
            if p.name not in obj:
                raise DecodeError(f"JSON request lacks parameter {p.name!r}")
            values.append(jsoncodec.from_json(p.kind, obj[p.name], p.name))
        return values

    def encode_result_json(self, ret: Any = None, *outs: Any) -> bytes:
        self._check_count("out-parameters", len(outs), len(self.out_params))
        obj = {
            p.name: jsoncodec.to_json(p.kind, v) for p, v in zip(self.out_params, outs, strict=True)
        }
        if self.ret is not None:
            obj[jsoncodec.JSON_RET_KEY] = jsoncodec.to_json(self.ret, ret)
        return jsoncodec.dumps(obj)

    def decode_result_json(self, body: bytes) -> tuple[Any, ...]:
        obj = jsoncodec.loads_object(body)
        ret = None
        if self.ret is not None:
            if jsoncodec.JSON_RET_KEY not in obj:
                raise DecodeError("JSON response lacks the return value")
            ret = jsoncodec.from_json(self.ret, obj[jsoncodec.JSON_RET_KEY], "tars_ret")
        outs = []
        for p in self.out_params:
            if p.name not in obj:
                raise DecodeError(f"JSON response lacks out parameter {p.name!r}")
            outs.append(jsoncodec.from_json(p.kind, obj[p.name], p.name))
        return (ret, *outs)

    # -- by protocol version (RequestPacket.iVersion)
    def encode_args_as(self, version: int, *args: Any) -> bytes:
        enc = {
            TARS_VERSION: self.encode_args,
            TUP_COMPLEX_VERSION: self.encode_args_tup2,
            TUP_VERSION: self.encode_args_tup,
            JSON_VERSION: self.encode_args_json,
        }.get(version)
        if enc is None:
            raise EncodeError(unsupported_version(version))
        return enc(*args)

    def decode_args_as(self, version: int, body: bytes) -> list[Any]:
        dec = {
            TARS_VERSION: self.decode_args,
            TUP_COMPLEX_VERSION: self.decode_args_tup2,
            TUP_VERSION: self.decode_args_tup,
            JSON_VERSION: self.decode_args_json,
        }.get(version)
        if dec is None:
            raise DecodeError(unsupported_version(version))
        return dec(body)

    def encode_result_as(self, version: int, ret: Any = None, *outs: Any) -> bytes:
        enc = {
            TARS_VERSION: self.encode_result,
            TUP_COMPLEX_VERSION: self.encode_result_tup2,
            TUP_VERSION: self.encode_result_tup,
            JSON_VERSION: self.encode_result_json,
        }.get(version)
        if enc is None:
            raise EncodeError(unsupported_version(version))
        return enc(ret, *outs)

    def decode_result_as(self, version: int, body: bytes) -> tuple[Any, ...]:
        dec = {
            TARS_VERSION: self.decode_result,
            TUP_COMPLEX_VERSION: self.decode_result_tup2,
            TUP_VERSION: self.decode_result_tup,
            JSON_VERSION: self.decode_result_json,
        }.get(version)
        if dec is None:
            raise DecodeError(unsupported_version(version))
        return dec(body)


def unsupported_version(version: int) -> str:
    return (
        f"protocol version {version} is not supported "
        f"(TARS {TARS_VERSION}, TUP {TUP_COMPLEX_VERSION} and {TUP_VERSION}, "
        f"JSON {JSON_VERSION} are)"
    )


@dataclass(frozen=True)
class Interface:
    """An IDL interface: a name and its methods by name."""

    name: str
    methods: dict[str, Method]

    @classmethod
    def of(cls, name: str, *methods: Method) -> Interface:
        return cls(name, {m.name: m for m in methods})

    def __getitem__(self, name: str) -> Method:
        return self.methods[name]
