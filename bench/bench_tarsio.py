"""tarsio (PyPI, a Rust-backed TARS codec) against our codec on the registry's hot paths.

Issue 17 asks whether it should replace the hand-written codec (``tarscascade.wire``).
Hot paths, µs per operation: medians of repeated batches, ours and tarsio's batches
interleaved in the same run; ``speedup`` is ours / tarsio's (above 1: tarsio is faster):

* ``request_decode``: a RequestPacket as a registry receives it (the frame's body): the
  captured findObjectByIdInSameGroup request (tests/data/vectors) and a
  findObjectById4Any request built by our encoder; ``..._and_args`` adds the decode of
  the sBuffer's arguments, which a QueryF call needs before its lookup.
* ``endpoints_encode`` / ``endpoints_decode``: a findObjectById4Any answer (the sBuffer:
  int return, activeEp of 1, 10 or 100 EndpointF with every field set, empty inactiveEp).

tarsio's schemas mirror ours (same tags, required fields without a default) and each side
works on its own objects: converting between the two is not timed.

Conformance (not timed): every captured vector decoded by tarsio against ours, and its
re-encoding against ours (the captured answers are one valid encoding, not tars2cpp's
canonical one); every TARS type round-tripped both ways (ours →
tarsio, tarsio → ours, byte identity) with edge cases; hand-made malformed or unusual
input decoded by both. ``mismatches`` lists where tarsio differs on valid TARS (a value,
the bytes, or an input accepted by one and refused by the other); ``lenient`` lists
malformed input that tarsio accepts and we (like TarsCpp) refuse.

tarsio is not a dependency: ``pip install -e '.[peers]'`` brings the pinned version.
Without it the benchmark prints SKIPPED and saves ``{"skipped": ...}``.
"""

from __future__ import annotations

import gc
import json
import sys
import time
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any

from bench.bench_codec import endpoints
from bench.common import cli, median
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
    STRING_MAP,
    UINT32,
    IntKind,
    Kind,
    ListKind,
    MapKind,
    decode_value,
    encode_value,
    list_of,
    map_of,
)
from tarscascade.wire.idl.endpointf import ENDPOINT_F, ENDPOINT_LIST, EndpointF
from tarscascade.wire.idl.queryf import FIND_4ANY, QUERY_F, QUERY_SERVANT, GetMasterSlaveLock
from tarscascade.wire.interface import Method
from tarscascade.wire.packets import RequestPacket, ResponsePacket
from tarscascade.wire.struct import (
    StructKind,
    decode_struct,
    encode_struct,
    struct_info,
    struct_kind,
    tars_struct,
    tfield,
)

VECTORS_DIR = Path(__file__).resolve().parents[1] / "tests" / "data" / "vectors"
PIN = "tarsio==0.5.3"  # the version measured; the `peers` extra in pyproject.toml
SIZES = (1, 10, 100)

# ------------------------------------------------------------------ tarsio mirrors of our types


