"""The TARS binary codec against the reference's worked bytes (tars-protocol.md §1).

Every case is a concrete byte string taken from the reference (§1.10 table, §1.3 integer
narrowing and widening, §1.4 floats, §1.5 strings, §1.6 containers, §1.7 structs) or derived
by hand from those rules.
"""

from __future__ import annotations

from typing import Any

import pytest

from tarscascade.errors import DecodeError, EncodeError
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
    UINT8,
    UINT16,
    UINT32,
    Kind,
    decode_value,
    encode_value,
    list_of,
    map_of,
)
from tarscascade.wire.idl.endpointf import ENDPOINT_F, ENDPOINT_LIST, EndpointF
from tarscascade.wire.packets import RequestPacket, ResponsePacket
from tarscascade.wire.struct import (
    decode_struct,
    encode_struct,
    struct_info,
    struct_kind,
    tars_struct,
    tfield,
)


def h(text: str) -> bytes:
    """Hex with optional spaces -> bytes."""
    return bytes.fromhex(text)


@tars_struct
class Empty:
    pass


@tars_struct
class Inner:
    a: int = tfield(0, INT32_K, require=True, default=0)
    s: str = tfield(1, STRING, default="")


INNER = struct_kind(Inner)


@tars_struct
class Outer:
    inner: Inner = tfield(0, INNER, require=True, default_factory=Inner)
    inners: list[Inner] = tfield(1, list_of(INNER), default_factory=list)
    by_name: dict[str, Inner] = tfield(2, map_of(STRING, INNER), default_factory=dict)
    far: int = tfield(20, INT64_K, default=0)
    farther: str = tfield(200, STRING, default="")


# ------------------------------------------------------------------ §1.10 worked examples

S300 = "x" * 300

SECTION_1_10 = [
    pytest.param(INT32_K, 300, 1, "11 01 2C", id="int32 300 at tag 1"),
    pytest.param(STRING, "ab", 2, "26 02 61 62", id="string ab at tag 2"),
    pytest.param(INT32_K, 0, 3, "3C", id="int 0 at tag 3"),
    pytest.param(INT32_K, 5, 20, "F0 14 05", id="int 5 at tag 20"),
    pytest.param(INT32_K, -1, 0, "00 FF", id="int -1 at tag 0"),
    pytest.param(INT32_K, 70000, 0, "02 00 01 11 70", id="int 70000 at tag 0"),
    pytest.param(INT64_K, 2**32, 0, "03 00 00 00 01 00 00 00 00", id="long 2^32 at tag 0"),
    pytest.param(BOOL, True, 4, "40 01", id="bool true at tag 4"),
    pytest.param(DOUBLE_K, 1.5, 5, "55 3F F8 00 00 00 00 00 00", id="double 1.5 at tag 5"),
    pytest.param(BYTES, b"\x01\x02", 7, "7D 00 00 02 01 02", id="vector<byte> 0102 at tag 7"),
    pytest.param(BYTES, b"", 6, "6D 00 0C", id="empty vector<byte> at tag 6"),
    pytest.param(list_of(INT32_K), [1, 300], 2, "29 00 02 00 01 01 01 2C", id="vector<int>"),
    pytest.param(STRING_MAP, {"a": "b"}, 9, "98 00 01 06 01 61 16 01 62", id="map a->b"),
    pytest.param(STRING_MAP, {}, 10, "A8 0C", id="empty map at tag 10"),
    pytest.param(struct_kind(Empty), Empty(), 0, "0A 0B", id="empty struct at tag 0"),
    pytest.param(STRING, S300, 1, "17 00 00 01 2C" + "78" * 300, id="string of 300 bytes"),
]


@pytest.mark.parametrize(("kind", "value", "tag", "expected"), SECTION_1_10)
def test_encode_value_writes_the_reference_bytes(
    kind: Kind[Any], value: Any, tag: int, expected: str
) -> None:
    assert encode_value(kind, value, tag) == h(expected)


