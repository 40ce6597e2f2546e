"""Endpoint, endpoint-list and object strings (reference §5)."""

from __future__ import annotations

import contextlib
import re
import time
from typing import Any

import pytest

from tarscascade.errors import EndpointSyntaxError
from tarscascade.wire.endpoint import (
    MAX_ENDPOINT_LEN,
    MAX_LIST_LEN,
    Endpoint,
    ObjectRef,
    format_endpoint,
    format_endpoint_list,
    format_object,
    parse_endpoint,
    parse_endpoint_list,
    parse_object,
    validate_object_id,
)
from tarscascade.wire.idl.endpointf import EndpointF
from tarscascade.wire.struct import decode_struct, encode_struct

# --- parse_endpoint: valid ----------------------------------------------------------------

VALID: list[tuple[str, dict[str, Any]]] = [
    ("tcp -h 10.0.0.1 -p 10000", {"transport": "tcp", "host": "10.0.0.1", "port": 10000}),
    ("udp -h 10.0.0.1 -p 53", {"transport": "udp", "port": 53}),
    ("ssl -h example.com -p 443", {"transport": "ssl", "host": "example.com"}),
    ("TCP -h a -p 1", {"transport": "tcp"}),
    ("Ssl -h a -p 1", {"transport": "ssl"}),
    # defaults
    (
        "tcp -h a -p 1",
        {"timeout": 3000, "grid": 0, "qos": 0, "weight": -1, "weight_type": 0, "auth_type": 0},
    ),
    ("tcp -h a -p 1", {"set_id": "", "bind": ""}),
    # every option
    ("tcp -h a -p 1 -t 60000", {"timeout": 60000}),
    ("tcp -h a -p 1 -t 0", {"timeout": 0}),
    ("tcp -h a -p 1 -g 2", {"grid": 2}),
    ("tcp -h a -p 1 -q 46", {"qos": 46}),
    ("tcp -h a -p 1 -w 7", {"weight": 7, "weight_type": 0}),
    ("tcp -h a -p 1 -e 1", {"auth_type": 1}),
    ("tcp -h a -p 1 -e 0", {"auth_type": 0}),
    ("tcp -h a -p 1 -s mtt.sz.1", {"set_id": "mtt.sz.1"}),
    ("tcp -h a -p 1 -s app.sz.*", {"set_id": "app.sz.*"}),
    ("tcp -h a -p 1 -s a.-.c", {"set_id": "a.-.c"}),
    ("tcp -h a -p 1 -b 0.0.0.0", {"bind": "0.0.0.0"}),
    # weight rules
    ("tcp -h a -p 1 -v 1", {"weight": 100, "weight_type": 1}),  # -1 with a type -> 100
    ("tcp -h a -p 1 -v 1 -w 30", {"weight": 30, "weight_type": 1}),
    ("tcp -h a -p 1 -w 500 -v 2", {"weight": 100, "weight_type": 2}),  # capped
    ("tcp -h a -p 1 -w 500", {"weight": 500, "weight_type": 0}),  # no cap without a type
    ("tcp -h a -p 1 -w 0 -v 1", {"weight": 0, "weight_type": 1}),
    ("tcp -h a -p 1 -w 0", {"weight": 0}),
    # ports at the edges; port 0 is a unix socket path in TarsCpp
    ("tcp -h /tmp/s.sock -p 0", {"host": "/tmp/s.sock", "port": 0}),
    ("tcp -h a -p 65535", {"port": 65535}),
    ("tcp -h a -p 0080", {"port": 80}),
    # IPv6 literals
    ("tcp -h ::1 -p 80", {"host": "::1"}),
    ("tcp -h fe80::1%eth0 -p 80", {"host": "fe80::1%eth0"}),
    ("udp -h 2001:db8::ff00:42:8329 -p 80", {"host": "2001:db8::ff00:42:8329"}),
    ("tcp -h :: -p 80", {"host": "::"}),
    ("tcp -h * -p 80", {"host": "*"}),  # kept as written
    # layout: any whitespace, any option order, last duplicate wins
    ("  tcp\t-h  a\n-p 1\r\n", {"host": "a", "port": 1}),
    ("tcp -p 1 -t 5 -h a", {"host": "a", "port": 1, "timeout": 5}),
    ("tcp -h a -h b -p 1 -p 2", {"host": "b", "port": 2}),
    # unknown options ignored; their value (when present) skipped
    ("tcp -h a -p 1 -d container", {"host": "a"}),
    ("tcp -h a -x -p 1", {"port": 1}),
    ("tcp -h a -p 1 -l 5 -m 6 -r 7 -f 8 -z", {"port": 1}),
]


