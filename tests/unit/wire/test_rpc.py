"""The sans-IO RPC state machines (ClientRpc, ServerRpc) and IDL method encodings."""

from __future__ import annotations

from typing import Any

import pytest

from tarscascade.errors import DecodeError, EncodeError, ProtocolError
from tarscascade.wire.codec import (
    BYTES,
    INT32_K,
    STRING,
    STRING_MAP,
    UINT32,
    Kind,
    ListKind,
    MapKind,
    decode_value,
    encode_value,
    map_of,
)
from tarscascade.wire.framing import FrameDecoder, encode_frame
from tarscascade.wire.idl.endpointf import ENDPOINT_LIST, EndpointF
from tarscascade.wire.idl.queryf import (
    FIND_4ANY,
    FIND_IN_SAME_GROUP,
    FIND_IN_SAME_SET,
    FIND_IN_SAME_STATION,
    FIND_OBJECT_BY_ID,
    QUERY_F,
    QUERY_SERVANT,
    GetMasterSlaveLock,
)
from tarscascade.wire.idl.serverf import SERVER_F, ServerInfo
from tarscascade.wire.interface import Method
from tarscascade.wire.packets import (
    NORMAL,
    ONEWAY,
    STATUS_PUSH_FUNC,
    STATUS_RESULT_CODE,
    STATUS_RESULT_DESC,
    TARS_VERSION,
    TUP_COMPLEX_VERSION,
    TUP_VERSION,
    RequestPacket,
    ResponsePacket,
    Ret,
)
from tarscascade.wire.rpc import (
    EMPTY_ATTRIBUTES,
    MAX_REQUEST_ID,
    ClientRpc,
    Push,
    Reply,
    ServerRpc,
    StrayReply,
    decode_response,
    encode_push,
    encode_reply,
)
from tarscascade.wire.struct import StructKind, decode_struct, encode_struct

TUP_MAP = map_of(STRING, BYTES)


def unframe(frame: bytes) -> bytes:
    (payload,) = FrameDecoder().feed(frame)
    return payload


def response_frame(request_id: int, ret: int = 0, body: bytes = b"", **kw: Any) -> bytes:
    return encode_frame(
        encode_struct(ResponsePacket(iRequestId=request_id, iRet=ret, sBuffer=body, **kw))
    )


def send(client: ClientRpc, **kw: Any) -> int:
    rid, _ = client.send_request(QUERY_SERVANT, "findObjectById", b"", **kw)
    return rid


# ------------------------------------------------------------------ request ids


def test_request_ids_start_at_1_and_count_up() -> None:
    client = ClientRpc()
    assert [send(client) for _ in range(3)] == [1, 2, 3]


@pytest.mark.parametrize(("first_id", "expected"), [(0, 1), (-5, 1), (1, 1), (42, 42)])
def test_the_first_request_id_is_never_0(first_id: int, expected: int) -> None:
    assert send(ClientRpc(first_id=first_id)) == expected


def test_request_ids_wrap_from_2_to_the_31_minus_1_to_1_never_0() -> None:
    client = ClientRpc(first_id=MAX_REQUEST_ID - 1)
    ids = [send(client, oneway=True) for _ in range(4)]
    assert ids == [MAX_REQUEST_ID - 1, MAX_REQUEST_ID, 1, 2]


def test_a_first_id_beyond_the_maximum_is_clamped() -> None:
    client = ClientRpc(first_id=2**40)
    assert [send(client, oneway=True) for _ in range(2)] == [MAX_REQUEST_ID, 1]


def test_outstanding_ids_are_skipped_after_a_wrap() -> None:
    client = ClientRpc(first_id=MAX_REQUEST_ID - 1)
    assert send(client) == MAX_REQUEST_ID - 1  # still outstanding
    client.outstanding.update({1, 2})  # as if sent long ago and still unanswered
    assert send(client) == MAX_REQUEST_ID
    assert send(client) == 3
    assert send(client) == 4
    assert send(client) == 5


def test_outstanding_ids_are_skipped_across_the_maximum() -> None:
    client = ClientRpc(first_id=MAX_REQUEST_ID - 1)
    client.outstanding.update({MAX_REQUEST_ID - 1, MAX_REQUEST_ID, 1})
    assert send(client) == 2