@pytest.mark.parametrize(("kind", "value", "tag", "expected"), SECTION_1_10)
def test_decode_value_reads_the_reference_bytes_back(
    kind: Kind[Any], value: Any, tag: int, expected: str
) -> None:
    got = decode_value(kind, h(expected), tag)
    assert got == value
    assert type(got) is type(value)


# ------------------------------------------------------------------ §1.3 integer narrowing

NARROWING = [
    (0, "0C"),
    (1, "00 01"),
    (127, "00 7F"),
    (-127, "00 81"),
    (128, "01 00 80"),
    (-128, "00 80"),
    (-129, "01 FF 7F"),
    (32767, "01 7F FF"),
    (-32768, "01 80 00"),
    (32768, "02 00 00 80 00"),
    (-32769, "02 FF FF 7F FF"),
    (2**31 - 1, "02 7F FF FF FF"),
    (-(2**31), "02 80 00 00 00"),
    (2**31, "03 00 00 00 00 80 00 00 00"),
    (-(2**31) - 1, "03 FF FF FF FF 7F FF FF FF"),
    (2**63 - 1, "03 7F FF FF FF FF FF FF FF"),
    (-(2**63), "03 80 00 00 00 00 00 00 00"),
]
INT_KINDS = {INT8: (-128, 127), INT16: (-(2**15), 2**15 - 1), INT32_K: (-(2**31), 2**31 - 1)}
INT_KINDS[INT64_K] = (-(2**63), 2**63 - 1)


@pytest.mark.parametrize(("value", "expected"), NARROWING)
@pytest.mark.parametrize("kind", [INT8, INT16, INT32_K, INT64_K], ids=lambda k: k.idl)
def test_integers_are_written_in_the_narrowest_head_whatever_the_declared_width(
    kind: Kind[int], value: int, expected: str
) -> None:
    lo, hi = INT_KINDS[kind]
    if not lo <= value <= hi:
        with pytest.raises(EncodeError):
            encode_value(kind, value, 0)
        return
    assert encode_value(kind, value, 0) == h(expected)
    assert decode_value(kind, h(expected), 0) == value


@pytest.mark.parametrize(
    ("kind", "value", "expected"),
    [
        (UINT8, 255, "01 00 FF"),
        (UINT8, 127, "00 7F"),
        (UINT16, 65535, "02 00 00 FF FF"),
        (UINT32, 2**32 - 1, "03 00 00 00 00 FF FF FF FF"),
        (UINT32, 0, "0C"),
        (BOOL, False, "0C"),
    ],
)
def test_unsigned_and_bool_values_use_the_same_narrowing(
    kind: Kind[Any], value: Any, expected: str
) -> None:
    assert encode_value(kind, value, 0) == h(expected)
    assert decode_value(kind, h(expected), 0) == value


# ------------------------------------------------------------------ §1.3 widening on read

WIDENING_OK = [
    pytest.param(INT64_K, "0C", 0, id="int64 from zero"),
    pytest.param(INT64_K, "00 FB", -5, id="int64 from char"),
    pytest.param(INT64_K, "01 01 2C", 300, id="int64 from short"),
    pytest.param(INT64_K, "02 00 01 11 70", 70000, id="int64 from int32"),
    pytest.param(INT64_K, "03 00 00 00 01 00 00 00 00", 2**32, id="int64 from int64"),
    pytest.param(INT32_K, "01 80 00", -32768, id="int32 from short"),
    pytest.param(INT16, "00 7F", 127, id="short from char"),
    pytest.param(INT8, "0C", 0, id="byte from zero"),
    # lenient: a wider head with an in-range value is accepted
    pytest.param(INT8, "03 00 00 00 00 00 00 00 05", 5, id="byte from int64 head with 5"),
    pytest.param(INT8, "01 FF 80", -128, id="byte from short head with -128"),
    pytest.param(INT16, "02 00 00 7F FF", 32767, id="short from int32 head with 32767"),
    pytest.param(INT32_K, "03 FF FF FF FF 80 00 00 00", -(2**31), id="int32 from int64 head"),
    pytest.param(UINT32, "03 00 00 00 00 FF FF FF FF", 2**32 - 1, id="uint32 from int64"),
    pytest.param(BOOL, "0C", False, id="bool from zero"),
    pytest.param(BOOL, "00 01", True, id="bool from char 1"),
]


