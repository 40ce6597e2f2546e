"""Hostile input: every malformed byte string is a DecodeError or FrameError, cheaply.

Lengths and counts are never trusted (checked against the remaining bytes before anything
is allocated), nesting is bounded, and frame lengths are judged on the 4-byte header alone.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tarscascade.errors import DecodeError, FrameError
from tarscascade.wire.codec import (
    BYTES,
    INT32_K,
    STRING,
    STRING_MAP,
    Kind,
    decode_value,
    encode_value,
    list_of,
    pack_u32,
)
from tarscascade.wire.framing import DEFAULT_MAX_FRAME, FrameDecoder, encode_frame
from tarscascade.wire.idl.endpointf import ENDPOINT_LIST, EndpointF
from tarscascade.wire.packets import RequestPacket, ResponsePacket
from tarscascade.wire.rpc import ClientRpc, ServerRpc
from tarscascade.wire.struct import decode_struct, encode_struct


def h(text: str) -> bytes:
    return bytes.fromhex(text)


REQUEST = RequestPacket(
    iVersion=1,
    cPacketType=0,
    iMessageType=0x80,
    iRequestId=70000,
    sServantName="tars.tarsregistry.QueryObj",
    sFuncName="findObjectById4Any",
    sBuffer=b"\x16\x05A.B.C",
    iTimeout=3000,
    context={"node_name": "192.0.2.2"},
    status={"STATUS_SETNAME_VALUE": "app.sz.1"},
)
REQUEST_BYTES = encode_struct(REQUEST)
ENDPOINTS = [
    EndpointF("10.0.0.1", 10000, 60000, 1, 0, 3, 4, "a.b.c", 0, 0, 100, 1, 1, "node1"),
    EndpointF("10.0.0.2", 10001),
]
ENDPOINTS_BYTES = encode_value(ENDPOINT_LIST, ENDPOINTS, 0)
EP_REQUIRED = "06 01 68 11 27 10 22 00 00 EA 60 30 01 4C"  # EndpointF tags 0-4


# ------------------------------------------------------------------ truncation


def test_the_untruncated_request_decodes() -> None:
    assert decode_struct(RequestPacket, REQUEST_BYTES) == REQUEST


@pytest.mark.parametrize("cut", range(len(REQUEST_BYTES)))
def test_a_request_packet_truncated_anywhere_is_a_decode_error(cut: int) -> None:
    with pytest.raises(DecodeError):
        decode_struct(RequestPacket, REQUEST_BYTES[:cut])


@pytest.mark.parametrize("cut", range(len(ENDPOINTS_BYTES)))
def test_a_list_of_endpoints_truncated_anywhere_is_a_decode_error(cut: int) -> None:
    with pytest.raises(DecodeError):
        decode_value(ENDPOINT_LIST, ENDPOINTS_BYTES[:cut], 0)


def test_a_truncated_frame_is_buffered_not_decoded() -> None:
    frame = encode_frame(REQUEST_BYTES)
    for cut in range(len(frame)):
        server = ServerRpc()
        assert server.receive_data(frame[:cut]) == []
        assert server.buffered == cut
        assert server.receive_data(frame[cut:]) == [REQUEST]


# ------------------------------------------------------------------ lengths and counts

HUGE_COUNT = "02 7F FF FF FF"  # Int32 2**31-1 with tag 0


@pytest.mark.parametrize(
    ("decode", "data"),
    [
        pytest.param(
            lambda b: decode_value(list_of(INT32_K), b, 0),
            "09" + HUGE_COUNT + "0C 0C 0C 0C",
            id="vector<int>",
        ),
        pytest.param(
            lambda b: decode_value(ENDPOINT_LIST, b, 0),
            "09" + HUGE_COUNT + "0A 0B 0A 0B",
            id="vector<EndpointF>",
        ),
        pytest.param(
            lambda b: decode_value(STRING_MAP, b, 0), "08" + HUGE_COUNT + "0C 1C 0C 1C", id="map"
        ),
        pytest.param(
            lambda b: decode_value(BYTES, b, 0), "0D 00" + HUGE_COUNT + "00 00 00", id="bytes"
        ),
        pytest.param(
            lambda b: decode_value(BYTES, b, 0), "09" + HUGE_COUNT + "0C 0C 0C 0C", id="bytes-list"
        ),
        pytest.param(
            lambda b: decode_value(STRING, b, 1), "09" + HUGE_COUNT + "0C 0C 0C 0C", id="skip-list"
        ),
        pytest.param(
            lambda b: decode_value(STRING, b, 1), "08" + HUGE_COUNT + "0C 1C 0C 1C", id="skip-map"
        ),
        pytest.param(
            lambda b: decode_value(STRING, b, 1),
            "0D 00" + HUGE_COUNT + "00 00 00",
            id="skip-simple-list",
        ),
        pytest.param(
            lambda b: decode_struct(EndpointF, b),
            EP_REQUIRED + "A9" + HUGE_COUNT + "0C 0C 0C 0C",
            id="unknown list in a struct",
        ),
        pytest.param(
            lambda b: decode_struct(RequestPacket, b),
            "10 01 2C 3C 40 01 56 00 66 00 7D 00" + HUGE_COUNT + "8C 98 0C A8 0C",
            id="request sBuffer",
        ),
    ],
)
def test_a_container_claiming_2_to_the_31_elements_in_a_few_bytes_is_a_decode_error(
    decode: Callable[[bytes], Any], data: str
) -> None:
    raw = h(data)
    assert len(raw) <= 24
    with pytest.raises(DecodeError, match="larger than the remaining"):
        decode(raw)


@pytest.mark.parametrize(
    ("kind", "data"),
    [
        pytest.param(list_of(INT32_K), "09 00 FF", id="list -1"),
        pytest.param(list_of(INT32_K), "09 02 80 00 00 00", id="list -2^31"),
        pytest.param(STRING_MAP, "08 00 FF", id="map -1"),
        pytest.param(BYTES, "0D 00 00 FF", id="simple list -1"),
        pytest.param(BYTES, "09 01 FF FF", id="list of char -1"),
    ],
)
def test_a_negative_container_size_is_a_decode_error(kind: Kind[Any], data: str) -> None:
    with pytest.raises(DecodeError, match="negative"):
        decode_value(kind, h(data), 0)


@pytest.mark.parametrize(
    ("decode", "data"),
    [
        pytest.param(lambda b: decode_value(STRING, b, 0), "06 05 61 62", id="string1"),
        pytest.param(lambda b: decode_value(STRING, b, 0), "07 FF FF FF FF 61", id="string4"),
        pytest.param(lambda b: decode_value(STRING, b, 0), "07 00 00", id="string4 length cut"),
        pytest.param(lambda b: decode_value(STRING, b, 0), "06", id="string1 length missing"),
        pytest.param(lambda b: decode_value(INT32_K, b, 0), "16 05 61", id="skipped string1"),
        pytest.param(
            lambda b: decode_value(INT32_K, b, 0), "17 7F FF FF FF 61", id="skipped string4"
        ),
        pytest.param(lambda b: decode_struct(EndpointF, b), "06 09 68", id="struct host"),
        pytest.param(
            lambda b: decode_struct(EndpointF, b), "07 00 01 00 00 68", id="struct host string4"
        ),
        pytest.param(
            lambda b: decode_struct(EndpointF, b),
            EP_REQUIRED + "A7 10 00 00 00 61",
            id="unknown string4 in a struct",
        ),
        pytest.param(lambda b: decode_value(BYTES, b, 0), "0D 00 00 09 01", id="bytes"),
    ],
)
def test_a_string_or_bytes_length_past_the_buffer_is_a_decode_error(
    decode: Callable[[bytes], Any], data: str
) -> None:
    with pytest.raises(DecodeError):
        decode(h(data))


@pytest.mark.parametrize(
    ("head", "data"),
    [
        pytest.param("02", "", id="int32 head without payload"),
        pytest.param("02", "00 01", id="int32 with 2 of 4 bytes"),
        pytest.param("03", "00 00 00", id="int64 with 3 of 8 bytes"),
        pytest.param("04", "00", id="float with 1 of 4 bytes"),
        pytest.param("05", "00 00", id="double with 2 of 8 bytes"),
        pytest.param("F0", "", id="two-byte head without its tag byte"),
    ],
)
def test_a_value_cut_inside_its_payload_is_a_decode_error(head: str, data: str) -> None:
    # the value sits at tag 0 and is skipped while looking for tag 1
    with pytest.raises(DecodeError):
        decode_value(INT32_K, h(head + data), 1)


# ------------------------------------------------------------------ deep nesting

DEPTH = 10_000


@pytest.mark.parametrize(
    ("name", "nest"),
    [
        ("list heads", "09 00 01"),  # a list of one element, which is a list of one...
        ("struct begins", "0A"),
        ("map values", "08 00 01 0C 1A"),  # key 0, value a struct holding...
        ("list of maps", "09 00 01 08 00 01 0C 19 00 01"),
    ],
)
@pytest.mark.parametrize(
    ("decode", "prefix", "tag"),
    [
        pytest.param(lambda b: decode_value(INT32_K, b, 5), "", 14, id="decode_value"),
        pytest.param(lambda b: decode_struct(EndpointF, b), EP_REQUIRED, 10, id="EndpointF"),
        pytest.param(lambda b: decode_struct(RequestPacket, b), "", 0, id="RequestPacket"),
        pytest.param(lambda b: decode_struct(ResponsePacket, b), "", 0, id="ResponsePacket"),
        pytest.param(
            lambda b: decode_value(ENDPOINT_LIST, b, 0),
            "09 00 01 0A" + EP_REQUIRED,
            10,
            id="vector<EndpointF>",
        ),
    ],
)
def test_deep_nesting_inside_an_unknown_tag_is_a_decode_error_not_a_recursion_error(
    name: str, nest: str, decode: Callable[[bytes], Any], prefix: str, tag: int
) -> None:
    unit = h(nest)
    first = bytes([(tag << 4) | (unit[0] & 15)]) + unit[1:]
    data = h(prefix) + first + unit * DEPTH + b"\x0c" * 16
    with pytest.raises(DecodeError, match="nesting deeper"):
        decode(data)


def test_moderate_nesting_inside_an_unknown_tag_is_skipped() -> None:
    nested = h("A9 00 01") + h("09 00 01") * 30 + h("0C")
    assert decode_struct(EndpointF, h(EP_REQUIRED) + nested + h("B0 07")).weight == 7


# ------------------------------------------------------------------ invalid type ids


@pytest.mark.parametrize("typ", [14, 15])
@pytest.mark.parametrize(
    ("where", "decode", "data"),
    [
        ("as the wanted value", lambda b: decode_value(INT32_K, b, 0), ""),
        ("as a skipped value", lambda b: decode_value(INT32_K, b, 3), ""),
        ("in a struct", lambda b: decode_struct(EndpointF, b), EP_REQUIRED),
        ("as a list element", lambda b: decode_value(list_of(INT32_K), b, 0), "09 00 01"),
        ("in a nested struct", lambda b: decode_value(ENDPOINT_LIST, b, 0), "09 00 01 0A"),
    ],
)
def test_type_ids_14_and_15_are_a_decode_error(
    typ: int, where: str, decode: Callable[[bytes], Any], data: str
) -> None:
    bad = bytes([typ]) if where != "in a struct" else bytes([0xA0 | typ])
    with pytest.raises(DecodeError):
        decode(h(data) + bad + b"\x00" * 8)


@pytest.mark.parametrize(
    ("decode", "data"),
    [
        pytest.param(lambda b: decode_value(INT32_K, b, 1), "0B 1C", id="skipped struct end"),
        pytest.param(lambda b: decode_struct(EndpointF, b), "0B", id="struct end at top level"),
        pytest.param(
            lambda b: decode_value(ENDPOINT_LIST, b, 0),
            "09 00 01 0A" + EP_REQUIRED,
            id="nested struct without its end",
        ),
    ],
)
def test_misplaced_or_missing_struct_ends_are_a_decode_error(
    decode: Callable[[bytes], Any], data: str
) -> None:
    with pytest.raises(DecodeError):
        decode(h(data))


# ------------------------------------------------------------------ frame lengths

MAX = 1024


@pytest.mark.parametrize("length", [0, 1, 4, MAX + 1, 2**31, 2**32 - 1])
@pytest.mark.parametrize(
    "feed",
    [
        pytest.param(lambda b: FrameDecoder(MAX).feed(b), id="FrameDecoder"),
        pytest.param(lambda b: ClientRpc(max_frame=MAX).receive_data(b), id="ClientRpc"),
        pytest.param(lambda b: ServerRpc(max_frame=MAX).receive_data(b), id="ServerRpc"),
    ],
)
def test_a_bad_frame_length_is_a_frame_error_on_the_four_header_bytes_alone(
    length: int, feed: Callable[[bytes], Any]
) -> None:
    with pytest.raises(FrameError):
        feed(pack_u32(length))


def test_the_default_maximum_applies_without_configuration() -> None:
    with pytest.raises(FrameError):
        FrameDecoder().feed(pack_u32(DEFAULT_MAX_FRAME + 1))
    assert FrameDecoder().feed(pack_u32(DEFAULT_MAX_FRAME)) == []


def test_a_bad_length_after_a_good_frame_is_a_frame_error_after_the_good_frame() -> None:
    dec = FrameDecoder(MAX)
    assert dec.feed(encode_frame(b"\x0c") + pack_u32(MAX + 1)) == [b"\x0c"]
    assert isinstance(dec.error, FrameError)
    with pytest.raises(FrameError):
        dec.feed(b"")


def test_a_frame_exactly_at_max_frame_is_accepted() -> None:
    payload = bytes(range(256)) * 4
    frame = encode_frame(payload[: MAX - 4], max_frame=MAX)
    assert len(frame) == MAX
    dec = FrameDecoder(MAX)
    assert dec.feed(frame[:4]) == []
    assert dec.feed(frame[4:]) == [payload[: MAX - 4]]
    assert dec.buffered == 0


def test_the_smallest_frame_is_accepted() -> None:
    assert FrameDecoder(MAX).feed(h("00 00 00 05 0C")) == [b"\x0c"]


def test_encode_frame_refuses_a_payload_over_max_frame() -> None:
    with pytest.raises(FrameError):
        encode_frame(b"\x00" * (MAX - 3), max_frame=MAX)


def test_encode_frame_refuses_an_empty_payload() -> None:
    with pytest.raises(FrameError):
        encode_frame(b"")


def test_a_request_frame_with_a_bad_packet_inside_is_a_decode_error_for_the_server() -> None:
    with pytest.raises(DecodeError):
        ServerRpc().receive_data(encode_frame(REQUEST_BYTES[:-1]))


def test_a_response_frame_with_a_bad_packet_inside_is_a_decode_error_for_the_client() -> None:
    with pytest.raises(DecodeError):
        ClientRpc().receive_data(encode_frame(h("10 01 2C 30 01")))
