"""wait_acked: the drain question "has every node applied revision r?"."""

from __future__ import annotations

from tarscascade.cascade.states import held_states
from tarscascade.model import Category, State
from tarscascade.store import Put
from tarscascade.testing import eventually
from tarscascade.transport import Channel
from tarscascade.wire.idl.cascadef import CASCADE_SERVANT, OK, SUBSCRIBE, SubscribeReq
from tests.integration.cascade.harness import (
    TOKEN,
    WAIT,
    Cluster,
    active_ports,
    converged,
    ep,
    fast_client_options,
)


async def test_wait_acked_returns_once_every_node_acked_and_names_the_laggards(
    cluster: Cluster,
) -> None:
    reg = await cluster.start_registry()
    await reg.core.write([Put(ep(1)), Put(ep(2))])
    nodes = [cluster.node(f"n{i}", [("127.0.0.1", reg.port)]) for i in range(3)]
    await eventually(lambda: all(reg.core.catalog.get_node(n.name) for n in nodes), timeout=WAIT)
    await converged(nodes, reg, "initial")

    await reg.core.write([Put(ep(1, present_state=State.INACTIVE))])  # drain endpoint 1
    version = reg.core.catalog.version(Category.OBJECTS)
    elapsed, missing = await reg.hub.wait_acked(Category.OBJECTS, version, timeout=WAIT)
    assert missing == []
    assert 0 <= elapsed < WAIT
    # acknowledged means applied: nobody serves endpoint 1 any more
    assert all(active_ports(n.catalog) == [2] for n in nodes)
    states = reg.hub.node_states()
    assert all(states[n.name].held[Category.OBJECTS] >= version for n in nodes)
    assert all(states[n.name].last_ack > 0 for n in nodes)

    # A node that subscribed (it is current) but never acknowledges anything.
    async with Channel("127.0.0.1", reg.port) as mute:
        req = SubscribeReq(nodeName="mute", token=TOKEN, held=held_states(nodes[0].catalog))
        ret, _ = await mute.call(CASCADE_SERVANT, SUBSCRIBE, req)
        assert ret == OK
        await eventually(lambda: "mute" in reg.hub.node_states(), timeout=WAIT)
        await reg.core.write([Put(ep(3))])
        version = reg.core.catalog.version(Category.OBJECTS)
        elapsed, missing = await reg.hub.wait_acked(Category.OBJECTS, version, timeout=0.5)
        assert missing == ["mute"]
        assert elapsed >= 0.5
        # waiting on chosen nodes only
        elapsed, missing = await reg.hub.wait_acked(
            Category.OBJECTS, version, nodes=["n0", "n1"], timeout=WAIT
        )
        assert missing == []
        _, missing = await reg.hub.wait_acked(
            Category.OBJECTS, version, nodes=["n2", "ghost"], timeout=0.2
        )
        assert missing == ["ghost"]
        assert reg.hub.node_states()["mute"].lag[Category.OBJECTS] >= 1  # revisions behind


async def test_node_states_report_versions_digests_lag_and_counters(cluster: Cluster) -> None:
    reg = await cluster.start_registry()
    await reg.core.write([Put(ep(1))])
    node = cluster.node("solo", [("127.0.0.1", reg.port)])
    await converged([node], reg, "initial")
    await eventually(
        lambda: reg.hub.node_states()["solo"].last_heartbeat > 0, timeout=WAIT, what="heartbeat"
    )
    await converged([node], reg, "after registration")
    await eventually(
        lambda: reg.hub.node_states()["solo"].held == reg.core.catalog.versions(),
        timeout=WAIT,
        what="acked everything",
    )
    st = reg.hub.node_states()["solo"]
    assert st.connected
    assert st.via == ""
    assert st.address == "127.0.0.1:20000"
    assert st.digests[Category.OBJECTS] == reg.core.catalog.digest(Category.OBJECTS)
    assert set(st.lag.values()) == {0}
    assert st.snapshots_sent >= 1
    await cluster.close_node(node)
    await eventually(lambda: not reg.hub.node_states()["solo"].connected, timeout=WAIT)


async def test_an_idle_node_heartbeats_less_often_and_its_session_never_expires(
    cluster: Cluster,
) -> None:
    """The heartbeat interval grows while nothing changes, up to the idle one; the node
    announces that longest interval in subscribe, so the upstream's expiry (3 missed
    heartbeats) never ends the session of a node that is merely idle."""
    reg = await cluster.start_registry()
    await reg.core.write([Put(ep(1))])
    # base 0.1 s: an expiry computed from it would be 3 x 0.1 x 1.25 + 1 = 1.4 s, well
    # inside the idle interval of 2.5 s
    opts = fast_client_options(heartbeat_interval=0.1, heartbeat_idle_factor=25.0)
    node = cluster.node("idle", [("127.0.0.1", reg.port)], options=opts)
    await converged([node], reg, "initial")
    session = reg.hub._sessions["idle"]
    assert session.heartbeat_timeout is not None
    assert session.heartbeat_timeout >= 3 * 2.5
    # 0.1, 0.15, 0.23, ... 1.7 s apart by the 8th (about 5 s): past the 1.4 s
    await eventually(
        lambda: reg.hub.stats.heartbeats_cached >= 8, timeout=WAIT, what="idle heartbeats"
    )
    assert reg.hub._sessions.get("idle") is session
    assert reg.hub.stats.expired == 0
    assert node.client.stats.heartbeats < 40  # 0.1 s apart all along would be more by now

    # Whatever the interval has grown to, a drain still answers fast: acks answer it.
    await reg.core.write([Put(ep(2))])
    version = reg.core.catalog.version(Category.OBJECTS)
    _, missing = await reg.hub.wait_acked(Category.OBJECTS, version, timeout=WAIT)
    assert missing == []
