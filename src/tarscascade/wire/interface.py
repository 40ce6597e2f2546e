"""IDL interfaces: methods with typed parameters, and the encoding of their arguments.

A method's parameters are numbered from tag 1 in declaration order, in and out together;
the return value is tag 0 (tars-protocol.md §2.5). Arguments and results are encoded
through generated structs, so a call's sBuffer costs one specialised encode/decode.

TUP (version 3) carries the same values in a ``map<string, vector<byte>>`` keyed by
parameter name, the return value under ``""`` (and ``"tars_ret"`` for TarsGo).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from tarscascade.errors import DecodeError, EncodeError
from tarscascade.wire.codec import BYTES, STRING, Kind, decode_value, encode_value, map_of
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
