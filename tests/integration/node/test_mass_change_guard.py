"""The mass-change guard end to end (issue 12 + 13; review F1).

The registry's database is lost and recreated empty (``--init``): before, every node
replaced its replica with nothing while reporting synced. Now the new lineage starts
unconfirmed at the registry, nodes keep serving the old one and say so, and an
operator's confirmation lets it through within a heartbeat.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from tarscascade.cascade import ClientOptions
from tarscascade.cli.runtime import RegistryConfig, RegistryProcess
from tarscascade.model import Category, EndpointRecord
from tarscascade.node.app import NodeAgent, NodeConfig
from tarscascade.registry.core import RegistryOptions
from tarscascade.store import Put
from tarscascade.testing import eventually

FAST = ClientOptions(heartbeat_interval=0.3, reconnect_initial=0.05, reconnect_max=0.3)
WAIT = 30.0
OBJ = "Guard.Demo.Obj"


def registry(db: Path, port: int = 0, *, init: bool = False) -> RegistryProcess:
    return RegistryProcess(
        RegistryConfig(
            db=f"sqlite:///{db}",
            listen=("127.0.0.1", port),
            http=None,
            options=RegistryOptions(tail_interval=0.1, reload_interval=0),
            init=init,
        )
    )


def lose_database(directory: Path) -> None:
    """The database files are gone; the lineage marker stays (it remembers 10 endpoints)."""
    for path in directory.glob("registry.db*"):
        if path.suffix != ".json":
            path.unlink()


async def test_an_emptied_database_is_held_back_until_confirmed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    db = tmp_path / "registry.db"
    rp = registry(db)
    await rp.start()
    assert rp.core is not None
    await rp.core.write([Put(EndpointRecord(OBJ, "10.0.0.1", 9000 + i)) for i in range(10)])
    port = rp.tars_port
    node = NodeAgent(
        NodeConfig("n1", [("127.0.0.1", port)], listen=("127.0.0.1", 0), client_options=FAST)
    )
    await node.start()
    try:
        await eventually(lambda: len(node.catalog.get_object(OBJ)) == 10, timeout=WAIT)
        old_epoch = node.catalog.version(Category.OBJECTS).epoch
        await rp.aclose()
        await asyncio.to_thread(lose_database, tmp_path)
        rp = registry(db, port, init=True)
        await rp.start()
        assert rp.core is not None
        core = rp.core
        assert not core.epoch_confirmed
        assert core.epoch != old_epoch

        # the node reconnects, is told the new lineage is held, keeps its 10 endpoints
        await eventually(lambda: node.client is not None and node.client.held_back, timeout=WAIT)
        assert rp.hub is not None
        assert rp.hub.stats.held_plans >= 1
        assert len(node.catalog.get_object(OBJ)) == 10
        assert node.catalog.version(Category.OBJECTS).epoch == old_epoch
        status = node.status()
        assert "objects" in status["lineage_held"]
        assert status["stale"] is True
        heartbeats = rp.hub.stats.heartbeats
        await eventually(lambda: rp.hub is not None and rp.hub.stats.heartbeats >= heartbeats + 3)
        held = [r for r in caplog.records if getattr(r, "event", "") == "guard_held"]
        # said once by the registry and once by the node, not at every heartbeat
        assert sorted(r.name for r in held) == [
            "tarscascade.cascade.downstream",
            "tarscascade.registry.core",
        ]

        # an operator confirms: the fleet takes the (empty) new lineage
        await core.confirm_epoch("test")
        await eventually(
            lambda: node.catalog.version(Category.OBJECTS).epoch == core.epoch, timeout=WAIT
        )
        assert node.catalog.get_object(OBJ) == ()
        await eventually(lambda: not node.stale, timeout=WAIT, what="fresh on the new lineage")
    finally:
        await node.aclose()
        await rp.aclose()