@pytest.mark.parametrize(("kind", "data", "expected"), WIDENING_OK)
def test_integer_fields_accept_any_head_whose_value_fits(
    kind: Kind[Any], data: str, expected: Any
) -> None:
    assert decode_value(kind, h(data), 0) == expected


WIDENING_BAD = [
    pytest.param(INT8, "01 01 2C", id="byte given short 300"),
    pytest.param(INT8, "01 00 80", id="byte given short 128"),
    pytest.param(INT16, "02 00 00 80 00", id="short given int32 32768"),
    pytest.param(INT32_K, "03 00 00 00 00 80 00 00 00", id="int32 given int64 2^31"),
    pytest.param(UINT8, "00 FF", id="unsigned byte given char -1"),
    pytest.param(UINT16, "02 00 01 00 00", id="unsigned short given 65536"),
    pytest.param(UINT32, "03 00 00 00 01 00 00 00 00", id="unsigned int given 2^32"),
    pytest.param(INT32_K, "04 3F C0 00 00", id="int given a float head"),
    pytest.param(INT32_K, "06 01 61", id="int given a string head"),
    pytest.param(INT64_K, "09 0C", id="long given a list head"),
]


@pytest.mark.parametrize(("kind", "data"), WIDENING_BAD)
def test_integer_fields_reject_values_out_of_range_or_non_integer_heads(
    kind: Kind[Any], data: str
) -> None:
    with pytest.raises(DecodeError):
        decode_value(kind, h(data), 0)


# ------------------------------------------------------------------ §1.4 float and double


@pytest.mark.parametrize(
    ("kind", "data", "expected"),
    [
        pytest.param(FLOAT_K, "5C", 0.0, id="float from zero tag (Node writes 0.0 so)"),
        pytest.param(DOUBLE_K, "5C", 0.0, id="double from zero tag"),
        pytest.param(FLOAT_K, "54 3F C0 00 00", 1.5, id="float from float"),
        pytest.param(DOUBLE_K, "54 3F C0 00 00", 1.5, id="double from float"),
        pytest.param(DOUBLE_K, "55 3F F8 00 00 00 00 00 00", 1.5, id="double from double"),
    ],
)
def test_float_fields_accept_zero_tag_and_narrower_heads(
    kind: Kind[float], data: str, expected: float
) -> None:
    assert decode_value(kind, h(data), 5) == expected


@pytest.mark.parametrize(
    ("kind", "expected"),
    [(FLOAT_K, "54 00 00 00 00"), (DOUBLE_K, "55 00 00 00 00 00 00 00 00")],
)
def test_zero_floats_are_written_with_a_float_head_like_cpp(
    kind: Kind[float], expected: str
) -> None:
    assert encode_value(kind, 0.0, 5) == h(expected)


def test_a_float_field_rejects_an_integer_head() -> None:
    with pytest.raises(DecodeError):
        decode_value(FLOAT_K, h("50 01"), 5)


# ------------------------------------------------------------------ §1.5 strings


def test_a_255_byte_string_uses_string1() -> None:
    s = "y" * 255
    assert encode_value(STRING, s, 0) == h("06 FF") + s.encode()
    assert decode_value(STRING, encode_value(STRING, s, 0), 0) == s


def test_a_256_byte_string_uses_string4() -> None:
    s = "y" * 256
    assert encode_value(STRING, s, 0) == h("07 00 00 01 00") + s.encode()
    assert decode_value(STRING, encode_value(STRING, s, 0), 0) == s


