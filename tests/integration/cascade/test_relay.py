"""A relay chain: registry -> node (a hub over its replica) -> leaf, and failover."""

from __future__ import annotations

from tarscascade.cascade import CascadeHub
from tarscascade.catalog import Catalog
from tarscascade.model import Category
from tarscascade.store import Delete, Put
from tarscascade.testing import eventually
from tarscascade.transport import TarsServer
from tests.integration.cascade.harness import (
    TOKEN,
    WAIT,
    Cluster,
    Node,
    all_ports,
    converged,
    ep,
)


async def test_a_leaf_behind_a_relay_converges_and_fails_over_to_the_registry(
    cluster: Cluster,
) -> None:
    reg = await cluster.start_registry()
    await reg.core.write([Put(ep(1)), Put(ep(2))])
    registry = ("127.0.0.1", reg.port)

    relay_catalog = Catalog()
    middle: list[Node] = []
    relay_hub = CascadeHub(
        relay_catalog,
        authenticate=lambda _name, token: token == TOKEN,
        # a descendant's ack goes up at once, so the registry's drain waits see it
        on_heartbeat=lambda _name: middle[0].client.request_ack() if middle else None,
    )
    relay_server = TarsServer([relay_hub.servant])
    await relay_server.start()
    middle.append(
        cluster.node(
            "middle",
            [registry],
            catalog=relay_catalog,
            on_applied=relay_hub.replica_applied,
            descendants=relay_hub.descendant_acks,
        )
    )
    middle[0].client.set_descendant_floor(relay_hub.descendant_floor)
    await converged(middle, reg, "the relay")
    leaf = cluster.node("leaf", [("127.0.0.1", relay_server.port), registry])
    await converged([leaf], reg, "the leaf through the relay")
    assert leaf.client.upstream == ("127.0.0.1", relay_server.port)
    assert reg.hub.session_count == 1  # only the relay talks to the registry

    await reg.core.write([Put(ep(3)), Delete(Category.OBJECTS, ep(1).key)])
    await converged([middle[0], leaf], reg, "a change through the chain")
    assert all_ports(leaf.catalog) == [2, 3]

    # The registry knows what the leaf holds, through the relay's reports.
    version = reg.core.catalog.version(Category.OBJECTS)
    _elapsed, missing = await reg.hub.wait_acked(Category.OBJECTS, version, timeout=WAIT)
    assert missing == []
    # a relay lists its descendants in heartbeats (its acks carry only their floor)
    await eventually(lambda: "leaf" in reg.hub.node_states(), timeout=WAIT, what="the leaf")
    states = reg.hub.node_states()
    assert states["leaf"].via == "middle"
    assert states["leaf"].held[Category.OBJECTS] == version
    assert states["leaf"].lag[Category.OBJECTS] == 0

    # The middle dies: the leaf fails over to the registry and keeps converging.
    await cluster.close_node(middle[0])
    await relay_hub.aclose()
    await relay_server.aclose()
    await eventually(
        lambda: leaf.client.upstream == registry and not leaf.client.stale,
        timeout=WAIT,
        what="the leaf failed over",
    )
    await reg.core.write([Put(ep(4)), Delete(Category.OBJECTS, ep(2).key)])
    await converged([leaf], reg, "the leaf served by the registry")
    assert all_ports(leaf.catalog) == [3, 4]
    assert leaf.client.stats.failovers >= 1
    assert leaf.client.stats.snapshots_received <= len(Category)  # resumed, not re-listed
    assert reg.hub.node_states()["leaf"].via == ""
