"""A servant bound to every interface registers the node's advertised host, never
127.0.0.1 (review finding 16: a wildcard-bound SDK server used to register its loopback
address fleet-wide, so every other host's clients called themselves)."""

from __future__ import annotations

from pathlib import Path

from tarscascade.catalog.announce import announce_setting
from tarscascade.cli.runtime import RegistryConfig, RegistryProcess
from tarscascade.client import ServantHost
from tarscascade.node.app import NodeAgent, NodeConfig
from tarscascade.registry.admin_ops import RegistryAdmin
from tarscascade.registry.core import RegistryOptions
from tarscascade.testing import eventually
from tarscascade.transport import InterfaceServant
from tarscascade.wire.idl.serverf import NODE_SERVANT
from tests.integration.client.cluster import IFACE, OBJ, HelloImpl
from tests.integration.client.test_e2e_real_node import FAST

ADVERTISED = "10.9.8.7"  # the node's address as other hosts reach it


async def test_a_wildcard_bound_servant_registers_the_nodes_host(tmp_path: Path) -> None:
    rp = RegistryProcess(
        RegistryConfig(
            db=f"sqlite:///{tmp_path}/registry.db",
            listen=("127.0.0.1", 0),
            http=None,
            options=RegistryOptions(tail_interval=0.1, reload_interval=0),
        )
    )
    await rp.start()
    node = NodeAgent(
        NodeConfig(
            name="n1",
            upstreams=[("127.0.0.1", rp.tars_port)],
            listen=("127.0.0.1", 0),
            advertise=ADVERTISED,
            report_interval=0.1,
            client_options=FAST,
        )
    )
    host: ServantHost | None = None
    try:
        assert rp.core is not None
        core = rp.core
        await RegistryAdmin(core).put_setting(announce_setting("n1"), "Test.*")
        await node.start()
        assert node.client is not None
        await eventually(node.client.synced.is_set, timeout=30, what="node synced")
        host = ServantHost(
            [InterfaceServant(OBJ, IFACE, HelloImpl())],
            host="0.0.0.0",
            node=f"{NODE_SERVANT}@tcp -h 127.0.0.1 -p {node.port}",
            keepalive_interval=0.5,
        )
        await host.start()
        assert host.endpoint.host == "0.0.0.0"  # the wildcard is announced as such

        def registered() -> list[str]:
            return [r.host for r in core.catalog.get_object(OBJ) if r.port == host.port]

        await eventually(lambda: registered() != [], timeout=30, what="endpoint registered")
        assert registered() == [ADVERTISED]  # not 127.0.0.1, not 0.0.0.0
        (rec,) = [r for r in core.catalog.get_object(OBJ) if r.port == host.port]
        assert rec.node_name == "n1"
    finally:
        if host is not None:
            await host.aclose()
        await node.aclose()
        await rp.aclose()