class Mirror:
    """tarsio classes built from our declared structs (same tags, same required fields)."""

    def __init__(self, tarsio: Any) -> None:
        self.t = tarsio
        self.classes: dict[tuple[type[Any], bool], type[Any]] = {}

    def annotation(self, kind: Kind[Any]) -> Any:
        if isinstance(kind, IntKind):
            return int
        if kind is BOOL:
            return bool
        if kind in (FLOAT_K, DOUBLE_K):
            return float
        if kind is STRING:
            return str
        if kind is BYTES:
            return bytes
        if isinstance(kind, ListKind):
            return list[self.annotation(kind.elem)]
        if isinstance(kind, MapKind):
            return dict[self.annotation(kind.key), self.annotation(kind.value)]
        if isinstance(kind, StructKind):
            return self.struct(kind.cls)
        raise TypeError(f"no tarsio mirror for {kind.idl}")

    def make(
        self,
        name: str,
        fields: list[tuple[str, int, Kind[Any], bool]],
        omit_defaults: bool = False,
    ) -> type[Any]:
        """fields: (name, tag, kind, require); an optional field gets our default."""
        ns: dict[str, Any] = {"__annotations__": {}}
        for fname, tag, kind, require in fields:
            ns["__annotations__"][fname] = self.annotation(kind)
            if require:
                ns[fname] = self.t.field(tag=tag)
            elif isinstance(kind, ListKind | MapKind | StructKind):
                ns[fname] = self.t.field(tag=tag, default_factory=self._default(kind))
            else:  # a plain default: what omit_defaults compares with
                ns[fname] = self.t.field(tag=tag, default=kind.default())
        cls: type[Any] = type(self.t.StructMeta)(
            name, (self.t.Struct,), ns, omit_defaults=omit_defaults
        )
        return cls

    def _default(self, kind: Kind[Any]) -> Callable[[], Any]:
        return lambda: self.to_t(kind, kind.default())

    def struct(self, cls: type[Any], omit_defaults: bool = False) -> type[Any]:
        key = (cls, omit_defaults)
        if key not in self.classes:
            fields = [(n, s.tag, s.kind, s.require) for n, s in struct_info(cls).fields]
            self.classes[key] = self.make(cls.__name__, fields, omit_defaults)
        return self.classes[key]

    def result(self, method: Method) -> type[Any]:
        """The sBuffer of a method's answer: return at tag 0, out-params at their tags."""
        fields = [("ret", 0, method.ret, True)] if method.ret is not None else []
        fields += [(p.name, i + 1, p.kind, True) for i, p in enumerate(method.params) if p.out]
        return self.make(f"{method.name}_result", fields)

    def args(self, method: Method) -> type[Any]:
        fields = [(p.name, i + 1, p.kind, True) for i, p in enumerate(method.params) if not p.out]
        return self.make(f"{method.name}_args", fields)

    # values: ours <-> tarsio's
    def to_t(self, kind: Kind[Any], v: Any) -> Any:
        if isinstance(kind, StructKind):
            names = struct_info(kind.cls).fields
            return self.struct(kind.cls)(**{n: self.to_t(s.kind, getattr(v, n)) for n, s in names})
        if isinstance(kind, ListKind):
            return [self.to_t(kind.elem, x) for x in v]
        if isinstance(kind, MapKind):
            return {k: self.to_t(kind.value, x) for k, x in v.items()}
        return v

    def from_t(self, kind: Kind[Any], v: Any) -> Any:
        if isinstance(kind, StructKind):
            names = struct_info(kind.cls).fields
            return kind.cls(**{n: self.from_t(s.kind, getattr(v, n)) for n, s in names})
        if isinstance(kind, ListKind):
            return [self.from_t(kind.elem, x) for x in v]
        if isinstance(kind, MapKind):
            return {k: self.from_t(kind.value, x) for k, x in v.items()}
        return v


# ------------------------------------------------------------------ timing


def _batch(fn: Callable[[], object], n: int) -> float:
    gc.collect()
    gc.disable()
    try:
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        return time.perf_counter() - t0
    finally:
        gc.enable()


