"""`registry --tars-db`: a whole registry process in db_tars mode, a node agent behind it.

What is served, what is refused (409) and what keeps working (reads, drain waiting,
nodes, settings, metrics), over real loopback TCP and HTTP; and nothing is ever written
to db_tars.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tarscascade.cli.runtime import RegistryConfig, RegistryProcess
from tarscascade.dbtars import ImportOptions
from tarscascade.model import Category
from tarscascade.node.app import NodeAgent
from tarscascade.registry.core import RegistryOptions
from tarscascade.testing import eventually
from tarscascade.transport import Channel
from tarscascade.wire.idl.queryf import QUERY_F, QUERY_SERVANT
from tests.integration.admin.node_harness import WAIT, node_agent
from tests.integration.dbtars.fleet import APP, NODES, OBJ, SRV, deploy_fleet

pytestmark = pytest.mark.db

N1, N2, N3 = NODES
EP = f"/v1/objects/{OBJ}/endpoints/{N1}/10001"
FAST_IMPORT = ImportOptions(poll_interval=0.1, signature_interval=0.5, full_interval=60)


def _checksums(w: Any) -> dict[str, int]:
    tables = "t_server_conf, t_adapter_conf, t_node_info, t_registry_info, t_server_group_rule"
    with w.conn.cursor() as cur:
        cur.execute(f"CHECKSUM TABLE {tables}, t_group_priority EXTENDED")
        return {name: value for name, value in cur.fetchall()}


@contextlib.asynccontextmanager
async def running(
    tars_db: Any, tmp_path: Path
) -> AsyncIterator[tuple[RegistryProcess, NodeAgent, httpx.AsyncClient]]:
    cfg = RegistryConfig(
        db=f"sqlite:///{tmp_path}/registry.db",
        listen=("127.0.0.1", 0),
        http=("127.0.0.1", 0),
        options=RegistryOptions(tail_interval=0.1, reload_interval=0),
        tars_db=tars_db.ro_url,
        import_options=FAST_IMPORT,
    )
    rp = RegistryProcess(cfg)
    await rp.start()
    agent = node_agent("agent-1", [("127.0.0.1", rp.tars_port)])
    try:
        await agent.start()
        assert agent.client is not None
        await eventually(agent.client.synced.is_set, timeout=WAIT, what="node synced")
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{rp.http_port}") as http:
            yield rp, agent, http
    finally:
        await agent.aclose()
        await rp.aclose()


async def _find(port: int, obj: str) -> list[tuple[str, int]]:
    ch = Channel("127.0.0.1", port)
    try:
        (active,) = await ch.call(QUERY_SERVANT, QUERY_F.methods["findObjectById"], obj, timeout=10)
    finally:
        await ch.aclose()
    return sorted((e.host, e.port) for e in active)


async def test_serves_db_tars_refuses_owned_writes_and_never_writes_t_tables(
    tars_db: Any, tmp_path: Path
) -> None:
    w = tars_db.writer()
    deploy_fleet(w)
    before = _checksums(w)
    async with running(tars_db, tmp_path) as (rp, agent, http):
        want = [(n, 10001) for n in NODES]
        assert await _find(rp.tars_port, OBJ) == want  # the registry's QueryObj
        await eventually(lambda: len(agent.catalog.get_object(OBJ)) == 3, timeout=WAIT)
        assert await _find(agent.port, OBJ) == want  # and the node's

        refused = [
            await http.post(
                f"/v1/objects/{OBJ}/endpoints", json={"endpoint": "tcp -h 1.2.3.4 -p 5"}
            ),
            await http.patch(EP, json={"weight": 5}),
            await http.put(EP + "/state", json={"state": "inactive"}),
            await http.delete(EP),
            await http.put(
                "/v1/groups/rules/1", json={"group_name": "g", "allow_ip_rule": ["10.0.0.*"]}
            ),
            await http.delete("/v1/groups/priorities/1"),
        ]
        for r in refused:
            assert r.status_code == 409, r.text
            assert "db_tars owns" in r.json()["error"]
        assert (await http.put("/v1/settings/motd", json={"value": "hi"})).status_code == 200
        assert (await http.get(f"/v1/objects/{OBJ}")).json()["endpoints"][0]["active"] is True
        nodes = (await http.get("/v1/nodes")).json()["nodes"]
        assert [n["name"] for n in nodes] == ["agent-1"]
        assert nodes[0]["connected"] is True
        status = (await http.get("/v1/dbtars")).json()
        assert status["leader"] is True
        assert status["held"] is None
        assert status["stats"]["endpoints"] == 15
        assert "***" in status["source"]  # the password is never shown
        metrics = (await http.get("/metrics")).text
        assert "tarscascade_registry_dbtars_leader 1.0" in metrics
        assert (await http.post("/v1/dbtars/confirm")).status_code == 409  # nothing held
        loads = status["stats"]["full_loads"]
        reloaded = await http.post("/v1/dbtars/reload")
        assert reloaded.status_code == 200
        assert reloaded.json()["stats"]["full_loads"] == loads + 1

        # a stop in TARS reaches the node
        w.stop(APP, SRV, N2)
        await eventually(
            lambda: (
                {(e.host, e.present_state.value) for e in agent.catalog.get_object(OBJ)}
                == {(N1, "active"), (N2, "inactive"), (N3, "active")}
            ),
            timeout=WAIT,
            what="the stop reached the node",
        )
        assert await _find(agent.port, OBJ) == [(N1, 10001), (N3, 10001)]
    assert _checksums(w) == {**before, **_only_changed_by_writers(before, w)}
    with w.conn.cursor() as cur:
        cur.execute(f"SHOW GRANTS FOR '{tars_db.user}'@'%'")
        grants = " ".join(g for (g,) in cur.fetchall())
    assert "GRANT SELECT ON" in grants
    assert "INSERT" not in grants
    assert "UPDATE" not in grants


def _only_changed_by_writers(before: dict[str, int], w: Any) -> dict[str, int]:
    # t_server_conf changed through the test's own stop; every other table is untouched
    now = _checksums(w)
    changed = {t for t in now if now[t] != before[t]}
    assert changed <= {f"{w.conn.db.decode()}.t_server_conf"}, changed
    return {t: now[t] for t in changed}


async def test_drain_waits_for_tars_to_take_the_traffic_off(
    tars_db_sql: Any, tmp_path: Path
) -> None:
    w = tars_db_sql.writer()
    deploy_fleet(w)
    async with running(tars_db_sql, tmp_path) as (_rp, agent, http):
        # nobody takes the traffic off: the drain cannot write it, and says so
        r = await http.post(EP + "/drain", json={"timeout": 0.5})
        assert r.status_code == 409
        assert "still active" in r.json()["error"]

        drain = asyncio.create_task(http.post(EP + "/drain", json={"timeout": 30}))
        w.traffic(APP, SRV, [N1], on=False)  # the operator's click in TarsWeb
        r = await drain
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["complete"] is True
        assert body["acked"] == ["agent-1"]
        assert body["endpoint"]["active"] is False
        assert body["changed"] is False  # tarscascade wrote nothing: TARS did
        version = body["version"]["revision"]
        assert agent.catalog.version(Category.OBJECTS).revision >= version
        assert all(
            e.host != N1
            for e in agent.answerer.catalog.get_object(OBJ)
            if agent.catalog.is_active(e)
        )
