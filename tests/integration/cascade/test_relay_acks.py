"""Relay acks cost O(1), not O(leaves) (review E2).

Before: every leaf's ack made the relay send an ack listing every leaf, so the registry
parsed leaves x acks node states (40 leaves: 520 states/s). Now acks carry one floor and
only heartbeats list the leaves; and drain still waits for every leaf behind the relay.
"""

from __future__ import annotations

from tarscascade.model import Category
from tarscascade.store import Put
from tests.integration.cascade.harness import (
    WAIT,
    Cluster,
    converged,
    ep,
    fast_client_options,
)

LEAVES = 20


async def test_acks_through_a_relay_do_not_grow_with_its_leaves(cluster: Cluster) -> None:
    reg = await cluster.start_registry()
    await reg.core.write([Put(ep(1))])
    # slow heartbeats: what is measured below is the acks
    slow = fast_client_options(heartbeat_interval=30.0)
    async with cluster.relay("relay", [("127.0.0.1", reg.port)], options=slow) as relay:
        await converged([relay.node], reg, "the relay")
        leaves = [
            cluster.node(f"leaf{i}", [("127.0.0.1", relay.port)], options=slow)
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
        for n in leaves:
            await cluster.close_node(n)
