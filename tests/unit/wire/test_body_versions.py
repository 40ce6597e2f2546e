"""Argument and result bodies in TUP version 2 and JSON version 5 (issue 11, item 4).

Round trips for every IDL method we serve, the exact forms peers expect (type names,
JSON keys, vector<byte> as signed numbers, long as numbers), and hostile bodies: each
is a DecodeError, never another exception, in bounded time.
"""

from __future__ import annotations

import contextlib
import json
import time
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tarscascade.errors import DecodeError, EncodeError
from tarscascade.wire.codec import (
    BOOL,
    BYTES,
    DOUBLE_K,
    INT8,
    INT16,
    INT32_K,
    INT64_K,
    STRING,
    STRING_MAP,
    UINT8,
    UINT16,
    UINT32,
    decode_value,
    encode_value,
    list_of,
    map_of,
)
from tarscascade.wire.idl.cascadef import (
    CASCADE_F,
    HEARTBEAT,
    SUBSCRIBE,
    CategoryPlanF,
    CategoryStateF,
    DeltaF,
    FreshnessF,
    HeartbeatReq,
    SubscribeRsp,
    VersionF,
)
from tarscascade.wire.idl.endpointf import ENDPOINT_F, ENDPOINT_LIST, EndpointF
from tarscascade.wire.idl.queryf import FIND_4ANY, QUERY_F, REGISTER_CHANGE
from tarscascade.wire.idl.reportf import REPORT_STATES, EndpointStateF, ReportStatesReq
from tarscascade.wire.idl.serverf import KEEP_ALIVE, SERVER_F, ServerInfo
from tarscascade.wire.interface import Method
from tarscascade.wire.jsoncodec import dumps, from_json, loads_object, to_json
from tarscascade.wire.packets import JSON_VERSION, TARS_VERSION, TUP_COMPLEX_VERSION, TUP_VERSION
from tarscascade.wire.struct import struct_kind
from tarscascade.wire.tup2 import ATTRIBUTES, decode_attributes, type_name

OTHER = [TUP_COMPLEX_VERSION, JSON_VERSION]
ALL = [TARS_VERSION, TUP_COMPLEX_VERSION, TUP_VERSION, JSON_VERSION]

EP = EndpointF("10.0.0.1", 9000, 60000, 1, 0, setId="a.b.1", weight=50, nodeName="n1")
EP2 = EndpointF("10.0.0.2", 9001, 3000, 1, 0, bakFlag=1)

SAMPLE_ARGS: dict[str, tuple[Any, ...]] = {
    "findObjectById": ("A.B.C",),
    "findObjectById4Any": ("A.B.C",),
    "findObjectById4All": ("A.B.C",),
    "findObjectByIdInSameGroup": ("A.B.C",),
    "findObjectByIdInSameStation": ("A.B.C", "sz"),
    "findObjectByIdInSameSet": ("A.B.C", "a.b.c"),
    "findObjectNodeName": ("A.B.C",),
    "registerChange": ({"A.B.C": "123", "": "x"}, "n1"),
    "registerQuery": ("A.B.C", "n1"),
    "keepAlive": (ServerInfo("Test", "HelloServer", 4242, "Test.HelloServer.HelloObjAdapter"),),
    "keepActiving": (ServerInfo("Test", "HelloServer", 1),),
    "reportVersion": ("Test", "HelloServer", "3.0.22"),
    "getLatestKeepAliveTime": (),
    "reportStates": (
        ReportStatesReq("n1", "t", [EndpointStateF("A.B.C", "h", 1, "active", "tcp -h h -p 1")]),
    ),
    "heartbeat": (
        HeartbeatReq(
            "n1", [CategoryStateF("objects", VersionF("e", 2**62), -(2**63), 7)], info={"k": "v"}
        ),
    ),
}


def sample_result(method: Method) -> tuple[Any, ...]:
    outs: list[Any] = []
    for p in method.out_params:
        if p.kind is ENDPOINT_LIST:
            outs.append([EP, EP2] if not outs else [EP2])
        elif p.kind is struct_kind(SubscribeRsp):
            plan = [CategoryPlanF("objects", 2, VersionF("e", 5))]
            outs.append(SubscribeRsp(plan, "up", FreshnessF(True, 2**40, False, "e")))
        else:
            outs.append(p.kind.default())
    ret: Any = 3
    if method.ret is None:
        ret = None
    elif method.ret is ENDPOINT_LIST:
        ret = [EP]
    elif method.ret is UINT32:
        ret = 2**32 - 1
    return (ret, *outs)


