"""Hosts behind a relay have node records and are judged by liveness (review C3).

Before: a leaf that reached the registry only through a relay never got a node record,
so its endpoints stayed active after it died; and a leaf that vanished without FIN/RST
kept its session on the relay for ever, refreshing its liveness at the registry.
"""

from __future__ import annotations

from pathlib import Path

from tarscascade.cascade import ClientOptions
from tarscascade.cli.runtime import RegistryConfig, RegistryProcess
from tarscascade.model import Category, EndpointRecord, State
from tarscascade.node.app import NodeAgent, NodeConfig
from tarscascade.registry.core import RegistryOptions
from tarscascade.store import Put
from tarscascade.testing import eventually
from tarscascade.testing.faultproxy import FaultProxy

FAST = ClientOptions(heartbeat_interval=0.3, reconnect_initial=0.05, reconnect_max=0.3)
OBJ = "A.Leaf.Obj"
WAIT = 30.0


def agent(name: str, upstreams: list[tuple[str, int]]) -> NodeAgent:
    return NodeAgent(
        NodeConfig(name=name, upstreams=upstreams, listen=("127.0.0.1", 0), client_options=FAST)
    )


async def test_a_leaf_behind_a_relay_is_registered_and_judged_dead_when_it_vanishes(
    tmp_path: Path,
) -> None:
    rp = RegistryProcess(
        RegistryConfig(
            db=f"sqlite:///{tmp_path}/r.db",
            listen=("127.0.0.1", 0),
            http=None,
            options=RegistryOptions(
                tail_interval=0.1, reload_interval=0, node_timeout=3.0, liveness_interval=0.2
            ),
        )
    )
    await rp.start()
    assert rp.core is not None
    assert rp.hub is not None
    core, hub = rp.core, rp.hub
    relay = agent("relay", [("127.0.0.1", rp.tars_port)])
    await relay.start()
    proxy = await FaultProxy(("127.0.0.1", relay.port)).start()
    leaf = agent("leaf", [proxy.address])  # the leaf reaches the registry only via the relay
    try:
        await leaf.start()
        await core.write([Put(EndpointRecord(OBJ, "10.7.7.7", 7000, node_name="leaf"))])
        # the relay reports the leaf upward: the registry has a record, with its address
        await eventually(lambda: core.catalog.get_node("leaf") is not None, timeout=WAIT)
        record = core.catalog.get_node("leaf")
        assert record is not None
        assert (record.host, record.port) == ("127.0.0.1", leaf.port)
        assert record.present_state is State.ACTIVE
        assert hub.node_states()["leaf"].via == "relay"
        ep = core.catalog.get_object(OBJ)[0]
        assert core.catalog.is_active(ep)

        # the leaf's host vanishes: no FIN, no RST, its bytes just stop
        proxy.set("blackhole")
        await eventually(
            lambda: (
                "leaf" not in relay.hub.node_states()
                or not relay.hub.node_states()["leaf"].connected
            ),
            timeout=WAIT,
            what="the relay ended the leaf's session",
        )
        assert relay.hub.stats.expired >= 1
        await eventually(
            lambda: (
                (n := core.catalog.get_node("leaf")) is not None
                and n.present_state is State.INACTIVE
            ),
            timeout=WAIT,
            what="the registry judged the leaf dead",
        )
        assert not core.catalog.is_active(core.catalog.get_object(OBJ)[0])
        # ... and the change reached the relay too
        await eventually(
            lambda: relay.catalog.version(Category.NODES) == core.catalog.version(Category.NODES),
            timeout=WAIT,
        )
    finally:
        await leaf.aclose()
        await proxy.aclose()
        await relay.aclose()
        await rp.aclose()
