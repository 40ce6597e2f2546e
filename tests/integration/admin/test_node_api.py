"""The node agent's HTTP API against a real node agent synced from a real registry (TCP)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

from tarscascade.admin import NodeMetrics, create_node_app
from tarscascade.admin.node_api import parse_wait
from tarscascade.cli.runtime import RegistryProcess
from tarscascade.errors import ValidationError
from tarscascade.model import Category, GroupRule, State
from tarscascade.node.app import NodeAgent
from tarscascade.testing import eventually
from tests.integration.admin.node_harness import (
    OBJ,
    WAIT,
    admin,
    asgi_client,
    cascade,
    converged,
    node_agent,
)

URL = f"/v1/objects/{OBJ}"


async def add(rp: RegistryProcess, endpoint: str, **kw: Any) -> int:
    a = admin(rp)
    return (await a.add_endpoint(a.build_endpoint(OBJ, endpoint, **kw))).revision


def hosts(eps: list[dict[str, Any]]) -> list[str]:
    return sorted(e["host"] for e in eps)


# ---------------------------------------------------------------------------- operations


async def test_status_healthz_and_metrics_of_a_synced_node(
    node_app: tuple[RegistryProcess, NodeAgent, httpx.AsyncClient],
) -> None:
    rp, agent, client = node_app
    revision = await add(rp, "tcp -h 10.0.0.1 -p 1001")
    await converged(rp, [agent])
    assert rp.core is not None
    registry_objects = rp.core.catalog.version(Category.OBJECTS)

    r = await client.get("/status")
    assert r.status_code == 200
    status = r.json()
    assert status["node"] == "node-a"
    assert status["has_data"] is True
    assert status["stale"] is False
    assert status["synced"] is True
    assert status["upstream"] == f"127.0.0.1:{rp.tars_port}"
    objects = status["categories"]["objects"]
    assert objects["version"] == {"epoch": registry_objects.epoch, "revision": revision}
    assert objects["digest"] == f"{rp.core.catalog.digest(Category.OBJECTS):032x}"
    assert status["counts"]["endpoints"] == 1
    assert set(status["lag"]) == {c.value for c in Category}
    # the upstream's versions come with heartbeat answers: the lag settles at 0
    await eventually(
        lambda: agent.lag()[Category.OBJECTS] == 0, timeout=WAIT, what="lag known and 0"
    )
    assert (await client.get("/status")).json()["lag"]["objects"] == 0

    r = await client.get("/healthz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "node": "node-a", "stale": False, "synced": True}

    r = await client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    text = r.text
    assert f'tarscascade_node_category_revision{{category="objects"}} {revision}.0' in text
    assert 'tarscascade_node_category_lag{category="objects"} 0.0' in text
    assert 'tarscascade_node_records{kind="endpoints"} 1.0' in text
    assert "tarscascade_node_stale 0.0" in text
    assert "tarscascade_node_synced 1.0" in text
    assert "tarscascade_node_has_data 1.0" in text
    assert "tarscascade_node_cascade_subscribes_total 1.0" in text
    assert "tarscascade_node_subscriptions 0.0" in text
    assert "tarscascade_node_reports_sent_total 0.0" in text
    assert "digest" not in text
    # requests are counted by route template
    assert (
        'tarscascade_node_http_requests_total{method="GET",route="/status",status="200"} 2.0'
        in text
    )


async def test_before_any_data_the_node_says_so(tmp_path: Path) -> None:
    agent = node_agent("lonely", [("127.0.0.1", 1)])  # nothing listens there
    await agent.start()
    metrics = NodeMetrics(agent)
    try:
        async with asgi_client(create_node_app(agent, metrics=metrics)) as client:
            r = await client.get("/healthz")
            assert r.status_code == 503
            assert r.json()["error"].startswith("node has no data yet")
            r = await client.get(URL)
            assert r.status_code == 503
            assert r.json() == {"error": "node has no data yet", "reason": "unavailable"}
            r = await client.get(URL, params={"index": 0, "wait": "10s"})  # does not block
            assert r.status_code == 503
            status = (await client.get("/status")).json()
            assert status["has_data"] is False
            assert status["stale"] is True
            assert status["upstream"] is None
            assert status["lag"] == {c.value: None for c in Category}
            text = (await client.get("/metrics")).text
            assert "tarscascade_node_has_data 0.0" in text
            assert "tarscascade_node_stale 1.0" in text
            assert "tarscascade_node_category_lag{" not in text  # unknown: absent
            assert metrics.render().decode().count("tarscascade_node_http_requests_total{") >= 4
    finally:
        await agent.aclose()


# ---------------------------------------------------------------------------- lookups


async def test_object_lookup_gives_what_a_tars_client_of_the_node_gets(
    node_app: tuple[RegistryProcess, NodeAgent, httpx.AsyncClient],
) -> None:
    rp, agent, client = node_app
    a = admin(rp)
    await a.put_group_rule(GroupRule(1, "gz", allow_ip_rule=("10.1.1.*",)))
    await add(rp, "tcp -h 10.1.1.7 -p 1001 -t 60000", enable_group=True, ip_group_name="gz")
    await add(rp, "tcp -h 10.9.9.9 -p 1002")
    last = await add(rp, "tcp -h 10.9.9.8 -p 1003", setting_state=State.INACTIVE)
    await converged(rp, [agent])

    r = await client.get(URL)
    assert r.status_code == 200
    body = r.json()
    assert body["object_id"] == OBJ
    assert body["known"] is True
    assert body["stale"] is False
    assert body["function"] == "findObjectById4Any"
    assert body["index"] == last == agent.watch.index_of(OBJ)
    assert r.headers["x-tarscascade-index"] == str(last)
    assert hosts(body["active"]) == ["10.1.1.7", "10.9.9.9"]
    assert hosts(body["inactive"]) == ["10.9.9.8"]
    first = next(e for e in body["active"] if e["host"] == "10.1.1.7")
    assert first["endpoint"] == "tcp -h 10.1.1.7 -p 1001 -t 60000"
    assert first["port"] == 1001
    assert first["istcp"] == 1

    # a caller in IDC group gz gets findObjectByIdInSameGroup: its group's endpoints
    r = await client.get(URL, params={"caller": "10.1.1.5"})
    assert r.status_code == 200
    grouped = r.json()
    assert grouped["function"] == "findObjectByIdInSameGroup"
    assert grouped["caller"] == "10.1.1.5"
    assert hosts(grouped["active"]) == ["10.1.1.7"]

    # an unknown object: empty lists, as QueryF answers
    r = await client.get("/v1/objects/No.Such.Obj")
    assert r.status_code == 200
    unknown = r.json()
    assert unknown["known"] is False
    assert unknown["active"] == unknown["inactive"] == []

    for url, params, where in [
        ("/v1/objects/NotAnObject", {}, "object id"),
        (URL, {"caller": "node-1"}, "caller"),
        (URL, {"index": -1}, "query.index"),
        (URL, {"index": "x"}, "query.index"),
        (URL, {"wait": "5s"}, "wait needs index"),
    ]:
        r = await client.get(url, params=params)
        assert r.status_code == 400, (url, params, r.text)
        assert where in r.json()["error"]
    assert (await client.post(URL)).status_code == 405  # reads only


async def test_blocking_lookup_returns_as_soon_as_the_object_changes(
    node_app: tuple[RegistryProcess, NodeAgent, httpx.AsyncClient],
) -> None:
    rp, agent, client = node_app
    await add(rp, "tcp -h 10.0.0.1 -p 1001")
    await converged(rp, [agent])
    index = (await client.get(URL)).json()["index"]
    loop = asyncio.get_running_loop()
    started = loop.time()
    pending = asyncio.create_task(client.get(URL, params={"index": index, "wait": "2m"}))
    await eventually(lambda: agent.watch.waiters == 1, timeout=WAIT, what="lookup blocked")
    assert not pending.done()
    revision = await add(rp, "tcp -h 10.0.0.2 -p 1002")
    async with asyncio.timeout(WAIT):  # far less than the 2 minutes it may block
        r = await pending
    assert loop.time() - started < WAIT
    assert r.status_code == 200
    body = r.json()
    assert body["index"] == revision > index
    assert hosts(body["active"]) == ["10.0.0.1", "10.0.0.2"]
    assert agent.watch.waiters == 0

    # an index that is behind already: no wait at all
    async with asyncio.timeout(WAIT):
        r = await client.get(URL, params={"index": index, "wait": "2m"})
    assert r.json()["index"] == revision

    # a change of another object does not end the wait
    started = loop.time()
    pending = asyncio.create_task(client.get(URL, params={"index": revision, "wait": "300ms"}))
    await eventually(lambda: agent.watch.waiters == 1, timeout=WAIT, what="lookup blocked")
    other = admin(rp)
    await other.add_endpoint(other.build_endpoint("Other.App.Obj", "tcp -h 10.0.0.3 -p 1"))
    r = await pending
    assert loop.time() - started >= 0.3
    assert r.json()["index"] == revision


async def test_blocking_lookup_returns_after_the_wait_when_nothing_changed(
    node_app: tuple[RegistryProcess, NodeAgent, httpx.AsyncClient],
) -> None:
    rp, agent, client = node_app
    revision = await add(rp, "tcp -h 10.0.0.1 -p 1001")
    await converged(rp, [agent])
    loop = asyncio.get_running_loop()
    for wait, seconds in (("200ms", 0.2), ("0.25", 0.25), ("0s", 0.0)):
        started = loop.time()
        r = await client.get(URL, params={"index": revision, "wait": wait})
        assert loop.time() - started >= seconds
        assert r.status_code == 200
        body = r.json()
        assert body["index"] == revision
        assert hosts(body["active"]) == ["10.0.0.1"]
    assert agent.watch.waiters == 0
    for bad in ("abc", "301s", "6m", "5h", "-1", "1e3", "", "s"):
        r = await client.get(URL, params={"index": revision, "wait": bad})
        assert r.status_code == 400, bad
        assert "wait" in r.json()["error"]


def test_parse_wait() -> None:
    assert parse_wait("30s") == 30.0
    assert parse_wait("500ms") == 0.5
    assert parse_wait("2m") == 120.0
    assert parse_wait("1.5") == 1.5
    assert parse_wait("300") == 300.0
    assert parse_wait("5m") == 300.0
    for bad in ("300.5s", "1h", "1 s", "x", "-5s", "nan", "inf"):
        with pytest.raises(ValidationError):
            parse_wait(bad)


async def test_openapi_lists_the_node_routes(
    node_app: tuple[RegistryProcess, NodeAgent, httpx.AsyncClient],
) -> None:
    _, _, client = node_app
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert {p: set(m) for p, m in paths.items()} == {
        "/status": {"get"},
        "/healthz": {"get"},
        "/metrics": {"get"},
        "/v1/objects/{object_id}": {"get"},
    }
    params = {p["name"] for p in paths["/v1/objects/{object_id}"]["get"]["parameters"]}
    assert params == {"object_id", "index", "wait", "caller"}


async def test_healthz_turns_503_once_the_node_was_stale_past_its_bound(tmp_path: Path) -> None:
    """A node whose upstream went away keeps answering QueryF from its replica, says it is
    stale at once, and fails its health check once that lasted longer than max_stale."""
    async with cascade(tmp_path, ["node-a"]) as (rp, nodes):
        agent = nodes[0]
        agent.config.max_stale = 0.5
        async with asgi_client(create_node_app(agent)) as client:
            await eventually(lambda: not agent.stale, timeout=WAIT, what="fresh")
            assert (await client.get("/healthz")).status_code == 200
            await rp.aclose()  # the registry goes away
            await eventually(lambda: agent.stale, timeout=WAIT, what="stale")
            r = await client.get("/healthz")
            assert r.status_code == 200  # stale, but not for long yet
            assert r.json()["status"] == "stale"
            await eventually(lambda: agent.stale_for() > 0.5, timeout=WAIT)
            r = await client.get("/healthz")
            assert r.status_code == 503
            assert r.json()["error"].startswith("stale: the replica has not been confirmed")
            status = (await client.get("/status")).json()
            assert status["stale"] is True
            assert status["stale_for_s"] > 0.5
            assert "tarscascade_node_stale 1.0" in (await client.get("/metrics")).text