@pytest.mark.parametrize(("text", "expected"), VALID)
def test_parse_valid(text: str, expected: dict[str, Any]) -> None:
    ep = parse_endpoint(text)
    for field, value in expected.items():
        assert getattr(ep, field) == value, field


# --- parse_endpoint: invalid --------------------------------------------------------------

INVALID: list[tuple[str, str]] = [
    ("", "empty"),
    ("   \t ", "empty"),
    ("tcp", "missing -h"),
    ("tcp -p 1", "missing -h"),
    ("tcp -h a", "missing -p"),
    ("tcp -h -p 1", "-h needs a value"),
    ("tcp -h a -p", "-p needs a value"),
    ("tcp -h a -p abc", "'abc'"),
    ("tcp -h a -p 70000", "'70000'"),
    ("tcp -h a -p 65536", "out of range"),
    ("tcp -h a -p 99999999999999999999999", "out of range"),
    ("tcp -h a -p -1", "-p needs a value"),
    ("tcp -h a -p +1", "'+1'"),
    ("tcp -h a -p 1_0", "'1_0'"),
    ("tcp -h a -p ١٢", "-p value"),  # non-ASCII digits
    ("tcp -h a -p x -p 1", "-p value 'x'"),  # checked as read, like C++: a later -p won't help
    ("tcp -h a -p 1 -t x", "-t value 'x'"),
    ("tcp -h a -p 1 -t 3000ms", "'3000ms'"),
    ("tcp -h a -p 1 -t 2147483648", "out of range"),
    ("tcp -h a -p 1 -g g", "-g value"),
    ("tcp -h a -p 1 -q q", "-q value"),
    ("tcp -h a -p 1 -w x", "-w value"),
    ("tcp -h a -p 1 -w -5", "-w needs a value"),
    ("tcp -h a -p 1 -v x", "-v value"),
    ("tcp -h a -p 1 -e 2", "-e value '2'"),
    ("tcp -h a -p 1 -e", "-e needs a value"),
    ("http -h a -p 1", "unknown transport 'http'"),
    ("tcpx -h a -p 1", "unknown transport"),
    ("-h a -p 1", "unknown transport"),
    ("tcp -h a -p 1 junk", "unexpected token 'junk'"),
    ("tcp -h a -p 1 --t 5", "unexpected token '--t'"),
    ("tcp -host a -p 1", "unexpected token '-host'"),
    ("tcp -h a -p 1 -", "unexpected token '-'"),
    ("tcp -h a -p 1 -s a.b", "set id 'a.b'"),
    ("tcp -h a -p 1 -s a.b.c.d", "set id"),
    ("tcp -h a -p 1 -s a..c", "set id"),
    ("tcp -h a -p 1 -s .b.c", "set id"),
    ("tcp -h a -p 1 -s a.b:c.d", "set id"),
    ("tcp -h a -p 1 -s", "-s needs a value"),
    ("tcp -h a -p 1 -b", "-b needs a value"),
    ("tcp -h a\x00b -p 1", "host"),
    ("tcp -h a:tcp -p 1", "separator"),
    ("x" * (MAX_ENDPOINT_LEN + 1), "too long"),
]


@pytest.mark.parametrize(("text", "message"), INVALID)
def test_parse_invalid(text: str, message: str) -> None:
    with pytest.raises(EndpointSyntaxError, match=re.escape(message)):
        parse_endpoint(text)


def test_parse_rejects_non_str() -> None:
    with pytest.raises(EndpointSyntaxError, match="must be a str"):
        parse_endpoint(b"tcp -h a -p 1")  # type: ignore[arg-type]


def test_error_message_is_bounded() -> None:
    text = "tcp -h a -p 1 " + "-x y " * 700 + "junk"
    with pytest.raises(EndpointSyntaxError) as info:
        parse_endpoint(text)
    assert len(str(info.value)) < 300