METHODS = [
    m
    for iface in (QUERY_F, SERVER_F, CASCADE_F)
    for m in iface.methods.values()
    if m.name in SAMPLE_ARGS or m.name in ("subscribe", "ack", "getLocker")
] + [REPORT_STATES]


def _args(m: Method) -> tuple[Any, ...]:
    if m.name in SAMPLE_ARGS:
        return SAMPLE_ARGS[m.name]
    return tuple(p.kind.default() for p in m.in_params)


@pytest.mark.parametrize("version", ALL)
@pytest.mark.parametrize("method", METHODS, ids=lambda m: m.name)
def test_every_method_round_trips_in_every_version(method: Method, version: int) -> None:
    args = _args(method)
    assert method.decode_args_as(version, method.encode_args_as(version, *args)) == list(args)
    result = sample_result(method)
    assert method.decode_result_as(version, method.encode_result_as(version, *result)) == result


# ------------------------------------------------------------------ TUP version 2 forms


def test_type_names_are_spelled_as_tars_stream_spells_them() -> None:
    assert [type_name(k) for k in (BOOL, INT8, INT16, INT32_K, INT64_K, STRING)] == [
        "bool",
        "char",
        "short",
        "int32",
        "int64",
        "string",
    ]
    # unsigned types travel widened, and are named after the wider type (@tars/stream)
    assert [type_name(k) for k in (UINT8, UINT16, UINT32)] == ["short", "int32", "int64"]
    assert type_name(DOUBLE_K) == "double"
    assert type_name(BYTES) == "list<char>"  # BinBuffer
    assert type_name(list_of(INT8)) == "List<char>"  # a vector<char> that is not bytes
    assert type_name(ENDPOINT_LIST) == "List<tars.EndpointF>"
    assert type_name(STRING_MAP) == "map<string,string>"
    assert type_name(map_of(STRING, list_of(STRING))) == "map<string,List<string>>"
    assert type_name(struct_kind(ServerInfo)) == "tars.ServerInfo"
    assert type_name(struct_kind(SubscribeRsp)) == "tarscascade.SubscribeRsp"


def test_a_tup2_result_files_each_value_under_its_name_then_its_type() -> None:
    body = FIND_4ANY.encode_result_tup2(0, [EP], [])
    m = decode_attributes(body)
    assert {k: list(v) for k, v in m.items()} == {
        "": ["int32"],
        "tars_ret": ["int32"],
        "activeEp": ["List<tars.EndpointF>"],
        "inactiveEp": ["List<tars.EndpointF>"],
    }
    assert decode_value(ENDPOINT_LIST, m["activeEp"]["List<tars.EndpointF>"], 0) == [EP]


def test_tup2_reads_the_single_typed_value_whatever_its_name() -> None:
    # TarsJava names structs by Java class and writes list<...>: the value still counts
    raw = encode_value(ENDPOINT_LIST, [EP], 0)
    body = encode_value(ATTRIBUTES, {"id": {"java.lang.String": encode_value(STRING, "A", 0)}}, 0)
    assert FIND_4ANY.decode_args_tup2(body) == ["A"]
    m = {
        "": {"int32": b"\x0c"},
        "activeEp": {"list<com.qq.EndpointF>": raw},
        "inactiveEp": {"?": raw},
    }
    assert FIND_4ANY.decode_result_tup2(encode_value(ATTRIBUTES, m, 0)) == (0, [EP], [EP])


def test_tup2_picks_our_spelling_among_several_typed_values_case_insensitively() -> None:
    good, other = encode_value(STRING, "A.B.C", 0), encode_value(INT32_K, 7, 0)
    body = encode_value(ATTRIBUTES, {"id": {"int32": other, "STRING": good}}, 0)
    assert FIND_4ANY.decode_args_tup2(body) == ["A.B.C"]
    ambiguous = encode_value(ATTRIBUTES, {"id": {"int32": other, "short": other}}, 0)
    with pytest.raises(DecodeError, match="none of string"):
        FIND_4ANY.decode_args_tup2(ambiguous)