def test_the_length_of_a_string_counts_utf8_bytes_not_characters() -> None:
    assert encode_value(STRING, "é中", 0) == h("06 05 C3 A9 E4 B8 AD")
    assert decode_value(STRING, h("06 05 C3 A9 E4 B8 AD"), 0) == "é中"
    s = "é" * 128  # 128 characters, 256 bytes
    assert encode_value(STRING, s, 0)[:5] == h("07 00 00 01 00")


def test_invalid_utf8_decodes_losslessly_and_re_encodes_to_the_same_bytes() -> None:
    data = h("06 03 61 FF FE")
    s = decode_value(STRING, data, 0)
    assert s == "a\udcff\udcfe"
    assert encode_value(STRING, s, 0) == data


@pytest.mark.parametrize("value", ["\ud800", "x\udfff"])
def test_a_lone_surrogate_that_is_not_an_escaped_byte_is_an_encode_error(value: str) -> None:
    with pytest.raises(EncodeError):
        encode_value(STRING, value, 0)
    with pytest.raises(EncodeError):
        encode_struct(EndpointF(host=value))


@pytest.mark.parametrize(
    ("data", "expected"),
    [("07 00 00 00 02 61 62", "ab"), ("07 00 00 00 00", ""), ("06 00", "")],
)
def test_string4_and_empty_strings_are_accepted_for_short_values(data: str, expected: str) -> None:
    assert decode_value(STRING, h(data), 0) == expected


def test_string4_is_accepted_inside_a_generated_struct_decoder() -> None:
    data = h("07 00 00 00 01 68  11 27 10  2C 3C 4C")
    ep = decode_struct(EndpointF, data)
    assert (ep.host, ep.port) == ("h", 10000)


# ------------------------------------------------------------------ §1.6 containers


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        pytest.param("7D 00 00 02 01 02", b"\x01\x02", id="simple list"),
        pytest.param("79 00 02 00 01 00 02", b"\x01\x02", id="list of char"),
        pytest.param("79 00 03 0C 00 FF 00 7F", b"\x00\xff\x7f", id="list of zero/-1/127"),
        pytest.param("79 0C", b"", id="empty list of char"),
        pytest.param("7D 00 0C", b"", id="empty simple list"),
    ],
)
def test_vector_of_byte_reads_simple_list_and_list_of_char(data: str, expected: bytes) -> None:
    assert decode_value(BYTES, h(data), 7) == expected


def test_vector_of_byte_as_a_list_of_char_is_accepted_for_the_request_sbuffer() -> None:
    base = RequestPacket(iRequestId=1, sServantName="S", sFuncName="f", sBuffer=b"\x01\x02")
    enc = encode_struct(base)
    simple = encode_value(BYTES, b"\x01\x02", 7)
    assert simple in enc
    as_list = enc.replace(simple, h("79 00 02 00 01 00 02"))
    assert decode_struct(RequestPacket, as_list) == base


@pytest.mark.parametrize(
    ("data", "why"),
    [
        pytest.param("7D 10 00 02 01 02", "inner head with tag 1", id="bad inner tag"),
        pytest.param("7D 01 00 02 01 02", "inner head of type short", id="bad inner type"),
        pytest.param("79 00 01 06 01 61", "a string element", id="list of strings"),
        pytest.param("79 00 01 01 01 00", "element 256", id="element out of byte range"),
        pytest.param("76 01 61", "a string head", id="string head"),
    ],
)
def test_vector_of_byte_rejects_other_encodings(data: str, why: str) -> None:
    with pytest.raises(DecodeError):
        decode_value(BYTES, h(data), 7)


MAPS = [
    pytest.param(
        map_of(INT32_K, STRING),
        {1: "a", 300: ""},
        "08 00 02 00 01 16 01 61 01 01 2C 16 00",
        id="int",
    ),
    pytest.param(
        map_of(STRING, list_of(INT32_K)),
        {"k": [0, -1]},
        "08 00 01 06 01 6B 19 00 02 0C 00 FF",
        id="string to vector<int>",
    ),
    pytest.param(
        map_of(STRING, STRING_MAP),
        {"o": {"i": "v"}},
        "08 00 01 06 01 6F 18 00 01 06 01 69 16 01 76",
        id="nested map",
    ),
    pytest.param(map_of(STRING, BYTES), {"": b"\x07"}, "08 00 01 06 00 1D 00 00 01 07", id="tup"),
]