@pytest.mark.parametrize(
    "text",
    [
        "tcp -h " + ":" * (MAX_LIST_LEN - 20) + " -p 1",  # was quadratic with a trimming regex
        "tcp" + " " * (MAX_LIST_LEN - 10) + "x",
        (":" + " " * 1000) * (MAX_LIST_LEN // 1001),
        "tcp -h a -p 1:" * (MAX_LIST_LEN // 14),
    ],
)
def test_hostile_input_is_cheap(text: str) -> None:
    start = time.perf_counter()
    for fn in (parse_endpoint, parse_endpoint_list, parse_object):
        with contextlib.suppress(EndpointSyntaxError):
            fn(text)
    assert time.perf_counter() - start < 2.0


def test_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="missing -p"):
        parse_endpoint("tcp -h a")


# --- format_endpoint ----------------------------------------------------------------------

FORMATTED: list[tuple[Endpoint, str]] = [
    (Endpoint("tcp", "1.2.3.4", 80), "tcp -h 1.2.3.4 -p 80 -t 3000"),
    (Endpoint("udp", "::1", 53, timeout=0), "udp -h ::1 -p 53 -t 0"),
    (
        Endpoint("ssl", "h", 1, 60000, grid=1, qos=2, weight=3, weight_type=1, auth_type=1),
        "ssl -h h -p 1 -t 60000 -g 1 -q 2 -w 3 -v 1 -e 1",
    ),
    (Endpoint("tcp", "h", 1, weight=0), "tcp -h h -p 1 -t 3000 -w 0"),
    (Endpoint("tcp", "h", 1, set_id="a.b.c"), "tcp -h h -p 1 -t 3000 -s a.b.c"),
    (Endpoint("tcp", "h", 1, bind="::"), "tcp -h h -p 1 -b :: -t 3000"),
]


@pytest.mark.parametrize(("ep", "text"), FORMATTED)
def test_format(ep: Endpoint, text: str) -> None:
    assert format_endpoint(ep) == text
    assert str(ep) == text
    assert parse_endpoint(text) == ep


@pytest.mark.parametrize(("text", "_expected"), VALID)
def test_round_trip_of_parsed(text: str, _expected: dict[str, Any]) -> None:
    ep = parse_endpoint(text)
    assert parse_endpoint(format_endpoint(ep)) == ep


def test_istcp() -> None:
    assert Endpoint("udp", "h", 1).istcp == 0
    assert Endpoint("tcp", "h", 1).istcp == 1
    assert Endpoint("ssl", "h", 1).istcp == 2


# --- Endpoint construction ----------------------------------------------------------------

BAD_FIELDS: list[dict[str, Any]] = [
    {"transport": "http"},
    {"host": ""},
    {"host": "a b"},
    {"host": "-a"},
    {"host": "a\n"},
    {"host": 5},
    {"port": -1},
    {"port": 65536},
    {"port": True},
    {"port": "80"},
    {"timeout": -1},
    {"grid": -1},
    {"qos": -1},
    {"weight": -2},
    {"weight": -1, "weight_type": 1},  # parse would have made it 100
    {"weight": 101, "weight_type": 1},  # parse would have capped it
    {"weight_type": -1},
    {"auth_type": 2},
    {"set_id": "a.b"},
    {"set_id": "a.b.c:"},
    {"bind": "x y"},
    {"bind": "h:udp"},
    {"port": 2**31},
]


@pytest.mark.parametrize("bad", BAD_FIELDS)
def test_constructor_validates(bad: dict[str, Any]) -> None:
    fields: dict[str, Any] = {"transport": "tcp", "host": "h", "port": 1} | bad
    with pytest.raises(EndpointSyntaxError):
        Endpoint(**fields)


def test_endpoint_is_frozen_and_hashable() -> None:
    ep = Endpoint("tcp", "h", 1)
    with pytest.raises(AttributeError):
        ep.port = 2  # type: ignore[misc]
    assert {ep, Endpoint("tcp", "h", 1)} == {ep}


# --- EndpointF ----------------------------------------------------------------------------


def test_to_endpointf() -> None:
    ep = parse_endpoint("ssl -h 1.2.3.4 -p 9 -t 10 -g 1 -q 2 -w 50 -v 1 -e 1 -s a.b.c -b x")
    f = ep.to_endpointf("node-1", groupworkid=3, grouprealid=4, bak_flag=1)
    assert f == EndpointF(
        host="1.2.3.4",
        port=9,
        timeout=10,
        istcp=2,
        grid=1,
        groupworkid=3,
        grouprealid=4,
        setId="a.b.c",
        qos=2,
        bakFlag=1,
        weight=50,
        weightType=1,
        authType=1,
        nodeName="node-1",
    )
    back = Endpoint.from_endpointf(decode_struct(EndpointF, encode_struct(f)))
    assert back == Endpoint("ssl", "1.2.3.4", 9, 10, 1, 2, 50, 1, 1, "a.b.c")  # bind dropped


@pytest.mark.parametrize(
    ("weight", "weight_type", "expected"),
    [(-1, 0, -1), (5, 0, 5), (-1, 1, 100), (500, 2, 100), (0, 1, 0), (40, 1, 40)],
)
def test_from_endpointf_weight_rules(weight: int, weight_type: int, expected: int) -> None:
    f = EndpointF(host="h", port=1, istcp=1, weight=weight, weightType=weight_type)
    assert Endpoint.from_endpointf(f).weight == expected


@pytest.mark.parametrize(
    "bad",
    [{"istcp": 3}, {"istcp": -1}, {"host": ""}, {"port": 70000}, {"grid": -1}, {"authType": 2}],
)
def test_from_endpointf_rejects(bad: dict[str, Any]) -> None:
    fields: dict[str, Any] = {"host": "h", "port": 1, "istcp": 1} | bad
    with pytest.raises(EndpointSyntaxError):
        Endpoint.from_endpointf(EndpointF(**fields))


# --- endpoint lists -----------------------------------------------------------------------

LISTS: list[tuple[str, list[tuple[str, str, int]]]] = [
    ("", []),
    ("  ", []),
    (":", []),
    ("tcp -h a -p 1", [("tcp", "a", 1)]),
    ("tcp -h a -p 1:udp -h b -p 2", [("tcp", "a", 1), ("udp", "b", 2)]),
    ("tcp -h a -p 1 : ssl -h b -p 2", [("tcp", "a", 1), ("ssl", "b", 2)]),
    ("tcp -h a -p 1:  TCP -h b -p 2:", [("tcp", "a", 1), ("tcp", "b", 2)]),
    (":tcp -h a -p 1::tcp -h b -p 2", [("tcp", "a", 1), ("tcp", "b", 2)]),
    ("tcp -h ::1 -p 1:tcp -h fe80::2 -p 2", [("tcp", "::1", 1), ("tcp", "fe80::2", 2)]),
    (
        "tcp -h 2001:db8::1 -p 1 -t 5:udp -h :: -p 2:ssl -h ::ffff:1.2.3.4 -p 3",
        [("tcp", "2001:db8::1", 1), ("udp", "::", 2), ("ssl", "::ffff:1.2.3.4", 3)],
    ),
    # a ':' before a word that only starts with a transport name does not split
    ("tcp -h a -p 1 -d x:tcpx", [("tcp", "a", 1)]),
]


@pytest.mark.parametrize(("text", "expected"), LISTS)
def test_parse_list(text: str, expected: list[tuple[str, str, int]]) -> None:
    eps = parse_endpoint_list(text)
    assert [(e.transport, e.host, e.port) for e in eps] == expected
    assert parse_endpoint_list(format_endpoint_list(eps)) == eps


@pytest.mark.parametrize(
    "text",
    [
        "tcp -h a -p 1:udp",
        "tcp -h a -p 1:tcp -h b",
        "tcp -h a -p 1:http -h b -p 2",  # no split at 'http': '1:http' is a bad port
        "tcp -h a -p 1,tcp -h b -p 2",
        "x" * (MAX_LIST_LEN + 1),
    ],
)
def test_parse_list_invalid(text: str) -> None:
    with pytest.raises(EndpointSyntaxError):
        parse_endpoint_list(text)


def test_format_list() -> None:
    eps = [Endpoint("tcp", "::1", 1), Endpoint("udp", "b", 2, bind="::")]
    text = format_endpoint_list(eps)
    assert text == "tcp -h ::1 -p 1 -t 3000:udp -h b -p 2 -b :: -t 3000"
    assert parse_endpoint_list(text) == eps
    assert format_endpoint_list([]) == ""


# --- object strings -----------------------------------------------------------------------


def test_object_without_endpoints() -> None:
    ref = parse_object("Test.HelloServer.HelloObj")
    assert ref == ObjectRef("Test.HelloServer.HelloObj", (), "")
    assert format_object(ref) == str(ref) == "Test.HelloServer.HelloObj"


def test_object_with_endpoints() -> None:
    text = "tars.tarsregistry.QueryObj@tcp -h 1.2.3.4 -p 17890:tcp -h ::1 -p 17890 -t 10000"
    ref = parse_object(text)
    assert ref.name == "tars.tarsregistry.QueryObj"
    assert ref.suffix == ""
    assert [(e.host, e.port, e.timeout) for e in ref.endpoints] == [
        ("1.2.3.4", 17890, 3000),
        ("::1", 17890, 10000),
    ]
    assert parse_object(format_object(ref)) == ref


@pytest.mark.parametrize(
    ("text", "name", "suffix", "n_endpoints"),
    [
        ("A.B.Obj#1", "A.B.Obj", "1", 0),
        ("A.B.Obj#1@tcp -h a -p 1", "A.B.Obj", "1", 1),
        ("A.B.Obj#a#b", "A.B.Obj", "a#b", 0),
        ("  A.B.Obj@ tcp -h a -p 1 : ", "A.B.Obj", "", 1),
        ("Obj", "Obj", "", 0),  # lenient: not App.Server.Obj
        ("A.B.Obj@tcp -h a#b -p 1", "A.B.Obj", "", 1),  # '#' after '@' belongs to the list
    ],
)
def test_object_forms(text: str, name: str, suffix: str, n_endpoints: int) -> None:
    ref = parse_object(text)
    assert (ref.name, ref.suffix, len(ref.endpoints)) == (name, suffix, n_endpoints)
    assert parse_object(format_object(ref)) == ref


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty object name"),
        ("   ", "empty object name"),
        ("@tcp -h a -p 1", "empty object name"),
        ("#1", "empty object name"),
        ("A.B.Obj@", "no endpoints"),
        ("A.B.Obj@ : ", "no endpoints"),
        ("A.B.Obj#", "empty suffix"),
        ("A.B.Obj#@tcp -h a -p 1", "empty suffix"),
        ("A.B Obj", "object name"),
        ("A.B.Obj\x00", "object name"),
        ("A.B.Obj@tcp -h a", "missing -p"),
        ("A.B.Obj@tcp -h a -p 1@", "-p value '1@'"),
        ("x" * (MAX_LIST_LEN + 1), "too long"),
    ],
)
def test_object_invalid(text: str, message: str) -> None:
    with pytest.raises(EndpointSyntaxError, match=re.escape(message)):
        parse_object(text)