HOSTILE_TUP2 = {
    "empty body": b"",
    "no parameters": encode_value(ATTRIBUTES, {}, 0),
    "a parameter with no typed value": encode_value(ATTRIBUTES, {"id": {}}, 0),
    "wrong type": encode_value(ATTRIBUTES, {"id": {"string": encode_value(INT32_K, 5, 0)}}, 0),
    "a version 3 body": FIND_4ANY.encode_args_tup("A.B.C"),
    "a TARS body": FIND_4ANY.encode_args("A.B.C"),
    "truncated": FIND_4ANY.encode_args_tup2("A.B.C")[:-3],
    "a map size past the end": b"\x08\x02\x7f\xff\xff\xff",
    "value bytes that are not TARS": encode_value(ATTRIBUTES, {"id": {"string": b"\xff" * 9}}, 0),
}


@pytest.mark.parametrize("body", HOSTILE_TUP2.values(), ids=list(HOSTILE_TUP2))
def test_hostile_tup2_bodies_are_decode_errors(body: bytes) -> None:
    with pytest.raises(DecodeError):
        FIND_4ANY.decode_args_tup2(body)


# ------------------------------------------------------------------ JSON forms


def test_json_result_is_the_out_params_plus_tars_ret() -> None:
    obj = json.loads(FIND_4ANY.encode_result_json(0, [EP], []))
    assert obj == {
        "tars_ret": 0,
        "inactiveEp": [],
        "activeEp": [
            {
                "host": "10.0.0.1",
                "port": 9000,
                "timeout": 60000,
                "istcp": 1,
                "grid": 0,
                "groupworkid": 0,
                "grouprealid": 0,
                "setId": "a.b.1",
                "qos": 0,
                "bakFlag": 0,
                "weight": 50,
                "weightType": 0,
                "authType": 0,
                "nodeName": "n1",
            }
        ],
    }
    # a void method with no out-parameters answers an empty object
    assert CASCADE_F["ack"].encode_result_json(None) == b"{}"


def test_json_values_follow_tarscpp_tarsjson() -> None:
    assert to_json(BYTES, b"\x00\x7f\x80\xff") == [0, 127, -128, -1]  # signed chars
    assert from_json(BYTES, [0, 127, -128, 255], "b") == b"\x00\x7f\x80\xff"
    big = 2**63 - 1
    text = HEARTBEAT.encode_args_json(
        HeartbeatReq("n", [CategoryStateF("c", VersionF("e", big), -(2**63))])
    )
    assert str(big).encode() in text  # long as a JSON number, every digit kept
    assert json.loads(text)["req"]["held"][0]["version"]["revision"] == big
    assert to_json(map_of(INT32_K, STRING), {-5: "a", 7: "b"}) == {"-5": "a", "7": "b"}
    assert from_json(map_of(INT32_K, STRING), {"-5": "a"}, "m") == {-5: "a"}
    # a Python keyword field keeps its IDL name
    delta = to_json(struct_kind(DeltaF), DeltaF("c", VersionF("a", 1), VersionF("a", 2), b""))
    assert set(delta) == {"category", "from", "to", "payload", "ackWithinMs"}
    assert from_json(struct_kind(DeltaF), delta, "d") == DeltaF(
        "c", VersionF("a", 1), VersionF("a", 2), b""
    )


def test_json_optional_fields_default_and_null_is_an_empty_container() -> None:
    ep = from_json(ENDPOINT_F, {"host": "h", "port": 1, "timeout": 0, "istcp": 1, "grid": 0}, "e")
    assert ep == EndpointF("h", 1, 0, 1, 0)
    # TarsGo writes a nil slice or map as null
    req = from_json(struct_kind(HeartbeatReq), {"nodeName": "n", "held": None, "info": None}, "req")
    assert req == HeartbeatReq("n", [], [], {})
    assert REGISTER_CHANGE.decode_args_json(b'{"timestamp": null, "name": "n"}') == [{}, "n"]


def test_json_requests_ignore_out_params_and_unknown_keys() -> None:
    body = b'{"id": "A.B.C", "activeEp": [], "inactiveEp": "junk", "extra": {"x": [1]}}'
    assert FIND_4ANY.decode_args_json(body) == ["A.B.C"]


