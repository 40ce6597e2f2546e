"""Properties of endpoint / object strings: format-parse round trips, only clean errors."""

from __future__ import annotations

import contextlib
import dataclasses

from hypothesis import given, settings
from hypothesis import strategies as st

from tarscascade.errors import EndpointSyntaxError
from tarscascade.wire.endpoint import (
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

INT32_MAX = 2**31 - 1
# no separators (Z*) or control/surrogate/unassigned characters (C*): what a token may hold
_TOKEN_CHARS = st.characters(blacklist_categories=("Z", "C"))


def _accepts(**fields: object) -> bool:
    try:
        Endpoint(**({"transport": "tcp", "host": "h", "port": 1} | fields))  # type: ignore[arg-type]
    except EndpointSyntaxError:
        return False
    return True


_hostname = st.from_regex(
    r"[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?(\.[a-z0-9-]{1,10}){0,3}", fullmatch=True
)
_any_token = st.text(_TOKEN_CHARS, min_size=1, max_size=30)

hosts = st.one_of(
    st.ip_addresses(v=4).map(str),
    st.ip_addresses(v=6).map(str),
    _hostname,
    st.just("*"),
    st.just("/tmp/app.sock"),
    _any_token.filter(lambda h: _accepts(host=h)),
)
binds = st.one_of(st.just(""), st.just("::"), st.ip_addresses().map(str), hosts)
_set_part = st.text(_TOKEN_CHARS, min_size=1, max_size=8).filter(
    lambda p: "." not in p and ":" not in p
)
set_ids = st.one_of(
    st.just(""),
    st.builds(lambda a, b, c: f"{a}.{b}.{c}", _set_part, _set_part, _set_part).filter(
        lambda s: not s.startswith("-")
    ),
)
_uint = st.one_of(st.integers(0, 10), st.integers(0, INT32_MAX))


@st.composite
def endpoints(draw: st.DrawFn) -> Endpoint:
    weight_type = draw(st.one_of(st.just(0), st.integers(1, 2), st.integers(0, INT32_MAX)))
    if weight_type:
        weight = draw(st.integers(0, 100))
    else:
        weight = draw(st.one_of(st.just(-1), _uint))
    return Endpoint(
        transport=draw(st.sampled_from(["tcp", "udp", "ssl"])),
        host=draw(hosts),
        port=draw(st.integers(0, 65535)),
        timeout=draw(st.one_of(st.just(3000), _uint)),
        grid=draw(_uint),
        qos=draw(_uint),
        weight=weight,
        weight_type=weight_type,
        auth_type=draw(st.integers(0, 1)),
        set_id=draw(set_ids),
        bind=draw(binds),
    )


_name = st.text(_TOKEN_CHARS, min_size=1, max_size=40).filter(
    lambda s: "@" not in s and "#" not in s
)
_suffix = st.one_of(st.just(""), st.text(_TOKEN_CHARS, min_size=1, max_size=8)).filter(
    lambda s: "@" not in s
)
objects = st.builds(
    ObjectRef,
    name=_name,
    endpoints=st.lists(endpoints(), max_size=4).map(tuple),
    suffix=_suffix,
)


@settings(deadline=None)
@given(endpoints())
def test_endpoint_round_trip(ep: Endpoint) -> None:
    text = format_endpoint(ep)
    assert parse_endpoint(text) == ep
    # surrounding whitespace and the transport's case do not matter
    assert parse_endpoint(f"  {text.upper()[:3]}{text[3:]}\n") == ep


@settings(deadline=None)
@given(st.lists(endpoints(), max_size=6))
def test_endpoint_list_round_trip(eps: list[Endpoint]) -> None:
    assert parse_endpoint_list(format_endpoint_list(eps)) == eps
    # stray colons and spaces around each endpoint are tolerated
    sloppy = " : ".join(format_endpoint(e) for e in eps)
    assert parse_endpoint_list(f":{sloppy}: ") == eps


@settings(deadline=None)
@given(objects)
def test_object_round_trip(ref: ObjectRef) -> None:
    assert parse_object(format_object(ref)) == ref


@settings(deadline=None)
@given(endpoints(), st.text(max_size=10), st.integers(-1, 5), st.integers(-1, 5))
def test_endpointf_round_trip(ep: Endpoint, node: str, work: int, real: int) -> None:
    f = ep.to_endpointf(node, groupworkid=work, grouprealid=real)
    decoded = decode_struct(EndpointF, encode_struct(f))
    assert (decoded.nodeName, decoded.groupworkid, decoded.grouprealid) == (node, work, real)
    assert Endpoint.from_endpointf(decoded) == dataclasses.replace(ep, bind="")


# --- hostile input: nothing but EndpointSyntaxError ---------------------------------------

_WORDS = [
    "tcp", "udp", "ssl", "TCP", "http", "-h", "-p", "-t", "-g", "-q", "-w", "-v", "-e", "-s",
    "-b", "-x", "-", "--", "::1", "::", "fe80::1", "1.2.3.4", "*", "0", "1", "100", "65535",
    "65536", "-1", "2147483648", "99999999999999999999", "a.b.c", "a.b", "a..b", "A.B.Obj",
    "@", "#", ":", "x:tcp", "\x00", "١",
]  # fmt: skip
_SEPS = [" ", "  ", "\t", ":", " : ", "@", "#", "\n", ""]

soup = st.lists(
    st.one_of(st.sampled_from(_WORDS), st.sampled_from(_SEPS), st.text(max_size=5)),
    max_size=30,
).map("".join)
hostile = st.one_of(st.text(), soup)


def _only_syntax_errors(text: str) -> None:
    for fn in (parse_endpoint, parse_endpoint_list, parse_object, validate_object_id):
        with contextlib.suppress(EndpointSyntaxError):
            fn(text)


@settings(deadline=None, max_examples=500)
@given(hostile)
def test_random_text_raises_only_syntax_errors(text: str) -> None:
    _only_syntax_errors(text)


@settings(deadline=None, max_examples=300)
@given(hostile)
def test_whatever_parses_is_stable(text: str) -> None:
    """Anything accepted formats to a canonical string that parses to the same value."""
    try:
        ep = parse_endpoint(text)
    except EndpointSyntaxError:
        pass
    else:
        assert parse_endpoint(format_endpoint(ep)) == ep
    try:
        ref = parse_object(text)
    except EndpointSyntaxError:
        pass
    else:
        assert parse_object(format_object(ref)) == ref