def _compare(
    ours: Callable[[], object], theirs: Callable[[], object], n: int, runs: int
) -> dict[str, float]:
    """Per-op µs of both, batches interleaved (ours, tarsio, ours, ...), medians."""
    a: list[float] = []
    b: list[float] = []
    _batch(ours, max(1, n // 10))  # warm-up
    _batch(theirs, max(1, n // 10))
    for _ in range(runs):
        a.append(_batch(ours, n) / n * 1e6)
        b.append(_batch(theirs, n) / n * 1e6)
    oa, tb = median(a), median(b)
    return {
        "ours_us": round(oa, 3),
        "tarsio_us": round(tb, 3),
        "speedup": round(oa / tb, 2),
        "ops_per_batch": n,
    }


def _vector(name: str) -> bytes:
    return bytes.fromhex((VECTORS_DIR / name).read_text().strip())


def _hot_paths(m: Mirror, quick: bool) -> dict[str, Any]:
    runs = 3 if quick else 7
    scale = 5 if quick else 1
    t_req = m.struct(RequestPacket)
    t_args = m.args(FIND_4ANY)
    t_res = m.result(FIND_4ANY)
    ours_args = FIND_4ANY.decode_args

    captured = _vector("findObjectByIdInSameGroup.request.hex")[4:]
    built = encode_struct(
        RequestPacket(
            iRequestId=12345,
            sServantName=QUERY_SERVANT,
            sFuncName="findObjectById4Any",
            sBuffer=FIND_4ANY.encode_args("Test.HelloServer.HelloObj"),
            iTimeout=3000,
            context={"node_name": "192.0.2.2"},
        )
    )
    out: dict[str, Any] = {"request_decode": {}, "endpoints_encode": {}, "endpoints_decode": {}}
    for label, raw in (
        ("captured_findObjectByIdInSameGroup", captured),
        ("built_findObjectById4Any", built),
    ):
        assert m.from_t(struct_kind(RequestPacket), t_req.decode(raw)) == decode_struct(
            RequestPacket, raw
        )
        out["request_decode"][label] = {
            "bytes": len(raw),
            **_compare(
                lambda raw=raw: decode_struct(RequestPacket, raw),
                lambda raw=raw: t_req.decode(raw),
                20_000 // scale,
                runs,
            ),
        }
    out["request_decode"]["built_findObjectById4Any_and_args"] = {
        "bytes": len(built),
        **_compare(
            lambda: ours_args(decode_struct(RequestPacket, built).sBuffer),
            lambda: t_args.decode(t_req.decode(built).sBuffer).id,
            20_000 // scale,
            runs,
        ),
    }
    for n in SIZES:
        eps = endpoints(n)
        t_eps = m.to_t(ENDPOINT_LIST, eps)
        body = FIND_4ANY.encode_result(0, eps, [])
        assert t_res(ret=0, activeEp=t_eps, inactiveEp=[]).encode() == body
        assert m.from_t(ENDPOINT_LIST, t_res.decode(body).activeEp) == eps
        ops = max(20, 20_000 // n) // scale
        out["endpoints_encode"][str(n)] = {
            "bytes": len(body),
            **_compare(
                lambda eps=eps: FIND_4ANY.encode_result(0, eps, []),
                lambda t_eps=t_eps: t_res(ret=0, activeEp=t_eps, inactiveEp=[]).encode(),
                ops,
                runs,
            ),
        }
        out["endpoints_decode"][str(n)] = {
            "bytes": len(body),
            **_compare(
                lambda body=body: FIND_4ANY.decode_result(body),
                lambda body=body: t_res.decode(body),
                ops // 2 or 1,
                runs,
            ),
        }
    return out


# ------------------------------------------------------------------ conformance


def _outcome(fn: Callable[[], Any]) -> tuple[bool, Any]:
    """(True, value) or (False, 'ErrorType: message')."""
    try:
        return True, fn()
    except Exception as exc:  # what either codec raises on bad input is part of the finding
        return False, f"{type(exc).__name__}: {str(exc)[:120]}"


def _short(v: Any) -> str:
    s = repr(v)
    return s if len(s) <= 80 else s[:77] + "..."


class Conformance:
    def __init__(self, m: Mirror) -> None:
        self.m = m
        self.mismatches: list[dict[str, str]] = []
        self.lenient: list[dict[str, str]] = []
        self.cases = 0
        self.equal_both_ways = 0
        self.identical = 0

    def miss(self, case: str, what: str, kind: str) -> None:
        """kind: ``bytes`` (same value, other bytes), ``refused`` (valid TARS or a value we
        handle that tarsio refuses), ``value`` (another value), ``range`` (tarsio writes an
        integer its IDL type cannot hold)."""
        self.mismatches.append({"case": case, "kind": kind, "what": what})

    # -- the captured vectors
    def vectors(self) -> dict[str, dict[str, bool]]:
        """Each captured byte file: tarsio's decode against ours, and tarsio's re-encoding
        of what it decoded against ours (the captured responses are one valid answer, not
        tars2cpp's canonical bytes: they leave out EndpointF's optional fields)."""
        m = self.m
        t_req = m.struct(RequestPacket)
        t_resp = m.struct(ResponsePacket, omit_defaults=True)  # empty optionals left out
        req_kind, resp_kind = struct_kind(RequestPacket), struct_kind(ResponsePacket)
        found: dict[str, dict[str, bool]] = {}
        for name in sorted(json.loads((VECTORS_DIR / "vectors.json").read_text())):
            frame = _vector(f"{name}.request.hex")[4:]
            req = decode_struct(RequestPacket, frame)
            normalise: Callable[[Any], Any] = lambda v: m.from_t(req_kind, v)  # noqa: E731
            self._vector(found, f"{name}.request", frame, t_req, req, encode_struct(req), normalise)
            frame = _vector(f"{name}.response.hex")[4:]
            resp = decode_struct(ResponsePacket, frame)
            normalise = lambda v: m.from_t(resp_kind, v)  # noqa: E731
            self._vector(
                found, f"{name}.response", frame, t_resp, resp, encode_struct(resp), normalise
            )
            method = QUERY_F[req.sFuncName]
            body = _vector(f"{name}.request.sbuffer.hex")
            args = method.decode_args(body)
            ins = method.in_params
            normalise = lambda v, ins=ins: [getattr(v, p.name) for p in ins]  # noqa: E731
            self._vector(
                found,
                f"{name}.request.sbuffer",
                body,
                m.args(method),
                args,
                method.encode_args(*args),
                normalise,
            )
            body = _vector(f"{name}.response.sbuffer.hex")
            result = method.decode_result(body)
            outs = method.out_params
            normalise = lambda v, outs=outs: (  # noqa: E731
                v.ret,
                *(m.from_t(p.kind, getattr(v, p.name)) for p in outs),
            )
            self._vector(
                found,
                f"{name}.response.sbuffer",
                body,
                m.result(method),
                result,
                method.encode_result(*result),
                normalise,
            )
        tup2_kind = map_of(STRING, map_of(STRING, BYTES))
        body = _vector("tup2_findObjectById4Any.request.sbuffer.hex")
        tup2 = decode_value(tup2_kind, body)
        self._vector(
            found,
            "tup2_findObjectById4Any.request.sbuffer",
            body,
            m.make("Tup2Body", [("v", 0, tup2_kind, True)]),
            tup2,
            encode_value(tup2_kind, tup2),
            lambda v: v.v,
        )
        frame = _vector("json_findObjectById4Any.request.hex")[4:]
        req = decode_struct(RequestPacket, frame)
        self._vector(
            found,
            "json_findObjectById4Any.request",
            frame,
            t_req,
            req,
            encode_struct(req),
            lambda v: m.from_t(req_kind, v),
        )
        return found

    def _vector(
        self,
        found: dict[str, dict[str, bool]],
        name: str,
        data: bytes,
        t_cls: type[Any],
        expected: Any,
        ours: bytes,
        normalise: Callable[[Any], Any],
    ) -> None:
        ok, got = _outcome(lambda: t_cls.decode(data))
        value = _outcome(lambda: normalise(got))[1] if ok else got
        equal = ok and value == expected
        again = _outcome(lambda: got.encode()) if ok else (False, None)
        identical = again[0] and again[1] == ours
        found[name] = {
            "decoded_equal": equal,
            "reencoded_as_ours": identical,
            "ours_reencoded_as_captured": ours == data,
        }
        if not equal:
            self.miss(name, f"tarsio decoded {_short(value)}, we {_short(expected)}", "value")
        elif not identical:
            t_hex = again[1].hex() if again[0] else again[1]
            self.miss(name, f"same value, other bytes: tarsio {t_hex}, ours {ours.hex()}", "bytes")

    # -- round trips of values, both ways
    def wrapper(self, kind: Kind[Any], tag: int) -> tuple[type[Any], type[Any]]:
        ns: dict[str, Any] = {"__annotations__": {"v": Any}}
        ns["v"] = tfield(tag, kind, require=True, default_factory=kind.default)
        ours: type[Any] = tars_struct(type(f"Probe{tag}", (), ns))
        return ours, self.m.make(f"Probe{tag}", [("v", tag, kind, True)])

    def round_trip(self, case: str, kind: Kind[Any], value: Any, tag: int = 0) -> None:
        m = self.m
        self.cases += 1
        ours_cls, t_cls = self.wrapper(kind, tag)
        data = encode_struct(ours_cls(value))
        ok, got = _outcome(lambda: m.from_t(kind, t_cls.decode(data).v))
        t_equal = ok and got == value
        if not t_equal:
            self.miss(case, f"tarsio decodes our {data[:24].hex()}... as {_short(got)}", "refused")
        ok2, t_data = _outcome(lambda: t_cls(m.to_t(kind, value)).encode())
        if not ok2:
            self.miss(case, f"tarsio cannot encode {_short(value)}: {t_data}", "refused")
            return
        ok3, back = _outcome(lambda: decode_struct(ours_cls, t_data).v)
        ours_equal = ok3 and back == value
        if not ours_equal:
            self.miss(case, f"we decode tarsio's {t_data[:24].hex()} as {_short(back)}", "value")
        if t_equal and ours_equal:
            self.equal_both_ways += 1
        if t_data == data:
            self.identical += 1
        elif ours_equal:
            self.miss(
                case,
                f"same value, other bytes: tarsio {t_data[:24].hex()}, ours {data[:24].hex()}",
                "bytes",
            )

    def packet(self, case: str, cls: type[Any], value: Any, omit_defaults: bool) -> None:
        """A whole packet at top level (no struct wrapper), as it goes in a frame."""
        m, kind = self.m, struct_kind(cls)
        self.cases += 1
        t_cls = m.struct(cls, omit_defaults)
        data = encode_struct(value)
        ok, got = _outcome(lambda: m.from_t(kind, t_cls.decode(data)))
        ok2, t_data = _outcome(
            lambda: t_cls(
                **{n: m.to_t(s.kind, getattr(value, n)) for n, s in struct_info(cls).fields}
            ).encode()
        )
        ok3, back = _outcome(lambda: decode_struct(cls, t_data)) if ok2 else (False, t_data)
        if ok and got == value and ok3 and back == value:
            self.equal_both_ways += 1
        else:
            self.miss(
                case, f"tarsio decoded {_short(got)}; we decode tarsio's as {_short(back)}", "value"
            )
        if ok2 and t_data == data:
            self.identical += 1
        elif ok2:
            self.miss(
                case, f"same value, other bytes: tarsio {t_data.hex()}, ours {data.hex()}", "bytes"
            )

    # -- input one side may refuse
    def decode_both(self, case: str, kind: Kind[Any], hex_data: str, tag: int = 0) -> None:
        """Hand-made bytes: valid TARS (a refusal is a mismatch) or malformed (lenient)."""
        m = self.m
        ours_cls, t_cls = self.wrapper(kind, tag)
        data = bytes.fromhex(hex_data)
        ok, ours = _outcome(lambda: decode_struct(ours_cls, data).v)
        t_ok, theirs = _outcome(lambda: m.from_t(kind, t_cls.decode(data).v))
        if ok and t_ok and ours == theirs:
            return
        if not ok and not t_ok:
            return
        if ok and not t_ok:
            self.miss(case, f"tarsio refuses it ({theirs}); we read {_short(ours)}", "refused")
        elif t_ok and not ok:
            self.lenient.append(
                {"case": case, "what": f"tarsio reads {_short(theirs)}; we refuse it ({ours})"}
            )
        else:
            self.lenient.append(
                {"case": case, "what": f"tarsio reads {_short(theirs)}, we read {_short(ours)}"}
            )

    def encode_refused(self, case: str, kind: Kind[Any], value: Any) -> None:
        """A value out of its IDL type's range: we refuse to put it on the wire."""
        m = self.m
        ours_cls, t_cls = self.wrapper(kind, 0)
        ok, _ = _outcome(lambda: encode_struct(ours_cls(value)))
        t_ok, t_data = _outcome(lambda: t_cls(m.to_t(kind, value)).encode())
        if ok == t_ok:
            return
        if t_ok:
            self.miss(
                case,
                f"tarsio writes {t_data.hex()} (we refuse: out of range for "
                f"{kind.idl}; peers reading {kind.idl} refuse it too)",
                "range",
            )
        else:
            self.miss(case, f"tarsio cannot encode it ({t_data}); we can", "refused")


def _endpoint(i: int = 0, **kw: Any) -> EndpointF:
    ep = endpoints(i + 1)[i]
    for k, v in kw.items():
        setattr(ep, k, v)
    return ep


def _conformance(m: Mirror) -> dict[str, Any]:
    c = Conformance(m)
    vectors = c.vectors()

    ep = _endpoint()
    neg = _endpoint(3, groupworkid=-1, grouprealid=-1, weight=-1, setId="", nodeName="")
    ints: list[tuple[Kind[int], list[int]]] = [
        (INT8, [-128, -1, 0, 127]),
        (INT16, [-32768, -129, 128, 32767]),
        (INT32_K, [-(2**31), -32769, -1, 0, 1, 60000, 2**31 - 1]),
        (INT64_K, [-(2**63), 2**31, 2**63 - 1]),
        (UINT32, [2**32 - 1]),
    ]
    for kind, values in ints:
        for v in values:
            c.round_trip(f"{kind.idl} {v}", kind, v)
    for case, kind, value in [
        ("bool true", BOOL, True),
        ("bool false", BOOL, False),
        ("float 0.0", FLOAT_K, 0.0),
        ("float 1.5", FLOAT_K, 1.5),
        ("double 0.0", DOUBLE_K, 0.0),
        ("double -2.25", DOUBLE_K, -2.25),
        ("string empty", STRING, ""),
        ("string non-ASCII", STRING, "héllo ✓"),
        ("string 255 bytes (STRING1)", STRING, "x" * 255),
        ("string 256 bytes (STRING4)", STRING, "x" * 256),
        ("string 70,000 bytes", STRING, "y" * 70_000),
        (
            "string we read from non-UTF-8 bytes",
            STRING,
            b"\xc4\xe3".decode("utf-8", "surrogateescape"),
        ),
        ("vector<byte> empty", BYTES, b""),
        ("vector<byte> 00 ff", BYTES, b"\x00\xff"),
        ("vector<byte> 512 bytes", BYTES, bytes(range(256)) * 2),
        ("vector<int> empty", list_of(INT32_K), []),
        ("vector<int> negatives and widths", list_of(INT32_K), [0, -1, 300, -70_000]),
        ("vector<string> with empty", list_of(STRING), ["", "a"]),
        ("vector<vector<long>>", list_of(list_of(INT64_K)), [[], [1, 2**40]]),
        ("map<string,string> empty", STRING_MAP, {}),
        ("map<string,string> empty key and value", STRING_MAP, {"a": "", "": "b"}),
        ("map<int,string> negative key", map_of(INT32_K, STRING), {1: "a", -5: "b"}),
        (
            "map<string,vector<EndpointF>>",
            map_of(STRING, ENDPOINT_LIST),
            {"A.B.C": [ep, neg], "e": []},
        ),
        ("EndpointF every field", ENDPOINT_F, ep),
        ("EndpointF negatives, empty strings", ENDPOINT_F, neg),
        ("EndpointF all defaults", ENDPOINT_F, EndpointF()),
        ("EndpointF 300-byte host", ENDPOINT_F, _endpoint(host="h" * 300)),
        ("vector<EndpointF> empty", ENDPOINT_LIST, []),
        ("vector<EndpointF> 3", ENDPOINT_LIST, [ep, neg, EndpointF()]),
        (
            "GetMasterSlaveLock (bools)",
            struct_kind(GetMasterSlaveLock),
            GetMasterSlaveLock("app", "srv", "node", True, False, 30, 1),
        ),
    ]:
        c.round_trip(case, kind, value)
    for tag in (15, 200, 255):
        c.round_trip(f"tag {tag}: int", INT32_K, 5, tag)
        c.round_trip(f"tag {tag}: string", STRING, "x", tag)
        c.round_trip(f"tag {tag}: EndpointF", ENDPOINT_F, ep, tag)
    c.packet(
        "RequestPacket with context and status",
        RequestPacket,
        RequestPacket(
            iRequestId=-5,
            sServantName=QUERY_SERVANT,
            sFuncName="findObjectById4Any",
            sBuffer=b"\x16\x05A.B.C",
            iTimeout=3000,
            context={"node_name": "h"},
            status={"STATUS_SETNAME_VALUE": "app.sz.1"},
        ),
        omit_defaults=False,
    )
    c.packet(
        "ResponsePacket, empty optionals left out",
        ResponsePacket,
        ResponsePacket(iRequestId=7, iRet=-3, sBuffer=b""),
        omit_defaults=True,
    )
    c.packet(
        "ResponsePacket with sResultDesc and context",
        ResponsePacket,
        ResponsePacket(iRequestId=7, iRet=-3, sResultDesc="no func", context={"k": "v"}),
        omit_defaults=True,
    )

    # hand-made input: valid TARS that some peer sends, then malformed input
    ep_head = "0a 06 01 68 11 27 10 22 0000ea60 30 01 4c"
    for case, kind, hx in [
        ("int, INT64 on the wire, in range", INT32_K, "03 0000000000000005"),
        ("string with GBK bytes (TarsCpp strings are bytes)", STRING, "06 02 c4e3"),
        ("vector<byte> as a LIST of chars (TarsCpp, TarsGo accept it)", BYTES, "09 0002 0001 00ff"),
        ("float, DOUBLE on the wire", FLOAT_K, "05 3ff8000000000000"),
        ("double, ZERO on the wire", DOUBLE_K, "0c"),
        (
            "EndpointF, unknown tags 10 and 20-80 (string, struct, list, map, bytes, ...)",
            ENDPOINT_F,
            ep_head
            + " a6 01 7a"  # 10: string "z"
            + " fa 14 06 01 78 0b"  # 20: struct {0: "x"}
            + " f9 1e 0001 06 00"  # 30: list [""]
            + " f8 28 0c"  # 40: empty map
            + " fd 32 00 0001 ff"  # 50: vector<byte> ff
            + " f5 3c 3ff8000000000000"  # 60: double 1.5
            + " f3 46 0000010000000000"  # 70: long 2^40
            + " fc 50 0b",  # 80: zero; StructEnd
        ),
        ("EndpointF with only its required fields", ENDPOINT_F, ep_head + " 0b"),
        ("int, INT64 2^40 (out of range)", INT32_K, "03 0000010000000000"),
        ("byte, 300 (out of range)", INT8, "01 012c"),
        ("EndpointF cut before its STRUCT_END", ENDPOINT_F, ep_head),
        (
            "EndpointF port before host (out of order)",
            ENDPOINT_F,
            "0a 11 2710 06 01 68 22 0000ea60 30 01 4c 0b",
        ),
        (
            "EndpointF, host twice",
            ENDPOINT_F,
            "0a 06 01 68 06 01 69 11 2710 22 0000ea60 30 01 4c 0b",
        ),
        ("vector<int>, element with tag 1", list_of(INT32_K), "09 0001 1005"),
        ("map<string,string>, key with tag 1", STRING_MAP, "08 0001 1601 61 1601 62"),
        ("vector<byte>, length with tag 1", BYTES, "0d 00 1001 41"),
        ("vector<int>, size past the end", list_of(INT32_K), "09 02 7fffffff 0001"),
        ("vector<int>, negative size", list_of(INT32_K), "09 00 ff"),
        ("string, length past the end", STRING, "06 05 6162"),
        ("empty buffer, required field", INT32_K, ""),
        ("invalid type id 14 after a field", INT32_K, "0005 1e"),
        (
            "1,000 nested lists in an unknown field",
            INT32_K,
            "0005 1900 01" + "0900 01" * 999 + "0c",
        ),
    ]:
        c.decode_both(case, kind, hx)
    for case, kind, value in [
        ("int 2^31 (out of range)", INT32_K, 2**31),
        ("int -2^31 - 1 (out of range)", INT32_K, -(2**31) - 1),
        ("byte 200 (out of range)", INT8, 200),
        ("short 40000 (out of range)", INT16, 40_000),
        ("long 2^63 (out of range)", INT64_K, 2**63),
    ]:
        c.encode_refused(case, kind, value)

    vectors_ok = all(v["decoded_equal"] for v in vectors.values())
    return {
        "vectors": vectors,
        "vectors_decoded_equal": vectors_ok,
        "vectors_reencoded_as_ours": all(v["reencoded_as_ours"] for v in vectors.values()),
        "round_trip_cases": c.cases,
        "round_trip_equal_both_ways": c.equal_both_ways,
        "round_trip_byte_identical": c.identical,
        "mismatches_by_kind": {
            k: sum(1 for x in c.mismatches if x["kind"] == k)
            for k in sorted({x["kind"] for x in c.mismatches})
        },
        "mismatches": c.mismatches,
        "lenient": c.lenient,
        "conformant": vectors_ok and not c.mismatches,
    }


# ------------------------------------------------------------------ run


def run(quick: bool) -> dict[str, Any]:
    try:
        import tarsio  # a peer measured, not a dependency
    except ImportError as exc:
        missing = f"tarsio is not installed ({exc}); pip install -e '.[peers]' ({PIN})"
        print(f"SKIPPED: {missing}", file=sys.stderr)
        return {"skipped": missing}
    m = Mirror(tarsio)
    conformance = _conformance(m)
    hot = _hot_paths(m, quick)
    speedups = [v["speedup"] for path in hot.values() for v in path.values()]
    faster = min(speedups) > 1.0
    adopt = faster and conformance["conformant"]
    why: list[str] = []
    if not faster:
        why.append(f"slower on a hot path (speedup {min(speedups):g})")
    if not conformance["conformant"]:
        kinds = ", ".join(f"{k} {n}" for k, n in conformance["mismatches_by_kind"].items())
        why.append(f"{len(conformance['mismatches'])} conformance mismatch(es) ({kinds})")
    return {
        "tarsio_version": version("tarsio"),
        "hot_paths": hot,
        "faster_on_every_hot_path": faster,
        "speedup_min": min(speedups),
        "speedup_max": max(speedups),
        "conformance": conformance,
        "adopt": adopt,
        "verdict": "adopt" if adopt else "not adopted: " + "; ".join(why),
    }


def main(argv: list[str] | None = None) -> int:
    return cli("tarsio", run, __doc__, argv)


if __name__ == "__main__":
    raise SystemExit(main())
