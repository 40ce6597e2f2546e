"""Review D1 (finding 1): no-credential endpoint injection and flips through ServerF.

Each test is the review's attack; on the code before issue 14 each one succeeded (the
injected record reached the registry, the flip took a healthy server out). Now each is
refused with the code asserted, and the routing data is proven unchanged: every
category's version and digest equal before and after, once the node's report loop has
passed twice since the attack (so whatever it would send has been sent).
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tarscascade.catalog.announce import announce_setting
from tarscascade.cli.runtime import RegistryProcess
from tarscascade.errors import ServerError
from tarscascade.model import EndpointRecord, NodeRecord, State
from tarscascade.node.app import NodeAgent
from tarscascade.node.servants import LOCAL_ONLY
from tarscascade.registry.admin_ops import RegistryAdmin
from tarscascade.testing import eventually
from tarscascade.transport import Channel
from tarscascade.wire.idl.queryf import FIND_OBJECT_BY_ID, QUERY_SERVANT
from tarscascade.wire.idl.reportf import NOT_YOURS, EndpointStateF, ReportStatesReq
from tarscascade.wire.idl.serverf import ENDPOINT_CONTEXT_KEY, KEEP_ALIVE, NODE_SERVANT, ServerInfo
from tarscascade.wire.packets import Ret
from tests.integration.security.fleet import (
    HELLO,
    PAY,
    SHARED,
    local_ip,
    node_config,
    put,
    registry,
    report,
)
from tests.integration.security.fleet import routing as routing_of


@pytest.fixture
async def fleet(tmp_path: Path) -> AsyncIterator[tuple[RegistryProcess, NodeAgent]]:
    """A registry with Pay.Core.PayObj on db-host, and node n1 (shared token, as the
    review ran it); n1 listens on every interface so remote peers can reach it."""
    rp = registry(tmp_path, token=SHARED)
    await rp.start()
    assert rp.core is not None
    await put(rp.core, EndpointRecord(PAY, "10.0.0.5", 9000, node_name="db-host"))
    agent = NodeAgent(
        node_config("n1", rp, token=SHARED, listen=("0.0.0.0", 0), advertise="127.0.0.1")
    )
    await agent.start()
    try:
        assert agent.client is not None
        await agent.client.synced.wait()
        core = rp.core
        await eventually(lambda: core.catalog.get_node("n1") is not None, what="registered")
        yield rp, agent
    finally:
        await agent.aclose()
        await rp.aclose()


async def settled(agent: NodeAgent) -> None:
    """The report loop has run twice since now: what it would report, it has sent."""
    start = agent.report_rounds
    await eventually(lambda: agent.report_rounds >= start + 2, what="two report rounds")


async def keep_alive(host: str, port: int, info: ServerInfo, endpoint: str = "") -> int:
    ctx = {ENDPOINT_CONTEXT_KEY: endpoint} if endpoint else {}
    async with Channel(host, port) as ch:
        (ret,) = await ch.call(NODE_SERVANT, KEEP_ALIVE, info, context=ctx)
    return int(ret)


async def test_a_remote_peer_gets_no_serverf(fleet: tuple[RegistryProcess, NodeAgent]) -> None:
    rp, agent = fleet
    ip = local_ip()
    if ip is None:
        pytest.skip("this machine has no non-loopback address to call from")
    assert rp.core is not None
    before = routing_of(rp.core)
    info = ServerInfo("Pay", "Core", 4242, PAY)
    for attack in (info, ServerInfo("Pay", "Core", -4242, PAY)):  # injection, then flip
        with pytest.raises(ServerError) as exc:
            await keep_alive(ip, agent.port, attack, "tcp -h 6.6.6.6 -p 6666")
        assert exc.value.code == Ret.NO_FUNC
        assert LOCAL_ONLY in exc.value.desc
    await settled(agent)
    assert routing_of(rp.core) == before
    assert agent.keepalive.servers == {}  # nothing of it was taken in
    from tarscascade.admin.node_metrics import NodeMetrics

    assert "tarscascade_node_serverf_refused_total 2.0" in NodeMetrics(agent).render().decode()
    # QueryF stays open to TARS clients from anywhere, as in TARS
    async with Channel(ip, agent.port) as ch:
        (found,) = await ch.call(QUERY_SERVANT, FIND_OBJECT_BY_ID, PAY)
    assert [e.port for e in found] == [9000]


async def test_local_injection_for_another_nodes_object_is_refused(
    fleet: tuple[RegistryProcess, NodeAgent], caplog: pytest.LogCaptureFixture
) -> None:
    rp, agent = fleet
    assert rp.core is not None
    before = routing_of(rp.core)
    info = ServerInfo("Pay", "Core", os.getpid(), PAY)
    caplog.set_level(logging.WARNING, "tarscascade.node.app")
    for endpoint in (
        "tcp -h 6.6.6.6 -p 6666",  # a host that is not this node's
        "tcp -h 127.0.0.1 -p 6666",  # its own host, an object not registered for it
    ):
        for _ in range(3):  # every 5 s for ever in the review: logged once here
            assert await keep_alive("127.0.0.1", agent.port, info, endpoint) == -1
    await settled(agent)
    assert routing_of(rp.core) == before
    assert [(r.host, r.node_name) for r in rp.core.catalog.get_object(PAY)] == [
        ("10.0.0.5", "db-host")
    ]
    assert agent.announcements_refused == 6
    # and an operator sees them in the node's metrics
    from tarscascade.admin.node_metrics import NodeMetrics

    text = NodeMetrics(agent).render().decode()
    assert "tarscascade_node_announcements_refused_total 6.0" in text
    lines = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert len(lines) == 1  # once per (caller, object), not per beat
    assert PAY in lines[0]


async def test_an_allowed_announcement_still_registers(
    fleet: tuple[RegistryProcess, NodeAgent],
) -> None:
    """The rule refuses what is not the node's, not announcing itself."""
    rp, agent = fleet
    assert rp.core is not None
    await RegistryAdmin(rp.core).put_setting(announce_setting("n1"), "Test.*")
    await eventually(lambda: agent.catalog.get_setting(announce_setting("n1")) is not None)
    info = ServerInfo("Test", "HelloServer", os.getpid(), HELLO)
    assert await keep_alive("127.0.0.1", agent.port, info, "tcp -h 127.0.0.1 -p 7001") == 0
    await eventually(lambda: bool(rp.core and rp.core.catalog.get_object(HELLO)))
    [rec] = rp.core.catalog.get_object(HELLO)
    assert (rec.host, rec.port, rec.node_name) == ("127.0.0.1", 7001, "n1")


