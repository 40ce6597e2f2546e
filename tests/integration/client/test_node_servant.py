"""The SDK against the real node servant (``tarscascade.node``): resolution through
``tars.tarsnode.ServerObj``, ``registerQuery`` pushes, and ServantHost's keepAlive."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest

from tarscascade.client import Communicator, ServantHost
from tarscascade.model import State
from tarscascade.node.keepalive import KeepAliveTracker
from tarscascade.node.servants import NodeQueryServant
from tarscascade.node.watch import ObjectWatch
from tarscascade.testing import eventually
from tarscascade.transport import InterfaceServant, TarsServer
from tarscascade.wire.idl.serverf import NODE_SERVANT
from tests.integration.client.cluster import IFACE, OBJ, Cluster, HelloImpl


@pytest.fixture
async def node(cluster: Cluster) -> AsyncIterator[tuple[TarsServer, KeepAliveTracker]]:
    watch = ObjectWatch()
    core = cluster.reg
    core.catalog.add_listener(lambda affected: watch.changed(affected, core.revision + 1))
    tracker = KeepAliveTracker("node-1")
    servant = NodeQueryServant(
        NODE_SERVANT,
        core.answerer,
        watch,
        has_data=lambda: True,
        keepalive=tracker,
        clock=time.monotonic,
    )
    async with TarsServer([servant]) as server:
        yield server, tracker


async def test_resolves_and_is_pushed_by_the_node_servant(
    cluster: Cluster, node: tuple[TarsServer, KeepAliveTracker]
) -> None:
    server, _ = node
    a, _ = await cluster.servant()
    b, _ = await cluster.servant()
    locator = f"{NODE_SERVANT}@tcp -h 127.0.0.1 -p {server.port}"
    async with Communicator(locator=locator, subscribe=True, refresh_interval=3600) as comm:
        await comm.proxy(OBJ, IFACE).invoke("hello", ["x"])
        assert comm.locator is not None
        await eventually(lambda: OBJ in comm.locator.acknowledged, 5)  # type: ignore[union-attr]
        r = comm.resolver(OBJ)
        await cluster.set_state(a.port, State.INACTIVE)
        await eventually(lambda: [e.port for e in r.endpoints.active] == [b.port], 5)
        assert r.stats.pushes >= 1


async def test_the_node_servant_accepts_the_hosts_keepalive(
    cluster: Cluster, node: tuple[TarsServer, KeepAliveTracker]
) -> None:
    server, tracker = node
    host = ServantHost(
        [InterfaceServant(OBJ, IFACE, HelloImpl())],
        node=f"{NODE_SERVANT}@tcp -h 127.0.0.1 -p {server.port}",
    )
    async with host:
        await eventually(lambda: any(k[0] == OBJ for k in tracker.last_endpoint), 5)
        await eventually(host.registered.is_set, 5)
        assert host.keepalive_errors == 0
