"""A registry process and node agents over real loopback TCP, for the HTTP API tests."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import httpx

from tarscascade.cascade import ClientOptions
from tarscascade.cli.runtime import RegistryConfig, RegistryProcess
from tarscascade.model import Category
from tarscascade.node.app import NodeAgent, NodeConfig
from tarscascade.registry.admin_ops import RegistryAdmin
from tarscascade.registry.core import RegistryOptions
from tarscascade.testing import eventually

OBJ = "Test.HelloServer.HelloObj"
#: a bound for a loaded machine, not an expectation of speed
WAIT = 30.0
FAST = ClientOptions(heartbeat_interval=0.3, reconnect_initial=0.05, reconnect_max=0.3)


def registry_config(tmp_path: Path) -> RegistryConfig:
    return RegistryConfig(
        db=f"sqlite:///{tmp_path}/registry.db",
        listen=("127.0.0.1", 0),
        http=None,
        options=RegistryOptions(tail_interval=0.1, reload_interval=0),
    )


def node_agent(name: str, upstreams: list[tuple[str, int]]) -> NodeAgent:
    return NodeAgent(
        NodeConfig(
            name=name,
            upstreams=upstreams,
            listen=("127.0.0.1", 0),
            report_interval=0.1,
            client_options=FAST,
        )
    )


@contextlib.asynccontextmanager
async def cascade(
    tmp_path: Path, names: Sequence[str]
) -> AsyncIterator[tuple[RegistryProcess, list[NodeAgent]]]:
    """A registry and synced node agents subscribed to it; all stopped after."""
    rp = RegistryProcess(registry_config(tmp_path))
    nodes: list[NodeAgent] = []
    try:
        await rp.start()
        for name in names:
            agent = node_agent(name, [("127.0.0.1", rp.tars_port)])
            nodes.append(agent)
            await agent.start()
        for agent in nodes:
            assert agent.client is not None
            await eventually(agent.client.synced.is_set, timeout=WAIT, what="node synced")
        yield rp, nodes
    finally:
        for agent in nodes:
            await agent.aclose()
        await rp.aclose()


def admin(rp: RegistryProcess) -> RegistryAdmin:
    assert rp.core is not None
    return RegistryAdmin(rp.core, hub=rp.hub)


def asgi_client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


async def converged(rp: RegistryProcess, nodes: Sequence[NodeAgent]) -> None:
    """Every node is registered and holds the registry's objects version (a registration
    still in flight would take a revision later, under load)."""
    core = rp.core
    assert core is not None
    for agent in nodes:
        name = agent.config.name
        await eventually(lambda n=name: core.catalog.get_node(n) is not None, timeout=WAIT)

        def done(a: NodeAgent = agent) -> bool:
            return a.catalog.version(Category.OBJECTS) == core.catalog.version(Category.OBJECTS)

        await eventually(done, timeout=WAIT, what=f"{agent.config.name} converged")
