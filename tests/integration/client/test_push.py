"""Push subscription: registerQuery on the node, objectChanged pushes, re-registration."""

from __future__ import annotations

import asyncio

from tarscascade.client import Communicator
from tarscascade.model import State
from tarscascade.testing import eventually
from tests.integration.client.cluster import IFACE, OBJ, Cluster

NO_POLL = 3600.0  # the refresh loop would not notice anything during the test


def active_ports(comm: Communicator) -> list[int]:
    return [e.port for e in comm.resolver(OBJ).endpoints.active]


async def test_a_change_arrives_by_push_within_milliseconds(cluster: Cluster) -> None:
    a, _ = await cluster.servant()
    b, _ = await cluster.servant()
    async with Communicator(
        locator=cluster.locator, subscribe=True, refresh_interval=NO_POLL
    ) as comm:
        await comm.proxy(OBJ, IFACE).invoke("hello", ["x"])
        locator = comm.locator
        assert locator is not None
        await eventually(lambda: OBJ in locator.acknowledged, 5)
        assert sorted(active_ports(comm)) == sorted([a.port, b.port])
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        await cluster.set_state(a.port, State.INACTIVE)
        await eventually(lambda: active_ports(comm) == [b.port], 5, interval=0.001)
        latency = loop.time() - t0
        assert latency < 0.5, latency  # typically ~1 ms on loopback
        assert comm.resolver(OBJ).stats.pushes >= 1
        await cluster.set_state(a.port, State.ACTIVE)
        await eventually(lambda: len(active_ports(comm)) == 2, 5, interval=0.001)


async def test_subscriptions_are_sent_again_after_the_node_restarts(cluster: Cluster) -> None:
    a, _ = await cluster.servant()
    b, _ = await cluster.servant()
    node = cluster.fake_node
    assert node is not None
    async with Communicator(
        locator=cluster.locator, subscribe=True, refresh_interval=NO_POLL
    ) as comm:
        await comm.proxy(OBJ, IFACE).invoke("hello", ["x"])
        await eventually(lambda: node.subscribers.get(OBJ), 5)
        await cluster.stop_node()
        node.subscribers.clear()  # a restarted node knows no subscriber
        await cluster.start_node()
        await eventually(lambda: node.subscribers.get(OBJ), 10)  # the client re-registered
        await cluster.remove(a.port)
        await eventually(lambda: active_ports(comm) == [b.port], 5)


async def test_changes_made_while_the_node_was_away_arrive_on_reconnect(
    cluster: Cluster,
) -> None:
    a, _ = await cluster.servant()
    b, _ = await cluster.servant()
    node = cluster.fake_node
    assert node is not None
    async with Communicator(
        locator=cluster.locator, subscribe=True, refresh_interval=NO_POLL
    ) as comm:
        await comm.proxy(OBJ, IFACE).invoke("hello", ["x"])
        await eventually(lambda: node.subscribers.get(OBJ), 5)
        await cluster.stop_node()
        node.subscribers.clear()
        await cluster.remove(a.port)  # nobody can push this one
        await cluster.start_node()
        await eventually(lambda: active_ports(comm) == [b.port], 10)


async def test_a_locator_that_does_not_push_leaves_polling_working(cluster: Cluster) -> None:
    a, _ = await cluster.servant()
    # only the registry: open-source registerQuery answers -1
    async with Communicator(
        locator=cluster.registry_locator, subscribe=True, refresh_interval=1.0
    ) as comm:
        assert await comm.proxy(OBJ, IFACE).invoke("hello", ["x"]) == f"hello x from {a.port}"
        assert comm.locator is not None
        assert comm.locator.acknowledged == set()
        b, _ = await cluster.servant()
        await eventually(lambda: b.port in active_ports(comm), 3)
