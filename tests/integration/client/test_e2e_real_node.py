"""End to end over real TCP with the REAL node agent: registry process (SQLite) + NodeAgent +
two Python servants hosted with ServantHost (registered by their own keepAlives) + a client
whose locator is the node."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tarscascade.cascade import ClientOptions
from tarscascade.catalog.announce import announce_setting
from tarscascade.cli.runtime import RegistryConfig, RegistryProcess
from tarscascade.client import Communicator, Reason, ServantHost
from tarscascade.client.resolver import to_endpoints
from tarscascade.model import Category, GroupPriority, GroupRule, State
from tarscascade.node.app import NodeAgent, NodeConfig
from tarscascade.registry.admin_ops import RegistryAdmin
from tarscascade.registry.core import RegistryCore, RegistryOptions
from tarscascade.testing import eventually
from tarscascade.transport import Channel, InterfaceServant
from tarscascade.wire.idl.queryf import (
    FIND_IN_SAME_GROUP,
    FIND_IN_SAME_SET,
    FIND_IN_SAME_STATION,
    QUERY_SERVANT,
)
from tarscascade.wire.idl.serverf import NODE_SERVANT
from tests.integration.client.cluster import IFACE, OBJ, HelloImpl

FAST = ClientOptions(heartbeat_interval=0.5, reconnect_initial=0.05, reconnect_max=0.3)
REFRESH = 1.0  # the shortest polling interval a client may use
NO_POLL = 3600.0  # with push only: the refresh loop notices nothing during a test
PUSHED = 2.0  # bound for a pushed change to reach the client (typically milliseconds)


@dataclass
class Real:
    rp: RegistryProcess
    node: NodeAgent  # the client's locator
    nodes: list[NodeAgent]
    hosts: list[ServantHost]
    impls: list[HelloImpl]
    closed: set[int]

    @property
    def core(self) -> RegistryCore:
        assert self.rp.core is not None
        return self.rp.core

    @property
    def admin(self) -> RegistryAdmin:
        return RegistryAdmin(self.core, hub=self.rp.hub)

    @property
    def locator(self) -> str:
        return f"{NODE_SERVANT}@tcp -h 127.0.0.1 -p {self.node.port}"

    def close_host(self, i: int) -> Any:
        self.closed.add(i)
        return self.hosts[i].aclose()

    @property
    def ports(self) -> list[int]:
        return [h.port for h in self.hosts]

    def state_at_node(self, port: int) -> tuple[State, State] | None:
        for r in self.node.catalog.get_object(OBJ):
            if r.port == port:
                return r.setting_state, r.present_state
        return None

    def state_at_registry(self, port: int) -> tuple[State, State] | None:
        for r in self.core.catalog.get_object(OBJ):
            if r.port == port:
                return r.setting_state, r.present_state
        return None


ACTIVE = (State.ACTIVE, State.ACTIVE)


def host(node_port: int, impl: HelloImpl) -> ServantHost:
    return ServantHost(
        [InterfaceServant(OBJ, IFACE, impl)],
        node=f"{NODE_SERVANT}@tcp -h 127.0.0.1 -p {node_port}",
        keepalive_interval=1.0,  # well inside the node's keepalive_timeout
    )


def make_node(name: str) -> NodeAgent:
    return NodeAgent(
        NodeConfig(
            name=name,
            upstreams=[],  # set once the registry has its port
            listen=("127.0.0.1", 0),
            keepalive_timeout=5.0,
            report_interval=0.1,
            client_options=FAST,
        )
    )


@pytest.fixture
async def real(tmp_path: Path) -> AsyncIterator[Real]:
    """Registry + two nodes (two "hosts"); servant i keeps alive to node i; the client
    resolves through node 0.

    One servant per node: the node tracks liveness per (application, server, adapter), so
    two instances of one object on the same node would share one keepAlive record.
    """
    rp = RegistryProcess(
        RegistryConfig(
            db=f"sqlite:///{tmp_path}/registry.db",
            listen=("127.0.0.1", 0),
            http=None,
            options=RegistryOptions(tail_interval=0.1, reload_interval=0),
        )
    )
    nodes = [make_node("node-1"), make_node("node-2")]
    impls = [HelloImpl(), HelloImpl()]
    hosts: list[ServantHost] = []
    closed: set[int] = set()  # hosts a test stopped gracefully
    try:
        await rp.start()
        assert rp.core is not None
        for n in nodes:  # they may announce Test.* (catalog/announce.py)
            await RegistryAdmin(rp.core).put_setting(announce_setting(n.config.name), "Test.*")
        for n in nodes:
            n.config.upstreams = [("127.0.0.1", rp.tars_port)]
            await n.start()
            assert n.client is not None
            await asyncio.wait_for(n.client.synced.wait(), 30)
        for n, impl in zip(nodes, impls, strict=True):
            h = host(n.port, impl)
            hosts.append(h)
            await h.start()
            impl.port = h.port
        r = Real(rp, nodes[0], nodes, hosts, impls, closed)
        for h in hosts:
            await asyncio.wait_for(h.registered.wait(), 10)
            # registered by the keepAlive alone: at the registry, then back down at the node
            await eventually(lambda h=h: r.state_at_registry(h.port) == ACTIVE, 20)
            await eventually(lambda h=h: r.state_at_node(h.port) == ACTIVE, 20)
        yield r
    finally:
        for i, h in enumerate(hosts):
            if i not in closed:
                await h.aclose()
        for n in nodes:
            await n.aclose()
        await rp.aclose()


async def call_many(comm: Communicator, n: int) -> Counter[int]:
    """``n`` sequential calls; every one must succeed. Returns calls per port."""
    p = comm.proxy(OBJ, IFACE)
    got: Counter[int] = Counter()
    for i in range(n):
        res = await p.invoke_detailed("hello", [f"n{i}"])
        assert res.value == f"hello n{i} from {res.endpoint.port}"
        got[res.endpoint.port] += 1
    return got


def active_ports(comm: Communicator) -> list[int]:
    return sorted(e.port for e in comm.resolver(OBJ).endpoints.active)


def inactive_ports(comm: Communicator) -> list[int]:
    return sorted(e.port for e in comm.resolver(OBJ).endpoints.inactive)


async def test_push_drain_stops_calls_once_the_node_has_it(real: Real) -> None:
    a, b = real.ports
    impl_a = real.impls[0]
    async with Communicator(locator=real.locator, subscribe=True, refresh_interval=NO_POLL) as comm:
        assert await call_many(comm, 10) == {a: 5, b: 5}  # both servants answer
        locator = comm.locator
        assert locator is not None
        await eventually(lambda: OBJ in locator.acknowledged, 5, what="subscribed")
        res = await real.admin.drain(OBJ, "127.0.0.1", a, timeout=20)
        # the drain waited for every node's acknowledgement: the client's node has it
        assert res.changed
        assert res.complete
        assert res.nodes == ["node-1", "node-2"]
        assert real.state_at_node(a) == (State.INACTIVE, State.ACTIVE)
        # pushed, not polled (the refresh loop sleeps for an hour)
        await eventually(lambda: active_ports(comm) == [b], PUSHED, interval=0.001)
        assert comm.resolver(OBJ).stats.pushes >= 1
        assert inactive_ports(comm) == [a]
        before = impl_a.calls
        assert await call_many(comm, 20) == {b: 20}
        assert impl_a.calls == before  # zero calls reached the drained servant
        # reactivated: pushed again, and it takes calls again
        await real.admin.set_endpoint_state(OBJ, "127.0.0.1", a, State.ACTIVE)
        await eventually(lambda: active_ports(comm) == sorted([a, b]), 10, interval=0.001)
        assert await call_many(comm, 4) == {a: 2, b: 2}


async def test_polling_drain_stops_calls_within_one_refresh(real: Real) -> None:
    a, b = real.ports
    impl_a = real.impls[0]
    async with Communicator(locator=real.locator, refresh_interval=REFRESH) as comm:
        assert await call_many(comm, 4) == {a: 2, b: 2}
        await real.admin.set_endpoint_state(OBJ, "127.0.0.1", a, State.INACTIVE)
        await eventually(lambda: real.state_at_node(a) == (State.INACTIVE, State.ACTIVE), 20)
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        # within one refresh of the node having it (plus slack for a loaded machine)
        await eventually(lambda: active_ports(comm) == [b], REFRESH + 1.5, interval=0.001)
        assert loop.time() - t0 <= REFRESH + 1.5
        assert comm.resolver(OBJ).stats.pushes == 0
        before = impl_a.calls
        assert await call_many(comm, 10) == {b: 10}
        assert impl_a.calls == before


async def test_a_killed_servant_is_shielded_and_calls_keep_succeeding(real: Real) -> None:
    a, b = real.ports
    async with Communicator(locator=real.locator, refresh_interval=REFRESH) as comm:
        assert await call_many(comm, 4) == {a: 2, b: 2}
        pool = comm.proxy(OBJ).pool
        addr_a = ("tcp", "127.0.0.1", a)
        # abrupt: the TARS server goes away with no goodbye keepAlive (connections reset,
        # the port refuses); the registry still lists it active
        await real.hosts[0].server.aclose()
        await eventually(lambda: not pool.channels[addr_a].is_connected, 5)
        assert await call_many(comm, 20) == {b: 20}  # every later call succeeds
        assert pool.shield.reason(addr_a) is Reason.CONNECT
        assert a in active_ports(comm)  # only the shield keeps calls away


async def test_a_graceful_stop_turns_the_endpoint_inactive_at_the_registry(real: Real) -> None:
    a, b = real.ports
    async with Communicator(locator=real.locator, subscribe=True, refresh_interval=NO_POLL) as comm:
        assert await call_many(comm, 4) == {a: 2, b: 2}
        locator = comm.locator
        assert locator is not None
        await eventually(lambda: OBJ in locator.acknowledged, 5, what="subscribed")
        await real.close_host(0)  # goodbye: keepAlive with the pid negated
        # the node reported it leaving: present-inactive at the registry, then at the node
        await eventually(lambda: real.state_at_registry(a) == (State.ACTIVE, State.INACTIVE), 10)
        await eventually(lambda: real.state_at_node(a) == (State.ACTIVE, State.INACTIVE), 10)
        await eventually(lambda: active_ports(comm) == [b], PUSHED)
        assert await call_many(comm, 6) == {b: 6}


# -- set routing and IDC grouping: the node answers exactly what the registry answers

ROUTED = "Test.RoutedServer.RoutedObj"


async def ask(port: int, servant: str, method: Any, *args: str, caller: str) -> Any:
    async with Channel("127.0.0.1", port) as ch:
        ret, active, inactive = await ch.call(
            servant, method, ROUTED, *args, context={"node_name": caller}
        )
    return ret, sorted(e.port for e in active), sorted(e.port for e in inactive)


async def test_set_and_idc_answers_through_the_node_match_the_registry(real: Real) -> None:
    adm = real.admin
    await adm.put_group_rule(GroupRule(1, "gz", allow_ip_rule=("10.1.1.*",)))
    await adm.put_group_rule(GroupRule(2, "sz", allow_ip_rule=("10.2.2.*",)))
    await adm.put_group_priority(GroupPriority(1, "south", group_list=(2,), station="shenzhen"))
    routed: list[tuple[int, dict[str, Any]]] = [
        (4001, {"enable_group": True, "ip_group_name": "gz"}),
        (4002, {"enable_group": True, "ip_group_name": "sz"}),
        (4003, {"set_id": "app.sz.1"}),
        (4004, {"set_id": "app.sz.2"}),
        (4005, {}),
    ]
    for port, kw in routed:
        ep = f"tcp -h 10.0.0.{port % 100} -p {port}"
        await adm.add_endpoint(adm.build_endpoint(ROUTED, ep, **kw))
    for cat in (Category.OBJECTS, Category.GROUPS):
        await eventually(
            lambda c=cat: real.node.catalog.version(c) == real.core.catalog.version(c), 20
        )
    cases: list[tuple[Any, tuple[str, ...], str]] = [
        (FIND_IN_SAME_GROUP, (), "10.1.1.5"),
        (FIND_IN_SAME_GROUP, (), "10.2.2.5"),
        (FIND_IN_SAME_GROUP, (), "192.168.0.1"),
        (FIND_IN_SAME_STATION, ("shenzhen",), "10.1.1.5"),
        (FIND_IN_SAME_SET, ("app.sz.1",), "10.9.9.9"),
        (FIND_IN_SAME_SET, ("app.sz.*",), "10.9.9.9"),
        (FIND_IN_SAME_SET, ("other.sz.1",), "10.9.9.9"),
    ]
    answers = []
    for method, args, caller in cases:
        want = await ask(real.rp.tars_port, QUERY_SERVANT, method, *args, caller=caller)
        for servant in (NODE_SERVANT, QUERY_SERVANT):
            got = await ask(real.node.port, servant, method, *args, caller=caller)
            assert got == want, (method.name, args, caller, servant)
        answers.append(want)
    # sanity: the cases really route differently
    assert answers[0][1] == [4001]
    assert answers[1][1] == [4002]
    assert answers[4][1] == [4003]
    assert answers[5][1] == [4003, 4004]
    # the client resolving through the node with a set division sees the registry's answer
    for division in ("app.sz.1", "app.sz.*"):
        data = real.core.answerer.answer(FIND_IN_SAME_SET.name, ROUTED, "127.0.0.1", division)
        ret, active, _ = FIND_IN_SAME_SET.decode_result(data)
        assert ret == 0
        async with Communicator(locator=real.locator, set_division=division) as comm:
            comm.proxy(ROUTED, IFACE)
            r = comm.resolver(ROUTED)
            await asyncio.wait_for(r.wait_ready(), 10)
            assert r.endpoints.source == "locator"
            assert r.endpoints.active == to_endpoints(ROUTED, active)