@pytest.mark.parametrize(
    "fields",
    [
        {"name": ""},
        {"name": "a@b"},
        {"name": "a#b"},
        {"name": "a b"},
        {"suffix": "x@y"},
        {"suffix": "x y"},
        {"endpoints": [Endpoint("tcp", "h", 1)]},
        {"endpoints": ("tcp -h h -p 1",)},
    ],
)
def test_object_ref_validates(fields: dict[str, Any]) -> None:
    with pytest.raises(EndpointSyntaxError):
        ObjectRef(**({"name": "A.B.C"} | fields))


# --- validate_object_id -------------------------------------------------------------------


@pytest.mark.parametrize(
    "text", ["A.B.C", "Test.HelloServer.HelloObj", "tars.tarsregistry.QueryObj", "a-1.b_2.C3"]
)
def test_validate_object_id_ok(text: str) -> None:
    assert validate_object_id(text) == text


@pytest.mark.parametrize(
    "text",
    [
        "",
        "A.B",
        "A.B.C.D",
        "A..C",
        ".B.C",
        "A.B.",
        "A.B.C#1",
        "A.B.C@tcp -h a -p 1",
        "A.B.C\n",
        "A.B. C",
        "Ä.B.C",
        "A.B.C" * 1000,
    ],
)
def test_validate_object_id_bad(text: str) -> None:
    with pytest.raises(EndpointSyntaxError):
        validate_object_id(text)
