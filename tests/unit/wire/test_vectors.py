"""Frames captured from the real @tars/rpc client, and the reference's worked frames (§2.9).

The captured vectors are data kept in the repository, under ``tests/data/vectors`` (see its
README for how they were captured).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tarscascade.wire.codec import pack_u32
from tarscascade.wire.framing import FrameDecoder
from tarscascade.wire.idl.endpointf import EndpointF
from tarscascade.wire.idl.queryf import FIND_4ANY, QUERY_F, QUERY_SERVANT
from tarscascade.wire.interface import Method
from tarscascade.wire.packets import RequestPacket, ResponsePacket
from tarscascade.wire.rpc import ClientRpc, Reply, ServerRpc, decode_response
from tarscascade.wire.struct import decode_struct, encode_struct, struct_info
from tests.data import VECTORS_DIR

VECTORS_JSON = VECTORS_DIR / "vectors.json"


def _vector_params() -> list[Any]:
    names = sorted(json.loads(VECTORS_JSON.read_text()))
    assert names, f"no vectors in {VECTORS_JSON}"
    return [pytest.param(name, id=name) for name in names]


@pytest.fixture(params=_vector_params())
def vector(request: pytest.FixtureRequest) -> dict[str, Any]:
    name: str = request.param
    data: dict[str, Any] = json.loads(VECTORS_JSON.read_text())[name]
    data["name"] = name
    return data


def _tag(key: str) -> int:
    """``"13:authType(...)"`` -> 13."""
    return int(key.split(":", 1)[0])


def _json_value(v: Any) -> Any:
    # vectors.json writes empty maps as []
    return {} if v == [] else v


def _fields_by_tag(cls: type[Any]) -> dict[int, str]:
    return {spec.tag: name for name, spec in struct_info(cls).fields}


def _expected_packet(cls: type[Any], fields: dict[str, Any]) -> Any:
    names = _fields_by_tag(cls)
    kwargs = {}
    for key, raw in fields.items():
        name = names[_tag(key)]
        value = _json_value(raw)
        if name == "sBuffer":
            value = bytes.fromhex(value)
        kwargs[name] = value
    return cls(**kwargs)


def _expected_endpoint(fields: dict[str, Any]) -> EndpointF:
    names = _fields_by_tag(EndpointF)
    return EndpointF(**{names[_tag(k)]: v for k, v in fields.items()})


def _method(vec: dict[str, Any]) -> Method:
    return QUERY_F[vec["request"]["packet"]["6:sFuncName"]]


def _param_tags(method: Method) -> dict[str, int]:
    return {p.name: i + 1 for i, p in enumerate(method.params)}


def _expected_result(method: Method, sbuffer: dict[str, Any]) -> tuple[Any, ...]:
    by_tag = {_tag(k): v for k, v in sbuffer.items()}
    tags = _param_tags(method)
    ret = by_tag[0]
    outs = []
    for p in method.out_params:
        value = by_tag[tags[p.name]]
        outs.append([_expected_endpoint(e) for e in value] if isinstance(value, list) else value)
    return (ret, *outs)


def _unframe(frame_hex: str, length_prefix: int) -> bytes:
    frame = bytes.fromhex(frame_hex)
    assert len(frame) == length_prefix
    assert int.from_bytes(frame[:4], "big") == length_prefix
    return frame[4:]


# ------------------------------------------------------------------ captured requests


def test_the_hex_files_match_vectors_json(vector: dict[str, Any]) -> None:
    name = vector["name"]
    for side in ("request", "response"):
        frame = (VECTORS_DIR / f"{name}.{side}.hex").read_text().strip()
        sbuffer = (VECTORS_DIR / f"{name}.{side}.sbuffer.hex").read_text().strip()
        assert frame == vector[side]["hex"]
        assert sbuffer == vector[side]["sBuffer_hex"]


def test_a_captured_request_frame_decodes_to_the_listed_fields(vector: dict[str, Any]) -> None:
    req = vector["request"]
    payload = _unframe(req["hex"], req["length_prefix"])
    assert decode_struct(RequestPacket, payload) == _expected_packet(RequestPacket, req["packet"])


def test_a_captured_request_frame_passes_through_the_server_state_machine(
    vector: dict[str, Any],
) -> None:
    req = vector["request"]
    frame = bytes.fromhex(req["hex"])
    server = ServerRpc()
    got = server.receive_data(frame[:7]) + server.receive_data(frame[7:])
    assert got == [_expected_packet(RequestPacket, req["packet"])]
    assert server.buffered == 0


def test_a_captured_request_sbuffer_decodes_with_the_methods_args(vector: dict[str, Any]) -> None:
    req = vector["request"]
    method = _method(vector)
    pkt = decode_struct(RequestPacket, _unframe(req["hex"], req["length_prefix"]))
    assert pkt.sBuffer.hex() == req["sBuffer_hex"]
    tags = _param_tags(method)
    expected_by_tag = {_tag(k): v for k, v in req["sBuffer"].items()}
    expected = [expected_by_tag[tags[p.name]] for p in method.in_params]
    assert method.decode_args(pkt.sBuffer) == expected
    assert set(expected_by_tag) == {tags[p.name] for p in method.in_params}


def test_our_encoding_of_the_method_args_equals_the_captured_sbuffer(
    vector: dict[str, Any],
) -> None:
    req = vector["request"]
    method = _method(vector)
    args = method.decode_args(bytes.fromhex(req["sBuffer_hex"]))
    assert method.encode_args(*args).hex() == req["sBuffer_hex"]


def test_re_encoding_a_captured_request_gives_the_captured_bytes(vector: dict[str, Any]) -> None:
    req = vector["request"]
    frame = bytes.fromhex(req["hex"])
    pkt = decode_struct(RequestPacket, frame[4:])
    assert pack_u32(len(frame)) + encode_struct(pkt) == frame


def test_client_rpc_builds_the_captured_request_byte_for_byte(vector: dict[str, Any]) -> None:
    req = vector["request"]
    p = _expected_packet(RequestPacket, req["packet"])
    client = ClientRpc(first_id=p.iRequestId)
    rid, frame = client.send_request(
        p.sServantName, p.sFuncName, p.sBuffer, timeout_ms=p.iTimeout, context=p.context
    )
    assert rid == p.iRequestId
    assert frame.hex() == req["hex"]


# ------------------------------------------------------------------ captured responses


def test_a_captured_response_frame_decodes_to_the_listed_fields(vector: dict[str, Any]) -> None:
    resp = vector["response"]
    payload = _unframe(resp["hex"], resp["length_prefix"])
    expected = _expected_packet(ResponsePacket, resp["packet"])
    assert decode_struct(ResponsePacket, payload) == expected
    assert decode_response(payload) == expected


def test_a_captured_response_sbuffer_decodes_with_the_methods_result(
    vector: dict[str, Any],
) -> None:
    resp = vector["response"]
    method = _method(vector)
    pkt = decode_struct(ResponsePacket, _unframe(resp["hex"], resp["length_prefix"]))
    assert pkt.sBuffer.hex() == resp["sBuffer_hex"]
    assert method.decode_result(pkt.sBuffer) == _expected_result(method, resp["sBuffer"])


def test_the_client_state_machine_matches_a_captured_response_to_its_request(
    vector: dict[str, Any],
) -> None:
    req, resp = vector["request"], vector["response"]
    p = _expected_packet(RequestPacket, req["packet"])
    client = ClientRpc(first_id=p.iRequestId)
    client.send_request(p.sServantName, p.sFuncName, p.sBuffer, context=p.context)
    events = client.receive_data(bytes.fromhex(resp["hex"]))
    assert events == [Reply(_expected_packet(ResponsePacket, resp["packet"]))]
    assert client.outstanding == set()


def test_our_response_packet_around_the_captured_sbuffer_is_byte_identical(
    vector: dict[str, Any],
) -> None:
    # tars2cpp convention, like ours: empty optional sResultDesc/context are left out
    resp = vector["response"]
    frame = bytes.fromhex(resp["hex"])
    pkt = decode_struct(ResponsePacket, frame[4:])
    assert pack_u32(len(frame)) + encode_struct(pkt) == frame


def test_a_response_we_encode_from_the_captured_values_decodes_to_the_same_values(
    vector: dict[str, Any],
) -> None:
    req, resp = vector["request"], vector["response"]
    method = _method(vector)
    values = _expected_result(method, resp["sBuffer"])
    request = _expected_packet(RequestPacket, req["packet"])
    frame = ServerRpc().build_reply(request, 0, method.encode_result(*values))
    assert frame is not None
    (payload,) = FrameDecoder().feed(frame)
    pkt = decode_struct(ResponsePacket, payload)
    listed = _expected_packet(ResponsePacket, resp["packet"])
    assert (pkt.iVersion, pkt.cPacketType, pkt.iRequestId, pkt.iMessageType, pkt.iRet) == (
        listed.iVersion,
        listed.cPacketType,
        listed.iRequestId,
        listed.iMessageType,
        listed.iRet,
    )
    assert pkt.status == listed.status
    assert method.decode_result(pkt.sBuffer) == values


# ------------------------------------------------------------------ §2.9 worked frames


def hx(*parts: str | bytes) -> bytes:
    """Join hex strings and raw byte strings (for the listings' quoted text)."""
    return b"".join(p if isinstance(p, bytes) else bytes.fromhex(p) for p in parts)


SECTION_2_9_REQUEST = hx(
    "00 00 00 4C",  # length 76
    "10 01",  # t1 iVersion 1
    "2C",  # t2 cPacketType 0
    "3C",  # t3 iMessageType 0
    "40 01",  # t4 iRequestId 1
    "56 1A",
    b"tars.tarsregistry.QueryObj",
    "66 12",
    b"findObjectById4Any",
    "7D 00 00 07",  # t7 sBuffer, 7 bytes
    "16 05",
    b"A.B.C",
    "81 0B B8",  # t8 iTimeout 3000
    "98 0C",  # t9 context {}
    "A8 0C",  # t10 status {}
)

SECTION_2_9_SBUFFER = hx(
    "0C",  # t0 return 0
    "29 00 01",  # t2 activeEp, 1 element
    "0A",
    "06 08",
    b"10.0.0.1",
    "11 27 10",  # port 10000
    "22 00 00 EA 60",  # timeout 60000
    "30 01",  # istcp 1
    "4C",  # grid 0
    "50 FF",  # groupworkid -1
    "60 FF",  # grouprealid -1
    "76 00",  # setId ""
    "8C 9C",  # qos 0, bakFlag 0
    "B0 FF",  # weight -1
    "CC DC",  # weightType 0, authType 0
    "E6 05",
    b"node1",
    "0B",
    "39 0C",  # t3 inactiveEp, 0 elements
)

SECTION_2_9_RESPONSE_HEAD = bytes.fromhex("10 01 2C 30 01 4C 5C 6D 00 00 30")
SECTION_2_9_RESPONSE_TAIL_REQUIRED = bytes.fromhex("78 0C")
# t8 sResultDesc "" and t9 context {}: optional, written by @tars/stream, left out by us
SECTION_2_9_RESPONSE_TAIL_OPTIONAL = bytes.fromhex("86 00 98 0C")
SECTION_2_9_RESPONSE = (
    SECTION_2_9_RESPONSE_HEAD
    + SECTION_2_9_SBUFFER
    + SECTION_2_9_RESPONSE_TAIL_REQUIRED
    + SECTION_2_9_RESPONSE_TAIL_OPTIONAL
)

SECTION_2_9_ENDPOINT = EndpointF(
    host="10.0.0.1",
    port=10000,
    timeout=60000,
    istcp=1,
    grid=0,
    groupworkid=-1,
    grouprealid=-1,
    setId="",
    qos=0,
    bakFlag=0,
    weight=-1,
    weightType=0,
    authType=0,
    nodeName="node1",
)


def test_the_section_2_9_listings_have_the_stated_lengths() -> None:
    assert len(SECTION_2_9_REQUEST) == 76
    assert len(SECTION_2_9_SBUFFER) == 48


def test_client_rpc_builds_the_76_byte_request_of_section_2_9() -> None:
    client = ClientRpc()
    rid, frame = client.send_request(
        QUERY_SERVANT, "findObjectById4Any", FIND_4ANY.encode_args("A.B.C"), timeout_ms=3000
    )
    assert rid == 1
    assert frame == SECTION_2_9_REQUEST


def test_the_section_2_9_request_decodes_to_its_fields() -> None:
    pkt = decode_struct(RequestPacket, SECTION_2_9_REQUEST[4:])
    assert pkt == RequestPacket(
        iVersion=1,
        cPacketType=0,
        iMessageType=0,
        iRequestId=1,
        sServantName=QUERY_SERVANT,
        sFuncName="findObjectById4Any",
        sBuffer=bytes.fromhex("16 05") + b"A.B.C",
        iTimeout=3000,
    )
    assert FIND_4ANY.decode_args(pkt.sBuffer) == ["A.B.C"]


def test_the_section_2_9_result_encodes_every_endpointf_field_like_cpp() -> None:
    assert FIND_4ANY.encode_result(0, [SECTION_2_9_ENDPOINT], []) == SECTION_2_9_SBUFFER


def test_the_section_2_9_result_decodes_back() -> None:
    assert FIND_4ANY.decode_result(SECTION_2_9_SBUFFER) == (0, [SECTION_2_9_ENDPOINT], [])


def test_our_reply_to_the_section_2_9_request_is_the_listed_response_minus_empty_optionals() -> (
    None
):
    (req,) = ServerRpc().receive_data(SECTION_2_9_REQUEST)
    frame = ServerRpc().build_reply(req, 0, SECTION_2_9_SBUFFER)
    expected = SECTION_2_9_RESPONSE_HEAD + SECTION_2_9_SBUFFER + SECTION_2_9_RESPONSE_TAIL_REQUIRED
    assert frame == pack_u32(4 + len(expected)) + expected


def test_the_listed_section_2_9_response_decodes_to_the_packet_we_send() -> None:
    ours = ResponsePacket(iVersion=1, iRequestId=1, sBuffer=SECTION_2_9_SBUFFER)
    assert decode_struct(ResponsePacket, SECTION_2_9_RESPONSE) == ours
    client = ClientRpc()
    client.send_request(QUERY_SERVANT, "findObjectById4Any", FIND_4ANY.encode_args("A.B.C"))
    events = client.receive_data(pack_u32(4 + len(SECTION_2_9_RESPONSE)) + SECTION_2_9_RESPONSE)
    assert events == [Reply(ours)]
