"""A client whose only upstream's server closed while it was connected closes at once.

It hung: the drop ended the session's TaskGroup with an error, and Python 3.11's TaskGroup
drops a cancellation (aclose's) that comes while it waits for its tasks after an error,
so the client went on reconnecting and aclose waited for ever (closing right after the
server, pause 0, hit it every time)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tarscascade.node.app import NodeAgent
from tarscascade.testing import eventually
from tests.integration.cascade.harness import WAIT, Cluster
from tests.integration.security.fleet import node_config, registry


@pytest.mark.parametrize("pause", [0.0, 0.05, 0.5])
@pytest.mark.parametrize("how", ["server", "registry"])
async def test_client_closes_after_its_only_upstream_closed(
    cluster: Cluster, how: str, pause: float
) -> None:
    reg = await cluster.start_registry()
    node = cluster.node("n1", [("127.0.0.1", reg.port)])
    await eventually(node.client.synced.is_set, timeout=WAIT, what="synced")
    if how == "server":
        await asyncio.wait_for(reg.server.aclose(), 10)
    else:
        await asyncio.wait_for(cluster.stop_registry(reg), 10)
    await asyncio.sleep(pause)
    await asyncio.wait_for(cluster.close_node(node), 5)


@pytest.mark.parametrize("pause", [0.0, 0.05, 0.5])
async def test_agent_closes_after_its_registry_process_closed(tmp_path: Path, pause: float) -> None:
    rp = registry(tmp_path, token="tok")
    await rp.start()
    agent = NodeAgent(node_config("n1", rp, token="tok", data_dir=tmp_path / "n1"))
    await agent.start()
    assert agent.client is not None
    client = agent.client
    await eventually(client.synced.is_set, timeout=WAIT, what="synced")
    await asyncio.wait_for(rp.aclose(), 10)
    await asyncio.sleep(pause)
    await asyncio.wait_for(agent.aclose(), 5)
