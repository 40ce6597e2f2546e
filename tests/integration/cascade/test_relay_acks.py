"""Relay acks cost O(1), not O(leaves) (review E2).

Before: every leaf's ack made the relay send an ack listing every leaf, so the registry
parsed leaves x acks node states (40 leaves: 520 states/s). Now acks carry one floor and
only heartbeats list the leaves; and drain still waits for every leaf behind the relay.
"""

from __future__ import annotations

from tarscascade.cascade import CascadeHub
from tarscascade.catalog import Catalog
from tarscascade.model import Category
from tarscascade.store import Put
from tarscascade.transport import TarsServer
from tests.integration.cascade.harness import (
    TOKEN,
    WAIT,
    Cluster,
    Node,
    converged,
    ep,
    fast_client_options,
)

LEAVES = 20


async def test_acks_through_a_relay_do_not_grow_with_its_leaves(cluster: Cluster) -> None:
    reg = await cluster.start_registry()
    await reg.core.write([Put(ep(1))])
    relay_catalog = Catalog()
    middle: list[Node] = []
    relay_hub = CascadeHub(
        relay_catalog,
        authenticate=lambda _n, t: t == TOKEN,
        on_heartbeat=lambda _name: middle[0].client.request_ack() if middle else None,
        # as the node agent wires a relay: its leaves are asked as its upstream asks it
        prompt_acks=lambda: bool(middle) and middle[0].client.upstream_wants_prompt_acks,
    )
    async with TarsServer([relay_hub.servant]) as relay_server:
        # slow heartbeats: what is measured below is the acks
        slow = fast_client_options(heartbeat_interval=30.0)
        middle.append(
            cluster.node(
                "relay",
                [("127.0.0.1", reg.port)],
                catalog=relay_catalog,
                on_applied=relay_hub.replica_applied,
                descendants=relay_hub.descendant_acks,
                options=slow,
            )
        )
        middle[0].client.set_descendant_floor(relay_hub.descendant_floor)
        middle[0].client.set_on_ack_asked(relay_hub.ask_acks_now)
        await converged(middle, reg, "the relay")
        leaves = [
            cluster.node(f"leaf{i}", [("127.0.0.1", relay_server.port)], options=slow)
            for i in range(LEAVES)
        ]
        await converged(leaves, reg, "the leaves")
        acks, states = reg.hub.stats.acks, reg.hub.stats.descendant_states
        writes = 10
        for i in range(writes):
            await reg.core.write([Put(ep(100 + i))])
            version = reg.core.catalog.version(Category.OBJECTS)
            # drain waits on the relay: its floor covers every leaf behind it
            _, missing = await reg.hub.wait_acked(Category.OBJECTS, version, timeout=WAIT)
            assert missing == []
            assert all(leaf.catalog.version(Category.OBJECTS) >= version for leaf in leaves)
        acks_per_write = (reg.hub.stats.acks - acks) / writes
        assert acks_per_write <= 4, acks_per_write  # before: about one per leaf per write
        assert reg.hub.stats.descendant_states == states  # acks list no leaves at all
        for n in [*leaves, *middle]:
            await cluster.close_node(n)
        await relay_hub.aclose()