@pytest.mark.parametrize(("kind", "value", "expected"), MAPS)
def test_maps_write_keys_at_tag_0_and_values_at_tag_1(
    kind: Kind[Any], value: Any, expected: str
) -> None:
    assert encode_value(kind, value, 0) == h(expected)
    assert decode_value(kind, h(expected), 0) == value


@pytest.mark.parametrize(
    "data",
    [
        pytest.param("08 00 01 16 01 61 16 01 62", id="key with tag 1"),
        pytest.param("08 00 01 06 01 61 06 01 62", id="value with tag 0"),
        pytest.param("08 00 01 06 01 61", id="value missing"),
    ],
)
def test_map_entries_with_wrong_tags_are_rejected(data: str) -> None:
    with pytest.raises(DecodeError):
        decode_value(STRING_MAP, h(data), 0)


def test_a_map_read_as_a_list_is_a_type_mismatch() -> None:
    with pytest.raises(DecodeError, match="type mismatch"):
        decode_value(list_of(STRING), h("08 0C"), 0)


def test_a_list_element_with_a_non_zero_tag_is_rejected() -> None:
    with pytest.raises(DecodeError):
        decode_value(list_of(INT32_K), h("09 00 01 10 05"), 0)


# ------------------------------------------------------------------ §1.7 structs

OUTER = Outer(inner=Inner(1, "x"), inners=[Inner(2)], by_name={"k": Inner(3)}, far=5, farther="y")
OUTER_HEX = (
    "0A 00 01 16 01 78 0B"  # t0 inner
    " 19 00 01 0A 00 02 16 00 0B"  # t1 inners
    " 28 00 01 06 01 6B 1A 00 03 16 00 0B"  # t2 by_name
    " F0 14 05"  # t20 far (two-byte head)
    " F6 C8 01 79"  # t200 farther
)


def test_nested_structs_lists_maps_and_high_tags_encode_to_the_expected_bytes() -> None:
    assert encode_struct(OUTER) == h(OUTER_HEX)


def test_nested_structs_lists_maps_and_high_tags_decode_back() -> None:
    assert decode_struct(Outer, h(OUTER_HEX)) == OUTER


def test_a_struct_value_carries_struct_begin_and_end_with_the_field_tag() -> None:
    enc = encode_value(INNER, Inner(7, "z"), 17)
    assert enc == h("FA 11 00 07 16 01 7A 0B")
    assert decode_value(INNER, enc, 17) == Inner(7, "z")


@pytest.mark.parametrize("tag", [14, 15, 16, 100, 255])
@pytest.mark.parametrize(
    ("kind", "value"),
    [
        (INT32_K, 5),
        (INT64_K, 2**40),
        (STRING, "v"),
        (STRING, S300),
        (BYTES, b"ab"),
        (DOUBLE_K, -2.5),
        (STRING_MAP, {"a": "b"}),
        (ENDPOINT_LIST, [EndpointF("h", 1)]),
    ],
)
def test_tags_from_15_use_a_two_byte_head(kind: Kind[Any], value: Any, tag: int) -> None:
    enc = encode_value(kind, value, tag)
    if tag < 15:
        assert enc[0] >> 4 == tag
    else:
        assert enc[0] >> 4 == 15
        assert enc[1] == tag
    assert decode_value(kind, enc, tag) == value


@pytest.mark.parametrize("tag", [-1, 256, 1000])
def test_tags_outside_0_to_255_cannot_be_encoded(tag: int) -> None:
    with pytest.raises(EncodeError):
        encode_value(INT32_K, 1, tag)


def test_decode_value_skips_other_tags_to_find_its_own() -> None:
    data = h("0C 16 01 61 29 00 01 0A 0B F0 14 05 F6 C8 01 79")
    assert decode_value(INT32_K, data, 20) == 5
    assert decode_value(STRING, data, 200) == "y"
    assert decode_value(STRING, data, 1) == "a"


