"""Registry process + node agents over real TCP: replica, QueryF, keepAlive, disk, relay."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tarscascade.cascade import ClientOptions
from tarscascade.catalog.announce import announce_setting
from tarscascade.cli.runtime import RegistryConfig, RegistryProcess
from tarscascade.errors import ServerError
from tarscascade.model import Category, State
from tarscascade.node.app import NodeAgent, NodeConfig
from tarscascade.node.servants import NOT_SYNCED
from tarscascade.registry.admin_ops import RegistryAdmin
from tarscascade.registry.core import RegistryOptions
from tarscascade.testing import eventually
from tarscascade.transport import Channel, InterfaceServant, TarsServer
from tarscascade.wire.codec import STRING
from tarscascade.wire.idl.queryf import FIND_IN_SAME_GROUP, QUERY_SERVANT
from tarscascade.wire.idl.serverf import ENDPOINT_CONTEXT_KEY, KEEP_ALIVE, NODE_SERVANT, ServerInfo
from tarscascade.wire.interface import Interface, Method, Param
from tarscascade.wire.packets import Ret
from tests.interop.nodeproc import node_available, run_client_full

OBJ = "Test.HelloServer.HelloObj"
FAST = ClientOptions(heartbeat_interval=0.5, reconnect_initial=0.05, reconnect_max=0.3)


async def registry(tmp_path: Path, port: int = 0) -> RegistryProcess:
    cfg = RegistryConfig(
        db=f"sqlite:///{tmp_path}/registry.db",
        listen=("127.0.0.1", port),
        http=None,
        options=RegistryOptions(tail_interval=0.1, reload_interval=0),
    )
    rp = RegistryProcess(cfg)
    await rp.start()
    return rp


def node(name: str, upstreams: list[tuple[str, int]], data: Path | None = None) -> NodeAgent:
    return NodeAgent(
        NodeConfig(
            name=name,
            upstreams=upstreams,
            listen=("127.0.0.1", 0),
            data_dir=data,
            keepalive_timeout=5.0,
            report_interval=0.1,
            snapshot_interval=0.05,
            client_options=FAST,
        )
    )


async def ask(
    port: int, servant: str = NODE_SERVANT, caller: str = "10.9.9.9"
) -> tuple[int, list[int], list[int]]:
    async with Channel("127.0.0.1", port) as ch:
        ret, active, inactive = await ch.call(
            servant, FIND_IN_SAME_GROUP, OBJ, context={"node_name": caller}
        )
    return ret, sorted(e.port for e in active), sorted(e.port for e in inactive)


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[tuple[RegistryProcess, list[NodeAgent]]]:
    rp = await registry(tmp_path)
    up = [("127.0.0.1", rp.tars_port)]
    nodes = [node(f"node-{i}", up, tmp_path / f"node-{i}") for i in range(2)]
    try:
        for n in nodes:
            await n.start()
        for n in nodes:
            assert n.client is not None
            await asyncio.wait_for(n.client.synced.wait(), 30)
        yield rp, nodes
    finally:
        for n in nodes:
            await n.aclose()
        await rp.aclose()


def admin(rp: RegistryProcess) -> RegistryAdmin:
    assert rp.core is not None
    return RegistryAdmin(rp.core, hub=rp.hub)


async def test_changes_reach_every_node_and_answers_match_the_registry(
    cluster: tuple[RegistryProcess, list[NodeAgent]],
) -> None:
    rp, nodes = cluster
    a = admin(rp)
    await a.add_endpoint(a.build_endpoint(OBJ, "tcp -h 10.0.0.1 -p 1001"))
    await a.add_endpoint(a.build_endpoint(OBJ, "tcp -h 10.0.0.2 -p 1002"))
    await a.set_endpoint_state(OBJ, "10.0.0.2", 1002, State.INACTIVE)
    assert rp.core is not None
    for n in nodes:
        await eventually(
            lambda n=n: (
                n.catalog.version(Category.OBJECTS) == rp.core.catalog.version(Category.OBJECTS)
            ),  # type: ignore[union-attr]
            timeout=20,
        )
        assert n.catalog.digest(Category.OBJECTS) == rp.core.catalog.digest(Category.OBJECTS)
        for servant in (NODE_SERVANT, QUERY_SERVANT):
            assert await ask(n.port, servant) == await ask(rp.tars_port, QUERY_SERVANT)
            assert await ask(n.port, servant) == (0, [1001], [1002])
    await a.remove_endpoint(OBJ, "10.0.0.1", 1001)
    for n in nodes:
        await eventually(
            lambda n=n: not any(r.port == 1001 for r in n.catalog.get_object(OBJ)), timeout=20
        )
        assert await ask(n.port) == (0, [], [1002])


async def test_a_node_with_no_data_answers_an_error_not_an_empty_list(tmp_path: Path) -> None:
    n = node("lonely", [("127.0.0.1", 1)])  # nothing listens there
    await n.start()
    try:
        with pytest.raises(ServerError) as info:
            await ask(n.port)
        assert info.value.code == Ret.UNKNOWN
        assert info.value.desc == NOT_SYNCED
        assert n.stale
    finally:
        await n.aclose()


async def test_restarted_with_the_registry_down_it_serves_last_known_good(tmp_path: Path) -> None:
    rp = await registry(tmp_path)
    data = tmp_path / "n"
    n = node("n", [("127.0.0.1", rp.tars_port)], data)
    try:
        await n.start()
        a = admin(rp)
        await a.add_endpoint(a.build_endpoint(OBJ, "tcp -h 10.0.0.1 -p 2001"))
        await eventually(lambda: bool(n.catalog.get_object(OBJ)), timeout=20)
        await eventually(lambda: (data / "replica.snapshot").exists(), timeout=20)
    finally:
        await n.aclose()
        await rp.aclose()
    again = node("n", [("127.0.0.1", rp.tars_port)], data)  # that port is closed now
    await again.start()
    try:
        assert again.loaded_from_disk
        assert again.stale
        assert again.status()["stale"] is True
        assert await ask(again.port) == (0, [2001], [])
    finally:
        await again.aclose()


class _Hello:
    def hello(self, cur: object, name: str) -> str:
        return f"hello {name}"


HELLO = Interface.of("Hello", Method("hello", (Param("name", STRING),), STRING))


async def test_keepalive_registers_and_flips_the_endpoint(
    cluster: tuple[RegistryProcess, list[NodeAgent]],
) -> None:
    rp, nodes = cluster
    n = nodes[0]
    servant = TarsServer([InterfaceServant(OBJ, HELLO, _Hello())])
    await servant.start()
    ep = f"tcp -h 127.0.0.1 -p {servant.port} -t 60000"
    assert rp.core is not None
    # the node may announce Test.* (an admin's allow-list; catalog/announce.py)
    await RegistryAdmin(rp.core).put_setting(announce_setting(n.config.name), "Test.*")
    await eventually(lambda: n.catalog.get_setting(announce_setting(n.config.name)) is not None)
    try:
        async with Channel("127.0.0.1", n.port) as ch:
            info = ServerInfo("Test", "HelloServer", os.getpid(), OBJ)
            await ch.call(NODE_SERVANT, KEEP_ALIVE, info, context={ENDPOINT_CONTEXT_KEY: ep})
            core = rp.core
            await eventually(
                lambda: bool(core.catalog.get_object(OBJ)), timeout=20, what="registered"
            )
            [rec] = core.catalog.get_object(OBJ)
            assert (rec.port, rec.node_name, rec.present_state) == (
                servant.port,
                n.config.name,
                State.ACTIVE,
            )
            for other in nodes:  # every node has it, active
                await eventually(lambda o=other: bool(o.catalog.get_object(OBJ)), timeout=20)
            # a graceful stop: the SDK's last keepAlive carries the pid negated
            leave = ServerInfo("Test", "HelloServer", -os.getpid(), OBJ)
            await ch.call(NODE_SERVANT, KEEP_ALIVE, leave)
            await eventually(
                lambda: core.catalog.get_object(OBJ)[0].present_state is State.INACTIVE,
                timeout=20,
                what="inactive after leaving",
            )
            other = nodes[1]
            await eventually(
                lambda: other.catalog.get_object(OBJ)[0].present_state is State.INACTIVE,
                timeout=20,
            )
            assert (await ask(other.port))[1] == []
    finally:
        await servant.aclose()


async def test_relay_chain_and_failover_to_the_registry(tmp_path: Path) -> None:
    rp = await registry(tmp_path)
    reg = ("127.0.0.1", rp.tars_port)
    middle = node("middle", [reg])
    await middle.start()
    leaf = node("leaf", [("127.0.0.1", middle.port), reg])
    try:
        await leaf.start()
        a = admin(rp)
        await a.add_endpoint(a.build_endpoint(OBJ, "tcp -h 10.0.0.1 -p 3001"))
        await eventually(
            lambda: bool(leaf.catalog.get_object(OBJ)), timeout=20, what="leaf converged"
        )
        assert leaf.client is not None
        assert leaf.client.upstream == ("127.0.0.1", middle.port)
        await middle.aclose()  # kill the relay: the leaf fails over to the registry
        await a.add_endpoint(a.build_endpoint(OBJ, "tcp -h 10.0.0.2 -p 3002"))
        await eventually(
            lambda: len(leaf.catalog.get_object(OBJ)) == 2, timeout=30, what="failed over"
        )
        assert leaf.client.upstream == reg
        assert rp.core is not None
        assert leaf.catalog.digest(Category.OBJECTS) == rp.core.catalog.digest(Category.OBJECTS)
    finally:
        await leaf.aclose()
        await middle.aclose()
        await rp.aclose()


@pytest.mark.interop
async def test_npm_tars_client_resolves_through_the_node(
    cluster: tuple[RegistryProcess, list[NodeAgent]],
) -> None:
    if not node_available():
        pytest.skip("node.js harness not installed")
    rp, nodes = cluster
    servant = TarsServer([InterfaceServant(OBJ, HELLO, _Hello())])
    await servant.start()
    try:
        a = admin(rp)
        await a.add_endpoint(a.build_endpoint(OBJ, f"tcp -h 127.0.0.1 -p {servant.port} -t 60000"))
        n = nodes[0]
        await eventually(lambda: bool(n.catalog.get_object(OBJ)), timeout=20)
        locator = f"tars.tarsnode.ServerObj@tcp -h 127.0.0.1 -p {n.port}"
        run = await asyncio.to_thread(
            run_client_full,
            ["--locator", locator, "--obj", OBJ, "--func", "hello", "--args", '["npm"]'],
            60.0,
        )
        assert run.results[0]["ok"] is True, run.results
        assert run.results[0]["ret"] == "hello npm"
    finally:
        await servant.aclose()
