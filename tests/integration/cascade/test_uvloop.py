"""The TARS server, the channel and the cascade run on uvloop as on asyncio's own loop.

uvloop's transports are not subclasses of ``asyncio.Transport``: an ``isinstance`` check
in ``connection_made`` refused every connection on both sides there (found when trying
the registry on uvloop for its idle cost)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import uvloop

from tarscascade.client import Communicator
from tarscascade.model import Category
from tarscascade.store import Put
from tarscascade.transport import Current, InterfaceServant, TarsServer
from tarscascade.wire.codec import STRING
from tarscascade.wire.interface import Interface, Method, Param
from tests.integration.cascade.harness import Cluster, active_ports, converged, ep


async def _sync_and_change(cluster: Cluster) -> None:
    loop = asyncio.get_running_loop()
    assert isinstance(loop, uvloop.Loop)  # the test really runs on uvloop
    reg = await cluster.start_registry()
    await reg.core.write([Put(ep(1))])
    node = cluster.node("n1", [("127.0.0.1", reg.port)])
    await converged([node], reg, "first sync")
    await reg.core.write([Put(ep(2))])
    version = reg.core.catalog.version(Category.OBJECTS)
    _, missing = await reg.hub.wait_acked(Category.OBJECTS, version, timeout=30)
    assert missing == []
    assert active_ports(node.catalog) == [1, 2]


HELLO = Interface.of("Hello", Method("hello", (Param("name", STRING),), STRING))


class Hello:
    def hello(self, _current: Current, name: str) -> str:
        return f"hello {name}"


async def _sdk_call() -> None:
    servant = InterfaceServant("Test.Hello.Obj", HELLO, Hello())
    async with TarsServer([servant]) as server, Communicator() as comm:
        proxy = comm.proxy(f"Test.Hello.Obj@tcp -h 127.0.0.1 -p {server.port}", HELLO)
        assert await proxy.invoke("hello", ["uvloop"], timeout=10) == "hello uvloop"


def test_a_node_syncs_and_follows_a_change_and_the_sdk_calls_on_uvloop(tmp_path: Path) -> None:
    cluster = Cluster(f"sqlite:///{tmp_path / 'registry.db'}")

    async def main() -> None:
        try:
            async with asyncio.timeout(60):
                await _sync_and_change(cluster)
                await _sdk_call()
        finally:
            await cluster.aclose()

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main())
