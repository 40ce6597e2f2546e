"""A real registry process and node agent over TCP, with two endpoints of HELLO.

Shared by the protocol-version tests (integration and @tars/rpc interop).
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tarscascade.cascade import ClientOptions
from tarscascade.cli.runtime import RegistryConfig, RegistryProcess
from tarscascade.model import EndpointRecord, State
from tarscascade.node.app import NodeAgent, NodeConfig
from tarscascade.registry.admin_ops import RegistryAdmin
from tarscascade.registry.core import RegistryOptions
from tarscascade.testing import eventually
from tarscascade.transport import Channel

HELLO = "Test.HelloServer.HelloObj"
FAST = ClientOptions(heartbeat_interval=0.5, reconnect_initial=0.05, reconnect_max=0.3)
TOKEN = "s3cret"
#: port 9001 starts active, 9002 inactive; both on node "n1"
PORTS = {9001: State.ACTIVE, 9002: State.INACTIVE}


@dataclass
class Rig:
    registry: RegistryProcess
    node: NodeAgent
    admin: RegistryAdmin
    to_node: Channel
    to_registry: Channel

    def record(self, port: int) -> EndpointRecord:
        assert self.registry.core is not None
        return next(r for r in self.registry.core.catalog.get_object(HELLO) if r.port == port)


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    cfg = RegistryConfig(
        db=f"sqlite:///{tmp_path}/registry.db",
        listen=("127.0.0.1", 0),
        http=None,
        token=TOKEN,
        options=RegistryOptions(tail_interval=0.1, reload_interval=0),
    )
    rp = RegistryProcess(cfg)
    await rp.start()
    agent = NodeAgent(
        NodeConfig(
            name="n1",
            upstreams=[("127.0.0.1", rp.tars_port)],
            listen=("127.0.0.1", 0),
            token=TOKEN,
            report_interval=0.05,
            client_options=FAST,
        )
    )
    try:
        await agent.start()
        assert agent.client is not None
        assert rp.core is not None
        await eventually(agent.client.synced.is_set, timeout=30)
        admin = RegistryAdmin(rp.core, hub=rp.hub)
        for port, state in PORTS.items():
            rec = admin.build_endpoint(HELLO, f"tcp -h 127.0.0.1 -p {port}", node_name="n1")
            await admin.add_endpoint(dataclasses.replace(rec, present_state=state))
        await eventually(lambda: len(agent.catalog.get_object(HELLO)) == 2, timeout=20)
        async with (
            Channel("127.0.0.1", agent.port) as to_node,
            Channel("127.0.0.1", rp.tars_port) as to_registry,
        ):
            yield Rig(rp, agent, admin, to_node, to_registry)
    finally:
        await agent.aclose()
        await rp.aclose()
