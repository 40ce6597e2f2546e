"""Every locator line the project prints works for a fresh TARS client (issue 11).

A TARS client treats every endpoint of a locator as a replica of one object: TarsCpp
picks one at random, ``@tars/rpc`` always starts with the first. So a line naming a node
and the registry works only if both answer that object, and each printed line is tried
whole and also cut down to each one of its endpoints (what a client that picked that
endpoint sees). Each is given to 20 fresh ``@tars/rpc`` client processes in a row; each
must resolve on its first locator request and complete its very first call.
(``@tars/rpc`` masks a failed locator request: it logs it, asks again 2 s later and
sends the queued call then; TarsCpp's first call times out instead. So a locator error
logged by the client counts as a failure, and the call timeout is shorter than that
retry.)
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tarscascade.cli.runtime import (
    NodeProcess,
    RegistryConfig,
    RegistryProcess,
    client_locator,
)
from tarscascade.errors import ServerError
from tarscascade.node.app import NodeConfig
from tarscascade.registry.admin_ops import RegistryAdmin
from tarscascade.registry.core import RegistryOptions
from tarscascade.testing import eventually
from tarscascade.transport import Channel, Current, InterfaceServant, TarsServer
from tarscascade.wire.codec import STRING
from tarscascade.wire.endpoint import format_endpoint, parse_object
from tarscascade.wire.idl.queryf import FIND_IN_SAME_GROUP
from tarscascade.wire.idl.serverf import KEEP_ALIVE, NODE_SERVANT, ServerInfo
from tarscascade.wire.interface import Interface, Method, Param
from tarscascade.wire.packets import Ret
from tests.interop.nodeproc import require_node, run_client_full

pytestmark = pytest.mark.interop

OBJ = "Test.HelloServer.HelloObj"
HELLO = Interface.of("Hello", Method("hello", (Param("name", STRING),), STRING))
FRESH_CLIENTS = 20
#: shorter than @tars/rpc's 2 s retry after a failed locator request
CALL_TIMEOUT_MS = "1500"
#: what @tars/rpc logs when a locator request fails or returns non-zero
LOCATOR_ERROR = "[TARS][EndpointManager doEndpoints"


class Hello:
    def hello(self, cur: Current, name: str) -> str:
        return f"hello {name}"


@dataclass
class Env:
    registry: RegistryProcess
    node: NodeProcess

    def printed_lines(self) -> dict[str, str]:
        """What ``tarscascade up``, ``tarscascade registry`` and the README print, and
        each multi-endpoint line cut down to each of its endpoints."""
        reg, node = self.registry.tars_port, self.node.tars_port
        lines = {
            "up": client_locator(self.node, reg),
            "registry": self.registry.locator(),
            "node": self.node.locator(),
            "node QueryObj alias": f"tars.tarsregistry.QueryObj@tcp -h 127.0.0.1 -p {node}",
        }
        for name, line in list(lines.items()):
            ref = parse_object(line)
            if len(ref.endpoints) > 1:
                for i, ep in enumerate(ref.endpoints):
                    lines[f"{name}, endpoint {i + 1} only"] = f"{ref.name}@{format_endpoint(ep)}"
        return lines


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    require_node()
    rp = RegistryProcess(
        RegistryConfig(
            db=f"sqlite:///{tmp_path}/registry.db",
            listen=("127.0.0.1", 0),
            http=None,
            options=RegistryOptions(tail_interval=0.1, reload_interval=0),
        )
    )
    await rp.start()
    hello = TarsServer([InterfaceServant(OBJ, HELLO, Hello())])
    await hello.start()
    np = NodeProcess(
        NodeConfig("n1", [("127.0.0.1", rp.tars_port)], listen=("127.0.0.1", 0)), http=None
    )
    try:
        await np.start()
        assert rp.core is not None
        admin = RegistryAdmin(rp.core, hub=rp.hub)
        ep = f"tcp -h 127.0.0.1 -p {hello.port} -t 60000"
        await admin.add_endpoint(admin.build_endpoint(OBJ, ep))
        await eventually(lambda: bool(np.agent.catalog.get_object(OBJ)), timeout=30)
        yield Env(rp, np)
    finally:
        await np.aclose()
        await hello.aclose()
        await rp.aclose()


async def test_every_printed_locator_line_serves_20_fresh_clients_first_call(env: Env) -> None:
    failures: dict[str, list[object]] = {}
    for name, line in env.printed_lines().items():
        for i in range(FRESH_CLIENTS):
            run = await asyncio.to_thread(
                run_client_full,
                [
                    *("--locator", line, "--obj", OBJ, "--func", "hello"),
                    *("--args", f'["c{i}"]', "--timeout", CALL_TIMEOUT_MS),
                ],
                60.0,
            )
            first = run.results[0]
            if not (first["ok"] and first["ret"] == f"hello c{i}") or LOCATOR_ERROR in run.stderr:
                failures.setdefault(name, []).append((first, run.stderr[:300]))
    assert failures == {}, failures


async def test_the_registry_answers_as_node_serverobj_but_refuses_serverf(env: Env) -> None:
    async with Channel("127.0.0.1", env.registry.tars_port) as ch:
        ret, active, _ = await ch.call(NODE_SERVANT, FIND_IN_SAME_GROUP, OBJ)
        assert ret == 0
        assert [e.port for e in active] == [env.registry.core.catalog.get_object(OBJ)[0].port]  # type: ignore[union-attr]
        with pytest.raises(ServerError) as err:
            await ch.call(NODE_SERVANT, KEEP_ALIVE, ServerInfo("Test", "HelloServer", 7, ""))
        assert err.value.code == Ret.NO_FUNC
        assert "node on the server's own host" in str(err.value)