async def test_a_flip_needs_the_pid_that_beats(fleet: tuple[RegistryProcess, NodeAgent]) -> None:
    rp, agent = fleet
    assert rp.core is not None
    await put(rp.core, EndpointRecord(HELLO, "127.0.0.1", 7002, node_name="n1"))
    await eventually(lambda: bool(agent.catalog.get_object(HELLO)))
    real = ServerInfo("Test", "HelloServer", 4242, HELLO)
    assert await keep_alive("127.0.0.1", agent.port, real) == 0
    await settled(agent)
    assert rp.core.catalog.get_object(HELLO)[0].present_state is State.ACTIVE
    before = routing_of(rp.core)
    # another local process says goodbye for it (the review's flip): ignored
    assert await keep_alive("127.0.0.1", agent.port, ServerInfo("Test", "HelloServer", -999)) == -1
    await settled(agent)
    assert routing_of(rp.core) == before
    # the process itself leaving still takes it out at once
    assert await keep_alive("127.0.0.1", agent.port, ServerInfo("Test", "HelloServer", -4242)) == 0
    await eventually(
        lambda: (
            rp.core is not None
            and rp.core.catalog.get_object(HELLO)[0].present_state is State.INACTIVE
        )
    )


async def test_the_registry_refuses_announcements_again(tmp_path: Path) -> None:
    """A hostile node skips its own checks and reports straight to the registry."""
    rp = registry(tmp_path, node_auth=True, http=("127.0.0.1", 0), token="admin-token")
    await rp.start()
    try:
        assert rp.core is not None
        assert rp.authority is not None
        assert rp.report is not None
        core = rp.core
        await put(
            core,
            EndpointRecord(PAY, "10.0.0.5", 9000, node_name="db-host"),
            EndpointRecord(HELLO, "10.0.0.7", 7000, node_name="n1"),
            NodeRecord("n1", "10.0.0.7", 19386),
        )
        secret = await rp.authority.issue("n1")
        before = routing_of(core)

        async def report_n1(*states: EndpointStateF) -> tuple[int, str]:
            return await report(rp.tars_port, ReportStatesReq("n1", secret, list(states)))

        injected = EndpointStateF(PAY, "6.6.6.6", 6666, "active", "tcp -h 6.6.6.6 -p 6666")
        ret, why = await report_n1(injected)
        assert ret == NOT_YOURS
        assert "not one of node n1's addresses" in why
        own_host_foreign_object = EndpointStateF(
            PAY, "10.0.0.7", 6666, "active", "tcp -h 10.0.0.7 -p 6666"
        )
        ret, why = await report_n1(own_host_foreign_object)
        assert ret == NOT_YOURS
        assert "not registered for node n1" in why
        assert routing_of(core) == before
        assert rp.report.announcements_refused == 2
        async with httpx.AsyncClient() as client:  # and the operator sees it
            text = (await client.get(f"http://127.0.0.1:{rp.http_port}/metrics")).text
        assert "tarscascade_registry_announcements_refused_total 2.0" in text
        # its own object on its own host: taken
        ok = EndpointStateF(HELLO, "10.0.0.7", 7001, "active", "tcp -h 10.0.0.7 -p 7001")
        assert (await report_n1(ok))[0] == 1
        assert {r.port for r in core.catalog.get_object(HELLO)} == {7000, 7001}
    finally:
        await rp.aclose()