def test_sent_requests_are_outstanding_until_answered() -> None:
    client = ClientRpc()
    a, b = send(client), send(client)
    assert client.outstanding == {a, b}
    client.receive_data(response_frame(a))
    assert client.outstanding == {b}


def test_one_way_calls_are_not_outstanding_and_say_so_on_the_wire() -> None:
    client = ClientRpc()
    rid, frame = client.send_request(QUERY_SERVANT, "f", b"", oneway=True)
    assert client.outstanding == set()
    assert decode_struct(RequestPacket, unframe(frame)).cPacketType == ONEWAY
    assert send(client) == rid + 1


def test_send_request_writes_every_field_it_is_given() -> None:
    client = ClientRpc(first_id=7)
    rid, frame = client.send_request(
        "App.Server.Obj",
        "hello",
        b"\x16\x01x",
        timeout_ms=1234,
        context={"node_name": "n"},
        status={"STATUS_SETNAME_VALUE": "a.b.c"},
        version=TUP_VERSION,
        message_type=0x80,
    )
    assert decode_struct(RequestPacket, unframe(frame)) == RequestPacket(
        iVersion=TUP_VERSION,
        cPacketType=NORMAL,
        iMessageType=0x80,
        iRequestId=rid,
        sServantName="App.Server.Obj",
        sFuncName="hello",
        sBuffer=b"\x16\x01x",
        iTimeout=1234,
        context={"node_name": "n"},
        status={"STATUS_SETNAME_VALUE": "a.b.c"},
    )


def test_a_request_that_cannot_be_encoded_is_an_encode_error() -> None:
    with pytest.raises(EncodeError):
        ClientRpc().send_request(QUERY_SERVANT, "f", b"", timeout_ms=2**31)


# ------------------------------------------------------------------ classifying responses


def test_a_response_to_an_outstanding_request_is_a_reply() -> None:
    client = ClientRpc()
    rid = send(client)
    (event,) = client.receive_data(response_frame(rid, body=b"\x0c"))
    assert event == Reply(ResponsePacket(iRequestId=rid, sBuffer=b"\x0c"))


def test_a_second_response_to_the_same_id_is_stray() -> None:
    client = ClientRpc()
    rid = send(client)
    events = client.receive_data(response_frame(rid) + response_frame(rid))
    assert [type(e) for e in events] == [Reply, StrayReply]


def test_a_response_to_a_forgotten_request_is_stray() -> None:
    client = ClientRpc()
    rid = send(client)
    client.forget(rid)
    assert client.outstanding == set()
    (event,) = client.receive_data(response_frame(rid, ret=Ret.INVOKE_TIMEOUT))
    assert isinstance(event, StrayReply)
    assert event.packet.iRet == -7


def test_forgetting_an_unknown_id_is_harmless() -> None:
    client = ClientRpc()
    rid = send(client)
    client.forget(rid + 100)
    assert client.outstanding == {rid}


def test_a_response_to_an_id_never_sent_is_stray() -> None:
    client = ClientRpc()
    (event,) = client.receive_data(response_frame(99))
    assert isinstance(event, StrayReply)


def test_a_response_with_request_id_0_is_a_push_carrying_its_function_name() -> None:
    client = ClientRpc()
    send(client)
    (event,) = client.receive_data(encode_push("onChange", b"\x0c\x16\x01x"))
    assert isinstance(event, Push)
    assert event.func == "onChange"
    assert event.packet.sBuffer == b"\x0c\x16\x01x"
    assert client.outstanding == {1}


def test_a_push_without_tars_func_has_an_empty_function_name() -> None:
    (event,) = ClientRpc().receive_data(response_frame(0))
    assert isinstance(event, Push)
    assert event.func == ""


def test_encode_push_is_a_response_with_request_id_0_and_the_tars_func_status() -> None:
    pkt = decode_struct(ResponsePacket, unframe(encode_push("f", b"\x01")))
    assert pkt == ResponsePacket(
        iVersion=TARS_VERSION,
        cPacketType=NORMAL,
        iRequestId=0,
        iMessageType=0,
        iRet=0,
        sBuffer=b"\x01",
        status={STATUS_PUSH_FUNC: "f"},
    )


