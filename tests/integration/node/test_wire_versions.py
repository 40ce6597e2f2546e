"""Every servant of a real registry and node answers TUP 2 and JSON 5 bodies in kind.

A registry process and a node agent over real TCP (issue 11, item 4). Requests are
built with the IDL in each body format and sent as raw packets; the answers must decode
to the same values as the TARS (version 1) answer, in the request's own version. Bad
bodies get SERVER_DECODE_ERR and change nothing (no beat taken, no write made).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tarscascade.model import State
from tarscascade.testing import eventually
from tarscascade.transport import Channel
from tarscascade.wire.idl.cascadef import CASCADE_SERVANT, HEARTBEAT, HeartbeatReq
from tarscascade.wire.idl.queryf import FIND_4ANY, FIND_IN_SAME_GROUP, QUERY_F, QUERY_SERVANT
from tarscascade.wire.idl.reportf import (
    AUTH_FAILED,
    REPORT_SERVANT,
    REPORT_STATES,
    EndpointStateF,
    ReportStatesReq,
)
from tarscascade.wire.idl.serverf import KEEP_ALIVE, NODE_SERVANT, ServerInfo
from tarscascade.wire.interface import Method
from tarscascade.wire.packets import (
    JSON_VERSION,
    TARS_VERSION,
    TUP_COMPLEX_VERSION,
    TUP_VERSION,
    ResponsePacket,
    Ret,
)
from tarscascade.wire.tup2 import decode_attributes
from tests.integration.node.wire_rig import HELLO, TOKEN, Rig, rig

__all__ = ["rig"]  # the fixture

VERSIONS = [TARS_VERSION, TUP_COMPLEX_VERSION, TUP_VERSION, JSON_VERSION]
OTHER = [TUP_COMPLEX_VERSION, JSON_VERSION]


async def ask(
    ch: Channel, servant: str, method: Method, version: int, *args: Any, **kw: Any
) -> ResponsePacket:
    body = method.encode_args_as(version, *args)
    rsp = await ch.invoke(servant, method.name, body, version=version, timeout=5, **kw)
    assert rsp is not None
    assert rsp.iVersion == version  # answered in kind
    return rsp


def hosts(values: tuple[Any, ...]) -> tuple[Any, ...]:
    """(ret, [(host, port)...] per out-parameter)"""
    ret, *outs = values
    return (ret, *[sorted((e.host, e.port) for e in eps) for eps in outs])


@pytest.mark.parametrize("where", ["node", "node-alias", "registry", "registry-alias"])
async def test_queryf_answers_every_version_alike(rig: Rig, where: str) -> None:
    ch = rig.to_node if where.startswith("node") else rig.to_registry
    servant = QUERY_SERVANT if where in ("node-alias", "registry") else NODE_SERVANT
    for method, args in ((FIND_4ANY, (HELLO,)), (FIND_IN_SAME_GROUP, (HELLO,))):
        answers = {}
        for version in VERSIONS:
            rsp = await ask(ch, servant, method, version, *args)
            assert rsp.iRet == Ret.SUCCESS, rsp.sResultDesc
            answers[version] = hosts(method.decode_result_as(version, rsp.sBuffer))
        assert answers[TARS_VERSION] == (0, [("127.0.0.1", 9001)], [("127.0.0.1", 9002)])
        assert all(a == answers[TARS_VERSION] for a in answers.values()), answers


async def test_json_answer_is_an_object_of_out_params_and_tars_ret(rig: Rig) -> None:
    body = json.dumps({"id": HELLO}).encode()
    rsp = await rig.to_node.invoke(NODE_SERVANT, FIND_4ANY.name, body, version=JSON_VERSION)
    assert rsp is not None
    assert rsp.iRet == 0
    obj = json.loads(rsp.sBuffer)
    assert set(obj) == {"tars_ret", "activeEp", "inactiveEp"}
    assert obj["tars_ret"] == 0
    [ep] = obj["activeEp"]
    assert (ep["host"], ep["port"], ep["istcp"]) == ("127.0.0.1", 9001, 1)
    assert set(ep) >= {"host", "port", "timeout", "istcp", "grid", "setId", "weightType"}


async def test_tup2_answer_files_values_under_stars_stream_type_names(rig: Rig) -> None:
    rsp = await ask(rig.to_registry, QUERY_SERVANT, FIND_4ANY, TUP_COMPLEX_VERSION, HELLO)
    m = decode_attributes(rsp.sBuffer)
    assert {k: list(v) for k, v in m.items()} == {
        "": ["int32"],
        "tars_ret": ["int32"],
        "activeEp": ["List<tars.EndpointF>"],
        "inactiveEp": ["List<tars.EndpointF>"],
    }


@pytest.mark.parametrize("version", OTHER)
async def test_keepalive_in_any_version_makes_the_endpoint_present(rig: Rig, version: int) -> None:
    assert rig.record(9002).present_state is State.INACTIVE
    info = ServerInfo("Test", "HelloServer", 4242, HELLO + "Adapter")
    rsp = await ask(rig.to_node, NODE_SERVANT, KEEP_ALIVE, version, info)
    assert rsp.iRet == 0
    assert KEEP_ALIVE.decode_result_as(version, rsp.sBuffer) == (0,)
    await eventually(lambda: rig.record(9002).present_state is State.ACTIVE, timeout=10)


BAD_KEEPALIVE = {
    JSON_VERSION: [
        b"{",
        b"[]",
        b'{"serverInfo": {"application": "Test", "serverName": "HelloServer", "pid": "4242"}}',
        b'{"serverInfo": {"application": "Test", "pid": 4242}}',
        b'{"serverinfo": {"application": "Test", "serverName": "HelloServer", "pid": 4242}}',
        b'{"serverInfo": {"application": "Test", "serverName": "HelloServer", "pid": 1e99}}',
        b"\xff\xfe{}",
    ],
    TUP_COMPLEX_VERSION: [
        b"",
        b"\x08\x0c",  # no serverInfo
        KEEP_ALIVE.encode_args_tup(ServerInfo("Test", "HelloServer", 4242)),  # a v3 body
        QUERY_F["findObjectById"].encode_args_tup2("Test"),  # a string, not a ServerInfo
    ],
}


@pytest.mark.parametrize("version", OTHER)
async def test_bad_keepalive_bodies_are_decode_errors_and_change_nothing(
    rig: Rig, version: int
) -> None:
    for body in BAD_KEEPALIVE[version]:
        rsp = await rig.to_node.invoke(NODE_SERVANT, KEEP_ALIVE.name, body, version=version)
        assert rsp is not None
        assert rsp.iVersion == version
        assert rsp.iRet == Ret.SERVER_DECODE_ERR, (body, rsp.sResultDesc)
        assert rsp.sResultDesc
    assert not rig.node.keepalive.servers  # no beat was taken
    # the report loop ran since (it runs every 50 ms) and found nothing to say
    sent = rig.node.reports_sent
    await eventually(lambda: rig.node.reports_sent >= sent, timeout=5)
    assert rig.record(9002).present_state is State.INACTIVE


@pytest.mark.parametrize("version", OTHER)
async def test_reportobj_answers_in_kind_and_a_bad_token_changes_nothing(
    rig: Rig, version: int
) -> None:
    assert rig.registry.core is not None
    before = rig.registry.core.catalog.versions()
    state = EndpointStateF(HELLO, "127.0.0.1", 9002, "active")
    bad = ReportStatesReq("n1", "wrong", [state])
    rsp = await ask(rig.to_registry, REPORT_SERVANT, REPORT_STATES, version, bad)
    assert REPORT_STATES.decode_result_as(version, rsp.sBuffer) == (AUTH_FAILED,)
    garbage = await rig.to_registry.invoke(
        REPORT_SERVANT, REPORT_STATES.name, b'{"req": {"nodeName": "n1"}}', version=version
    )
    assert garbage is not None
    assert garbage.iRet == Ret.SERVER_DECODE_ERR
    assert rig.registry.core.catalog.versions() == before
    good = ReportStatesReq("n1", TOKEN, [state])
    rsp = await ask(rig.to_registry, REPORT_SERVANT, REPORT_STATES, version, good)
    assert REPORT_STATES.decode_result_as(version, rsp.sBuffer) == (1,)
    assert rig.record(9002).present_state is State.ACTIVE


@pytest.mark.parametrize("version", OTHER)
async def test_the_registry_alias_refuses_serverf_in_any_version(rig: Rig, version: int) -> None:
    info = ServerInfo("Test", "HelloServer", 4242, HELLO + "Adapter")
    rsp = await ask(rig.to_registry, NODE_SERVANT, KEEP_ALIVE, version, info)
    assert rsp.iRet == Ret.NO_FUNC
    assert "ServerF" in rsp.sResultDesc


@pytest.mark.parametrize("version", OTHER)
async def test_cascadeobj_takes_other_versions_through_the_same_switch(
    rig: Rig, version: int
) -> None:
    req = HeartbeatReq("stranger", [])
    rsp = await ask(rig.to_registry, CASCADE_SERVANT, HEARTBEAT, version, req)
    # an unknown node is refused by the hub, in the request's version
    assert rsp.iRet == Ret.SUCCESS, rsp.sResultDesc
    ret, _plan = HEARTBEAT.decode_result_as(version, rsp.sBuffer)
    assert ret != 0
    bad = await rig.to_registry.invoke(CASCADE_SERVANT, HEARTBEAT.name, b"", version=version)
    assert bad is not None
    assert bad.iRet == Ret.SERVER_DECODE_ERR


async def test_an_unknown_version_is_a_decode_error(rig: Rig) -> None:
    body = FIND_4ANY.encode_args(HELLO)
    rsp = await rig.to_node.invoke(NODE_SERVANT, FIND_4ANY.name, body, version=4)
    assert rsp is not None
    assert rsp.iRet == Ret.SERVER_DECODE_ERR
    assert "version 4" in rsp.sResultDesc
