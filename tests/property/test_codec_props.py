"""Property tests for the TARS codec, framing and RPC state machines.

* encode -> decode is the identity for every kind, at every tag;
* framing is insensitive to how the byte stream is chunked;
* random or mutated bytes only ever raise ProtocolError subclasses (DecodeError /
  FrameError) from every decoding entry point: never another exception type.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tarscascade.errors import DecodeError, FrameError
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
    list_of,
    map_of,
)
from tarscascade.wire.framing import FrameDecoder, encode_frame
from tarscascade.wire.idl.endpointf import ENDPOINT_F, ENDPOINT_LIST, EndpointF
from tarscascade.wire.packets import (
    STATUS_RESULT_CODE,
    STATUS_RESULT_DESC,
    RequestPacket,
    ResponsePacket,
)
from tarscascade.wire.rpc import ClientRpc, ServerRpc
from tarscascade.wire.struct import decode_struct, encode_struct, struct_kind

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def ints(lo: int, hi: int) -> st.SearchStrategy[int]:
    # bias towards the narrowing boundaries as well as random values
    edges = [
        v for v in (0, -1, 127, 128, -128, -129, 32767, 32768, -32768, -32769) if lo <= v <= hi
    ]
    edges += [lo, hi, lo + 1, hi - 1]
    return st.one_of(st.sampled_from(edges), st.integers(lo, hi))


tags = st.integers(0, 255)
int8s = ints(-(2**7), 2**7 - 1)
int16s = ints(-(2**15), 2**15 - 1)
int32s = ints(-(2**31), 2**31 - 1)
int64s = ints(-(2**63), 2**63 - 1)
texts = st.text(max_size=300)
small_texts = st.text(max_size=20)
blobs = st.binary(max_size=300)

endpoints = st.builds(
    EndpointF,
    host=small_texts,
    port=int32s,
    timeout=int32s,
    istcp=int32s,
    grid=int32s,
    groupworkid=int32s,
    grouprealid=int32s,
    setId=small_texts,
    qos=int32s,
    bakFlag=int32s,
    weight=int32s,
    weightType=int32s,
    authType=int32s,
    nodeName=small_texts,
)
string_maps = st.dictionaries(small_texts, small_texts, max_size=5)
requests = st.builds(
    RequestPacket,
    iVersion=int16s,
    cPacketType=int8s,
    iMessageType=int32s,
    iRequestId=int32s,
    sServantName=small_texts,
    sFuncName=small_texts,
    sBuffer=blobs,
    iTimeout=int32s,
    context=string_maps,
    status=string_maps,
)
responses = st.builds(
    ResponsePacket,
    iVersion=int16s,
    cPacketType=int8s,
    iRequestId=int32s,
    iMessageType=int32s,
    iRet=int32s,
    sBuffer=blobs,
    status=string_maps,
    sResultDesc=small_texts,
    context=string_maps,
)

SCALARS: list[tuple[Kind[Any], st.SearchStrategy[Any]]] = [
    (INT8, int8s),
    (INT16, int16s),
    (INT32_K, int32s),
    (INT64_K, int64s),
    (UINT8, ints(0, 2**8 - 1)),
    (UINT16, ints(0, 2**16 - 1)),
    (UINT32, ints(0, 2**32 - 1)),
    (BOOL, st.booleans()),
    (FLOAT_K, st.floats(width=32, allow_nan=False)),
    (DOUBLE_K, st.floats(allow_nan=False)),
    (STRING, texts),
    (BYTES, blobs),
    (ENDPOINT_F, endpoints),
    (struct_kind(RequestPacket), requests),
    (struct_kind(ResponsePacket), responses),
]
HASHABLE = [
    (INT32_K, int32s),
    (INT64_K, int64s),
    (STRING, small_texts),
    (BYTES, st.binary(max_size=8)),
]


def kinds(depth: int) -> st.SearchStrategy[Kind[Any]]:
    """Scalar and struct kinds, and lists/maps of them nested up to ``depth`` levels."""
    scalar = st.sampled_from([k for k, _ in SCALARS])
    if depth == 0:
        return scalar
    inner = kinds(depth - 1)
    keys = st.sampled_from([k for k, _ in HASHABLE])
    return st.one_of(
        scalar,
        inner.map(list_of),
        st.tuples(keys, inner).map(lambda kv: map_of(*kv)),
    )


def values_of(kind: Kind[Any]) -> st.SearchStrategy[Any]:
    for k, values in SCALARS:
        if k is kind:
            return values
    if isinstance(kind, ListKind):
        return st.lists(values_of(kind.elem), max_size=4)
    if isinstance(kind, MapKind):
        keys = next(v for k, v in HASHABLE if k is kind.key)
        return st.dictionaries(keys, values_of(kind.value), max_size=4)
    raise AssertionError(kind)


def kind_and_value() -> st.SearchStrategy[tuple[Kind[Any], Any]]:
    return kinds(2).flatmap(lambda k: st.tuples(st.just(k), values_of(k)))


# ------------------------------------------------------------------ round trips


@SETTINGS
@given(kv=st.one_of(*(st.tuples(st.just(k), v) for k, v in SCALARS)), tag=tags)
def test_every_scalar_and_struct_kind_round_trips_at_any_tag(
    kv: tuple[Kind[Any], Any], tag: int
) -> None:
    kind, value = kv
    enc = encode_value(kind, value, tag)
    assert decode_value(kind, enc, tag) == value


@SETTINGS
@given(kv=kind_and_value(), tag=tags)
def test_lists_and_maps_nested_two_levels_round_trip_at_any_tag(
    kv: tuple[Kind[Any], Any], tag: int
) -> None:
    kind, value = kv
    assert decode_value(kind, encode_value(kind, value, tag), tag) == value


@SETTINGS
@given(kv=kind_and_value(), tag=tags, other=st.integers(0, 255), noise=requests)
def test_a_value_is_found_among_unknown_fields(
    kv: tuple[Kind[Any], Any], tag: int, other: int, noise: RequestPacket
) -> None:
    kind, value = kv
    if other == tag:
        other = (tag + 1) % 256
    filler = encode_value(struct_kind(RequestPacket), noise, other)
    data = filler + encode_value(kind, value, tag) + filler
    assert decode_value(kind, data, tag) == value


@SETTINGS
@given(ep=endpoints)
def test_endpointf_round_trips_as_a_top_level_struct(ep: EndpointF) -> None:
    assert decode_struct(EndpointF, encode_struct(ep)) == ep


@SETTINGS
@given(eps=st.lists(endpoints, max_size=5), tag=tags)
def test_vector_of_endpointf_round_trips(eps: list[EndpointF], tag: int) -> None:
    assert decode_value(ENDPOINT_LIST, encode_value(ENDPOINT_LIST, eps, tag), tag) == eps


@SETTINGS
@given(pkt=requests)
def test_request_packets_round_trip_and_re_encode_identically(pkt: RequestPacket) -> None:
    enc = encode_struct(pkt)
    back = decode_struct(RequestPacket, enc)
    assert back == pkt
    assert encode_struct(back) == enc


@SETTINGS
@given(pkt=responses)
def test_response_packets_round_trip_and_re_encode_identically(pkt: ResponsePacket) -> None:
    enc = encode_struct(pkt)
    back = decode_struct(ResponsePacket, enc)
    assert back == pkt
    assert encode_struct(back) == enc


# ------------------------------------------------------------------ framing


@SETTINGS
@given(
    payloads=st.lists(st.binary(min_size=1, max_size=64), max_size=8),
    cuts=st.lists(st.integers(0, 10_000), max_size=12),
)
def test_frame_decoder_yields_the_same_payloads_however_the_stream_is_chunked(
    payloads: list[bytes], cuts: list[int]
) -> None:
    stream = b"".join(encode_frame(p) for p in payloads)
    points = sorted({c % (len(stream) + 1) for c in cuts} | {0, len(stream)})
    dec = FrameDecoder()
    got: list[bytes] = []
    for a, b in itertools.pairwise(points):
        got += dec.feed(stream[a:b])
    assert got == payloads
    assert dec.buffered == 0


@SETTINGS
@given(pkts=st.lists(requests, min_size=1, max_size=4), chunk=st.integers(1, 50))
def test_server_rpc_decodes_requests_however_the_stream_is_chunked(
    pkts: list[RequestPacket], chunk: int
) -> None:
    stream = b"".join(encode_frame(encode_struct(p)) for p in pkts)
    server = ServerRpc()
    got: list[RequestPacket] = []
    for i in range(0, len(stream), chunk):
        got += server.receive_data(stream[i : i + chunk])
    assert got == pkts


# ------------------------------------------------------------------ hostile bytes

MUTATIONS = st.lists(
    st.tuples(
        st.sampled_from(["flip", "set", "insert", "delete", "truncate"]),
        st.integers(0, 2**16),
        st.integers(0, 255),
    ),
    min_size=1,
    max_size=6,
)


def mutate(data: bytes, ops: list[tuple[str, int, int]]) -> bytes:
    buf = bytearray(data)
    for op, where, byte in ops:
        i = where % (len(buf) + 1)
        if op == "insert":
            buf.insert(i, byte)
        elif op == "truncate":
            del buf[i:]
        elif not buf:
            continue
        elif op == "flip":
            buf[i % len(buf)] ^= 1 << (byte % 8)
        elif op == "set":
            buf[i % len(buf)] = byte
        else:
            del buf[i % len(buf)]
    return bytes(buf)


valid_encodings = st.one_of(
    requests.map(encode_struct),
    responses.map(encode_struct),
    endpoints.map(encode_struct),
    st.lists(endpoints, max_size=3).map(lambda e: encode_value(ENDPOINT_LIST, e, 0)),
)
hostile = st.one_of(
    st.binary(max_size=200),
    st.builds(mutate, valid_encodings, MUTATIONS),
)


def _client_receive(data: bytes) -> Any:
    client = ClientRpc()
    for _ in range(3):
        client.send_request("S", "f", b"")
    return client.receive_data(data)


DECODERS: list[tuple[str, Callable[[bytes], Any]]] = [
    ("RequestPacket", lambda b: decode_struct(RequestPacket, b)),
    ("ResponsePacket", lambda b: decode_struct(ResponsePacket, b)),
    ("EndpointF", lambda b: decode_struct(EndpointF, b)),
    ("vector<EndpointF>", lambda b: decode_value(list_of(ENDPOINT_F), b, 0)),
    ("ClientRpc framed", lambda b: _client_receive(encode_frame(b))),
    ("ServerRpc framed", lambda b: ServerRpc().receive_data(encode_frame(b))),
    ("ClientRpc raw", _client_receive),
    ("ServerRpc raw", lambda b: ServerRpc().receive_data(b)),
]


def only_protocol_errors(decode: Callable[[bytes], Any], data: bytes) -> None:
    """Decode; a DecodeError/FrameError is fine, any other exception fails the test."""
    with contextlib.suppress(DecodeError, FrameError):
        decode(data)


@SETTINGS
@given(data=hostile, cls=st.sampled_from([RequestPacket, ResponsePacket, EndpointF]))
def test_whatever_decodes_re_encodes_to_something_that_decodes_the_same(
    data: bytes, cls: type[Any]
) -> None:
    try:
        obj = decode_struct(cls, data)
    except DecodeError:
        return
    assert decode_struct(cls, encode_struct(obj)) == obj


@SETTINGS
@given(data=hostile, which=st.sampled_from(DECODERS))
def test_hostile_bytes_only_ever_raise_decode_or_frame_errors(
    data: bytes, which: tuple[str, Callable[[bytes], Any]]
) -> None:
    only_protocol_errors(which[1], data)


@SETTINGS
@given(pkt=requests, ops=MUTATIONS)
def test_mutated_request_frames_only_ever_raise_protocol_errors_in_every_decoder(
    pkt: RequestPacket, ops: list[tuple[str, int, int]]
) -> None:
    frame = encode_frame(encode_struct(pkt))
    for data in (mutate(frame[4:], ops), mutate(frame, ops)):
        for _, decode in DECODERS:
            only_protocol_errors(decode, data)


tup_replies = st.builds(
    RequestPacket,
    iVersion=st.sampled_from([2, 3]),
    iRequestId=st.integers(0, 4),
    sBuffer=blobs,
    status=st.dictionaries(
        st.sampled_from([STATUS_RESULT_CODE, STATUS_RESULT_DESC, "other"]),
        st.one_of(small_texts, st.integers(-(2**40), 2**40).map(str)),
        max_size=3,
    ),
)
replies = st.one_of(
    responses.map(encode_struct),
    st.builds(lambda r, rid: encode_struct(_with_id(r, rid)), responses, st.integers(0, 4)),
    tup_replies.map(encode_struct),
)


def _with_id(pkt: ResponsePacket, rid: int) -> ResponsePacket:
    pkt.iRequestId = rid
    return pkt


@SETTINGS
@given(payload=replies, ops=st.one_of(st.just([]), MUTATIONS))
def test_mutated_replies_only_ever_raise_protocol_errors_in_the_client(
    payload: bytes, ops: list[tuple[str, int, int]]
) -> None:
    # TUP replies (version 2/3) take the RequestPacket-shaped branch of decode_response
    only_protocol_errors(lambda b: _client_receive(encode_frame(b)), mutate(payload, ops))