def test_several_responses_in_one_chunk_and_across_chunks_are_all_classified() -> None:
    client = ClientRpc()
    a, b, c = send(client), send(client), send(client)
    data = response_frame(b) + encode_push("p", b"") + response_frame(a) + response_frame(c)
    first = client.receive_data(data[:-3])
    second = client.receive_data(data[-3:])
    assert [(type(e), e.packet.iRequestId) for e in first] == [(Reply, b), (Push, 0), (Reply, a)]
    assert [(type(e), e.packet.iRequestId) for e in second] == [(Reply, c)]
    assert client.outstanding == set()


# ------------------------------------------------------------------ server side: TARS


def tars_request(**kw: Any) -> RequestPacket:
    fields: dict[str, Any] = {
        "iVersion": TARS_VERSION,
        "iMessageType": 0x10,
        "iRequestId": 12345,
        "sServantName": QUERY_SERVANT,
        "sFuncName": "findObjectById",
        "sBuffer": FIND_OBJECT_BY_ID.encode_args("A.B.C"),
        "iTimeout": 3000,
    }
    fields.update(kw)
    return RequestPacket(**fields)


def test_the_server_decodes_requests_split_anywhere() -> None:
    reqs = [tars_request(iRequestId=i) for i in (1, 2, 3)]
    data = b"".join(encode_frame(encode_struct(r)) for r in reqs)
    server = ServerRpc()
    got: list[RequestPacket] = []
    for i in range(0, len(data), 7):
        got += server.receive_data(data[i : i + 7])
    assert got == reqs
    assert server.buffered == 0


def test_a_tars_reply_is_a_response_packet_echoing_id_version_and_message_type() -> None:
    req = tars_request()
    frame = ServerRpc().build_reply(req, 0, b"\x0c", context={"k": "v"})
    assert frame is not None
    assert decode_struct(ResponsePacket, unframe(frame)) == ResponsePacket(
        iVersion=TARS_VERSION,
        cPacketType=NORMAL,
        iRequestId=12345,
        iMessageType=0x10,
        iRet=0,
        sBuffer=b"\x0c",
        status={},
        sResultDesc="",
        context={"k": "v"},
    )


def test_a_tars_error_reply_carries_ret_and_description() -> None:
    frame = ServerRpc().build_reply(tars_request(), Ret.NO_FUNC, desc="no such function")
    assert frame is not None
    pkt = decode_response(unframe(frame))
    assert (pkt.iRet, pkt.sResultDesc, pkt.sBuffer) == (-3, "no such function", b"")


def test_a_one_way_request_gets_no_reply() -> None:
    assert ServerRpc().build_reply(tars_request(cPacketType=ONEWAY), 0, b"\x0c") is None


def test_a_tars_reply_round_trips_through_the_client() -> None:
    client, server = ClientRpc(), ServerRpc()
    body = FIND_OBJECT_BY_ID.encode_args("A.B.C")
    _, frame = client.send_request(QUERY_SERVANT, "findObjectById", body)
    (req,) = server.receive_data(frame)
    result = FIND_OBJECT_BY_ID.encode_result([EndpointF("10.0.0.1", 1)])
    reply = server.build_reply(req, 0, result)
    assert reply is not None
    (event,) = client.receive_data(reply)
    assert isinstance(event, Reply)
    assert FIND_OBJECT_BY_ID.decode_result(event.packet.sBuffer) == ([EndpointF("10.0.0.1", 1)],)


# ------------------------------------------------------------------ server side: TUP


def tup_request(**kw: Any) -> RequestPacket:
    return tars_request(
        iVersion=TUP_VERSION, sBuffer=FIND_OBJECT_BY_ID.encode_args_tup("A.B.C"), **kw
    )


def test_a_successful_tup_reply_is_request_shaped_without_a_result_code() -> None:
    req = tup_request()
    body = FIND_OBJECT_BY_ID.encode_result_tup([EndpointF("h", 1)])
    frame = ServerRpc().build_reply(req, 0, body)
    assert frame is not None
    assert decode_struct(RequestPacket, unframe(frame)) == RequestPacket(
        iVersion=TUP_VERSION,
        cPacketType=NORMAL,
        iMessageType=0x10,
        iRequestId=12345,
        sServantName=QUERY_SERVANT,
        sFuncName="findObjectById",
        sBuffer=body,
        iTimeout=3000,
        context={},
        status={},
    )


