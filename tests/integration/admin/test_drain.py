"""Drain (inactive + wait for every node's acknowledgement) and the cascade view of
``/v1/nodes``, against a real registry process and node agents over TCP."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tarscascade.admin import create_registry_app
from tarscascade.cascade.states import held_states
from tarscascade.cli.runtime import RegistryProcess
from tarscascade.model import Category, State
from tarscascade.node.app import NodeAgent
from tarscascade.store import Patch
from tarscascade.testing import eventually
from tarscascade.transport import Channel
from tarscascade.wire.idl.cascadef import CASCADE_SERVANT, OK, SUBSCRIBE, SubscribeReq
from tests.integration.admin.harness import AUTH, TOKEN, admin_of, running_core
from tests.integration.admin.node_harness import (
    OBJ,
    WAIT,
    admin,
    asgi_client,
    cascade,
    converged,
)

NAMES = ["node-0", "node-1", "node-2"]
DRAIN = f"/v1/objects/{OBJ}/endpoints/10.0.0.1/1001/drain"


@pytest.fixture
async def setup(
    tmp_path: Path,
) -> AsyncIterator[tuple[RegistryProcess, list[NodeAgent], httpx.AsyncClient]]:
    async with cascade(tmp_path, NAMES) as (rp, nodes):
        a = admin(rp)
        await a.add_endpoint(a.build_endpoint(OBJ, "tcp -h 10.0.0.1 -p 1001"))
        await a.add_endpoint(a.build_endpoint(OBJ, "tcp -h 10.0.0.2 -p 1002"))
        await converged(rp, nodes)
        async with asgi_client(create_registry_app(a, token=TOKEN)) as client:
            client.headers.update(AUTH)
            yield rp, nodes, client


def active_hosts(agent: NodeAgent) -> list[str]:
    return sorted(r.host for r in agent.catalog.get_object(OBJ) if agent.catalog.is_active(r))


@contextlib.asynccontextmanager
async def mute_subscriber(rp: RegistryProcess, like: NodeAgent) -> AsyncIterator[Channel]:
    """A node that subscribed (holding what ``like`` holds) and never acknowledges."""
    async with Channel("127.0.0.1", rp.tars_port) as ch:
        req = SubscribeReq(nodeName="mute", held=held_states(like.catalog), address="127.0.0.1:9")
        ret, _ = await ch.call(CASCADE_SERVANT, SUBSCRIBE, req)
        assert ret == OK
        yield ch


async def test_drain_waits_for_every_node_and_they_all_serve_it_inactive(
    setup: tuple[RegistryProcess, list[NodeAgent], httpx.AsyncClient],
) -> None:
    rp, nodes, client = setup
    assert rp.core is not None
    before = rp.core.revision
    r = await client.post(DRAIN, json={"timeout": WAIT})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["complete"] is True
    assert body["changed"] is True
    assert body["revision"] == before + 1
    assert body["version"] == {"epoch": rp.core.epoch, "revision": before + 1}
    assert body["nodes"] == body["acked"] == NAMES
    assert body["missing"] == []
    assert 0 <= body["elapsed_s"] < WAIT
    assert body["endpoint"]["setting_state"] == "inactive"
    assert body["endpoint"]["active"] is False
    # acknowledged means applied: no node hands the endpoint out any more
    assert all(active_hosts(n) == ["10.0.0.2"] for n in nodes)

    # again: nothing is written, the wait is for the current objects version
    r = await client.post(DRAIN)  # no body: the default timeout
    assert r.status_code == 200, r.text
    again = r.json()
    assert again["changed"] is False
    assert again["revision"] == rp.core.catalog.version(Category.OBJECTS).revision
    assert again["complete"] is True
    assert again["acked"] == NAMES
    assert rp.core.revision == before + 1


async def test_a_stopped_node_is_waited_for_until_judged_dead(
    setup: tuple[RegistryProcess, list[NodeAgent], httpx.AsyncClient],
) -> None:
    """A registered node that went away may still serve its replica to its host: the
    drain waits for it (review B1) until liveness judges it dead; then it is named
    offline, not waited for."""
    rp, nodes, client = setup
    assert rp.hub is not None
    assert rp.core is not None
    hub, core = rp.hub, rp.core
    await nodes[2].aclose()
    await eventually(
        lambda: not hub.node_states()["node-2"].connected, timeout=WAIT, what="node-2 gone"
    )
    r = await client.post(DRAIN, json={"timeout": 0.5})
    body = r.json()
    assert body["complete"] is False
    assert body["nodes"] == NAMES
    assert body["missing"] == ["node-2"]
    assert body["acked"] == ["node-0", "node-1"]
    assert body["offline"] == []

    listed = {n["name"]: n for n in (await client.get("/v1/nodes")).json()["nodes"]}
    assert listed["node-2"]["connected"] is False
    assert listed["node-2"]["registered"] is True
    assert listed["node-2"]["lag"]["objects"] >= 1  # it missed the drain
    assert listed["node-0"]["connected"] is True

    # judged dead (what the liveness judge writes): offline, not waited for
    await core.write([Patch(Category.NODES, "node-2", {"present_state": State.INACTIVE})])
    body = (await client.post(DRAIN, json={"timeout": WAIT})).json()
    assert body["complete"] is True
    assert body["nodes"] == body["acked"] == ["node-0", "node-1"]
    assert body["offline"] == ["node-2"]


async def test_a_node_that_does_not_acknowledge_is_named(
    setup: tuple[RegistryProcess, list[NodeAgent], httpx.AsyncClient],
) -> None:
    rp, nodes, client = setup
    assert rp.hub is not None
    hub = rp.hub
    async with mute_subscriber(rp, nodes[0]):
        await eventually(lambda: "mute" in hub.node_states(), timeout=WAIT, what="mute in")
        r = await client.post(DRAIN, json={"timeout": 0.5})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["complete"] is False
        assert body["missing"] == ["mute"]
        assert body["acked"] == NAMES
        assert body["nodes"] == sorted([*NAMES, "mute"])
        assert body["elapsed_s"] >= 0.5
        # the endpoint stays drained, and the nodes that acked serve it so
        assert all(active_hosts(n) == ["10.0.0.2"] for n in nodes)

        # the cascade view names the laggard
        listed = {n["name"]: n for n in (await client.get("/v1/nodes")).json()["nodes"]}
        mute = listed["mute"]
        assert mute["connected"] is True
        assert mute["address"] == "127.0.0.1:9"
        assert mute["lag"]["objects"] >= 1
        assert mute["versions"]["objects"]["revision"] < body["revision"]


async def test_nodes_show_the_record_and_the_cascade_view(
    setup: tuple[RegistryProcess, list[NodeAgent], httpx.AsyncClient],
) -> None:
    rp, nodes, client = setup
    assert rp.core is not None
    core = rp.core
    await eventually(
        lambda: all(core.catalog.get_node(n) is not None for n in NAMES),
        timeout=WAIT,
        what="nodes registered",
    )
    objects = core.catalog.version(Category.OBJECTS)
    assert rp.hub is not None
    hub = rp.hub

    def acked() -> bool:  # acks are coalesced over a few ms
        states = hub.node_states()
        return all(n in states and states[n].held.get(Category.OBJECTS) == objects for n in NAMES)

    await eventually(acked, timeout=WAIT, what="every node's ack")
    r = await client.get("/v1/nodes")
    assert r.status_code == 200
    listed = r.json()["nodes"]
    assert [n["name"] for n in listed] == NAMES
    for view, agent in zip(listed, nodes, strict=True):
        assert view["registered"] is True
        assert view["host"] == "127.0.0.1"
        assert view["port"] == agent.port
        assert view["present_state"] == "active"
        assert view["connected"] is True
        assert view["via"] == ""
        assert view["address"] == f"127.0.0.1:{agent.port}"
        assert set(view["versions"]) == {c.value for c in Category}
        assert view["versions"]["objects"]["revision"] == objects.revision
        assert view["versions"]["objects"]["epoch"] == objects.epoch
        digest = core.catalog.digest(Category.OBJECTS)
        assert view["versions"]["objects"]["digest"] == f"{digest:032x}"
        assert view["lag"]["objects"] == 0
        assert 0 <= view["last_heartbeat_age_s"] < WAIT
    one = (await client.get("/v1/nodes/node-1")).json()
    assert one["name"] == "node-1"
    assert one["connected"] is True
    assert (await client.get("/v1/nodes/ghost")).status_code == 404


async def test_refused_drains_change_nothing(
    setup: tuple[RegistryProcess, list[NodeAgent], httpx.AsyncClient],
) -> None:
    rp, _, client = setup
    assert rp.core is not None
    before = rp.core.revision
    cases: list[tuple[str, Any, dict[str, str] | None, int, str]] = [
        (DRAIN, {"timeout": 601}, None, 400, "body.timeout"),
        (DRAIN, {"timeout": -1}, None, 400, "body.timeout"),
        (DRAIN, {"timeout": "5"}, None, 400, "body.timeout"),
        (DRAIN, {"wait": 5}, None, 400, "body.wait"),
        (DRAIN, {"timeout": 1}, {"Authorization": ""}, 401, "token"),
        (DRAIN, {"timeout": 1}, {"Authorization": "Bearer wrong"}, 403, "wrong"),
        (DRAIN.replace("1001", "1009"), {"timeout": 1}, None, 404, "not found"),
        (DRAIN.replace("1001", "70000"), {"timeout": 1}, None, 400, "port"),
        (DRAIN.replace(OBJ, "NotAnObject"), {"timeout": 1}, None, 400, "object id"),
    ]
    for url, body, headers, status, where in cases:
        r = await client.post(url, json=body, headers=headers)
        assert r.status_code == status, (url, body, r.text)
        assert where in r.json()["error"], r.text
    assert rp.core.revision == before


async def test_without_a_cascade_hub_there_is_nothing_to_wait_for(tmp_path: Path) -> None:
    async with running_core(tmp_path) as core:
        a = admin_of(core)
        await a.add_endpoint(a.build_endpoint(OBJ, "tcp -h 10.0.0.1 -p 1001"))
        async with asgi_client(create_registry_app(a, token=None)) as client:
            body = (await client.post(DRAIN, json={"timeout": 5, "force": True})).json()
            assert body["complete"] is True
            assert body["nodes"] == body["missing"] == []
            nodes = (await client.get("/v1/nodes")).json()["nodes"]
            assert nodes == []
        record = a.get_endpoint(OBJ, "10.0.0.1", 1001)
        assert record.setting_state == State.INACTIVE


async def test_openapi_documents_drain_as_a_write(
    setup: tuple[RegistryProcess, list[NodeAgent], httpx.AsyncClient],
) -> None:
    _, _, client = setup
    doc = (await client.get("/openapi.json")).json()
    drain = doc["paths"]["/v1/objects/{object_id}/endpoints/{host}/{port}/drain"]
    assert set(drain) == {"post"}
    assert drain["post"]["security"] == [{"HTTPBearer": []}]
    timeout = doc["components"]["schemas"]["DrainBody"]["properties"]["timeout"]
    assert (timeout["minimum"], timeout["maximum"], timeout["default"]) == (0, 600, 30.0)


async def test_a_streamed_drain_reports_progress_and_the_result_is_kept(
    setup: tuple[RegistryProcess, list[NodeAgent], httpx.AsyncClient],
) -> None:
    rp, nodes, client = setup
    assert rp.hub is not None
    hub = rp.hub
    async with mute_subscriber(rp, nodes[0]):
        await eventually(lambda: "mute" in hub.node_states(), timeout=WAIT, what="mute in")
        headers = {"Accept": "application/x-ndjson"}
        r = await client.post(DRAIN, json={"timeout": 1.0}, headers=headers)
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("application/x-ndjson")
        events = [json.loads(line) for line in r.text.splitlines()]
    kinds = [e["event"] for e in events]
    assert kinds[0] == "started"
    assert kinds[-1] == "result"
    assert set(kinds[1:-1]) == {"progress"}
    assert events[0]["nodes"] == sorted([*NAMES, "mute"])
    last = events[-2]
    assert (last["acked_count"], last["total"], last["missing"]) == (3, 4, ["mute"])
    counts = [e["acked_count"] for e in events if e["event"] == "progress"]
    assert counts == sorted(counts)  # acknowledgements only accumulate
    result = events[-1]
    assert (result["complete"], result["missing"]) == (False, ["mute"])
    # kept: a page reloaded afterwards still shows what happened
    kept = (await client.get(f"/v1/drains/{result['id']}")).json()
    assert kept["done"] is True
    assert kept["missing"] == ["mute"]
    assert kept["result"] == {k: v for k, v in result.items() if k != "event"}
    listed = (await client.get("/v1/drains")).json()["drains"]
    assert listed[0]["id"] == result["id"]
    assert (await client.get("/v1/drains/999")).json()["reason"] == "not_found"