# Unknown values, each given as the bytes after its head's type nibble.
UNKNOWN_VALUES = [
    pytest.param(0, "05", id="char"),
    pytest.param(1, "01 2C", id="short"),
    pytest.param(2, "00 01 11 70", id="int32"),
    pytest.param(3, "00 00 00 01 00 00 00 00", id="int64"),
    pytest.param(4, "3F C0 00 00", id="float"),
    pytest.param(5, "3F F8 00 00 00 00 00 00", id="double"),
    pytest.param(6, "02 61 62", id="string1"),
    pytest.param(7, "00 00 00 02 61 62", id="string4"),
    pytest.param(8, "00 01 06 01 61 1A 06 01 62 0B", id="map of struct"),
    pytest.param(9, "00 02 0A 0B 09 00 01 0C", id="list of struct and list"),
    pytest.param(10, "06 01 61 1A 18 0C 0B 29 0C 0B", id="nested struct"),
    pytest.param(12, "", id="zero"),
    pytest.param(13, "00 00 03 01 02 03", id="simple list"),
    pytest.param(8, "00 01 06 01 6B 19 00 01 0A 08 00 01 0C 1A 0B 0B", id="map of list of struct"),
]

EP_REQUIRED = "06 01 68 11 27 10 22 00 00 EA 60 30 01 4C"  # host h, port 10000, ...


@pytest.mark.parametrize(("typ", "body"), UNKNOWN_VALUES)
def test_unknown_tags_inside_a_struct_are_skipped(typ: int, body: str) -> None:
    # tag 10 is unused in EndpointF; tags 15 and 200 are beyond its last field
    unknown10 = bytes([0xA0 | typ]) + h(body)
    unknown200 = bytes([0xF0 | typ, 200]) + h(body)
    data = h(EP_REQUIRED + " 90 01") + unknown10 + h("B0 05") + unknown200
    ep = decode_struct(EndpointF, data)
    assert (ep.host, ep.port, ep.timeout, ep.istcp, ep.grid) == ("h", 10000, 60000, 1, 0)
    assert (ep.bakFlag, ep.weight) == (1, 5)


@pytest.mark.parametrize(("typ", "body"), UNKNOWN_VALUES)
def test_unknown_trailing_fields_of_a_nested_struct_are_skipped_up_to_its_end(
    typ: int, body: str
) -> None:
    element = h("0A " + EP_REQUIRED) + bytes([0xF0 | typ, 99]) + h(body) + h("0B")
    data = h("09 00 02") + element + element
    assert decode_value(ENDPOINT_LIST, data, 0) == [EndpointF("h", 10000, 60000, 1, 0)] * 2


def test_an_unknown_field_before_a_known_one_is_skipped() -> None:
    # an unknown struct (holding a struct) at tag 10, between bakFlag (9) and weight (11)
    data = h(EP_REQUIRED + " AA 0A 0B 0B B0 07")
    assert decode_struct(EndpointF, data).weight == 7


def test_optional_fields_missing_keep_their_defaults() -> None:
    ep = decode_struct(EndpointF, h(EP_REQUIRED))
    assert ep == EndpointF("h", 10000, 60000, 1, 0)
    # EndpointF.tars declares no defaults, so absent optionals read as 0 / "" (like C++/Go/Node)
    optionals = [name for name, spec in struct_info(EndpointF).fields if not spec.require]
    assert {name: getattr(ep, name) for name in optionals} == {
        "groupworkid": 0,
        "grouprealid": 0,
        "setId": "",
        "qos": 0,
        "bakFlag": 0,
        "weight": 0,
        "weightType": 0,
        "authType": 0,
        "nodeName": "",
    }


def test_missing_optional_response_fields_keep_their_defaults() -> None:
    pkt = decode_struct(ResponsePacket, h("10 01 2C 30 01 4C 5C 6D 00 0C 78 0C"))
    assert pkt == ResponsePacket(iRequestId=1)
    assert (pkt.sResultDesc, pkt.context) == ("", {})