@pytest.mark.parametrize("version", [TUP_VERSION, TUP_COMPLEX_VERSION])
def test_a_failed_tup_reply_puts_the_code_and_text_in_status(version: int) -> None:
    req = tars_request(iVersion=version)
    payload = encode_reply(req, Ret.SERVER_DECODE_ERR, desc="bad args")
    pkt = decode_struct(RequestPacket, payload)
    assert pkt.status == {STATUS_RESULT_CODE: "-1", STATUS_RESULT_DESC: "bad args"}
    assert pkt.iVersion == version
    # an empty UniAttribute, not an empty buffer: @tars/rpc decodes every TUP body
    assert decode_value(TUP_MAP, pkt.sBuffer, 0) == {}


def test_decode_response_normalises_a_tup_reply_to_ret_and_buffer() -> None:
    req = tup_request()
    body = FIND_OBJECT_BY_ID.encode_result_tup([])
    ok = decode_response(encode_reply(req, 0, body, context={"c": "d"}))
    assert (ok.iVersion, ok.iRequestId, ok.iMessageType) == (TUP_VERSION, 12345, 0x10)
    assert (ok.iRet, ok.sBuffer, ok.sResultDesc, ok.context) == (0, body, "", {"c": "d"})
    failed = decode_response(encode_reply(req, Ret.OVERLOAD, desc="busy"))
    assert (failed.iRet, failed.sResultDesc, failed.sBuffer) == (-9, "busy", EMPTY_ATTRIBUTES)


def test_a_tup_reply_with_a_non_numeric_result_code_is_a_decode_error() -> None:
    pkt = RequestPacket(iVersion=TUP_VERSION, iRequestId=1, status={STATUS_RESULT_CODE: "x"})
    with pytest.raises(DecodeError, match=STATUS_RESULT_CODE):
        decode_response(encode_struct(pkt))


def test_a_tup_call_round_trips_through_client_and_server() -> None:
    client, server = ClientRpc(), ServerRpc()
    rid, frame = client.send_request(
        QUERY_SERVANT,
        "findObjectById",
        FIND_OBJECT_BY_ID.encode_args_tup("A.B.C"),
        version=TUP_VERSION,
    )
    (req,) = server.receive_data(frame)
    assert FIND_OBJECT_BY_ID.decode_args_tup(req.sBuffer) == ["A.B.C"]
    reply = server.build_reply(req, 0, FIND_OBJECT_BY_ID.encode_result_tup([EndpointF("h", 1)]))
    assert reply is not None
    (event,) = client.receive_data(reply)
    assert isinstance(event, Reply)
    assert (event.packet.iRequestId, event.packet.iRet) == (rid, 0)
    assert FIND_OBJECT_BY_ID.decode_result_tup(event.packet.sBuffer) == ([EndpointF("h", 1)],)


# ------------------------------------------------------------------ IDL methods

ALL_METHODS = [*QUERY_F.methods.values(), *SERVER_F.methods.values()]


def sample(kind: Kind[Any]) -> Any:
    """A non-default value of ``kind``."""
    if kind is STRING:
        return "Test.HelloServer.HelloObj"
    if kind is INT32_K:
        return -70000
    if kind is UINT32:
        return 2**32 - 1
    if kind is ENDPOINT_LIST:
        return [EndpointF("10.0.0.1", 10000, 60000, 1, 0, 3, 4, "a.b.c", 0, 0, 100, 1, 1, "n")]
    if kind is STRING_MAP:
        return {"Test.HelloServer.HelloObj": "1700000000", "b": ""}
    if isinstance(kind, ListKind):
        return [sample(kind.elem), sample(kind.elem)]
    if isinstance(kind, MapKind):
        return {sample(kind.key): sample(kind.value)}
    if isinstance(kind, StructKind):
        if kind.cls is GetMasterSlaveLock:
            return GetMasterSlaveLock("App", "Server", "node", True, False, 5000, 1)
        if kind.cls is ServerInfo:
            return ServerInfo("App", "Server", 4242, "App.Server.ObjAdapter")
    raise AssertionError(f"no sample for {kind!r}")


def args_of(m: Method) -> list[Any]:
    return [sample(p.kind) for p in m.in_params]


def result_of(m: Method) -> tuple[Any, ...]:
    ret = sample(m.ret) if m.ret is not None else None
    return (ret, *(sample(p.kind) for p in m.out_params))


METHOD_IDS = [m.name for m in ALL_METHODS]


