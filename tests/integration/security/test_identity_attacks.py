"""Review D2 (finding 9): one shared token was the only identity. With per-node
credentials (``--node-auth``) each attack is refused with its code, routing unchanged:

* reporting for another node (AUTH_FAILED, -1);
* taking over another node's cascade session (subscribe AUTH_FAILED, the victim's
  session untouched);
* a relay claiming descendants that never authenticated to it (HeartbeatRsp.refused; no
  tracker entry, no registration, no liveness refresh, no drain ack).

On the code before issue 14 all three worked for any holder of the one token (the
shared-token mode keeps that behaviour, named for what it is: bootstrap/dev).
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tarscascade.auth import PURPOSE_RELAYED, make_proof, node_key
from tarscascade.cascade.states import states_of
from tarscascade.cli.runtime import RegistryProcess
from tarscascade.model import Category, EndpointRecord, NodeRecord, State, Version
from tarscascade.node.app import NodeAgent
from tarscascade.testing import eventually
from tarscascade.transport import Channel
from tarscascade.wire.idl.cascadef import (
    AUTH_FAILED,
    CASCADE_SERVANT,
    HEARTBEAT,
    OK,
    PROTOCOL_VERSION,
    SUBSCRIBE,
    HeartbeatReq,
    NodeAckF,
    SubscribeReq,
)
from tarscascade.wire.idl.reportf import AUTH_FAILED as REPORT_AUTH_FAILED
from tarscascade.wire.idl.reportf import EndpointStateF, ReportStatesReq
from tarscascade.wire.idl.serverf import KEEP_ALIVE, NODE_SERVANT, ServerInfo
from tests.integration.security.fleet import (
    HELLO,
    SHARED,
    node_config,
    put,
    registry,
    report,
    routing,
)

ADMIN = "admin-token-for-tests"


@pytest.fixture
async def reg(tmp_path: Path) -> AsyncIterator[RegistryProcess]:
    rp = registry(tmp_path, node_auth=True, token=ADMIN, http=("127.0.0.1", 0))
    await rp.start()
    try:
        yield rp
    finally:
        await rp.aclose()


async def issue(rp: RegistryProcess, name: str, hosts: list[str] | None = None) -> str:
    """``tarscascade node add`` does this: the admin API answers the secret once."""
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{rp.http_port}") as c:
        rsp = await c.post(
            f"/v1/nodes/{name}/credentials",
            json={"hosts": hosts or []},
            headers={"Authorization": f"Bearer {ADMIN}"},
        )
    assert rsp.status_code == 201, rsp.text
    assert rsp.headers["cache-control"] == "no-store"
    return str(rsp.json()["secret"])


async def start(agent: NodeAgent) -> NodeAgent:
    await agent.start()
    assert agent.client is not None
    await eventually(agent.client.synced.is_set, what=f"{agent.config.name} synced")
    return agent


async def test_credentials_are_issued_once_and_stored_hashed(reg: RegistryProcess) -> None:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{reg.http_port}") as c:
        unauth = await c.post("/v1/nodes/n1/credentials", json={})
        assert unauth.status_code == 401
        wrong = await c.post(
            "/v1/nodes/n1/credentials", json={}, headers={"Authorization": "Bearer nope"}
        )
        assert wrong.status_code == 403
        secret = await issue(reg, "n1", ["10.0.0.7"])
        shown = await c.get("/v1/nodes/n1/credentials")
        assert shown.status_code == 200
        assert shown.json()["hosts"] == ["10.0.0.7"]
        assert secret not in shown.text
        assert (await c.get("/v1/nodes/nobody/credentials")).status_code == 404
    assert reg.store is not None
    [row] = reg.store.credentials.load_all()
    assert row.key == node_key(secret)
    assert secret.encode() not in row.key
    # issuing again replaces the secret: the old one no longer works
    newer = await issue(reg, "n1")
    assert reg.authority is not None
    assert not reg.authority.authenticate("n1", secret)
    assert reg.authority.authenticate("n1", newer)


async def test_a_node_syncs_and_reports_with_its_own_secret(reg: RegistryProcess) -> None:
    assert reg.core is not None
    await put(
        reg.core,
        EndpointRecord(HELLO, "127.0.0.1", 7100, node_name="n1", present_state=State.INACTIVE),
    )
    agent = await start(NodeAgent(node_config("n1", reg, token=await issue(reg, "n1"))))
    try:
        info = ServerInfo("Test", "HelloServer", os.getpid(), HELLO)
        async with Channel("127.0.0.1", agent.port) as ch:
            assert (await ch.call(NODE_SERVANT, KEEP_ALIVE, info)) == (0,)
        core = reg.core
        await eventually(
            lambda: core.catalog.get_object(HELLO)[0].present_state is State.ACTIVE,
            what="reported active",
        )
        await eventually(lambda: agent.reports_sent >= 1, what="its report answered")
    finally:
        await agent.aclose()


async def test_a_node_cannot_report_for_another(reg: RegistryProcess) -> None:
    assert reg.core is not None
    await put(reg.core, EndpointRecord(HELLO, "10.0.0.8", 7000, node_name="n2"))
    n1 = await issue(reg, "n1")
    await issue(reg, "n2")
    before = routing(reg.core)
    flip = [EndpointStateF(HELLO, "10.0.0.8", 7000, "inactive")]
    ret, _ = await report(reg.tars_port, ReportStatesReq("n2", n1, flip))
    assert ret == REPORT_AUTH_FAILED
    ret, _ = await report(reg.tars_port, ReportStatesReq("n2", "", flip))
    assert ret == REPORT_AUTH_FAILED
    assert routing(reg.core) == before


async def subscribe(port: int, name: str, token: str) -> tuple[Channel, int]:
    ch = Channel("127.0.0.1", port)
    req = SubscribeReq(nodeName=name, token=token, protocol=PROTOCOL_VERSION)
    ret, _rsp = await ch.call(CASCADE_SERVANT, SUBSCRIBE, req)
    return ch, int(ret)


async def test_a_node_cannot_take_over_another_nodes_session(reg: RegistryProcess) -> None:
    n1 = await issue(reg, "n1")
    victim = await start(NodeAgent(node_config("n2", reg, token=await issue(reg, "n2"))))
    try:
        assert victim.client is not None
        assert reg.hub is not None
        hub = reg.hub
        connects = victim.client.stats.connects
        await eventually(lambda: "n2" in hub.node_states(), what="n2's session")
        ch, ret = await subscribe(reg.tars_port, "n2", n1)
        await ch.aclose()
        assert ret == AUTH_FAILED
        assert hub.node_states()["n2"].connected
        assert victim.client.connected
        assert victim.client.stats.connects == connects  # never kicked off
        assert reg.authority is not None
        assert reg.authority.stats.subscribe_refused >= 1
    finally:
        await victim.aclose()


async def test_a_relay_cannot_claim_nodes_that_never_authenticated_to_it(
    reg: RegistryProcess,
) -> None:
    assert reg.core is not None
    assert reg.hub is not None
    core, hub = reg.core, reg.hub
    await put(core, NodeRecord("dead", "10.0.0.9", 19386))  # a host that died
    relay = await issue(reg, "relay-1")
    leaf = await issue(reg, "leaf")
    ch, ret = await subscribe(reg.tars_port, "relay-1", relay)
    try:
        assert ret == OK
        await eventually(lambda: core.catalog.get_node("relay-1") is not None)
        before = routing(core)
        seen = dict(core.liveness.last_seen)
        held = states_of({})
        forged = [
            NodeAckF(nodeName="ghost", held=held, address="6.6.6.6:1"),
            NodeAckF(nodeName="dead", held=held),
            NodeAckF(nodeName="leaf", held=held, proof="tcp1/relayed/relay-1/1/" + "A" * 43),
        ]
        ret, rsp = await ch.call(
            CASCADE_SERVANT, HEARTBEAT, HeartbeatReq(nodeName="relay-1", descendants=forged)
        )
        assert ret == OK
        assert sorted(rsp.refused) == ["dead", "ghost", "leaf"]
        states = hub.node_states()
        assert {"ghost", "dead", "leaf"}.isdisjoint(states)
        assert hub.tracker.descendants_of("relay-1") == set()
        assert core.liveness.last_seen.get("dead") == seen.get("dead")  # not kept alive
        # a drain cannot count forged acks: nodes unknown here stay behind
        _elapsed, behind = await hub.wait_acked(
            Category.OBJECTS,
            Version(core.catalog.version(Category.OBJECTS).epoch, 10**9),
            ["ghost"],
            timeout=0.05,
        )
        assert behind == ["ghost"]
        # a barrier: a descendant with a real proof is registered; the forged ones,
        # which would have been in the same batch, are not
        ms = int(core.options.clock() * 1000)
        real = make_proof(node_key(leaf), PURPOSE_RELAYED, "leaf", "relay-1", ms)
        ok = [NodeAckF(nodeName="leaf", held=held, address="127.0.0.1:1", proof=real)]
        ret, rsp = await ch.call(
            CASCADE_SERVANT, HEARTBEAT, HeartbeatReq(nodeName="relay-1", descendants=ok)
        )
        assert (ret, list(rsp.refused)) == (OK, [])
        await eventually(lambda: core.catalog.get_node("leaf") is not None, what="leaf")
        assert core.catalog.get_node("ghost") is None
        assert {r.name for r in core.catalog.records(Category.NODES)} == {  # type: ignore[attr-defined]
            "dead",
            "leaf",
            "relay-1",
        }
        assert routing(core)[Category.OBJECTS] == before[Category.OBJECTS]
    finally:
        await ch.aclose()


async def test_leaves_behind_a_relay_authenticate_through_it(
    reg: RegistryProcess, caplog: pytest.LogCaptureFixture
) -> None:
    assert reg.core is not None
    assert reg.hub is not None
    core, hub = reg.core, reg.hub
    relay = await start(NodeAgent(node_config("relay-1", reg, token=await issue(reg, "relay-1"))))
    leaf_secret = await issue(reg, "leaf")
    try:
        up = ("127.0.0.1", relay.relay_port)
        leaf = await start(
            NodeAgent(
                node_config("leaf", reg, token=leaf_secret, upstreams=[up], relays={up: "relay-1"})
            )
        )
        try:
            await eventually(lambda: hub.node_states().get("leaf") is not None, what="claimed")
            assert hub.node_states()["leaf"].via == "relay-1"
            await eventually(lambda: core.catalog.get_node("leaf") is not None, what="registered")
            # the relay saw proofs only: never the leaf's secret
            seen = relay.hub.tracker.get("leaf")
            assert seen is not None
            assert seen.proof.startswith("tcp1/relayed/relay-1/")
            assert leaf_secret not in seen.proof
            # the leaf's report, through the relay, is the leaf's own (a proof over it)
            await put(
                core,
                EndpointRecord(
                    HELLO, "127.0.0.1", 7200, node_name="leaf", present_state=State.INACTIVE
                ),
            )
            await eventually(lambda: bool(leaf.catalog.get_object(HELLO)))
            info = ServerInfo("Test", "HelloServer", os.getpid(), HELLO)
            async with Channel("127.0.0.1", leaf.port) as ch:
                assert (await ch.call(NODE_SERVANT, KEEP_ALIVE, info)) == (0,)
            await eventually(
                lambda: core.catalog.get_object(HELLO)[0].present_state is State.ACTIVE,
                what="reported through the relay",
            )
        finally:
            await leaf.aclose()
        # a leaf that gives the relay as a registry would send it its secret: refused
        caplog.set_level(logging.WARNING, "tarscascade.node.app")
        wrong = NodeAgent(node_config("leaf", reg, token=leaf_secret, upstreams=[up]))
        await wrong.start()
        try:
            assert wrong.client is not None
            client = wrong.client
            await eventually(lambda: client.stats.refused >= 1, what="refused by the relay")
            assert any("sent its secret to this relay" in r.getMessage() for r in caplog.records)
        finally:
            await wrong.aclose()
    finally:
        await relay.aclose()


async def test_revoking_a_credential_ends_the_session(reg: RegistryProcess) -> None:
    agent = await start(NodeAgent(node_config("n1", reg, token=await issue(reg, "n1"))))
    try:
        assert reg.hub is not None
        assert reg.authority is not None
        assert agent.client is not None
        hub, client = reg.hub, agent.client
        await eventually(lambda: "n1" in hub.node_states() and hub.node_states()["n1"].connected)
        assert await reg.authority.revoke("n1")
        await eventually(lambda: client.stats.refused >= 1, what="refused after revocation")
        assert not hub.node_states()["n1"].connected
    finally:
        await agent.aclose()


async def test_the_shared_mode_lets_any_holder_speak_for_any_node(tmp_path: Path) -> None:
    """The bootstrap/dev mode is what it says: one token, every name (README, Security)."""
    rp = registry(tmp_path, token=SHARED)
    await rp.start()
    try:
        assert rp.core is not None
        await put(rp.core, EndpointRecord(HELLO, "10.0.0.8", 7000, node_name="n2"))
        flip = [EndpointStateF(HELLO, "10.0.0.8", 7000, "inactive")]
        assert (await report(rp.tars_port, ReportStatesReq("n2", SHARED, flip)))[0] == 1
        assert (await report(rp.tars_port, ReportStatesReq("n2", "wrong", flip)))[0] == -1
    finally:
        await rp.aclose()
