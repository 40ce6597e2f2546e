"""TARS values as JSON (protocol version 5, JSONVERSION).

A version 5 request's sBuffer is a UTF-8 JSON object keyed by parameter name; the
reply is a ResponsePacket whose sBuffer is a JSON object of the out-parameters plus
the return value under ``"tars_ret"`` (tars2cpp's generated dispatch, TarsGo's
``*.tars.go`` Dispatch, TarsJava's ``TarsCodec.encodeJsonResult`` all agree).

Values follow TarsCpp ``tup/TarsJson.h``, which TarsGo's ``encoding/json`` and
TarsJava's Gson match: integers of every width (``long`` too) are JSON numbers, bool
is ``true``/``false``, a string a string, ``vector<byte>`` an array of numbers
(signed chars, -128..127; 128..255 accepted on input), a vector an array, a map an
object (integer keys in decimal), a struct an object keyed by field name (every field
written; a missing ``require`` field is an error, a missing optional one keeps its
default). ``null`` stands for an empty vector or map, as Go writes a nil slice; for
anything else it is an error.

Input is untrusted: the conversion is driven by the declared kind, so no value goes
deeper than the IDL type; the parse itself is bounded by the frame size and the
interpreter's recursion limit (both errors are a :class:`DecodeError`).
"""

from __future__ import annotations

import json
from typing import Any, NoReturn

from tarscascade.errors import DecodeError, EncodeError
from tarscascade.wire.codec import (
    BOOL,
    BYTES,
    DOUBLE_K,
    FLOAT_K,
    STRING,
    IntKind,
    Kind,
    ListKind,
    MapKind,
)
from tarscascade.wire.struct import StructKind, idl_name, struct_info

#: the key of the return value in a JSON reply
JSON_RET_KEY = "tars_ret"


def _no_constant(name: str) -> NoReturn:
    raise DecodeError(f"{name} is not JSON")


def loads_object(body: bytes) -> dict[str, Any]:
    """Parse a JSON object (strict UTF-8; NaN and Infinity refused)."""
    try:
        obj = json.loads(bytes(body).decode("utf-8"), parse_constant=_no_constant)
    except UnicodeDecodeError as exc:
        raise DecodeError(f"JSON body is not UTF-8: {exc.reason} at byte {exc.start}") from exc
    except RecursionError as exc:
        raise DecodeError("JSON body nested too deeply") from exc
    except ValueError as exc:  # JSONDecodeError, or an integer of too many digits
        raise DecodeError(f"bad JSON body: {exc}") from exc
    if not isinstance(obj, dict):
        raise DecodeError(f"JSON body must be an object, got {type(obj).__name__}")
    return obj


def dumps(obj: dict[str, Any]) -> bytes:
    try:
        text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        # strings decoded from TARS keep undecodable bytes as surrogate escapes: give
        # those bytes back as they came
        return text.encode("utf-8", "surrogateescape")
    except (ValueError, UnicodeEncodeError) as exc:
        raise EncodeError(f"cannot encode as JSON: {exc}") from exc


# ------------------------------------------------------------------ JSON -> TARS values


def from_json(kind: Kind[Any], v: Any, path: str) -> Any:
    """Convert the JSON value ``v`` to a value of ``kind``; ``path`` names it in errors."""
    if isinstance(kind, IntKind):
        if type(v) is not int:
            _mismatch(kind, v, path)
        if not kind.lo <= v <= kind.hi:
            raise DecodeError(f"{path}: {v} out of range for {kind.idl}")
        return v
    if kind is STRING:
        if type(v) is not str:
            _mismatch(kind, v, path)
        return v
    if kind is BOOL:
        if type(v) is not bool:
            _mismatch(kind, v, path)
        return v
    if kind is FLOAT_K or kind is DOUBLE_K:
        if type(v) not in (int, float):
            _mismatch(kind, v, path)
        try:
            return float(v)
        except OverflowError as exc:
            raise DecodeError(f"{path}: {v} out of range for {kind.idl}") from exc
    if kind is BYTES:
        if v is None:
            return b""
        if type(v) is not list:
            _mismatch(kind, v, path)
        if not all(type(b) is int and -128 <= b <= 255 for b in v):
            raise DecodeError(f"{path}: vector<byte> needs numbers in -128..255")
        return bytes(b & 0xFF for b in v)
    if isinstance(kind, ListKind):
        if v is None:
            return []
        if type(v) is not list:
            _mismatch(kind, v, path)
        elem = kind.elem
        return [from_json(elem, x, f"{path}[{i}]") for i, x in enumerate(v)]
    if isinstance(kind, MapKind):
        if v is None:
            return {}
        if type(v) is not dict:
            _mismatch(kind, v, path)
        key, value = kind.key, kind.value
        return {
            _key_from_json(key, k, path): from_json(value, x, f"{path}[{k[:40]!r}]")
            for k, x in v.items()
        }
    if isinstance(kind, StructKind):
        if type(v) is not dict:
            _mismatch(kind, v, path)
        kwargs: dict[str, Any] = {}
        for attr, spec in struct_info(kind.cls).fields:
            name = idl_name(attr)
            x = v.get(name)
            if x is None and not _takes_null(spec.kind):
                if spec.require:
                    raise DecodeError(f"{path}.{name}: require field missing")
                continue
            kwargs[attr] = from_json(spec.kind, x, f"{path}.{name}")
        return kind.cls(**kwargs)
    raise DecodeError(f"{path}: {kind.idl} has no JSON form")


def _takes_null(kind: Kind[Any]) -> bool:
    return kind is BYTES or isinstance(kind, ListKind | MapKind)


def _key_from_json(kind: Kind[Any], k: str, path: str) -> Any:
    if kind is STRING:
        return k
    if isinstance(kind, IntKind):
        digits = k[1:] if k[:1] == "-" else k
        if not (0 < len(digits) <= 20 and digits.isascii() and digits.isdigit()):
            raise DecodeError(f"{path}: map key {k[:40]!r} is not a decimal {kind.idl}")
        return from_json(kind, int(k), f"{path}[{k!r}]")
    raise DecodeError(f"{path}: map keys of type {kind.idl} have no JSON form")


def _mismatch(kind: Kind[Any], v: Any, path: str) -> NoReturn:
    got = "null" if v is None else type(v).__name__
    raise DecodeError(f"{path}: expected {kind.idl}, got JSON {got}")


# ------------------------------------------------------------------ TARS values -> JSON


def to_json(kind: Kind[Any], v: Any) -> Any:
    """The JSON form of ``v`` (a value of ``kind``), as TarsCpp's JsonOutput writes it."""
    if isinstance(kind, IntKind) or kind is STRING or kind is BOOL:
        return v
    if kind is FLOAT_K or kind is DOUBLE_K:
        return float(v)
    if kind is BYTES:
        return [b - 256 if b > 127 else b for b in bytes(v)]
    if isinstance(kind, ListKind):
        elem = kind.elem
        return [to_json(elem, x) for x in v]
    if isinstance(kind, MapKind):
        key, value = kind.key, kind.value
        if key is not STRING and not isinstance(key, IntKind):
            raise EncodeError(f"map keys of type {key.idl} have no JSON form")
        return {str(k): to_json(value, x) for k, x in v.items()}
    if isinstance(kind, StructKind):
        fields = struct_info(kind.cls).fields
        return {idl_name(attr): to_json(spec.kind, getattr(v, attr)) for attr, spec in fields}
    raise EncodeError(f"{kind.idl} has no JSON form")
