"""End to end over real TCP: registry + stand-in node + two Python servants + a client."""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from pathlib import Path

from tarscascade.client import ENDPOINT_CONTEXT_KEY, Communicator, Reason, ServantHost
from tarscascade.client.balance import addr_of
from tarscascade.model import State
from tarscascade.testing import eventually
from tarscascade.transport import InterfaceServant
from tarscascade.wire.endpoint import Endpoint
from tests.integration.client.cluster import IFACE, OBJ, Cluster, HelloImpl

REFRESH = 1.0  # the shortest refresh interval a client may use
ONE_REFRESH = REFRESH + 1.0  # one refresh plus slack for a loaded machine


def addr(port: int) -> tuple[str, str, int]:
    return ("tcp", "127.0.0.1", port)


async def answered_by(comm: Communicator, n: int) -> Counter[int]:
    p = comm.proxy(OBJ, IFACE)
    got: Counter[int] = Counter()
    for i in range(n):
        res = await p.invoke_detailed("hello", [f"n{i}"])
        assert res.value == f"hello n{i} from {res.endpoint.port}"
        got[res.endpoint.port] += 1
    return got


async def test_calls_round_robin_over_both_servants(cluster: Cluster) -> None:
    a, _ = await cluster.servant()
    b, _ = await cluster.servant()
    async with Communicator(locator=cluster.locator, refresh_interval=REFRESH) as comm:
        assert await answered_by(comm, 10) == {a.port: 5, b.port: 5}
        r = comm.resolver(OBJ)
        assert r.endpoints.source == "locator"
        # the node answered, the registry (the fallback) was not asked
        assert cluster.registry is not None
        assert cluster.registry.stats["requests"] == 0


async def test_an_endpoint_set_inactive_gets_no_calls_after_one_refresh(cluster: Cluster) -> None:
    a, impl_a = await cluster.servant()
    b, _ = await cluster.servant()
    async with Communicator(locator=cluster.locator, refresh_interval=REFRESH) as comm:
        await answered_by(comm, 4)
        r = comm.resolver(OBJ)
        await cluster.set_state(a.port, State.INACTIVE)
        t0 = asyncio.get_running_loop().time()
        await eventually(lambda: [e.port for e in r.endpoints.active] == [b.port], ONE_REFRESH)
        assert asyncio.get_running_loop().time() - t0 <= ONE_REFRESH
        assert [e.port for e in r.endpoints.inactive] == [a.port]
        before = impl_a.calls
        assert await answered_by(comm, 6) == {b.port: 6}
        assert impl_a.calls == before
        # the inactive endpoint's connection stays open (it may come back)
        assert addr(a.port) in comm.proxy(OBJ).pool.channels


async def test_a_removed_endpoint_gets_no_calls_and_its_channel_closes(cluster: Cluster) -> None:
    a, _ = await cluster.servant()
    b, _ = await cluster.servant()
    async with Communicator(locator=cluster.locator, refresh_interval=REFRESH) as comm:
        await answered_by(comm, 4)
        pool = comm.proxy(OBJ).pool
        assert addr(a.port) in pool.channels
        await cluster.remove(a.port)
        await eventually(lambda: addr(a.port) not in pool.channels, ONE_REFRESH)
        await eventually(lambda: a.connection_count == 0, 5)
        assert await answered_by(comm, 4) == {b.port: 4}


async def test_a_killed_servant_is_shielded_and_calls_keep_succeeding(cluster: Cluster) -> None:
    a, _ = await cluster.servant()
    b, _ = await cluster.servant()
    async with Communicator(locator=cluster.locator, refresh_interval=REFRESH) as comm:
        assert await answered_by(comm, 4) == {a.port: 2, b.port: 2}
        pool = comm.proxy(OBJ).pool
        await a.aclose()  # gone: connections reset, port refuses
        # the client notices the connection closing (a call in flight right then fails)
        await eventually(lambda: not pool.channels[addr(a.port)].is_connected, 5)
        got = await answered_by(comm, 20)  # every later call succeeds
        assert got == {b.port: 20}
        shield = comm.proxy(OBJ).pool.shield
        assert shield.reason(addr(a.port)) is Reason.CONNECT
        # it is still registered active: only the shield keeps calls away
        assert a.port in [e.port for e in comm.resolver(OBJ).endpoints.active]


async def test_starting_and_stopping_a_hosted_servant_flips_it(cluster: Cluster) -> None:
    b, _ = await cluster.servant()
    impl = HelloImpl()
    host = ServantHost([InterfaceServant(OBJ, IFACE, impl)], node=cluster.node_locator)
    async with Communicator(locator=cluster.locator, subscribe=True) as comm:
        r = comm.resolver(OBJ)
        await comm.proxy(OBJ, IFACE).invoke("hello", ["x"])
        async with host:
            impl.port = host.port
            await asyncio.wait_for(host.registered.wait(), 5)
            # registered by its keepAlive alone, and pushed to the client
            await eventually(lambda: host.port in [e.port for e in r.endpoints.active], 2)
            assert Counter((await answered_by(comm, 4)).keys()) == {b.port: 1, host.port: 1}
            info, context = cluster.fake_node.keepalives[-1]  # type: ignore[union-attr]
            assert (info.application, info.serverName, info.adapter) == (
                "Test",
                "HelloServer",
                OBJ,
            )
            assert info.pid == os.getpid()
            assert context == {ENDPOINT_CONTEXT_KEY: f"tcp -h 127.0.0.1 -p {host.port} -t 60000"}
        # goodbye: inactive at once
        assert cluster.fake_node.keepalives[-1][0].pid == -os.getpid()  # type: ignore[union-attr]
        await eventually(lambda: host.port in [e.port for e in r.endpoints.inactive], 2)
        assert await answered_by(comm, 3) == {b.port: 3}


async def test_the_registry_answers_when_the_node_is_down(cluster: Cluster) -> None:
    b, _ = await cluster.servant()
    await cluster.stop_node()
    async with Communicator(locator=cluster.locator, refresh_interval=REFRESH) as comm:
        assert await answered_by(comm, 2) == {b.port: 2}
        assert cluster.registry is not None
        assert cluster.registry.stats["requests"] >= 1


def test_endpoint_identity_is_transport_host_port() -> None:
    assert addr_of(Endpoint("tcp", "127.0.0.1", 5, weight=3)) == addr(5)


async def test_a_restarted_client_calls_out_from_its_last_known_good_file(
    cluster: Cluster, tmp_path: Path
) -> None:
    a, _ = await cluster.servant()
    b, _ = await cluster.servant()
    lkg = tmp_path / "client-lkg.json"
    async with Communicator(locator=cluster.locator, lkg_path=lkg) as comm:
        assert await answered_by(comm, 2) == {a.port: 1, b.port: 1}
    assert lkg.exists()
    # the node and the registry go away; the process restarts
    await cluster.stop_node()
    assert cluster.registry is not None
    await cluster.registry.aclose()
    async with Communicator(locator=cluster.locator, lkg_path=lkg) as comm:
        assert await answered_by(comm, 4) == {a.port: 2, b.port: 2}
        r = comm.resolver(OBJ)
        assert r.endpoints.source == "lkg"
        assert r.stats.failures >= 1