KA = '{"serverInfo": {"application": "Test", "serverName": "S", "pid": %s}}'
HOSTILE_JSON = {
    "not JSON": b"{",
    "not an object": b'["serverInfo"]',
    "not UTF-8": b'{"serverInfo": "\xff"}',
    "UTF-16": '{"serverInfo": {}}'.encode("utf-16"),
    "missing parameter": b"{}",
    "null struct": b'{"serverInfo": null}',
    "missing require field": b'{"serverInfo": {"application": "Test", "pid": 1}}',
    "string for int": (KA % '"4242"').encode(),
    "float for int": (KA % "4242.0").encode(),
    "bool for int": (KA % "true").encode(),
    "exponent for int": (KA % "1e3").encode(),
    "int out of range": (KA % str(2**31)).encode(),
    "NaN": (KA % "NaN").encode(),
    "Infinity": (KA % "Infinity").encode(),
    "huge integer": (KA % ("9" * 5000)).encode(),
    "int for string": b'{"serverInfo": {"application": 1, "serverName": "S", "pid": 1}}',
    "wrong type in an optional field": (
        b'{"serverInfo": {"application": "a", "serverName": "S", "pid": 1, "adapter": 5}}'
    ),
    "array for struct": b'{"serverInfo": ["Test", "S", 1]}',
    "trailing garbage": b'{"serverInfo": {}} x',
    "deeply nested junk": b'{"junk": ' + b"[" * 200_000 + b"]" * 200_000 + b"}",
    "deeply nested unclosed": b"[" * 1_000_000,
}


@pytest.mark.parametrize("body", HOSTILE_JSON.values(), ids=list(HOSTILE_JSON))
def test_hostile_json_bodies_are_decode_errors_in_bounded_time(body: bytes) -> None:
    t0 = time.monotonic()
    with pytest.raises(DecodeError):
        KEEP_ALIVE.decode_args_json(body)
    assert time.monotonic() - t0 < 5


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        (BYTES, [256]),
        (BYTES, [-129]),
        (BYTES, "AAEC"),  # base64 is Go's []byte, not TARS's vector<byte>
        (map_of(INT32_K, STRING), {"1.5": "a"}),
        (map_of(INT32_K, STRING), {"0x10": "a"}),
        (map_of(struct_kind(VersionF), STRING), {"{}": "a"}),
        (list_of(STRING), {"0": "a"}),
        (UINT32, -1),
        (INT64_K, 2**63),
    ],
)
def test_json_values_outside_the_kind_are_decode_errors(kind: Any, value: Any) -> None:
    with pytest.raises(DecodeError):
        from_json(kind, value, "v")


def test_json_encode_refuses_what_json_cannot_say() -> None:
    with pytest.raises(EncodeError):
        to_json(map_of(BOOL, STRING), {True: "x"})
    with pytest.raises(EncodeError):
        dumps({"x": float("nan")})


def test_loads_object_needs_an_object() -> None:
    assert loads_object(b' {"a": 1} ') == {"a": 1}
    with pytest.raises(DecodeError, match="object"):
        loads_object(b"1")


@pytest.mark.parametrize("version", [0, 4, 6, -1])
def test_other_versions_are_refused(version: int) -> None:
    with pytest.raises(DecodeError, match=f"version {version}"):
        FIND_4ANY.decode_args_as(version, b"")
    with pytest.raises(EncodeError, match=f"version {version}"):
        FIND_4ANY.encode_result_as(version, 0, [], [])


# ------------------------------------------------------------------ properties

text = st.text(st.characters(codec="utf-8"), max_size=20)
int32 = st.integers(-(2**31), 2**31 - 1)
endpoints = st.builds(
    EndpointF,
    host=text,
    port=int32,
    timeout=int32,
    istcp=int32,
    grid=int32,
    groupworkid=int32,
    setId=text,
    weight=int32,
    nodeName=text,
)


@given(st.lists(endpoints, max_size=5), st.lists(endpoints, max_size=5), int32)
def test_queryf_results_round_trip_in_both_new_versions(
    active: list[EndpointF], inactive: list[EndpointF], ret: int
) -> None:
    for version in OTHER:
        body = FIND_4ANY.encode_result_as(version, ret, active, inactive)
        assert FIND_4ANY.decode_result_as(version, body) == (ret, active, inactive)


@given(st.binary(max_size=64))
def test_random_bytes_never_escape_as_anything_but_decode_error(body: bytes) -> None:
    for version in OTHER:
        for method in (FIND_4ANY, KEEP_ALIVE, REPORT_STATES, SUBSCRIBE):
            with contextlib.suppress(DecodeError):
                method.decode_args_as(version, body)