@pytest.mark.parametrize("method", ALL_METHODS, ids=METHOD_IDS)
def test_every_method_round_trips_its_arguments_in_tars_encoding(method: Method) -> None:
    args = args_of(method)
    assert method.decode_args(method.encode_args(*args)) == args


@pytest.mark.parametrize("method", ALL_METHODS, ids=METHOD_IDS)
def test_every_method_round_trips_its_result_in_tars_encoding(method: Method) -> None:
    result = result_of(method)
    assert method.decode_result(method.encode_result(*result)) == result


@pytest.mark.parametrize("method", ALL_METHODS, ids=METHOD_IDS)
def test_every_method_round_trips_its_arguments_in_tup_encoding(method: Method) -> None:
    args = args_of(method)
    body = method.encode_args_tup(*args)
    assert method.decode_args_tup(body) == args
    assert set(decode_value(TUP_MAP, body, 0)) == {p.name for p in method.in_params}


@pytest.mark.parametrize("method", ALL_METHODS, ids=METHOD_IDS)
def test_every_method_round_trips_its_result_in_tup_encoding(method: Method) -> None:
    result = result_of(method)
    body = method.encode_result_tup(*result)
    assert method.decode_result_tup(body) == result
    assert set(decode_value(TUP_MAP, body, 0)) == {"", "tars_ret"} | {
        p.name for p in method.out_params
    }


@pytest.mark.parametrize("method", ALL_METHODS, ids=METHOD_IDS)
def test_in_params_are_tagged_from_1_in_declaration_order(method: Method) -> None:
    args = args_of(method)
    body = method.encode_args(*args)
    tags = {p.name: i + 1 for i, p in enumerate(method.params)}
    for p, v in zip(method.in_params, args, strict=True):
        assert decode_value(p.kind, body, tags[p.name]) == v


@pytest.mark.parametrize("method", ALL_METHODS, ids=METHOD_IDS)
def test_the_return_value_is_tag_0_and_out_params_keep_their_declared_tags(
    method: Method,
) -> None:
    result = result_of(method)
    body = method.encode_result(*result)
    assert method.ret is not None
    assert decode_value(method.ret, body, 0) == result[0]
    tags = {p.name: i + 1 for i, p in enumerate(method.params)}
    for p, v in zip(method.out_params, result[1:], strict=True):
        assert decode_value(p.kind, body, tags[p.name]) == v


@pytest.mark.parametrize("method", [m for m in ALL_METHODS if m.in_params], ids=lambda m: m.name)
def test_a_tup_request_missing_a_parameter_is_a_decode_error(method: Method) -> None:
    args = args_of(method)
    full = decode_value(TUP_MAP, method.encode_args_tup(*args), 0)
    for p in method.in_params:
        partial = {k: v for k, v in full.items() if k != p.name}
        with pytest.raises(DecodeError, match=p.name):
            method.decode_args_tup(encode_value(TUP_MAP, partial, 0))


@pytest.mark.parametrize("method", [m for m in ALL_METHODS if m.in_params], ids=lambda m: m.name)
def test_a_tars_request_missing_a_parameter_is_a_decode_error(method: Method) -> None:
    with pytest.raises(DecodeError, match="require field not exist"):
        method.decode_args(b"")


@pytest.mark.parametrize("method", [m for m in ALL_METHODS if m.out_params], ids=lambda m: m.name)
def test_a_tup_response_missing_an_out_param_is_a_decode_error(method: Method) -> None:
    full = decode_value(TUP_MAP, method.encode_result_tup(*result_of(method)), 0)
    for p in method.out_params:
        partial = {k: v for k, v in full.items() if k != p.name}
        with pytest.raises(DecodeError, match=p.name):
            method.decode_result_tup(encode_value(TUP_MAP, partial, 0))


def test_a_tup_response_without_a_return_value_is_a_decode_error() -> None:
    with pytest.raises(DecodeError, match="return value"):
        FIND_4ANY.decode_result_tup(encode_value(TUP_MAP, {"activeEp": b"", "inactiveEp": b""}))


def test_a_tup_response_with_only_the_tarsgo_return_key_decodes() -> None:
    m = {
        "tars_ret": encode_value(INT32_K, 7, 0),
        "activeEp": encode_value(ENDPOINT_LIST, [], 0),
        "inactiveEp": encode_value(ENDPOINT_LIST, [EndpointF("h", 1)], 0),
    }
    assert FIND_4ANY.decode_result_tup(encode_value(TUP_MAP, m, 0)) == (7, [], [EndpointF("h", 1)])