def test_decode_value_without_require_returns_the_kinds_default() -> None:
    assert decode_value(ENDPOINT_LIST, h("0C"), 3, require=False) == []
    assert decode_value(STRING, b"", 0, require=False) == ""


def test_decode_value_with_require_names_the_missing_tag() -> None:
    with pytest.raises(DecodeError, match="tag 3"):
        decode_value(ENDPOINT_LIST, h("0C"), 3)


def _fields_without(obj: Any, skip_tag: int) -> bytes:
    """A struct's top-level encoding, field by field, leaving out one tag."""
    out = bytearray()
    for name, spec in sorted(struct_info(type(obj)).fields, key=lambda f: f[1].tag):
        if spec.tag != skip_tag:
            out += encode_value(spec.kind, getattr(obj, name), spec.tag)
    return bytes(out)


def _required(cls: type[Any]) -> list[Any]:
    return [
        pytest.param(cls, name, spec.tag, id=f"{cls.__name__}.{name}")
        for name, spec in struct_info(cls).fields
        if spec.require
    ]


SAMPLE = {
    EndpointF: EndpointF("10.0.0.1", 10000, 60000, 1, 0, 5, 6, "s.a.1", 0, 0, 100, 1, 0, "n"),
    RequestPacket: RequestPacket(3, 0, 1, 9, "S", "f", b"\x01", 3000, {"a": "b"}, {"c": "d"}),
    ResponsePacket: ResponsePacket(1, 0, 9, 0, -3, b"\x01", {"c": "d"}, "desc", {"a": "b"}),
}


@pytest.mark.parametrize(
    ("cls", "name", "tag"),
    _required(EndpointF) + _required(RequestPacket) + _required(ResponsePacket),
)
def test_a_missing_require_field_is_a_decode_error_naming_the_field(
    cls: type[Any], name: str, tag: int
) -> None:
    obj = SAMPLE[cls]
    assert decode_struct(cls, _fields_without(obj, -1)) == obj  # sanity: nothing left out
    with pytest.raises(DecodeError, match=rf"{cls.__name__}\.{name} \(tag {tag}\)"):
        decode_struct(cls, _fields_without(obj, tag))


def test_a_missing_require_field_of_a_nested_struct_is_a_decode_error() -> None:
    with pytest.raises(DecodeError, match=r"EndpointF\.port"):
        decode_value(ENDPOINT_LIST, h("09 00 01 0A 06 01 68 0B"), 0)


def test_a_field_of_the_wrong_type_is_a_decode_error() -> None:
    with pytest.raises(DecodeError, match="type mismatch"):
        decode_struct(EndpointF, h("00 05 11 27 10 2C 3C 4C"))


def test_an_out_of_range_value_in_a_struct_field_is_a_decode_error() -> None:
    # cPacketType (byte) given a short 300
    data = h("10 01 21 01 2C 3C 40 01 56 01 53 66 01 66 7D 00 0C 8C 98 0C A8 0C")
    with pytest.raises(DecodeError, match="out of range"):
        decode_struct(RequestPacket, data)


# ------------------------------------------------------------------ encoding errors

OUT_OF_RANGE = [
    (INT8, 128),
    (INT8, -129),
    (INT16, 2**15),
    (INT16, -(2**15) - 1),
    (INT32_K, 2**31),
    (INT32_K, -(2**31) - 1),
    (INT64_K, 2**63),
    (INT64_K, -(2**63) - 1),
    (UINT8, -1),
    (UINT8, 256),
    (UINT16, 2**16),
    (UINT32, 2**32),
    (UINT32, -1),
    (FLOAT_K, 1e300),
]


@pytest.mark.parametrize(("kind", "value"), OUT_OF_RANGE, ids=lambda x: repr(x))
def test_encoding_an_out_of_range_value_is_an_encode_error(kind: Kind[Any], value: Any) -> None:
    with pytest.raises(EncodeError):
        encode_value(kind, value, 0)
    with pytest.raises(EncodeError):
        encode_value(kind, value, 20)


