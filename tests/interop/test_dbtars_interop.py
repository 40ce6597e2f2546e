"""The real TARS client from npm (@tars/rpc) through a node agent fed by db_tars.

Two servants deployed the TarsWeb way (t_server_conf + t_adapter_conf rows, started by
tarsAdminRegistry's and tarsnode's writes) are resolved through the node's QueryObj and
called; after an undeploy (stop, then both rows deleted: invisible to TARS's
incremental load) the node stops handing the undeployed one out.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from tarscascade.cli.runtime import RegistryConfig, RegistryProcess
from tarscascade.dbtars import ImportOptions
from tarscascade.registry.core import RegistryOptions
from tarscascade.testing import eventually
from tarscascade.transport import Current, InterfaceServant, TarsServer
from tarscascade.wire.codec import STRING
from tarscascade.wire.interface import Interface, Method, Param
from tests.integration.admin.node_harness import WAIT, node_agent
from tests.integration.dbtars.conftest import create_tars_db, drop_tars_db
from tests.integration.dbtars.writers import Adapter
from tests.interop.nodeproc import require_node, run_client_full

pytestmark = [pytest.mark.interop, pytest.mark.db]

OBJ = "Test.HelloServer.HelloObj"
HELLO = Interface.of("Hello", Method("hello", (Param("name", STRING),), STRING))
#: the undeploy must leave every node within S + a full load (S = 0.5 s here)
IMPORT = ImportOptions(poll_interval=0.2, signature_interval=0.5, full_interval=60)


class Hello:
    def __init__(self, tag: str) -> None:
        self.tag = tag

    def hello(self, cur: Current, name: str) -> str:
        return f"hello {name} from {self.tag}"


def _calls(locator: str, n: int) -> list[dict[str, Any]]:
    run = run_client_full(
        [
            "--locator",
            locator,
            "--obj",
            OBJ,
            "--func",
            "hello",
            "--args",
            '["db"]',
            "--calls",
            str(n),
        ],
        60.0,
    )
    return run.results


async def test_tars_rpc_resolves_a_tarsweb_deployed_servant_and_forgets_it_after_undeploy(
    tmp_path: Path,
) -> None:
    require_node()
    db = create_tars_db("tarsweb")
    servers = [TarsServer([InterfaceServant(OBJ, HELLO, Hello(t))]) for t in ("a", "b")]
    rp: RegistryProcess | None = None
    agent = None
    try:
        for s in servers:
            await s.start()
        w = db.writer()
        for tag, s in zip(("A", "B"), servers, strict=True):
            w.deploy("Test", f"Hello{tag}", "127.0.0.1", [Adapter(f"{OBJ}Adapter", OBJ, s.port)])
            w.start("Test", f"Hello{tag}", "127.0.0.1")
        rp = RegistryProcess(
            RegistryConfig(
                db=f"sqlite:///{tmp_path}/registry.db",
                listen=("127.0.0.1", 0),
                http=None,
                options=RegistryOptions(tail_interval=0.1, reload_interval=0),
                tars_db=db.ro_url,
                import_options=IMPORT,
            )
        )
        await rp.start()
        agent = node_agent("127.0.0.1", [("127.0.0.1", rp.tars_port)])
        await agent.start()
        await eventually(lambda: len(agent.catalog.get_object(OBJ)) == 2, timeout=WAIT)
        locator = f"tars.tarsregistry.QueryObj@tcp -h 127.0.0.1 -p {agent.port}"

        results = await asyncio.to_thread(_calls, locator, 6)
        assert all(r["ok"] for r in results), results
        assert {r["ret"] for r in results} <= {"hello db from a", "hello db from b"}
        assert any(f"-p {servers[1].port}" in r["endpoint"] for r in results)  # b is used

        started = time.monotonic()
        w.undeploy("Test", "HelloB", "127.0.0.1")
        await eventually(
            lambda: [e.port for e in agent.catalog.get_object(OBJ)] == [servers[0].port],
            timeout=WAIT,
            what="the undeploy reached the node",
        )
        took = time.monotonic() - started
        results = await asyncio.to_thread(_calls, locator, 6)
        assert all(r["ok"] for r in results), results
        assert {r["ret"] for r in results} == {"hello db from a"}
        assert all(f"-p {servers[1].port}" not in r["endpoint"] for r in results)
        print(f"undeploy -> gone from the node in {took:.2f} s")
    finally:
        if agent is not None:
            await agent.aclose()
        if rp is not None:
            await rp.aclose()
        for s in servers:
            await s.aclose()
        drop_tars_db(db)