CPP_STYLE = [
    pytest.param(FIND_4ANY, "16 05 41 2E 42 2E 43 29 0C 39 0C", ["A.B.C"], id="4Any, empty outs"),
    pytest.param(
        FIND_IN_SAME_GROUP,
        "16 05 41 2E 42 2E 43 29 00 01 0A 06 01 68 10 01 2C 3C 4C 0B 39 0C",
        ["A.B.C"],
        id="SameGroup, non-empty out",
    ),
    pytest.param(
        FIND_IN_SAME_SET,
        "16 05 41 2E 42 2E 43 26 08 61 70 70 2E 73 7A 2E 31 39 0C 49 0C",
        ["A.B.C", "app.sz.1"],
        id="SameSet",
    ),
    pytest.param(
        FIND_IN_SAME_STATION,
        "16 05 41 2E 42 2E 43 26 02 73 7A 39 0C 49 0C",
        ["A.B.C", "sz"],
        id="SameStation",
    ),
]


@pytest.mark.parametrize(("method", "body", "expected"), CPP_STYLE)
def test_cpp_style_requests_carrying_out_param_tags_decode(
    method: Method, body: str, expected: list[Any]
) -> None:
    assert method.decode_args(bytes.fromhex(body)) == expected


def test_node_style_requests_are_just_the_in_params() -> None:
    assert FIND_4ANY.encode_args("A.B.C") == bytes.fromhex("16 05 41 2E 42 2E 43")


@pytest.mark.parametrize(
    ("method", "expected"),
    [
        (FIND_4ANY, "0C 29 0C 39 0C"),
        (FIND_IN_SAME_GROUP, "0C 29 0C 39 0C"),
        (FIND_IN_SAME_SET, "0C 39 0C 49 0C"),
        (FIND_IN_SAME_STATION, "0C 39 0C 49 0C"),
    ],
    ids=lambda x: x.name if isinstance(x, Method) else x,
)
def test_a_result_always_writes_both_out_lists_even_when_empty(
    method: Method, expected: str
) -> None:
    body = method.encode_result(0, [], [])
    assert body == bytes.fromhex(expected)
    assert method.decode_result(body) == (0, [], [])


def test_a_result_missing_inactive_ep_is_a_decode_error_like_the_node_client() -> None:
    with pytest.raises(DecodeError, match="inactiveEp"):
        FIND_4ANY.decode_result(bytes.fromhex("0C 29 0C"))


def test_find_object_by_id_returns_its_list_at_tag_0_with_no_int() -> None:
    body = FIND_OBJECT_BY_ID.encode_result([])
    assert body == bytes.fromhex("09 0C")
    assert FIND_OBJECT_BY_ID.decode_result(body) == ([],)


def test_a_method_without_parameters_has_an_empty_tars_body() -> None:
    m = SERVER_F["getLatestKeepAliveTime"]
    assert m.encode_args() == b""
    assert m.decode_args(b"") == []
    assert m.encode_args_tup() == bytes.fromhex("08 0C")


def test_a_good_reply_before_a_bad_frame_in_one_chunk_is_delivered() -> None:
    """The stream breaks at the bad frame, but the reply before it is not lost."""
    rpc = ClientRpc()
    rid, _ = rpc.send_request("S", "f", b"\x00")
    good = encode_frame(encode_struct(ResponsePacket(iRequestId=rid, sBuffer=b"ok")))
    events = rpc.receive_data(good + b"\xff\xff\xff\xff")
    assert [type(e).__name__ for e in events] == ["Reply"]
    assert rpc.failed is not None
    with pytest.raises(ProtocolError):
        rpc.receive_data(b"")


def test_wrong_argument_counts_are_encode_errors() -> None:
    for call in (
        lambda: FIND_4ANY.encode_args(),
        lambda: FIND_4ANY.encode_args("a", "b"),
        lambda: FIND_4ANY.encode_result(0, []),
        lambda: FIND_4ANY.encode_args_tup(),
        lambda: FIND_4ANY.encode_result_tup(0, [], [], []),
    ):
        with pytest.raises(EncodeError):
            call()