@pytest.mark.parametrize(
    "obj",
    [
        pytest.param(EndpointF("h", 2**31), id="EndpointF.port 2^31"),
        pytest.param(EndpointF("h", 1, -(2**31) - 1), id="EndpointF.timeout -2^31-1"),
        pytest.param(RequestPacket(cPacketType=128), id="RequestPacket.cPacketType 128"),
        pytest.param(RequestPacket(iVersion=2**15), id="RequestPacket.iVersion 2^15"),
        pytest.param(ResponsePacket(iRet=2**40), id="ResponsePacket.iRet 2^40"),
        pytest.param(Outer(far=2**63), id="int64 field at tag 20 2^63"),
    ],
)
def test_encoding_a_struct_with_an_out_of_range_field_is_an_encode_error(obj: Any) -> None:
    with pytest.raises(EncodeError):
        encode_struct(obj)


WRONG_TYPES = [
    (INT32_K, "5"),
    (INT32_K, None),
    (INT32_K, 1.5),
    (INT32_K, 2.0),
    (INT64_K, [1]),
    (INT8, b"\x01"),
    (STRING, 5),
    (STRING, b"ab"),
    (STRING, None),
    (BYTES, "ab"),
    (BYTES, None),
    (BYTES, 1.5),
    (FLOAT_K, "x"),
    (DOUBLE_K, None),
    (list_of(INT32_K), 5),
    (list_of(INT32_K), None),
    (list_of(INT32_K), ["a"]),
    (STRING_MAP, ["a"]),
    (STRING_MAP, {"a": 1}),
    (STRING_MAP, {1: "a"}),
    (ENDPOINT_F, None),
    (ENDPOINT_F, "host"),
    (ENDPOINT_F, {"host": "h"}),
    (ENDPOINT_LIST, [None]),
    (ENDPOINT_LIST, [5]),
    (ENDPOINT_LIST, 5),
]


@pytest.mark.parametrize(("kind", "value"), WRONG_TYPES, ids=lambda x: repr(x))
def test_encoding_a_value_of_the_wrong_python_type_is_an_encode_error(
    kind: Kind[Any], value: Any
) -> None:
    with pytest.raises(EncodeError):
        encode_value(kind, value, 0)
    with pytest.raises(EncodeError):
        encode_value(kind, value, 30)


@pytest.mark.parametrize(
    "encode",
    [
        pytest.param(lambda: encode_value(BYTES, 5, 0), id="encode_value 5"),
        pytest.param(lambda: encode_value(BYTES, 0, 0), id="encode_value 0"),
        pytest.param(lambda: encode_struct(RequestPacket(sBuffer=3)), id="RequestPacket.sBuffer 3"),
    ],
)
def test_encoding_an_int_as_vector_of_byte_is_an_encode_error(encode: Any) -> None:
    with pytest.raises(EncodeError):
        encode()


@pytest.mark.parametrize(
    "obj",
    [
        pytest.param(EndpointF(host=5), id="EndpointF.host int"),
        pytest.param(EndpointF(port="1"), id="EndpointF.port str"),
        pytest.param(EndpointF(port=1.5), id="EndpointF.port float"),
        pytest.param(EndpointF(setId=None), id="EndpointF.setId None"),
        pytest.param(RequestPacket(sBuffer="abc"), id="RequestPacket.sBuffer str"),
        pytest.param(RequestPacket(context=[("a", "b")]), id="RequestPacket.context list"),
        pytest.param(ResponsePacket(context={"a": 1}), id="ResponsePacket.context value int"),
        pytest.param(Outer(inners=[EndpointF()]), id="list of the wrong struct"),
        pytest.param(Outer(inner=None), id="nested struct None"),
    ],
)
def test_encoding_a_struct_with_a_field_of_the_wrong_type_is_an_encode_error(obj: Any) -> None:
    with pytest.raises(EncodeError):
        encode_struct(obj)
